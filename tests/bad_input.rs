//! Bad input never panics the server, gets the exact RPC / NFS error the protocol asks
//! for, and never stops the server from serving other, well-behaved clients.
//!
//! Every test ends with `assert_still_serving`: a fresh connection answers NULL and a
//! fresh client gets a session and a successful SEQUENCE.

pub mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::{TestServer, WAIT, wait_until};
use ringnfs::client::{ClientError, Op, RpcConn};
use ringnfs::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, PROC_NULL, op, status};
use ringnfs::rpc::message::ReplyFailure;
use ringnfs::rpc::{AcceptStat, AuthSys, Credential, RpcMessage, decode_message};
use ringnfs::xdr::XdrEncoder;

/// The transport's default maximum record (1 MiB + 64 KiB).
const MAX_RECORD: usize = (1 << 20) + (64 << 10);
const LAST: u32 = 0x8000_0000;
/// How long to wait for a reply that must come (generous: never a timing claim).
const REPLY_WAIT: Duration = Duration::from_secs(10);

// ---- helpers -------------------------------------------------------------------------

/// A fresh connection answers NULL, and a fresh client gets a session whose SEQUENCE
/// (with PUTROOTFH + GETFH) succeeds.
fn assert_still_serving(srv: &TestServer) {
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    c.null().expect("NULL on a fresh connection");
    let (_ids, s) = srv.session();
    let r = s
        .call(0, &[Op::PutRootFh, Op::GetFh], false)
        .expect("SEQUENCE on a fresh session");
    assert_eq!(r.status, status::NFS4_OK);
    assert_eq!(r.sequence_status(), Some(status::NFS4_OK));
    assert!(!r.getfh().unwrap().is_empty());
}

/// A connection the server has registered (its accept was processed).
fn registered_conn(srv: &TestServer) -> (RpcConn, usize) {
    let before = srv.state().connection_count();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    // NULL round trip: the server has certainly accepted and registered it.
    c.null().expect("NULL");
    let now = srv.state().connection_count();
    assert!(now > before, "connection registered ({before} -> {now})");
    (c, now - 1)
}

/// An RPC call header with every field chosen by the caller.
#[allow(clippy::too_many_arguments)]
fn call_header(
    xid: u32,
    rpcvers: u32,
    prog: u32,
    vers: u32,
    proc_: u32,
    flavor: u32,
    cred_body: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_u32(xid);
    v.put_u32(0); // CALL
    v.put_u32(rpcvers);
    v.put_u32(prog);
    v.put_u32(vers);
    v.put_u32(proc_);
    v.put_u32(flavor);
    v.put_opaque(cred_body);
    v.put_u32(0); // verifier AUTH_NONE
    v.put_u32(0);
    v
}

/// One record (single last fragment) around `payload`.
fn record(payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() as u32) | LAST).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// Send `payload` as one record and wait for the reply record with `xid`.
fn raw_roundtrip(c: &RpcConn, xid: u32, payload: &[u8]) -> Vec<u8> {
    c.send_raw(&record(payload)).expect("send");
    let r = c
        .recv_unmatched(REPLY_WAIT)
        .expect("a reply to the raw call");
    assert_eq!(
        u32::from_be_bytes([r[0], r[1], r[2], r[3]]),
        xid,
        "reply carries our xid"
    );
    r
}

/// The failure of a reply record (None for an accepted SUCCESS).
fn reply_failure(rec: &[u8]) -> Option<ReplyFailure> {
    match decode_message(rec).expect("reply decodes") {
        RpcMessage::Reply(r) => r.body.err(),
        RpcMessage::Call(_) => panic!("expected a reply, got a call"),
    }
}

/// After `c.null()` returned, everything the server sent before it has been read: no
/// stray reply may be waiting.
fn assert_no_stray_reply(c: &RpcConn) {
    c.null().expect("NULL after the bad record");
    assert_eq!(c.recv_unmatched(Duration::ZERO), None, "no reply expected");
}

/// COMPOUND4args header with no ops after it.
fn compound_header(tag: &[u8], minor: u32, numops: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_opaque(tag);
    v.put_u32(minor);
    v.put_u32(numops);
    v
}

/// The connection must be closed by the server: it leaves the server's registry and the
/// client's reader sees EOF (or a reset).
fn assert_closed_by_server(srv: &TestServer, c: &RpcConn, base: usize) {
    assert!(
        wait_until(WAIT, || srv.state().connection_count() == base),
        "server closed the connection (count {} want {base})",
        srv.state().connection_count()
    );
    assert!(wait_until(WAIT, || c.is_closed()), "client saw the close");
    assert!(matches!(c.null(), Err(ClientError::Disconnected)));
}

// ---- truncated / garbage RPC ----------------------------------------------------------

#[test]
fn truncated_rpc_header_gets_garbage_args_and_connection_stays() {
    let srv = TestServer::start();
    let (c, _) = registered_conn(&srv);
    let garbage_before = srv.state().metrics_snapshot().rpc_garbage;
    // xid + 2 bytes: the xid is known, the rest is not a header.
    let r = raw_roundtrip(&c, 0x1234_5678, &[0x12, 0x34, 0x56, 0x78, 0, 0]);
    assert_eq!(
        reply_failure(&r),
        Some(ReplyFailure::Accepted(AcceptStat::GarbageArgs))
    );
    // A header cut after the program number.
    let h = call_header(0x1234_5679, 2, NFS4_PROGRAM, NFS4_VERSION, 0, 0, b"");
    let r = raw_roundtrip(&c, 0x1234_5679, &h[..16]);
    assert_eq!(
        reply_failure(&r),
        Some(ReplyFailure::Accepted(AcceptStat::GarbageArgs))
    );
    // A header whose credential length runs past the record.
    let mut h = call_header(0x1234_567a, 2, NFS4_PROGRAM, NFS4_VERSION, 0, 1, b"");
    h[28..32].copy_from_slice(&64u32.to_be_bytes());
    let r = raw_roundtrip(&c, 0x1234_567a, &h);
    assert_eq!(
        reply_failure(&r),
        Some(ReplyFailure::Accepted(AcceptStat::GarbageArgs))
    );
    // An unknown msg_type.
    let r = raw_roundtrip(&c, 0x1234_567b, &[0x12, 0x34, 0x56, 0x7b, 0, 0, 0, 7]);
    assert_eq!(
        reply_failure(&r),
        Some(ReplyFailure::Accepted(AcceptStat::GarbageArgs))
    );
    assert!(srv.state().metrics_snapshot().rpc_garbage >= garbage_before + 4);
    // The same connection goes on.
    c.null().expect("connection still usable");
    assert_still_serving(&srv);
}

#[test]
fn records_too_short_for_an_xid_get_no_reply() {
    let srv = TestServer::start();
    let (c, _) = registered_conn(&srv);
    // An empty record, then 3 bytes: nothing to answer to.
    c.send_raw(&record(&[])).unwrap();
    assert_no_stray_reply(&c);
    c.send_raw(&record(&[1, 2, 3])).unwrap();
    assert_no_stray_reply(&c);
    assert!(!c.is_closed());
    assert_still_serving(&srv);
}

#[test]
fn garbage_compound_args_get_garbage_args() {
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    let cases: Vec<Vec<u8>> = vec![
        // No args at all.
        vec![],
        // Tag length 0xffffffff.
        vec![0xff; 16],
        // Tag longer than NFS4_OPAQUE_LIMIT.
        {
            let mut v = Vec::new();
            v.put_u32(5000);
            v.extend_from_slice(&[0u8; 64]);
            v
        },
        // Tag length past the end of the record.
        vec![0, 0, 0, 100, 1, 2, 3, 4],
        // Tag, then a truncated minor version.
        vec![0, 0, 0, 0, 0, 0],
        // Tag and minor version, numops missing.
        vec![0, 0, 0, 0, 0, 0, 0, 1],
        // Pseudo-random bytes (fixed seed) with an impossible tag length.
        {
            let mut x: u32 = 0x9e37_79b9;
            let mut v = vec![0x7f, 0xff, 0xff, 0xf0];
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(x as u8);
            }
            v
        },
    ];
    for (i, args) in cases.iter().enumerate() {
        match c.call(NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, args) {
            Err(ClientError::RpcAccepted(AcceptStat::GarbageArgs)) => {}
            other => panic!("case {i}: expected GARBAGE_ARGS, got {other:?}"),
        }
    }
    // The connection stays usable.
    c.null().unwrap();
    assert_still_serving(&srv);
}

// ---- RPC-level refusals ---------------------------------------------------------------

#[test]
fn wrong_rpc_version_is_rpc_mismatch() {
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    for (xid, vers) in [(0x100, 3u32), (0x101, 1), (0x102, 0), (0x103, u32::MAX)] {
        let h = call_header(xid, vers, NFS4_PROGRAM, NFS4_VERSION, PROC_NULL, 0, b"");
        let r = raw_roundtrip(&c, xid, &h);
        assert_eq!(
            reply_failure(&r),
            Some(ReplyFailure::RpcMismatch(2, 2)),
            "rpcvers {vers}"
        );
    }
    c.null().unwrap();
    assert_still_serving(&srv);
}

#[test]
fn wrong_program_is_prog_unavail() {
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    for prog in [100005, 100000, 0, u32::MAX, 0x4000_0000] {
        assert!(
            matches!(
                c.call(prog, NFS4_VERSION, PROC_NULL, &[]),
                Err(ClientError::RpcAccepted(AcceptStat::ProgUnavail))
            ),
            "program {prog}"
        );
    }
    c.null().unwrap();
    assert_still_serving(&srv);
}

#[test]
fn wrong_nfs_version_is_prog_mismatch_4_4() {
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    for vers in [3, 2, 5, 0, 41] {
        for proc_ in [PROC_NULL, PROC_COMPOUND] {
            match c.call(NFS4_PROGRAM, vers, proc_, &[]) {
                Err(ClientError::RpcAccepted(AcceptStat::ProgMismatch(4, 4))) => {}
                other => panic!("version {vers} proc {proc_}: got {other:?}"),
            }
        }
    }
    c.null().unwrap();
    assert_still_serving(&srv);
}

#[test]
fn unknown_procedure_is_proc_unavail() {
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    for proc_ in [7, 2, 3, 1000, u32::MAX] {
        assert!(
            matches!(
                c.call(NFS4_PROGRAM, NFS4_VERSION, proc_, &[1, 2, 3, 4]),
                Err(ClientError::RpcAccepted(AcceptStat::ProcUnavail))
            ),
            "procedure {proc_}"
        );
    }
    c.null().unwrap();
    assert_still_serving(&srv);
}

#[test]
fn rpcsec_gss_is_auth_error_tooweak() {
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    // RPCSEC_GSS (6) with a plausible rpc_gss_cred_vers_1_t body; and an unknown flavor.
    let mut gss = Vec::new();
    gss.put_u32(1); // version
    gss.put_u32(0); // RPCSEC_GSS_DATA
    gss.put_u32(1); // seq
    gss.put_u32(1); // service none
    gss.put_opaque(b"handle");
    for (xid, flavor, body) in [(0x200, 6u32, &gss[..]), (0x201, 0x1234, &b""[..])] {
        let h = call_header(xid, 2, NFS4_PROGRAM, NFS4_VERSION, PROC_NULL, flavor, body);
        let r = raw_roundtrip(&c, xid, &h);
        // AUTH_TOOWEAK (5): a flavor this server does not accept.
        assert_eq!(
            reply_failure(&r),
            Some(ReplyFailure::AuthError(5)),
            "flavor {flavor}"
        );
    }
    c.null().unwrap();
    assert_still_serving(&srv);
}

#[test]
fn auth_sys_with_17_gids_is_auth_badcred() {
    let srv = TestServer::start();
    let big = Credential::Sys(AuthSys {
        stamp: 1,
        machine_name: b"bad-client".to_vec(),
        uid: 1000,
        gid: 1000,
        gids: (0..17).collect(),
    });
    let c = RpcConn::connect(srv.addr(), big).unwrap();
    c.set_timeout(REPLY_WAIT);
    assert!(matches!(c.null(), Err(ClientError::AuthError(1))));
    assert!(matches!(
        c.compound(1, b"", &[Op::PutRootFh]),
        Err(ClientError::AuthError(1))
    ));
    // 16 gids is fine.
    let ok = Credential::Sys(AuthSys {
        stamp: 1,
        machine_name: b"good-client".to_vec(),
        uid: 1000,
        gid: 1000,
        gids: (0..16).collect(),
    });
    let c2 = RpcConn::connect(srv.addr(), ok).unwrap();
    c2.set_timeout(REPLY_WAIT);
    c2.null().unwrap();
    // A malformed AUTH_SYS body (machine name longer than 255) is AUTH_BADCRED too.
    let mut body = Vec::new();
    body.put_u32(1);
    body.put_opaque(&[b'm'; 300]);
    let h = call_header(0x300, 2, NFS4_PROGRAM, NFS4_VERSION, PROC_NULL, 1, &body);
    let r = raw_roundtrip(&c2, 0x300, &h);
    assert_eq!(reply_failure(&r), Some(ReplyFailure::AuthError(1)));
    assert_still_serving(&srv);
}

// ---- record marking abuse -------------------------------------------------------------

#[test]
fn record_mark_claiming_2gib_closes_the_connection() {
    let srv = TestServer::start();
    let (c, base) = registered_conn(&srv);
    for mark in [0x7fff_ffffu32 | LAST, 0x7fff_ffff] {
        let (c2, base2) = registered_conn(&srv);
        let _ = c2.send_raw(&mark.to_be_bytes());
        assert_closed_by_server(&srv, &c2, base2);
    }
    // The first connection was never touched and still works.
    c.null().unwrap();
    // And one more: the mark followed by a few bytes of "payload".
    let mut bytes = (0x7fff_ffffu32 | LAST).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 1000]);
    let _ = c.send_raw(&bytes);
    assert_closed_by_server(&srv, &c, base);
    assert_still_serving(&srv);
}

#[test]
fn record_at_the_limit_is_served_and_one_byte_more_closes() {
    let srv = TestServer::start();
    let (c, base) = registered_conn(&srv);
    // Exactly the maximum: a NULL call padded with zeros (NULL ignores its arguments).
    let xid = 0x5151_0001;
    let mut call = call_header(xid, 2, NFS4_PROGRAM, NFS4_VERSION, PROC_NULL, 0, b"");
    call.resize(MAX_RECORD, 0);
    let r = raw_roundtrip(&c, xid, &call);
    assert_eq!(reply_failure(&r), None);
    // The same split over two fragments.
    let xid: u32 = 0x5151_0002;
    call[..4].copy_from_slice(&xid.to_be_bytes());
    let half = MAX_RECORD / 2;
    let mut bytes = (half as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&call[..half]);
    bytes.extend_from_slice(&(((MAX_RECORD - half) as u32) | LAST).to_be_bytes());
    bytes.extend_from_slice(&call[half..]);
    c.send_raw(&bytes).unwrap();
    let r = c.recv_unmatched(REPLY_WAIT).expect("reply");
    assert_eq!(u32::from_be_bytes([r[0], r[1], r[2], r[3]]), xid);
    assert_eq!(reply_failure(&r), None);
    // One byte more is refused before it is read.
    let _ = c.send_raw(&(((MAX_RECORD + 1) as u32) | LAST).to_be_bytes());
    assert_closed_by_server(&srv, &c, base);
    assert_still_serving(&srv);
}

#[test]
fn record_growing_past_the_limit_through_fragments_closes() {
    let srv = TestServer::start();
    let (c, base) = registered_conn(&srv);
    // 64 KiB non-last fragments: the 18th takes the record past 1 MiB + 64 KiB.
    let frag = 64 * 1024;
    let mut chunk = (frag as u32).to_be_bytes().to_vec();
    chunk.extend(std::iter::repeat_n(0xAAu8, frag));
    let mut sent = 0;
    for _ in 0..20 {
        // Writes after the server gave up may fail (reset): that is expected.
        if c.send_raw(&chunk).is_err() {
            break;
        }
        sent += frag;
    }
    assert!(sent > 0);
    assert_closed_by_server(&srv, &c, base);
    assert_still_serving(&srv);
}

#[test]
fn many_small_fragments_past_the_limit_close() {
    // Fragments well under the fragment-count limit but adding up past the size limit.
    let srv = TestServer::start();
    let (c, base) = registered_conn(&srv);
    let frag = 4096 - 4;
    let mut chunk = (frag as u32).to_be_bytes().to_vec();
    chunk.extend(std::iter::repeat_n(0x55u8, frag));
    let n = MAX_RECORD / frag + 2;
    assert!(n < 1024);
    let mut all = Vec::with_capacity(n * chunk.len());
    for _ in 0..n {
        all.extend_from_slice(&chunk);
    }
    let _ = c.send_raw(&all);
    assert_closed_by_server(&srv, &c, base);
    assert_still_serving(&srv);
}

#[test]
fn two_thousand_empty_fragments_close() {
    let srv = TestServer::start();
    let (c, base) = registered_conn(&srv);
    let bytes: Vec<u8> = std::iter::repeat_n(0u32.to_be_bytes(), 2000)
        .flatten()
        .collect();
    let _ = c.send_raw(&bytes);
    assert_closed_by_server(&srv, &c, base);
    assert_still_serving(&srv);
}

#[test]
fn a_valid_multi_fragment_record_is_answered() {
    // The control case for the fragment tests: 1000 fragments (under the limit) that
    // make one NULL call are fine, one byte per fragment.
    let srv = TestServer::start();
    let (c, _) = registered_conn(&srv);
    let xid = 0x4242_0001;
    let call = call_header(xid, 2, NFS4_PROGRAM, NFS4_VERSION, PROC_NULL, 0, b"");
    let mut bytes = Vec::new();
    for (i, b) in call.iter().enumerate() {
        let last = if i + 1 == call.len() { LAST } else { 0 };
        bytes.extend_from_slice(&(1u32 | last).to_be_bytes());
        bytes.push(*b);
    }
    // Plus empty fragments in front, up to 1000 in all.
    let mut all: Vec<u8> = std::iter::repeat_n(0u32.to_be_bytes(), 1000 - call.len())
        .flatten()
        .collect();
    all.extend_from_slice(&bytes);
    c.send_raw(&all).unwrap();
    let r = c.recv_unmatched(REPLY_WAIT).expect("reply");
    assert_eq!(u32::from_be_bytes([r[0], r[1], r[2], r[3]]), xid);
    assert_eq!(reply_failure(&r), None);
    assert_still_serving(&srv);
}

#[test]
fn client_closing_mid_record_is_cleaned_up() {
    let srv = TestServer::start();
    let (keep, before_keep) = registered_conn(&srv);
    // Connections open while the bad ones come and go: `keep`.
    let base = before_keep + 1;
    let call = call_header(7, 2, NFS4_PROGRAM, NFS4_VERSION, PROC_NULL, 0, b"");
    let cases: Vec<Vec<u8>> = vec![
        // Half a record: mark for 1000 bytes, 500 sent.
        {
            let mut v = (1000u32 | LAST).to_be_bytes().to_vec();
            v.extend_from_slice(&[9u8; 500]);
            v
        },
        // Half a record mark.
        vec![0x80, 0x00],
        // A complete first fragment, the last one missing.
        {
            let mut v = (call.len() as u32).to_be_bytes().to_vec();
            v.extend_from_slice(&call);
            v
        },
        // Half of a valid NULL call.
        {
            let r = record(&call);
            r[..r.len() / 2].to_vec()
        },
    ];
    for (i, bytes) in cases.iter().enumerate() {
        // A plain socket: send, then shut the write side and close.
        let mut s = TcpStream::connect(srv.addr()).unwrap();
        assert!(
            wait_until(WAIT, || srv.state().connection_count() == base + 1),
            "case {i}: accepted"
        );
        s.write_all(bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        drop(s);
        assert!(
            wait_until(WAIT, || srv.state().connection_count() == base),
            "case {i}: connection count back to {base}, is {}",
            srv.state().connection_count()
        );
    }
    // Also via RpcConn, with a request in flight on the half-sent record.
    let (c, base2) = registered_conn(&srv);
    assert_eq!(base2, base);
    c.send_raw(&(4000u32 | LAST).to_be_bytes()).unwrap();
    c.send_raw(&[1u8; 100]).unwrap();
    c.shutdown();
    assert!(wait_until(WAIT, || srv.state().connection_count() == base));
    let m = srv.state().metrics_snapshot();
    assert_eq!(m.connections_accepted - m.connections_closed, base as u64);
    keep.null().unwrap();
    assert_still_serving(&srv);
}

// ---- COMPOUND-level bad input ---------------------------------------------------------

#[test]
fn compound_with_a_million_ops_and_few_bytes_is_refused() {
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    for (minor, extra) in [(1u32, 0usize), (1, 12), (2, 4)] {
        let mut args = compound_header(b"many", minor, 1_000_000);
        // A few ops' worth of bytes (PUTROOTFH opnums) after the header.
        for _ in 0..extra / 4 {
            args.put_u32(op::PUTROOTFH);
        }
        match c.compound_encoded(&args) {
            Ok(r) => {
                assert_eq!(r.status, status::NFS4ERR_TOO_MANY_OPS, "minor {minor}");
                assert_eq!(r.tag, b"many");
                assert!(r.results.is_empty());
            }
            Err(ClientError::RpcAccepted(AcceptStat::GarbageArgs)) => {}
            Err(e) => panic!("minor {minor}: unexpected {e:?}"),
        }
    }
    // u32::MAX ops too.
    match c.compound_encoded(&compound_header(b"", 1, u32::MAX)) {
        Ok(r) => assert_eq!(r.status, status::NFS4ERR_TOO_MANY_OPS),
        Err(ClientError::RpcAccepted(AcceptStat::GarbageArgs)) => {}
        Err(e) => panic!("unexpected {e:?}"),
    }
    c.null().unwrap();
    assert_still_serving(&srv);
}

#[test]
fn compound_with_numops_but_no_op_bytes_is_badxdr() {
    // numops under the cap but the op array is missing: NFS4ERR_BADXDR (or GARBAGE_ARGS).
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    for numops in [1u32, 5, 100] {
        match c.compound_encoded(&compound_header(b"t", 1, numops)) {
            Ok(r) => {
                assert_eq!(r.status, status::NFS4ERR_BADXDR, "numops {numops}");
                assert!(r.results.is_empty());
            }
            Err(ClientError::RpcAccepted(AcceptStat::GarbageArgs)) => {}
            Err(e) => panic!("numops {numops}: unexpected {e:?}"),
        }
    }
    assert_still_serving(&srv);
}

#[test]
fn truncated_op_args_give_badxdr_in_that_ops_result() {
    let srv = TestServer::start();
    let (_ids, s) = srv.session();
    // SEQUENCE ok, PUTFH whose handle says 64 bytes but carries 4.
    let r = s
        .call(
            0,
            &[Op::Raw {
                opnum: op::PUTFH,
                args: vec![0, 0, 0, 64, 1, 2, 3, 4],
            }],
            false,
        )
        .unwrap();
    assert_eq!(r.sequence_status(), Some(status::NFS4_OK));
    assert_eq!(r.results.len(), 2);
    assert_eq!(r.results[1].opnum, op::PUTFH);
    assert_eq!(r.results[1].status, status::NFS4ERR_BADXDR);
    assert_eq!(r.status, status::NFS4ERR_BADXDR);

    // PUTROOTFH ok, then GETATTR whose bitmap is cut short: results stop at GETATTR.
    let r = s
        .call(
            0,
            &[
                Op::PutRootFh,
                Op::Raw {
                    opnum: op::GETATTR,
                    args: vec![0, 0, 0, 3, 0, 0, 0, 1],
                },
                Op::GetFh,
            ],
            false,
        )
        .unwrap();
    assert_eq!(
        r.results
            .iter()
            .map(|x| (x.opnum, x.status))
            .collect::<Vec<_>>(),
        vec![
            (op::SEQUENCE, status::NFS4_OK),
            (op::PUTROOTFH, status::NFS4_OK),
            (op::GETATTR, status::NFS4ERR_BADXDR)
        ]
    );
    assert_eq!(r.status, status::NFS4ERR_BADXDR);

    // A truncated SEQUENCE (half a session id): SEQUENCE itself fails with BADXDR.
    let conn = s.connection(0).unwrap();
    let mut args = compound_header(b"", 1, 2);
    args.put_u32(op::SEQUENCE);
    args.extend_from_slice(&s.sessionid().0[..8]);
    let r = conn.compound_encoded(&args).unwrap();
    assert_eq!(r.results.len(), 1);
    assert_eq!(
        (r.results[0].opnum, r.results[0].status),
        (op::SEQUENCE, status::NFS4ERR_BADXDR)
    );
    assert_eq!(r.status, status::NFS4ERR_BADXDR);

    // A sessionless op with truncated args: EXCHANGE_ID with half a verifier.
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    let r = c
        .compound(
            1,
            b"",
            &[Op::Raw {
                opnum: op::EXCHANGE_ID,
                args: vec![1, 2, 3, 4],
            }],
        )
        .unwrap();
    assert_eq!(
        (r.results[0].opnum, r.results[0].status),
        (op::EXCHANGE_ID, status::NFS4ERR_BADXDR)
    );
    // BIND_CONN_TO_SESSION cut after the session id.
    let mut args = s.sessionid().0.to_vec();
    args.put_u32(1);
    let r = c
        .compound(
            1,
            b"",
            &[Op::Raw {
                opnum: op::BIND_CONN_TO_SESSION,
                args,
            }],
        )
        .unwrap();
    assert_eq!(
        (r.results[0].opnum, r.results[0].status),
        (op::BIND_CONN_TO_SESSION, status::NFS4ERR_BADXDR)
    );
    // The session is still fine.
    let r = s.call(0, &[Op::PutRootFh, Op::GetFh], false).unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    assert_still_serving(&srv);
}

#[test]
fn minor_versions_0_and_3_are_minor_vers_mismatch() {
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    for minor in [0u32, 3, 4, 100, u32::MAX] {
        let r = c
            .compound(minor, b"mv", &[Op::PutRootFh, Op::GetFh])
            .unwrap();
        assert_eq!(
            r.status,
            status::NFS4ERR_MINOR_VERS_MISMATCH,
            "minor {minor}"
        );
        assert_eq!(r.tag, b"mv");
        assert!(r.results.is_empty(), "minor {minor}: no results");
    }
    // Even with no ops, or a huge op count.
    let r = c
        .compound_encoded(&compound_header(b"", 3, 1_000_000))
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_MINOR_VERS_MISMATCH);
    assert_still_serving(&srv);
}

#[test]
fn illegal_opnums_give_op_illegal() {
    let srv = TestServer::start();
    let c = srv.connect();
    c.set_timeout(REPLY_WAIT);
    // Sessionless: the first op is illegal. Ops 0-2 do not exist, 10044 is OP_ILLEGAL
    // itself, 59 (ALLOCATE) is NFSv4.2 only.
    for opnum in [9999u32, 0, 1, 2, op::ILLEGAL, 76, 10043, u32::MAX] {
        let r = c
            .compound(
                1,
                b"il",
                &[Op::Raw {
                    opnum,
                    args: vec![],
                }],
            )
            .unwrap();
        assert_eq!(r.status, status::NFS4ERR_OP_ILLEGAL, "opnum {opnum}");
        assert_eq!(r.results.len(), 1);
        assert_eq!(
            (r.results[0].opnum, r.results[0].status),
            (op::ILLEGAL, status::NFS4ERR_OP_ILLEGAL),
            "opnum {opnum}"
        );
    }
    let r = c
        .compound(
            1,
            b"",
            &[Op::Raw {
                opnum: op::ALLOCATE,
                args: vec![],
            }],
        )
        .unwrap();
    assert_eq!(
        (r.results[0].opnum, r.results[0].status),
        (op::ILLEGAL, status::NFS4ERR_OP_ILLEGAL)
    );
    // In a session: SEQUENCE ok, then the illegal op.
    let (_ids, s) = srv.session();
    let r = s
        .call(
            0,
            &[
                Op::PutRootFh,
                Op::Raw {
                    opnum: 9999,
                    args: vec![0, 0, 0, 1],
                },
                Op::GetFh,
            ],
            false,
        )
        .unwrap();
    assert_eq!(
        r.results
            .iter()
            .map(|x| (x.opnum, x.status))
            .collect::<Vec<_>>(),
        vec![
            (op::SEQUENCE, status::NFS4_OK),
            (op::PUTROOTFH, status::NFS4_OK),
            (op::ILLEGAL, status::NFS4ERR_OP_ILLEGAL)
        ]
    );
    assert_eq!(r.status, status::NFS4ERR_OP_ILLEGAL);
    // The slot advanced: the next call works.
    let r = s.call(0, &[Op::PutRootFh, Op::GetFh], false).unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    assert_still_serving(&srv);
}

#[test]
fn interleaved_bad_and_good_clients_on_both_cores() {
    // Several bad connections at once (spread over the workers by the kernel) while a
    // good session keeps working.
    let srv = TestServer::start();
    let (_ids, s) = srv.session();
    let base = srv.state().connection_count();
    let accepted = srv.state().metrics_snapshot().connections_accepted;
    let mut bad = Vec::new();
    for i in 0..8u32 {
        let c = srv.connect();
        match i % 4 {
            0 => {
                let _ = c.send_raw(&(0x7fff_ffffu32 | LAST).to_be_bytes());
            }
            1 => {
                let b: Vec<u8> = std::iter::repeat_n(0u32.to_be_bytes(), 1100)
                    .flatten()
                    .collect();
                let _ = c.send_raw(&b);
            }
            2 => {
                let _ = c.send_raw(&record(&[0xde, 0xad]));
            }
            _ => {
                let _ = c.send_raw(&(100u32 | LAST).to_be_bytes());
                c.shutdown();
            }
        }
        bad.push(c);
        let r = s.call(0, &[Op::PutRootFh, Op::GetFh], false).unwrap();
        assert_eq!(r.status, status::NFS4_OK);
    }
    // The 2-byte record (no xid) leaves its connections open; the others close.
    assert!(wait_until(WAIT, || {
        srv.state().metrics_snapshot().connections_accepted == accepted + 8
    }));
    assert!(
        wait_until(WAIT, || srv.state().connection_count() == base + 2),
        "count {} want {}",
        srv.state().connection_count(),
        base + 2
    );
    for (i, c) in bad.iter().enumerate() {
        if i % 4 == 2 {
            assert_no_stray_reply(c);
        }
    }
    drop(bad);
    assert!(wait_until(WAIT, || srv.state().connection_count() == base));
    let info = srv.state().session_info(&common::sid(&s)).unwrap();
    assert_eq!(info.summary.total, 1);
    assert_still_serving(&srv);
}

#[test]
fn an_rpc_reply_sent_to_the_server_is_ignored() {
    // The server only expects replies to its own callbacks; a stray one gets no answer
    // and the connection goes on.
    let srv = TestServer::start();
    let (c, _) = registered_conn(&srv);
    let mut rep = Vec::new();
    ringnfs::rpc::encode_accepted(&mut rep, 0xabcd, AcceptStat::Success);
    rep.extend_from_slice(&[0, 0, 0, 0]);
    c.send_raw(&record(&rep)).unwrap();
    // A denied reply.
    let mut rep = Vec::new();
    ringnfs::rpc::encode_rejected_auth(&mut rep, 0xabce, 1);
    c.send_raw(&record(&rep)).unwrap();
    assert_no_stray_reply(&c);
    assert!(!c.is_closed());
    assert_still_serving(&srv);
}

#[test]
fn a_malformed_rpc_reply_sent_to_the_server_gets_no_answer() {
    // RFC 5531: GARBAGE_ARGS answers a call whose arguments do not decode; a reply is
    // never answered. decode_message reports a cut REPLY header as MsgError::Garbage(xid)
    // like a cut CALL header, and NfsService::on_record answers every Garbage(xid).
    let srv = TestServer::start();
    let (c, _) = registered_conn(&srv);
    // xid, REPLY, then nothing (reply_stat missing).
    c.send_raw(&record(&[0, 0, 0xab, 0xcf, 0, 0, 0, 1]))
        .unwrap();
    assert_no_stray_reply(&c);
    // xid, REPLY, MSG_DENIED, reject_stat 9 (undefined).
    c.send_raw(&record(&[
        0, 0, 0xab, 0xd0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9,
    ]))
    .unwrap();
    assert_no_stray_reply(&c);
    assert_still_serving(&srv);
}

#[test]
fn a_client_that_does_not_read_its_replies_does_not_stop_others() {
    // 400k pipelined NULL calls whose replies (28 bytes each with the mark: 11 MiB, over
    // the 8 MiB per-connection output bound) are not read for a while. Others are served
    // meanwhile, and once the client reads, every reply arrives, in order.
    use std::io::Read;
    const N: u32 = 400_000;
    let srv = TestServer::start();
    let mut s = TcpStream::connect(srv.addr()).unwrap();
    s.set_nodelay(true).unwrap();
    let local = s.local_addr().unwrap().to_string();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(44 * 10_000);
        for xid in 1..=N {
            batch.extend_from_slice(&record(&call_header(
                xid,
                2,
                NFS4_PROGRAM,
                NFS4_VERSION,
                PROC_NULL,
                0,
                b"",
            )));
            if batch.len() >= 44 * 10_000 || xid == N {
                w.write_all(&batch).expect("write requests");
                batch.clear();
            }
        }
    });
    let requests = || {
        srv.state()
            .connections()
            .into_iter()
            .find(|c| c.peer == local)
            .map_or(0, |c| c.requests)
    };
    assert!(
        wait_until(WAIT, || requests() >= 100_000),
        "server read {} requests",
        requests()
    );
    // The reader of nothing does not hold up anyone else.
    assert_still_serving(&srv);
    // Now read every reply.
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut pending: Vec<u8> = Vec::new();
    let mut next = 1u32;
    while next <= N {
        let n = s.read(&mut buf).expect("read replies");
        assert!(n > 0, "EOF after {} replies", next - 1);
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while pending.len() - at >= 28 {
            let mark = u32::from_be_bytes(pending[at..at + 4].try_into().unwrap());
            assert_eq!(mark, LAST | 24, "reply {next}: one 24-byte record");
            let rec = &pending[at + 4..at + 28];
            assert_eq!(
                u32::from_be_bytes(rec[..4].try_into().unwrap()),
                next,
                "replies in order"
            );
            assert_eq!(reply_failure(rec), None);
            next += 1;
            at += 28;
        }
        pending.drain(..at);
    }
    assert!(pending.is_empty());
    writer.join().expect("writer");
    assert_eq!(requests(), N as u64);
    assert_still_serving(&srv);
}
