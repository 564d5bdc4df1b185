//! Engine tests without sockets: records built with the client's encoders are fed to
//! `NfsService::on_record` and the replies decoded with the client's decoders.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::consts::{cdfc, cdfs, create_session_flag, op, seq4_status, status};
use crate::program::NfsService;
use ringnfs_client::compound::CompoundReply;
use ringnfs_client::ops::{CreateSessionArgs, ExchangeIdArgs, Op, StateProtect, encode_compound};
use ringnfs_client::{BindConnArgs, ReadArgs, SequenceArgs};
use ringnfs_client::{default_back_attrs, default_fore_attrs};
use ringnfs_proto::rpc::{self, Credential, RpcMessage};
use ringnfs_service::{ConnId, ConnMeta, Service};
use ringnfs_state::{SessionId, StateConfig, StateManager};

struct Harness {
    svc: Arc<NfsService>,
    xid: AtomicU32,
    /// File operations the service suspended for, run in place by the harness.
    file_ops: AtomicUsize,
}

fn meta(id: ConnId) -> ConnMeta {
    ConnMeta::detached(id, 0)
}

impl Harness {
    fn new() -> Self {
        Self {
            svc: NfsService::new(
                StateManager::new(StateConfig::default()),
                std::sync::Arc::new(crate::export::Export::memory(Default::default())),
            ),
            xid: AtomicU32::new(1),
            file_ops: AtomicUsize::new(0),
        }
    }

    fn with_export(export: crate::export::Export) -> Self {
        Self {
            svc: NfsService::new(
                StateManager::new(StateConfig::default()),
                std::sync::Arc::new(export),
            ),
            xid: AtomicU32::new(1),
            file_ops: AtomicUsize::new(0),
        }
    }

    /// A harness on a local-backend export of `dir` (created, mode 1777: the harness
    /// calls with AUTH_NONE, i.e. as the anonymous user).
    fn local(dir: &std::path::Path) -> Self {
        Self::local_in(dir, ringnfs_service::Caching::Buffered)
    }

    /// As [`Harness::local`], in I/O mode `io_mode`.
    fn local_in(dir: &std::path::Path, io_mode: ringnfs_service::Caching) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let backend = ringnfs_fs::local::LocalBackend::open(dir, Default::default()).unwrap();
        Self::with_export(crate::export::Export::new(
            std::sync::Arc::new(backend),
            crate::export::ExportOptions {
                root_squash: false,
                io_mode,
                ..Default::default()
            },
            [3; 16],
        ))
    }

    fn state(&self) -> &StateManager {
        self.svc.state()
    }

    fn raw(&self, conn: &ConnMeta, minor: u32, ops: &[Op]) -> Vec<u8> {
        let mut rec = Vec::new();
        let xid = self.xid.fetch_add(1, Ordering::Relaxed);
        rpc::encode_call(&mut rec, xid, 100003, 4, 1, &Credential::None);
        encode_compound(&mut rec, minor, b"t", ops);
        let mut out = Vec::new();
        // No ring here: a COMPOUND that waits for file I/O is run to its end in place.
        let outcome = self.svc.on_record(conn, &rec, &mut out);
        let ran = ringnfs_fs::sync_io::run_to_end(outcome, &mut out);
        self.file_ops.fetch_add(ran, Ordering::Relaxed);
        out
    }

    fn call(&self, conn: &ConnMeta, ops: &[Op]) -> CompoundReply {
        let out = self.raw(conn, 1, ops);
        match rpc::decode_message(&out).unwrap() {
            RpcMessage::Reply(r) => CompoundReply::decode(r.body.unwrap()).unwrap(),
            _ => panic!("not a reply"),
        }
    }

    fn session(&self, conn: &ConnMeta, back: bool) -> (u64, SessionId) {
        let r = self.call(
            conn,
            &[Op::ExchangeId(ExchangeIdArgs {
                verifier: [1; 8],
                owner_id: format!("owner-{}", conn.id).into_bytes(),
                flags: 0,
                state_protect: StateProtect::None,
                impl_id: None,
            })],
        );
        let ex = r.exchange_id().unwrap();
        let r = self.call(
            conn,
            &[Op::CreateSession(CreateSessionArgs {
                clientid: ex.clientid,
                sequence: ex.sequenceid,
                flags: if back {
                    create_session_flag::CONN_BACK_CHAN
                } else {
                    0
                },
                fore: default_fore_attrs(8),
                back: default_back_attrs(),
                cb_program: 0x4000_0000,
                sec_parms: vec![],
            })],
        );
        let cs = r.create_session().unwrap();
        // What every client does before its first OPEN (RFC 8881 §18.51.3).
        self.svc
            .state()
            .reclaim_complete(ex.clientid, false)
            .unwrap();
        (ex.clientid, cs.sessionid)
    }
}

fn seq(sid: &SessionId, slot: u32, seqid: u32) -> Op {
    Op::Sequence(SequenceArgs {
        sessionid: *sid,
        sequenceid: seqid,
        slotid: slot,
        highest_slotid: slot,
        cachethis: true,
    })
}

#[test]
fn session_setup_sequence_and_binding() {
    let h = Harness::new();
    let c1 = meta(1);
    h.svc.on_accept(&c1);
    let (_, sid) = h.session(&c1, true);
    let info = h.state().session_info(&sid).unwrap();
    assert_eq!(info.summary.both, 1);

    let r = h.call(&c1, &[seq(&sid, 0, 1), Op::PutRootFh, Op::GetFh]);
    assert_eq!(r.status, status::NFS4_OK, "{r:?}");
    let s = r.sequence().unwrap();
    assert_eq!(s.status_flags & seq4_status::CB_PATH_DOWN_SESSION, 0);
    assert!(!r.getfh().unwrap().is_empty());

    // Replay returns the identical bytes; a different request on the same seqid is a
    // false retry.
    let a = h.raw(&c1, 1, &[seq(&sid, 1, 1), Op::PutRootFh, Op::GetFh]);
    let b = h.raw(&c1, 1, &[seq(&sid, 1, 1), Op::PutRootFh, Op::GetFh]);
    assert_eq!(a[4..], b[4..]);
    let r = h.call(&c1, &[seq(&sid, 1, 1), Op::PutRootFh]);
    assert_eq!(r.status, status::NFS4ERR_SEQ_FALSE_RETRY);
    let r = h.call(&c1, &[seq(&sid, 1, 3)]);
    assert_eq!(r.status, status::NFS4ERR_SEQ_MISORDERED);
    let r = h.call(&c1, &[seq(&sid, 99, 1)]);
    assert_eq!(r.status, status::NFS4ERR_BADSLOT);

    // A new connection's SEQUENCE binds it fore only.
    let c2 = meta(2);
    h.svc.on_accept(&c2);
    let r = h.call(&c2, &[seq(&sid, 2, 1)]);
    assert_eq!(r.status, status::NFS4_OK);
    let info = h.state().session_info(&sid).unwrap();
    assert_eq!((info.summary.fore, info.summary.both), (1, 1));

    // BIND_CONN_TO_SESSION directions.
    let c3 = meta(3);
    h.svc.on_accept(&c3);
    for (asked, granted) in [
        (cdfc::FORE, cdfs::FORE),
        (cdfc::BACK, cdfs::BACK),
        (cdfc::FORE_OR_BOTH, cdfs::BOTH),
        (cdfc::BACK_OR_BOTH, cdfs::BOTH),
    ] {
        let r = h.call(
            &c3,
            &[Op::BindConnToSession(BindConnArgs {
                sessionid: sid,
                dir: asked,
                use_rdma: false,
            })],
        );
        assert_eq!(r.bind_conn().unwrap().dir, granted);
    }
    let r = h.call(
        &c3,
        &[Op::BindConnToSession(BindConnArgs {
            sessionid: sid,
            dir: 9,
            use_rdma: false,
        })],
    );
    assert_eq!(r.status, status::NFS4ERR_INVAL);
    let r = h.call(
        &c3,
        &[Op::BindConnToSession(BindConnArgs {
            sessionid: SessionId([0; 16]),
            dir: cdfc::FORE,
            use_rdma: false,
        })],
    );
    assert_eq!(r.status, status::NFS4ERR_BADSESSION);
    let r = h.call(
        &c3,
        &[
            Op::BindConnToSession(BindConnArgs {
                sessionid: sid,
                dir: cdfc::FORE,
                use_rdma: false,
            }),
            Op::PutRootFh,
        ],
    );
    assert_eq!(r.status, status::NFS4ERR_NOT_ONLY_OP);

    // Close removes bindings.
    h.svc.on_close(&c2);
    let m = h.state().metrics_snapshot();
    assert_eq!(m.unbinds_disconnect, 1);
    assert_eq!(h.state().session_info(&sid).unwrap().summary.total, 2);
}

#[test]
fn compound_ordering_rules() {
    let h = Harness::new();
    let c = meta(1);
    h.svc.on_accept(&c);
    let (clientid, sid) = h.session(&c, false);
    // No back connection: SEQUENCE reports CB_PATH_DOWN_SESSION.
    let r = h.call(&c, &[seq(&sid, 0, 1)]);
    assert_ne!(
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION,
        0
    );
    assert_eq!(
        h.call(&c, &[Op::PutRootFh]).status,
        status::NFS4ERR_OP_NOT_IN_SESSION
    );
    assert_eq!(
        h.call(&c, &[Op::PutRootFh, seq(&sid, 0, 2)]).status,
        status::NFS4ERR_OP_NOT_IN_SESSION
    );
    assert_eq!(
        h.call(&c, &[seq(&sid, 0, 2), seq(&sid, 1, 1)]).status,
        status::NFS4ERR_SEQUENCE_POS
    );
    let r = h.call(
        &c,
        &[
            seq(&sid, 0, 3),
            Op::Raw {
                opnum: 2,
                args: vec![],
            },
        ],
    );
    assert_eq!(r.status, status::NFS4ERR_OP_ILLEGAL);
    assert_eq!(r.results[1].opnum, op::ILLEGAL);
    let r = h.call(&c, &[seq(&sid, 0, 4), Op::GetFh]);
    assert_eq!(r.status, status::NFS4ERR_NOFILEHANDLE);
    let r = h.call(
        &c,
        &[
            seq(&sid, 0, 5),
            Op::Raw {
                opnum: op::READ_PLUS,
                args: vec![],
            },
        ],
    );
    assert_eq!(r.status, status::NFS4ERR_OP_ILLEGAL);
    let r = h.call(
        &c,
        &[
            seq(&sid, 0, 6),
            Op::Raw {
                opnum: op::SETCLIENTID,
                args: vec![],
            },
        ],
    );
    assert_eq!(r.status, status::NFS4ERR_NOTSUPP);
    let r = h.call(
        &c,
        &[
            seq(&sid, 0, 7),
            Op::Raw {
                opnum: op::OPENATTR,
                args: vec![],
            },
        ],
    );
    assert_eq!(r.status, status::NFS4ERR_NOTSUPP);
    // Minor version 0 and 3 are refused; 2 has the 4.2 ops (not supported).
    let out = h.raw(&c, 0, &[Op::PutRootFh]);
    let body = match rpc::decode_message(&out).unwrap() {
        RpcMessage::Reply(r) => CompoundReply::decode(r.body.unwrap()).unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(body.status, status::NFS4ERR_MINOR_VERS_MISMATCH);
    // DESTROY_CLIENTID while a session exists, then after.
    assert_eq!(
        h.call(&c, &[Op::DestroyClientid(clientid)]).status,
        status::NFS4ERR_CLIENTID_BUSY
    );
    let other = meta(2);
    h.svc.on_accept(&other);
    assert_eq!(
        h.call(&other, &[Op::DestroySession(sid)]).status,
        status::NFS4ERR_CONN_NOT_BOUND_TO_SESSION
    );
    assert_eq!(
        h.call(&c, &[Op::DestroySession(sid)]).status,
        status::NFS4_OK
    );
    assert_eq!(h.state().metrics_snapshot().unbinds_session_destroy, 1);
    assert_eq!(
        h.call(&c, &[Op::DestroyClientid(clientid)]).status,
        status::NFS4_OK
    );
    assert_eq!(h.state().client_count(), 0);
}

/// Real files without a transport: data ops suspend for file I/O, no ring takes it, and
/// the caller runs it in place and resumes the COMPOUND (ops after it included).
#[test]
fn data_ops_without_a_ring_run_in_place() {
    use ringnfs_client::ops::{Fattr, OpenArgs, OpenClaim, OpenHow};
    use ringnfs_state::stateid::Stateid;
    let dir = std::env::temp_dir().join(format!("ringnfs-engine-io-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let h = Harness::local(&dir);
    let c = meta(1);
    h.svc.on_accept(&c);
    let (clientid, sid) = h.session(&c, false);
    let r = h.call(
        &c,
        &[
            seq(&sid, 0, 1),
            Op::PutRootFh,
            Op::Open(OpenArgs {
                seqid: 0,
                share_access: 3,
                share_deny: 0,
                clientid,
                owner: b"o".to_vec(),
                how: OpenHow::Unchecked(Fattr::new().mode(0o644)),
                claim: OpenClaim::Null(b"f".to_vec()),
            }),
            Op::Write {
                stateid: Stateid::CURRENT,
                offset: 0,
                stable: 2,
                data: b"hello ring".to_vec(),
            },
            Op::Read(ReadArgs {
                stateid: Stateid::CURRENT,
                offset: 6,
                count: 100,
            }),
            Op::GetFh,
        ],
    );
    assert_eq!(r.status, status::NFS4_OK, "{r:?}");
    assert_eq!(r.results.len(), 6);
    let read = r.read().unwrap();
    assert_eq!((read.data.as_slice(), read.eof), (&b"ring"[..], true));
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"hello ring");
    // The WRITE and its FILE_SYNC fsync at least were suspended and run in place; `raw`
    // resumed every continuation, so nothing is left waiting.
    assert!(h.file_ops.load(Ordering::Relaxed) >= 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A large READ that waits for the disk is read into the reply so far: resumed with a
/// fresh reply buffer (what the transport gives it) the continuation swaps its buffer
/// in whole; resumed with other replies already in `out` it appends. Same reply both
/// ways, with the right data.
#[test]
fn a_large_uncached_read_lands_in_its_reply() {
    use ringnfs_service::{Outcome, RECORD_MARK_LEN};
    use ringnfs_state::stateid::Stateid;
    use std::os::fd::AsRawFd;
    let dir = std::env::temp_dir().join(format!("ringnfs-engine-inplace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let h = Harness::local(&dir);
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("f"), &data).unwrap();
    let c = meta(1);
    h.svc.on_accept(&c);
    let (_, sid) = h.session(&c, false);
    let mut replies = Vec::new();
    for (slot, prior) in [(1u32, &[][..]), (2, &b"other replies"[..])] {
        let f = std::fs::File::open(dir.join("f")).unwrap();
        f.sync_all().unwrap();
        // SAFETY: an advisory call on a descriptor we own.
        let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(r, 0);
        let mut rec = Vec::new();
        rpc::encode_call(&mut rec, 7 + slot, 100003, 4, 1, &Credential::None);
        let ops = [
            seq(&sid, slot, 1),
            Op::PutRootFh,
            Op::Lookup(b"f".to_vec()),
            Op::Read(ReadArgs {
                stateid: Stateid::ANONYMOUS,
                offset: 4096,
                // Over READ_IN_PLACE_FROM, within this session's reply size.
                count: 48 * 1024,
            }),
            Op::GetFh,
        ];
        encode_compound(&mut rec, 1, b"t", &ops);
        let mut first = Vec::new();
        let Outcome::Suspend(s) = h.svc.on_record(&c, &rec, &mut first) else {
            let r = match rpc::decode_message(&first).unwrap() {
                RpcMessage::Reply(r) => CompoundReply::decode(r.body.unwrap()).unwrap(),
                _ => panic!("not a reply"),
            };
            panic!("the READ did not wait for the disk: {r:?}");
        };
        assert!(first.is_empty(), "the reply waits with the COMPOUND");
        assert!(
            s.then.wants_fresh_reply(),
            "a large READ asks for a fresh reply buffer"
        );
        let done = ringnfs_fs::sync_io::run(s.io);
        // What the transport reserves for the record mark, behind any earlier replies.
        let mut out = prior.to_vec();
        out.extend_from_slice(&[0; RECORD_MARK_LEN]);
        assert!(matches!(s.then.resume(done, &mut out), Outcome::Done));
        assert_eq!(&out[..prior.len()], prior);
        replies.push(out[prior.len() + RECORD_MARK_LEN..].to_vec());
    }
    for out in &replies {
        let r = match rpc::decode_message(out).unwrap() {
            RpcMessage::Reply(r) => CompoundReply::decode(r.body.unwrap()).unwrap(),
            _ => panic!("not a reply"),
        };
        assert_eq!(r.status, status::NFS4_OK, "{r:?}");
        let read = r.read().unwrap();
        assert!(read.data == data[4096..4096 + 48 * 1024], "the data read");
        assert!(!r.getfh().unwrap().is_empty(), "the ops after the READ ran");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// In direct I/O mode, WRITEs at every alignment (an unaligned head and tail written
/// buffered around a middle written with O_DIRECT) and READs of uncached data (read
/// directly over their aligned range) keep exactly the bytes a plain file would.
#[test]
fn direct_io_keeps_the_bytes_at_every_alignment() {
    use ringnfs_service::Caching;
    use ringnfs_state::stateid::Stateid;
    use std::os::fd::AsRawFd;
    let dir = std::env::temp_dir().join(format!("ringnfs-engine-direct-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let h = Harness::local_in(&dir, Caching::Direct);
    std::fs::write(dir.join("f"), b"").unwrap();
    // The harness calls without credentials: anyone may write the file.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("f"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let c = meta(1);
    h.svc.on_accept(&c);
    let (_, sid) = h.session(&c, false);
    let mut model = Vec::new();
    let mut slot_seq = 0;
    let mut call = |ops: Vec<Op>| {
        slot_seq += 1;
        let mut all = vec![
            seq(&sid, 0, slot_seq),
            Op::PutRootFh,
            Op::Lookup(b"f".to_vec()),
        ];
        all.extend(ops);
        let r = h.call(&c, &all);
        assert_eq!(r.status, status::NFS4_OK, "{r:?}");
        r
    };
    let writes = [
        (0u64, 4096usize),
        (100, 10_000),
        (511, 1),
        (512, 512),
        (4095, 70_000),
        (1 << 20, 1 << 20),
        (3, 600),
    ];
    for (i, (offset, len)) in writes.into_iter().enumerate() {
        let data: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
        let before = h.file_ops.load(Ordering::Relaxed);
        let r = call(vec![Op::Write {
            stateid: Stateid::ANONYMOUS,
            offset,
            stable: 0,
            data: data.clone(),
        }]);
        assert_eq!(r.write().unwrap().count as usize, len, "all written");
        let end = offset as usize + len;
        if model.len() < end {
            model.resize(end, 0);
        }
        model[offset as usize..end].copy_from_slice(&data);
        // Head, middle and tail: one file operation each.
        let parts =
            usize::from(!offset.is_multiple_of(512)) + 1 + usize::from(!end.is_multiple_of(512));
        if len >= 1024 {
            assert_eq!(h.file_ops.load(Ordering::Relaxed) - before, parts);
        }
    }
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), model, "the file");
    for (offset, count) in [
        (0u64, 4096u32),
        (1, 1000),
        (700, 70_000),
        (4095, 1 << 20),
        (2_000_000, 500_000),
    ] {
        // Out of the page cache (clean first: dirty pages stay), so the READ goes to
        // the ring (directly).
        let f = std::fs::File::open(dir.join("f")).unwrap();
        f.sync_all().unwrap();
        // SAFETY: an advisory call on a descriptor we own.
        let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(r, 0);
        let before = h.file_ops.load(Ordering::Relaxed);
        let r = call(vec![Op::Read(ReadArgs {
            stateid: Stateid::ANONYMOUS,
            offset,
            count,
        })]);
        assert_eq!(
            h.file_ops.load(Ordering::Relaxed) - before,
            1,
            "read on the ring"
        );
        let read = r.read().unwrap();
        // The session's reply size cuts long READs short.
        let from = (offset as usize).min(model.len());
        let to = from + read.data.len();
        let want = (offset as usize + count as usize).min(model.len()) - from;
        assert!(
            read.data.len() >= want.min(32 * 1024),
            "READ {count} at {offset}"
        );
        assert!(read.data == model[from..to], "READ {count} at {offset}");
        assert_eq!(
            read.eof,
            to == model.len(),
            "eof of READ {count} at {offset}"
        );
    }
    assert_eq!(
        h.svc.export().caching(),
        Caching::Direct,
        "direct I/O was never refused"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A READ larger than the session's reply size is cut to fit, not refused.
#[test]
fn read_is_clamped_to_the_session_reply_size() {
    use ringnfs_client::ops::{Fattr, OpenArgs, OpenClaim, OpenHow};
    use ringnfs_state::stateid::Stateid;
    let h = Harness::new();
    let c = meta(1);
    h.svc.on_accept(&c);
    let ex = h
        .call(
            &c,
            &[Op::ExchangeId(ExchangeIdArgs {
                verifier: [1; 8],
                owner_id: b"small-replies".to_vec(),
                flags: 0,
                state_protect: StateProtect::None,
                impl_id: None,
            })],
        )
        .exchange_id()
        .unwrap();
    let mut fore = default_fore_attrs(4);
    fore.maxresponsesize = 8192;
    let cs = h
        .call(
            &c,
            &[Op::CreateSession(CreateSessionArgs {
                clientid: ex.clientid,
                sequence: ex.sequenceid,
                flags: 0,
                fore,
                back: default_back_attrs(),
                cb_program: 0x4000_0000,
                sec_parms: vec![],
            })],
        )
        .create_session()
        .unwrap();
    let sid = cs.sessionid;
    let r = h.call(
        &c,
        &[
            seq(&sid, 0, 1),
            Op::ReclaimComplete { one_fs: false },
            Op::PutRootFh,
            Op::Open(OpenArgs {
                seqid: 0,
                share_access: 3,
                share_deny: 0,
                clientid: ex.clientid,
                owner: b"o".to_vec(),
                how: OpenHow::Unchecked(Fattr::new().mode(0o644)),
                claim: OpenClaim::Null(b"big".to_vec()),
            }),
            Op::Write {
                stateid: Stateid::CURRENT,
                offset: 0,
                stable: 2,
                data: vec![7; 20000],
            },
        ],
    );
    assert_eq!(r.status, status::NFS4_OK, "{r:?}");
    for (slot, offset) in [(1, 0u64), (2, 4000)] {
        let r = h.call(
            &c,
            &[
                seq(&sid, slot, 1),
                Op::PutRootFh,
                Op::Lookup(b"big".to_vec()),
                Op::Read(ReadArgs {
                    stateid: Stateid::ANONYMOUS,
                    offset,
                    count: 1 << 20,
                }),
            ],
        );
        assert_eq!(r.status, status::NFS4_OK, "{r:?}");
        let data = r.read().unwrap().data;
        assert!(
            !data.is_empty() && data.len() < 8192,
            "{} bytes",
            data.len()
        );
        assert!(data.iter().all(|&b| b == 7));
    }
}

/// A cluster's recovery decisions, scripted.
#[derive(Default)]
struct FakeCluster {
    grace: std::sync::atomic::AtomicBool,
    stopped: std::sync::atomic::AtomicBool,
    refuse_records: std::sync::atomic::AtomicBool,
    records: parking_lot::Mutex<Vec<Vec<u8>>>,
    completed: parking_lot::Mutex<Vec<Vec<u8>>>,
}

impl ringnfs_state::grace::ClusterRecovery for FakeCluster {
    fn in_grace(&self) -> bool {
        self.grace.load(Ordering::Relaxed)
    }
    fn may_reclaim(&self, _owner: &[u8]) -> bool {
        true
    }
    fn granting(&self) -> bool {
        !self.stopped.load(Ordering::Relaxed)
    }
    fn record(&self, owner: &[u8], done: ringnfs_service::Signal) {
        self.records.lock().push(owner.to_vec());
        if self.refuse_records.load(Ordering::Relaxed) {
            done.fail();
        } else {
            // From another thread, as the cluster's agent does.
            std::thread::spawn(move || done.succeed()).join().unwrap();
        }
    }
    fn reclaim_complete(&self, owner: &[u8]) {
        self.completed.lock().push(owner.to_vec());
    }
    fn client_gone(&self, _owner: &[u8]) {}
    fn status(&self) -> ringnfs_state::grace::ClusterStatus {
        Default::default()
    }
}

/// In a cluster, a client's first OPEN waits (once) for its recovery record; a record
/// that cannot be written, or a node cut off from its store, answers NFS4ERR_DELAY;
/// cluster-wide grace answers NFS4ERR_GRACE.
#[test]
fn a_cluster_node_records_a_client_before_its_first_open() {
    use ringnfs_client::ops::{Fattr, OpenArgs, OpenClaim, OpenHow};
    let h = Harness::new();
    let cluster = Arc::new(FakeCluster::default());
    h.state().grace.attach_cluster(cluster.clone());
    let open = |c: &ConnMeta, sid: &SessionId, clientid, seqid, name: &[u8]| {
        h.call(
            c,
            &[
                seq(sid, 0, seqid),
                Op::PutRootFh,
                Op::Open(OpenArgs {
                    seqid: 0,
                    share_access: 3,
                    share_deny: 0,
                    clientid,
                    owner: b"o".to_vec(),
                    how: OpenHow::Unchecked(Fattr::new().mode(0o644)),
                    claim: OpenClaim::Null(name.to_vec()),
                }),
            ],
        )
    };
    let c = meta(1);
    h.svc.on_accept(&c);
    let (clientid, sid) = h.session(&c, false);
    assert_eq!(*cluster.completed.lock(), [b"owner-1".to_vec()]);

    let r = open(&c, &sid, clientid, 1, b"a");
    assert_eq!(r.status, status::NFS4_OK, "{r:?}");
    assert_eq!(r.results.len(), 3, "the OPEN ran once, after the wait");
    assert_eq!(h.file_ops.load(Ordering::Relaxed), 1, "one wait");
    assert_eq!(*cluster.records.lock(), [b"owner-1".to_vec()]);
    let r = open(&c, &sid, clientid, 2, b"b");
    assert_eq!(r.status, status::NFS4_OK, "{r:?}");
    assert_eq!(
        h.file_ops.load(Ordering::Relaxed),
        1,
        "recorded once per client"
    );

    // Another client whose record cannot be written: DELAY, nothing opened; it is
    // written on the retry.
    let c2 = meta(2);
    h.svc.on_accept(&c2);
    let (clientid2, sid2) = h.session(&c2, false);
    cluster.refuse_records.store(true, Ordering::Relaxed);
    let r = open(&c2, &sid2, clientid2, 1, b"c");
    assert_eq!(r.status, status::NFS4ERR_DELAY, "{r:?}");
    assert_eq!(r.results.len(), 3);
    assert_eq!(
        h.state().files.counts().0,
        2,
        "the refused OPEN did not run"
    );
    cluster.refuse_records.store(false, Ordering::Relaxed);
    let r = open(&c2, &sid2, clientid2, 2, b"c");
    assert_eq!(r.status, status::NFS4_OK, "{r:?}");
    assert_eq!(cluster.records.lock().len(), 3);

    // Cut off from the store: no new state.
    cluster.stopped.store(true, Ordering::Relaxed);
    let r = open(&c, &sid, clientid, 3, b"d");
    assert_eq!(r.status, status::NFS4ERR_DELAY, "{r:?}");
    cluster.stopped.store(false, Ordering::Relaxed);
    // Cluster-wide grace: no new state either, and the client is told why.
    cluster.grace.store(true, Ordering::Relaxed);
    let r = open(&c, &sid, clientid, 4, b"d");
    assert_eq!(r.status, status::NFS4ERR_GRACE, "{r:?}");
}
