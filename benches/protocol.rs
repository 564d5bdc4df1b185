//! Micro-benchmarks of the protocol core (no sockets): COMPOUND decode+execute+encode,
//! the SEQUENCE slot path, and bind/unbind. Run with `cargo bench --bench protocol`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};

use ringnfs::client::SequenceArgs;
use ringnfs::client::compound::CompoundReply;
use ringnfs::client::ops::{CreateSessionArgs, ExchangeIdArgs, Op, StateProtect, encode_compound};
use ringnfs::client::{default_back_attrs, default_fore_attrs};
use ringnfs::nfs4::consts::{cdfc, create_session_flag};
use ringnfs::nfs4::program::NfsService;
use ringnfs::rpc::{self, Credential, RpcMessage};
use ringnfs::service::{ConnMeta, Service};
use ringnfs::state::{SessionId, StateConfig, StateManager};

fn call_record(xid: u32, ops: &[Op]) -> Vec<u8> {
    let mut rec = Vec::new();
    rpc::encode_call(&mut rec, xid, 100003, 4, 1, &Credential::None);
    encode_compound(&mut rec, 1, b"", ops);
    rec
}

fn reply(svc: &NfsService, conn: &ConnMeta, rec: &[u8]) -> CompoundReply {
    let mut out = Vec::new();
    let outcome = svc.on_record(conn, rec, &mut out);
    ringnfs::fs::sync_io::run_to_end(outcome, &mut out);
    match rpc::decode_message(&out).expect("reply") {
        RpcMessage::Reply(r) => CompoundReply::decode(r.body.expect("accepted")).expect("decodes"),
        _ => panic!("not a reply"),
    }
}

/// A service with one session created on `conn`.
fn setup() -> (Arc<NfsService>, ConnMeta, SessionId) {
    let svc = NfsService::new(
        StateManager::new(StateConfig::default()),
        Arc::new(ringnfs::nfs4::export::Export::memory(Default::default())),
    );
    let conn = ConnMeta::detached(1, 0);
    svc.on_accept(&conn);
    let ex = reply(
        &svc,
        &conn,
        &call_record(
            1,
            &[Op::ExchangeId(ExchangeIdArgs {
                verifier: [0; 8],
                owner_id: b"bench".to_vec(),
                flags: 0,
                state_protect: StateProtect::None,
                impl_id: None,
            })],
        ),
    )
    .exchange_id()
    .expect("EXCHANGE_ID");
    let cs = reply(
        &svc,
        &conn,
        &call_record(
            2,
            &[Op::CreateSession(CreateSessionArgs {
                clientid: ex.clientid,
                sequence: ex.sequenceid,
                flags: create_session_flag::CONN_BACK_CHAN,
                fore: default_fore_attrs(64),
                back: default_back_attrs(),
                cb_program: 0x4000_0000,
                sec_parms: vec![],
            })],
        ),
    )
    .create_session()
    .expect("CREATE_SESSION");
    (svc, conn, cs.sessionid)
}

fn seq(sid: &SessionId, seqid: u32) -> Op {
    Op::Sequence(SequenceArgs {
        sessionid: *sid,
        sequenceid: seqid,
        slotid: 0,
        highest_slotid: 0,
        cachethis: false,
    })
}

fn compound(c: &mut Criterion) {
    let (svc, conn, sid) = setup();
    let root = reply(
        &svc,
        &conn,
        &call_record(3, &[seq(&sid, 1), Op::PutRootFh, Op::GetFh]),
    )
    .getfh()
    .expect("fh");
    let attrs = vec![0x0010_011a, 0x00b0_a23a];
    let ops = |seqid| {
        vec![
            seq(&sid, seqid),
            Op::PutFh(root.clone()),
            Op::GetAttr(attrs.clone()),
        ]
    };

    c.bench_function("encode SEQUENCE+PUTFH+GETATTR request (client)", |b| {
        let ops = ops(1);
        b.iter(|| black_box(call_record(7, black_box(&ops))))
    });

    let mut seqid = 1u32;
    let mut out = Vec::with_capacity(4096);
    c.bench_function(
        "server: decode, execute, encode SEQUENCE+PUTFH+GETATTR",
        |b| {
            b.iter_batched(
                || {
                    seqid += 1;
                    call_record(seqid, &ops(seqid))
                },
                |rec| {
                    out.clear();
                    // The memory backend never waits for file I/O.
                    let _done = svc.on_record(&conn, &rec, &mut out);
                    black_box(out.len())
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );

    let rec = call_record(99, &ops(seqid + 1));
    let mut reply_bytes = Vec::new();
    let outcome = svc.on_record(&conn, &rec, &mut reply_bytes);
    ringnfs::fs::sync_io::run_to_end(outcome, &mut reply_bytes);
    c.bench_function("decode SEQUENCE+PUTFH+GETATTR reply (client)", |b| {
        b.iter(
            || match rpc::decode_message(black_box(&reply_bytes)).unwrap() {
                RpcMessage::Reply(r) => black_box(CompoundReply::decode(r.body.unwrap()).unwrap()),
                _ => unreachable!(),
            },
        )
    });
}

fn slot_path(c: &mut Criterion) {
    let (svc, conn, sid) = setup();
    let state = svc.state().clone();
    let mut seqid = 0u32;
    c.bench_function("state: SEQUENCE slot check + reply store", |b| {
        b.iter(|| {
            seqid = seqid.wrapping_add(1);
            let args = ringnfs::state::SequenceArgs {
                sessionid: sid,
                sequenceid: seqid,
                slotid: 1,
                highest_slotid: 1,
                cachethis: false,
            };
            let size = ringnfs::state::CompoundSize {
                numops: 1,
                request_len: 88,
                min_reply_len: 80,
            };
            match state.sequence(&conn, &args, 0, size).expect("sequence") {
                ringnfs::state::SeqOutcome::Execute(g) => state.sequence_done(
                    &g,
                    ringnfs::state::slots::CachedReply::Empty,
                    Default::default(),
                ),
                ringnfs::state::SeqOutcome::Replay(..) => unreachable!(),
            }
        })
    });
}

fn bind_unbind(c: &mut Criterion) {
    let (svc, _conn, sid) = setup();
    let state = svc.state().clone();
    let other = ConnMeta::detached(2, 0);
    svc.on_accept(&other);
    c.bench_function("state: BIND_CONN_TO_SESSION + unbind", |b| {
        b.iter(|| {
            state
                .bind_conn_to_session(&other, &Credential::None, &sid, cdfc::FORE)
                .expect("bind");
            assert!(state.unbind(other.id, &sid));
        })
    });
}

criterion_group!(benches, compound, slot_path, bind_unbind);
criterion_main!(benches);
