//! Hand-run measurements of the NFSv4.2 data ops against what a client does without
//! them, same run, alternating (numbers, not assertions: these machines are noisy):
//! - server-side COPY of 256 MiB (asynchronous, ending in CB_OFFLOAD) against the client
//!   copying it itself with 1 MiB READs and WRITEs: wall time and bytes on the wire;
//! - READ_PLUS against READ over a half-sparse 64 MiB file (1 MiB of data, 1 MiB hole,
//!   ...): reply bytes and MiB/s.
//!
//! Run: `cargo test --release --test nfs42_measure -- --ignored --nocapture`

pub mod common;
pub mod files_common;

use std::time::{Duration, Instant};

use common::wait_until;
use files_common::{Env, TempDir};
use ringnfs::client::{CloneArgs, Files, Op, ReadArgs, Stateid};
use ringnfs::server::BackendKind;

const MIB: u64 = 1 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Bytes of the op results after SEQUENCE and PUTFH (what the reply carries for them).
fn reply_bytes(r: &ringnfs::client::CompoundReply) -> u64 {
    r.results
        .iter()
        .skip(2)
        .map(|o| 8 + o.body.len() as u64)
        .sum()
}

#[test]
#[ignore = "hand-run measurement: cargo test --release --test nfs42_measure -- --ignored --nocapture"]
fn copy_and_read_plus_against_what_the_client_does_without_them() {
    let dir = TempDir::new("measure");
    let export = dir.path().join("export");
    let env = Env::start(BackendKind::Local, move |cfg| {
        cfg.export_path = export.clone()
    });
    let (ids, session) = env.server.session();
    let f = Files::new(session);
    let cb = ids.callbacks.expect("callback handler");
    let root = f.root_fh().unwrap();

    // ---- COPY of 256 MiB
    let len = 256 * MIB;
    let chunk: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let (src, of) = f.create(&root, b"src", 0o644).unwrap();
    for i in 0..len / MIB {
        f.write(&of, i * MIB, &chunk, 0).unwrap();
    }
    f.commit(&src, 0, 0).unwrap();
    let (mut server_s, mut client_s) = (Vec::new(), Vec::new());
    let (mut server_wire, mut client_wire) = (0, 0);
    for round in 0..3 {
        for server_side in [round % 2 == 0, round % 2 != 0] {
            let name = format!("dst-{round}-{server_side}");
            let (dst, dof) = f.create(&root, name.as_bytes(), 0o644).unwrap();
            let t = Instant::now();
            if server_side {
                let seen = cb.stats().offloads.len();
                let r = f
                    .call(&[
                        Op::PutFh(src.clone()),
                        Op::SaveFh,
                        Op::PutFh(dst.clone()),
                        Op::Copy {
                            a: CloneArgs {
                                src_stateid: Stateid::ANONYMOUS,
                                dst_stateid: dof.stateid,
                                src_offset: 0,
                                dst_offset: 0,
                                count: 0,
                            },
                            synchronous: false,
                        },
                    ])
                    .unwrap();
                server_wire = 200 + reply_bytes(&r);
                assert!(wait_until(Duration::from_secs(120), || cb
                    .stats()
                    .offloads
                    .len()
                    > seen));
                server_s.push(t.elapsed().as_secs_f64());
            } else {
                let mut wire = 0;
                for i in 0..len / MIB {
                    let (data, _) = f
                        .read_at(&src, Stateid::ANONYMOUS, i * MIB, MIB as u32)
                        .unwrap();
                    wire += data.len() as u64;
                    f.write(&dof, i * MIB, &data, 0).unwrap();
                    wire += data.len() as u64;
                }
                client_wire = wire;
                client_s.push(t.elapsed().as_secs_f64());
            }
            f.close(dof).unwrap();
            f.call(&[Op::PutFh(root.clone()), Op::Remove(name.into_bytes())])
                .unwrap();
        }
    }
    let (s, c) = (median(server_s), median(client_s));
    println!("| 256 MiB copy | wall time (median of 3) | bytes on the wire |");
    println!("|---|---|---|");
    println!("| server-side COPY (async, CB_OFFLOAD) | {s:.3} s | {server_wire} |");
    println!("| client READ + WRITE, 1 MiB each | {c:.3} s | {client_wire} |");
    println!(
        "COPY is {:.1}x faster and moves {:.0}x fewer bytes",
        c / s,
        client_wire as f64 / server_wire as f64
    );

    // ---- READ_PLUS against READ over a half-sparse 64 MiB file
    let (sparse, sof) = f.create(&root, b"sparse", 0o644).unwrap();
    let size = 64 * MIB;
    for i in (0..size / MIB).step_by(2) {
        f.write(&sof, i * MIB, &chunk, 0).unwrap();
    }
    f.call(&[
        Op::PutFh(sparse.clone()),
        Op::SetAttr {
            stateid: sof.stateid,
            attrs: ringnfs::client::Fattr::new().size(size),
        },
    ])
    .unwrap();
    f.commit(&sparse, 0, 0).unwrap();
    let pass = |plus: bool| -> (f64, u64) {
        let t = Instant::now();
        let mut bytes = 0;
        for i in 0..size / MIB {
            let args = ReadArgs {
                stateid: Stateid::ANONYMOUS,
                offset: i * MIB,
                count: MIB as u32,
            };
            let op = if plus {
                Op::ReadPlus(args)
            } else {
                Op::Read(args)
            };
            let r = f.call(&[Op::PutFh(sparse.clone()), op]).unwrap();
            bytes += reply_bytes(&r);
        }
        (t.elapsed().as_secs_f64(), bytes)
    };
    let (mut rp, mut rd) = (Vec::new(), Vec::new());
    let (mut rp_bytes, mut rd_bytes) = (0, 0);
    for round in 0..5 {
        for plus in [round % 2 == 0, round % 2 != 0] {
            let (secs, bytes) = pass(plus);
            if plus {
                rp.push(secs);
                rp_bytes = bytes;
            } else {
                rd.push(secs);
                rd_bytes = bytes;
            }
        }
    }
    let mibs = |s: f64| size as f64 / MIB as f64 / s;
    let (p, r) = (median(rp), median(rd));
    println!();
    println!("| 64 MiB, half holes | MiB/s (median of 5) | reply bytes |");
    println!("|---|---|---|");
    println!("| READ_PLUS | {:.0} | {rp_bytes} |", mibs(p));
    println!("| READ | {:.0} | {rd_bytes} |", mibs(r));
}
