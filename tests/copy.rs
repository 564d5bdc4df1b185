//! Server-side COPY (RFC 7862 §15.2, §15.8, §15.9, §16.1) over real sockets, on the
//! memory and the local backend: synchronous copies (whole, and cut at the inline limit
//! so the client sends the rest), asynchronous ones ending in CB_OFFLOAD on the back
//! channel with OFFLOAD_STATUS beside, OFFLOAD_CANCEL mid-copy, the bound on copies in
//! flight (NFS4ERR_DELAY), a client that goes away mid-copy, and the errors.

pub mod common;
pub mod files_common;

use std::sync::Arc;
use std::time::Duration;

use common::wait_until;
use files_common::{Env, for_each_backend, status_of};
use ringnfs::client::callback::DefaultCallbackHandler;
use ringnfs::client::ops::wire::{CopyArgs, CopyResOk, Xdr};
use ringnfs::client::{ClientError, CloneArgs, Files, Op, Stateid};
use ringnfs::nfs4::consts::{op, status};
use ringnfs::server::BackendKind;

const MIB: u64 = 1 << 20;
/// The engine copies this much inline before answering (crates/engine/src/ops/copy.rs).
const SYNC_MAX: u64 = 4 * MIB;

fn copy(
    f: &Files,
    src: &[u8],
    dst: &[u8],
    (src_offset, dst_offset, count): (u64, u64, u64),
    synchronous: bool,
) -> Result<CopyResOk, ClientError> {
    f.call(&[
        Op::PutFh(src.to_vec()),
        Op::SaveFh,
        Op::PutFh(dst.to_vec()),
        Op::Copy {
            a: CloneArgs {
                src_stateid: Stateid::ANONYMOUS,
                dst_stateid: Stateid::ANONYMOUS,
                src_offset,
                dst_offset,
                count,
            },
            synchronous,
        },
    ])?
    .copy()
}

fn on_dst(f: &Files, dst: &[u8], o: Op) -> Result<ringnfs::client::CompoundReply, ClientError> {
    f.call(&[Op::PutFh(dst.to_vec()), o])
}

/// A client whose back channel we can watch.
fn client(env: &Env) -> (Files, Arc<DefaultCallbackHandler>) {
    let (ids, session) = env.server.session();
    (
        Files::new(session),
        ids.callbacks.expect("the default callback handler"),
    )
}

/// A source file of `len` bytes (a pattern) and an empty destination.
fn source_and_dest(f: &Files, tag: &str, len: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let root = f.root_fh().unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
    let src = f
        .write_file(&root, format!("{tag}-src").as_bytes(), &data)
        .unwrap();
    let (dst, of) = f
        .create(&root, format!("{tag}-dst").as_bytes(), 0o644)
        .unwrap();
    f.close(of).unwrap();
    (src, dst, data)
}

fn read_dst(f: &Files, tag: &str) -> Vec<u8> {
    f.read_file(&f.root_fh().unwrap(), format!("{tag}-dst").as_bytes())
        .unwrap()
}

#[test]
fn synchronous_copies_whole_and_cut_at_the_inline_limit() {
    for_each_backend(|env| {
        let (f, _) = client(env);
        let (src, dst, data) = source_and_dest(&f, "s", MIB + 123);
        let r = copy(&f, &src, &dst, (0, 0, 0), true).unwrap();
        assert_eq!(r.response.callback_id, None);
        assert_eq!(r.response.count, MIB + 123);
        assert!(r.requirements.synchronous);
        assert!(read_dst(&f, "s") == data);
        // 10 MiB asked synchronously: the server copies SYNC_MAX, the client the rest.
        let (src, dst, data) = source_and_dest(&f, "t", 10 * MIB);
        let mut at = 0;
        while at < data.len() as u64 {
            let r = copy(&f, &src, &dst, (at, at, data.len() as u64 - at), true).unwrap();
            assert!(r.response.count > 0 && r.response.count <= SYNC_MAX);
            at += r.response.count;
        }
        assert!(read_dst(&f, "t") == data);
        // Into the middle of a file, from the middle of another.
        copy(&f, &src, &dst, (MIB, 5, 1000), true).unwrap();
        let got = read_dst(&f, "t");
        assert!(got[5..1005] == data[MIB as usize..MIB as usize + 1000]);
    });
}

#[test]
fn asynchronous_copy_ends_with_cb_offload() {
    for_each_backend(|env| {
        let (f, cb) = client(env);
        let len = 48 * MIB + 7;
        let (src, dst, data) = source_and_dest(&f, "a", len);
        let r = copy(&f, &src, &dst, (0, 0, 0), false).unwrap();
        let sid = r.response.callback_id.expect("an asynchronous copy");
        assert!(!r.requirements.synchronous);
        assert!(
            wait_until(Duration::from_secs(60), || !cb.stats().offloads.is_empty()),
            "no CB_OFFLOAD"
        );
        let done = cb.stats().offloads[0].clone();
        assert_eq!(done.stateid, sid);
        assert_eq!(done.fh, dst);
        let w = done.result.expect("the copy succeeded");
        assert_eq!(w.count, len);
        assert!(read_dst(&f, "a") == data, "the copy's bytes");
        let s = on_dst(&f, &dst, Op::OffloadStatus(sid))
            .unwrap()
            .offload_status()
            .unwrap();
        assert_eq!((s.count, s.complete), (len, Some(status::NFS4_OK)));
        assert_eq!(
            status_of(on_dst(&f, &dst, Op::OffloadCancel(sid))),
            status::NFS4ERR_COMPLETE_ALREADY
        );
        // Another client cannot see it.
        let (g, _) = client(env);
        assert_eq!(
            status_of(on_dst(&g, &dst, Op::OffloadStatus(sid))),
            status::NFS4ERR_BAD_STATEID
        );
    });
}

#[test]
fn cancel_bounds_and_a_client_that_goes_away() {
    // The memory backend: a large copy takes long enough here to act on it mid-way.
    let env = Env::start(BackendKind::Memory, |_| {});
    let (f, cb) = client(&env);
    let len = 512 * MIB;
    let root = f.root_fh().unwrap();
    let (src, _, _) = source_and_dest(&f, "big", 1);
    // A large source written sparsely: one byte at its end.
    f.write_at(&src, Stateid::ANONYMOUS, len - 1, b"z", 2)
        .unwrap();
    let mut dsts = Vec::new();
    let mut sids = Vec::new();
    for i in 0..4 {
        let (dst, of) = f.create(&root, format!("d{i}").as_bytes(), 0o644).unwrap();
        f.close(of).unwrap();
        let r = copy(&f, &src, &dst, (0, 0, 0), false).unwrap();
        sids.push(r.response.callback_id.expect("asynchronous"));
        dsts.push(dst);
    }
    // A fifth copy of the same client while four run: NFS4ERR_DELAY.
    let (fifth, of) = f.create(&root, b"d5", 0o644).unwrap();
    f.close(of).unwrap();
    let r = copy(&f, &src, &fifth, (0, 0, 0), false);
    let delayed = matches!(&r, Err(e) if e.nfs_status() == Some(status::NFS4ERR_DELAY));
    // Cancel them all; a cancelled copy sends no CB_OFFLOAD and is forgotten.
    let mut cancelled = Vec::new();
    for (sid, dst) in sids.iter().zip(&dsts) {
        match on_dst(&f, dst, Op::OffloadCancel(*sid)) {
            Ok(_) => cancelled.push(*sid),
            Err(e) => assert_eq!(e.nfs_status(), Some(status::NFS4ERR_COMPLETE_ALREADY)),
        }
    }
    eprintln!(
        "fifth copy delayed: {delayed}; cancelled while running: {}",
        cancelled.len()
    );
    assert!(
        delayed || cancelled.len() < 4,
        "four copies were running, yet a fifth was taken: {r:?}"
    );
    for sid in &cancelled {
        assert!(
            wait_until(Duration::from_secs(30), || {
                matches!(on_dst(&f, &dsts[0], Op::OffloadStatus(*sid)),
                    Err(e) if e.nfs_status() == Some(status::NFS4ERR_BAD_STATEID))
            }),
            "a cancelled copy is forgotten"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let offloaded: Vec<Stateid> = cb.stats().offloads.iter().map(|o| o.stateid).collect();
    assert!(
        cancelled.iter().all(|s| !offloaded.contains(s)),
        "no CB_OFFLOAD after a cancel"
    );

    // A client that goes away mid-copy: its copy stops.
    let (g, _) = client(&env);
    let (dst, of) = g.create(&root, b"orphan", 0o644).unwrap();
    g.close(of).unwrap();
    copy(&g, &src, &dst, (0, 0, 0), false).unwrap();
    g.session().destroy().unwrap();
    g.session().destroy_clientid().unwrap();
    let size = |f: &Files| f.getattr(&dst).unwrap().size.unwrap();
    let mut last = size(&f);
    let stopped = wait_until(Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(100));
        let now = size(&f);
        let same = now == last;
        last = now;
        same
    });
    eprintln!("the orphan copy stopped at {last} of {len} bytes");
    assert!(
        stopped && last < len,
        "the orphan copy stopped at {last} of {len}"
    );
}

#[test]
fn copy_errors() {
    for_each_backend(|env| {
        let (f, _) = client(env);
        let (src, dst, _) = source_and_dest(&f, "e", 100_000);
        let inval =
            |r: Result<CopyResOk, ClientError>| assert_eq!(status_of(r), status::NFS4ERR_INVAL);
        // The source range past its end; overlapping itself in one file.
        inval(copy(&f, &src, &dst, (100_001, 0, 1), true));
        inval(copy(&f, &src, &dst, (0, 0, 100_001), true));
        inval(copy(&f, &src, &src, (0, 50_000, 60_000), true));
        copy(&f, &src, &src, (0, 100_000, 50_000), true).unwrap();
        // Directories; no saved filehandle.
        let root = f.root_fh().unwrap();
        assert_eq!(
            status_of(copy(&f, &root, &dst, (0, 0, 0), true)),
            status::NFS4ERR_ISDIR
        );
        let r = f
            .call_raw(&[
                Op::PutFh(dst.clone()),
                Op::Copy {
                    a: CloneArgs {
                        src_stateid: Stateid::ANONYMOUS,
                        dst_stateid: Stateid::ANONYMOUS,
                        src_offset: 0,
                        dst_offset: 0,
                        count: 0,
                    },
                    synchronous: true,
                },
            ])
            .unwrap();
        assert_eq!(r.status, status::NFS4ERR_NOFILEHANDLE);
        // A copy from another server (a source server named): not built.
        let mut netloc = Vec::new();
        netloc.extend_from_slice(&1u32.to_be_bytes());
        netloc.extend_from_slice(&4u32.to_be_bytes());
        netloc.extend_from_slice(b"peer");
        let args = CopyArgs {
            src_stateid: Stateid::ANONYMOUS,
            dst_stateid: Stateid::ANONYMOUS,
            src_offset: 0,
            dst_offset: 0,
            count: 0,
            consecutive: true,
            synchronous: false,
            source_servers: vec![&netloc],
        };
        let r = f.call(&[
            Op::PutFh(src.clone()),
            Op::SaveFh,
            Op::PutFh(dst.clone()),
            Op::Raw {
                opnum: op::COPY,
                args: args.to_bytes(),
            },
        ]);
        assert_eq!(status_of(r), status::NFS4ERR_NOTSUPP);
        // OFFLOAD_STATUS of something that is no copy of this server instance (the
        // anonymous stateid's zeros are no instance's): its copy did not survive.
        assert_eq!(
            status_of(on_dst(&f, &dst, Op::OffloadStatus(Stateid::ANONYMOUS))),
            status::NFS4ERR_STALE_STATEID
        );
    });
}

/// A copy does not survive a restart of the server: its stateid then answers
/// NFS4ERR_STALE_STATEID, and the client copies again.
#[test]
fn a_copy_stateid_of_an_earlier_instance_is_stale() {
    let mut env = Env::start(BackendKind::Local, |_| {});
    let (f, cb) = client(&env);
    let (src, dst, _) = source_and_dest(&f, "r", 8 * MIB);
    let r = copy(&f, &src, &dst, (0, 0, 0), false).unwrap();
    let sid = r.response.callback_id.expect("asynchronous");
    assert!(wait_until(Duration::from_secs(60), || !cb
        .stats()
        .offloads
        .is_empty()));
    drop(f);
    env.restart();
    let (g, _) = client(&env);
    assert_eq!(
        status_of(on_dst(&g, &dst, Op::OffloadStatus(sid))),
        status::NFS4ERR_STALE_STATEID
    );
    assert_eq!(
        status_of(on_dst(&g, &dst, Op::OffloadCancel(sid))),
        status::NFS4ERR_STALE_STATEID
    );
}

/// A client that never answers CB_OFFLOAD holds up no other client's: back-channel
/// turns are per session.
#[test]
fn a_silent_client_does_not_hold_up_the_others_callbacks() {
    let env = Env::start(BackendKind::Memory, |_| {});
    let (_, session) = env.server.session_with(ringnfs::client::ClientOptions {
        callback_handler: Some(Arc::new(common::SilentCallbacks)),
        ..Default::default()
    });
    let silent = Files::new(session);
    let (f, cb) = client(&env);
    let (src, dst, _) = source_and_dest(&silent, "quiet", 16 * MIB);
    copy(&silent, &src, &dst, (0, 0, 0), false).unwrap();
    // Let the silent client's CB_OFFLOAD go out (and hang) first.
    std::thread::sleep(Duration::from_millis(300));
    let (src, dst, _) = source_and_dest(&f, "loud", 16 * MIB);
    copy(&f, &src, &dst, (0, 0, 0), false).unwrap();
    assert!(
        wait_until(Duration::from_secs(8), || !cb.stats().offloads.is_empty()),
        "the other client's CB_OFFLOAD came while the silent one's waits for its timeout"
    );
}
