//! Test servers that answer every request with one pre-encoded reply (its xid patched),
//! as fast as a socket allows: for the generator's own throughput, and for replies a real
//! server would not send on purpose (short WRITEs, wrong READ data).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use ringnfs_proto::nfs4::consts::op;
use ringnfs_proto::rpc::record::mark;
use ringnfs_proto::rpc::{AcceptStat, encode_accepted};
use ringnfs_proto::xdr::XdrEncoder;

/// Start a server on 127.0.0.1 that answers each request record with `reply` (an RPC
/// reply without record mark; its xid is replaced by the request's).
pub fn canned_server(reply: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut framed = mark(reply.len()).to_vec();
    framed.extend_from_slice(&reply);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            let framed = framed.clone();
            std::thread::Builder::new()
                .name("canned".into())
                .spawn(move || {
                    s.set_nodelay(true).unwrap();
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut have = 0;
                    let mut out = Vec::new();
                    loop {
                        let n = match s.read(&mut buf[have..]) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        have += n;
                        let mut p = 0;
                        while have - p >= 8 {
                            let len = (u32::from_be_bytes(buf[p..p + 4].try_into().unwrap())
                                & 0x7fff_ffff) as usize;
                            if len > buf.len() - 4 {
                                buf.resize(len + 4, 0);
                            }
                            if have - p < 4 + len {
                                break;
                            }
                            let at = out.len();
                            out.extend_from_slice(&framed);
                            out[at + 4..at + 8].copy_from_slice(&buf[p + 4..p + 8]);
                            p += 4 + len;
                        }
                        buf.copy_within(p..have, 0);
                        have -= p;
                        if s.write_all(&out).is_err() {
                            return;
                        }
                        out.clear();
                    }
                })
                .unwrap();
        }
    });
    addr
}

/// An accepted COMPOUND reply with status 0 whose first result is a successful
/// SEQUENCE, followed by `more` results (encoded by the caller).
pub fn sequence_reply(more: u32, rest: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut rep = Vec::new();
    encode_accepted(&mut rep, 0, AcceptStat::Success);
    rep.put_u32(0);
    rep.put_opaque(b"");
    rep.put_u32(1 + more);
    rep.put_u32(op::SEQUENCE);
    rep.put_u32(0);
    rep.put_fixed(&[0; 16]);
    for _ in 0..5 {
        rep.put_u32(0);
    }
    rest(&mut rep);
    rep
}
