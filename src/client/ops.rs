//! COMPOUND operations the client sends, and their XDR encoders (RFC 8881 §18).

use crate::nfs4::consts::{NFS4_SESSIONID_SIZE, NFS4_VERIFIER_SIZE, op, sp4};
use crate::rpc::auth::{AUTH_NONE, AUTH_SYS};
use crate::rpc::{AuthSys, Credential};
use crate::xdr::XdrEncoder;

pub type SessionId = [u8; NFS4_SESSIONID_SIZE];
pub type Verifier = [u8; NFS4_VERIFIER_SIZE];

/// SEQUENCE4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceArgs {
    pub sessionid: SessionId,
    pub sequenceid: u32,
    pub slotid: u32,
    pub highest_slotid: u32,
    pub cachethis: bool,
}

/// nfs_impl_id4.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImplId {
    pub domain: Vec<u8>,
    pub name: Vec<u8>,
    /// nfstime4: seconds, nseconds.
    pub date: (i64, u32),
}

/// state_protect4_a (SP4_SSV is not offered by this client).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StateProtect {
    #[default]
    None,
    /// SP4_MACH_CRED with spo_must_enforce and spo_must_allow bitmaps.
    MachCred {
        must_enforce: Vec<u32>,
        must_allow: Vec<u32>,
    },
}

/// EXCHANGE_ID4args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeIdArgs {
    pub verifier: Verifier,
    pub owner_id: Vec<u8>,
    pub flags: u32,
    pub state_protect: StateProtect,
    pub impl_id: Option<ImplId>,
}

/// channel_attrs4: the same type and XDR as the server's.
pub use crate::nfs4::types::encode_channel_attrs;
pub use crate::state::ChannelAttrs;

/// callback_sec_parms4 (RPCSEC_GSS is not offered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackSec {
    None,
    Sys(AuthSys),
}

impl CallbackSec {
    /// The callback security matching the credential the client itself uses.
    pub fn from_credential(cred: &Credential) -> Self {
        match cred {
            Credential::None => CallbackSec::None,
            Credential::Sys(s) => CallbackSec::Sys(s.clone()),
        }
    }
}

/// CREATE_SESSION4args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSessionArgs {
    pub clientid: u64,
    pub sequence: u32,
    pub flags: u32,
    pub fore: ChannelAttrs,
    pub back: ChannelAttrs,
    pub cb_program: u32,
    pub sec_parms: Vec<CallbackSec>,
}

/// One operation of a COMPOUND request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Sequence(SequenceArgs),
    ExchangeId(ExchangeIdArgs),
    CreateSession(CreateSessionArgs),
    /// `dir` is a raw channel_dir_from_client4 so tests can send invalid values.
    BindConnToSession {
        sessionid: SessionId,
        dir: u32,
        use_rdma: bool,
    },
    DestroySession(SessionId),
    DestroyClientid(u64),
    ReclaimComplete {
        one_fs: bool,
    },
    PutRootFh,
    PutFh(Vec<u8>),
    GetFh,
    SaveFh,
    RestoreFh,
    /// GETATTR with the attr_request bitmap words.
    GetAttr(Vec<u32>),
    Lookup(Vec<u8>),
    /// Any operation number followed by pre-encoded argument bytes (may be illegal).
    Raw {
        opnum: u32,
        args: Vec<u8>,
    },
}

impl Op {
    /// The nfs_opnum4 this operation is sent as.
    pub fn opnum(&self) -> u32 {
        match self {
            Op::Sequence(_) => op::SEQUENCE,
            Op::ExchangeId(_) => op::EXCHANGE_ID,
            Op::CreateSession(_) => op::CREATE_SESSION,
            Op::BindConnToSession { .. } => op::BIND_CONN_TO_SESSION,
            Op::DestroySession(_) => op::DESTROY_SESSION,
            Op::DestroyClientid(_) => op::DESTROY_CLIENTID,
            Op::ReclaimComplete { .. } => op::RECLAIM_COMPLETE,
            Op::PutRootFh => op::PUTROOTFH,
            Op::PutFh(_) => op::PUTFH,
            Op::GetFh => op::GETFH,
            Op::SaveFh => op::SAVEFH,
            Op::RestoreFh => op::RESTOREFH,
            Op::GetAttr(_) => op::GETATTR,
            Op::Lookup(_) => op::LOOKUP,
            Op::Raw { opnum, .. } => *opnum,
        }
    }

    /// Encode as nfs_argop4: the opnum, then the arguments.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.opnum());
        match self {
            Op::Sequence(a) => encode_sequence(out, a),
            Op::ExchangeId(a) => encode_exchange_id(out, a),
            Op::CreateSession(a) => encode_create_session(out, a),
            Op::BindConnToSession {
                sessionid,
                dir,
                use_rdma,
            } => {
                out.put_fixed(sessionid);
                out.put_u32(*dir);
                out.put_bool(*use_rdma);
            }
            Op::DestroySession(sid) => out.put_fixed(sid),
            Op::DestroyClientid(id) => out.put_u64(*id),
            Op::ReclaimComplete { one_fs } => out.put_bool(*one_fs),
            Op::PutRootFh | Op::GetFh | Op::SaveFh | Op::RestoreFh => {}
            Op::PutFh(fh) => out.put_opaque(fh),
            Op::GetAttr(bitmap) => encode_bitmap(out, bitmap),
            Op::Lookup(name) => out.put_opaque(name),
            Op::Raw { args, .. } => out.put_raw(args),
        }
    }
}

pub fn encode_bitmap(out: &mut Vec<u8>, words: &[u32]) {
    out.put_u32(words.len() as u32);
    for w in words {
        out.put_u32(*w);
    }
}

pub fn encode_sequence(out: &mut Vec<u8>, a: &SequenceArgs) {
    out.put_fixed(&a.sessionid);
    out.put_u32(a.sequenceid);
    out.put_u32(a.slotid);
    out.put_u32(a.highest_slotid);
    out.put_bool(a.cachethis);
}

fn encode_impl_id(out: &mut Vec<u8>, id: &ImplId) {
    out.put_opaque(&id.domain);
    out.put_opaque(&id.name);
    out.put_u64(id.date.0 as u64);
    out.put_u32(id.date.1);
}

fn encode_exchange_id(out: &mut Vec<u8>, a: &ExchangeIdArgs) {
    // client_owner4
    out.put_fixed(&a.verifier);
    out.put_opaque(&a.owner_id);
    out.put_u32(a.flags);
    // state_protect4_a
    match &a.state_protect {
        StateProtect::None => out.put_u32(sp4::NONE),
        StateProtect::MachCred {
            must_enforce,
            must_allow,
        } => {
            out.put_u32(sp4::MACH_CRED);
            encode_bitmap(out, must_enforce);
            encode_bitmap(out, must_allow);
        }
    }
    // eia_client_impl_id<1>
    match &a.impl_id {
        None => out.put_u32(0),
        Some(id) => {
            out.put_u32(1);
            encode_impl_id(out, id);
        }
    }
}

/// authsys_parms inline (not wrapped in an opaque, unlike an RPC credential body).
fn encode_authsys_parms(out: &mut Vec<u8>, s: &AuthSys) {
    out.put_u32(s.stamp);
    out.put_opaque(&s.machine_name);
    out.put_u32(s.uid);
    out.put_u32(s.gid);
    out.put_u32(s.gids.len() as u32);
    for g in &s.gids {
        out.put_u32(*g);
    }
}

fn encode_create_session(out: &mut Vec<u8>, a: &CreateSessionArgs) {
    out.put_u64(a.clientid);
    out.put_u32(a.sequence);
    out.put_u32(a.flags);
    encode_channel_attrs(out, &a.fore);
    encode_channel_attrs(out, &a.back);
    out.put_u32(a.cb_program);
    out.put_u32(a.sec_parms.len() as u32);
    for p in &a.sec_parms {
        match p {
            CallbackSec::None => out.put_u32(AUTH_NONE),
            CallbackSec::Sys(s) => {
                out.put_u32(AUTH_SYS);
                encode_authsys_parms(out, s);
            }
        }
    }
}

/// Encode COMPOUND4args: tag, minorversion, argarray.
pub fn encode_compound(out: &mut Vec<u8>, minorversion: u32, tag: &[u8], ops: &[Op]) {
    out.put_opaque(tag);
    out.put_u32(minorversion);
    out.put_u32(ops.len() as u32);
    for o in ops {
        o.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::XdrDecoder;

    fn enc(o: &Op) -> Vec<u8> {
        let mut v = Vec::new();
        o.encode(&mut v);
        v
    }

    fn words(v: &[u8]) -> Vec<u32> {
        assert_eq!(v.len() % 4, 0);
        v.chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn sequence_layout() {
        let sid = [0x11u8; 16];
        let v = enc(&Op::Sequence(SequenceArgs {
            sessionid: sid,
            sequenceid: 7,
            slotid: 3,
            highest_slotid: 63,
            cachethis: true,
        }));
        // opnum, 16-byte session id (no length), seqid, slot, highest, bool
        assert_eq!(v.len(), 4 + 16 + 16);
        assert_eq!(&v[..4], &53u32.to_be_bytes());
        assert_eq!(&v[4..20], &sid);
        assert_eq!(words(&v[20..]), vec![7, 3, 63, 1]);
    }

    #[test]
    fn exchange_id_layout_none_and_mach_cred() {
        let a = ExchangeIdArgs {
            verifier: *b"verf0001",
            owner_id: b"abcde".to_vec(),
            flags: 0x101,
            state_protect: StateProtect::None,
            impl_id: None,
        };
        let v = enc(&Op::ExchangeId(a.clone()));
        let mut d = XdrDecoder::new(&v);
        assert_eq!(d.u32().unwrap(), 42);
        assert_eq!(d.opaque_fixed(8).unwrap(), b"verf0001");
        assert_eq!(d.opaque(1024).unwrap(), b"abcde");
        assert_eq!(d.u32().unwrap(), 0x101);
        assert_eq!(d.u32().unwrap(), 0); // SP4_NONE
        assert_eq!(d.u32().unwrap(), 0); // no impl id
        assert_eq!(d.remaining(), 0);
        // 4 + 8 + (4+8 padded "abcde") + 4 + 4 + 4
        assert_eq!(v.len(), 4 + 8 + 12 + 12);

        let b = ExchangeIdArgs {
            state_protect: StateProtect::MachCred {
                must_enforce: vec![1 << 10, 0x2],
                must_allow: vec![],
            },
            impl_id: Some(ImplId {
                domain: b"x.org".to_vec(),
                name: b"ringnfs".to_vec(),
                date: (-2, 9),
            }),
            ..a
        };
        let v = enc(&Op::ExchangeId(b));
        let mut d = XdrDecoder::new(&v);
        d.skip(4 + 8 + 12 + 4).unwrap();
        assert_eq!(d.u32().unwrap(), 1); // SP4_MACH_CRED
        assert_eq!(d.u32().unwrap(), 2);
        assert_eq!(d.u32().unwrap(), 1 << 10);
        assert_eq!(d.u32().unwrap(), 2);
        assert_eq!(d.u32().unwrap(), 0); // empty must_allow
        assert_eq!(d.u32().unwrap(), 1); // one impl id
        assert_eq!(d.opaque(1024).unwrap(), b"x.org");
        assert_eq!(d.opaque(1024).unwrap(), b"ringnfs");
        assert_eq!(d.i64().unwrap(), -2);
        assert_eq!(d.u32().unwrap(), 9);
        assert_eq!(d.remaining(), 0);
    }

    #[test]
    fn create_session_layout() {
        let attrs = ChannelAttrs {
            headerpadsize: 0,
            maxrequestsize: 1 << 20,
            maxresponsesize: 2 << 20,
            maxresponsesize_cached: 4096,
            maxoperations: 16,
            maxrequests: 64,
            rdma_ird: None,
        };
        let sys = AuthSys {
            stamp: 5,
            machine_name: b"m".to_vec(),
            uid: 1000,
            gid: 100,
            gids: vec![4],
        };
        let v = enc(&Op::CreateSession(CreateSessionArgs {
            clientid: 0x0102_0304_0506_0708,
            sequence: 1,
            flags: 2,
            fore: attrs,
            back: ChannelAttrs {
                rdma_ird: Some(9),
                ..attrs
            },
            cb_program: 0x4000_0000,
            sec_parms: vec![CallbackSec::None, CallbackSec::Sys(sys)],
        }));
        let w = words(&v);
        assert_eq!(
            w,
            vec![
                43,
                0x0102_0304,
                0x0506_0708,
                1,
                2, // opnum, clientid, sequence, flags
                0,
                1 << 20,
                2 << 20,
                4096,
                16,
                64,
                0, // fore, empty ird
                0,
                1 << 20,
                2 << 20,
                4096,
                16,
                64,
                1,
                9, // back, one ird
                0x4000_0000,
                2, // cb_program, two sec parms
                0, // AUTH_NONE
                1,
                5,
                1,
                u32::from_be_bytes(*b"m\0\0\0"),
                1000,
                100,
                1,
                4, // AUTH_SYS inline
            ]
        );
    }

    #[test]
    fn small_ops_layout() {
        let sid = [7u8; 16];
        let v = enc(&Op::BindConnToSession {
            sessionid: sid,
            dir: 0x99,
            use_rdma: false,
        });
        assert_eq!(&v[..4], &41u32.to_be_bytes());
        assert_eq!(&v[4..20], &sid);
        assert_eq!(words(&v[20..]), vec![0x99, 0]);
        let v = enc(&Op::DestroySession(sid));
        assert_eq!((v.len(), &v[4..]), (20, &sid[..]));
        assert_eq!(words(&enc(&Op::DestroyClientid(5))), vec![57, 0, 5]);
        assert_eq!(
            words(&enc(&Op::ReclaimComplete { one_fs: true })),
            vec![58, 1]
        );
        assert_eq!(words(&enc(&Op::PutRootFh)), vec![24]);
        assert_eq!(words(&enc(&Op::GetFh)), vec![10]);
        assert_eq!(words(&enc(&Op::SaveFh)), vec![32]);
        assert_eq!(words(&enc(&Op::RestoreFh)), vec![31]);
        assert_eq!(
            words(&enc(&Op::PutFh(vec![1, 2, 3, 4, 5]))),
            vec![22, 5, 0x0102_0304, 0x0500_0000]
        );
        assert_eq!(
            words(&enc(&Op::GetAttr(vec![0x10, 0x20]))),
            vec![9, 2, 0x10, 0x20]
        );
        assert_eq!(
            words(&enc(&Op::Lookup(b"ab".to_vec()))),
            vec![15, 2, 0x6162_0000]
        );
        assert_eq!(
            words(&enc(&Op::Raw {
                opnum: 9999,
                args: vec![0, 0, 0, 1]
            })),
            vec![9999, 1]
        );
    }

    #[test]
    fn compound_layout() {
        let mut v = Vec::new();
        encode_compound(&mut v, 1, b"tag", &[Op::PutRootFh, Op::GetFh]);
        assert_eq!(
            words(&v),
            vec![3, u32::from_be_bytes(*b"tag\0"), 1, 2, 24, 10]
        );
    }
}
