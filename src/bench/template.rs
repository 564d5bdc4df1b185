//! Pre-encoded request records with the positions the hot loop patches in place.

use crate::client::SessionId;
use crate::client::ops::{Op, SequenceArgs, encode_sequence};
use crate::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, PROC_NULL, op};
use crate::rpc::record::mark;
use crate::rpc::{Credential, encode_call};
use crate::xdr::XdrEncoder;

/// One framed request (record mark included).
#[derive(Debug, Clone)]
pub struct Template {
    pub bytes: Vec<u8>,
    pub xid_off: usize,
    /// Offsets of sa_sequenceid and sa_slotid for sequenced requests.
    pub seq: Option<(usize, usize)>,
    /// A COMPOUND (the reply carries an nfsstat4), not NULL.
    pub compound: bool,
    /// Offset of a READ/WRITE offset4 field patched per request.
    pub io_offset: Option<usize>,
}

impl Template {
    /// NFSPROC4_NULL.
    pub fn null(cred: &Credential) -> Self {
        let mut v = vec![0; 4];
        encode_call(&mut v, 0, NFS4_PROGRAM, NFS4_VERSION, PROC_NULL, cred);
        finish(v, None, false)
    }

    /// COMPOUND { SEQUENCE, ops... } for `sessionid`; slot and seqid are patched per request.
    pub fn sequenced(
        cred: &Credential,
        sessionid: SessionId,
        highest_slotid: u32,
        ops: &[Op],
    ) -> Self {
        let mut v = vec![0; 4];
        encode_call(&mut v, 0, NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, cred);
        v.put_opaque(b"");
        v.put_u32(1);
        v.put_u32(ops.len() as u32 + 1);
        v.put_u32(op::SEQUENCE);
        let seq_off = v.len() + 16;
        encode_sequence(
            &mut v,
            &SequenceArgs {
                sessionid,
                sequenceid: 0,
                slotid: 0,
                highest_slotid,
                cachethis: false,
            },
        );
        let mut io_offset = None;
        for o in ops {
            if matches!(o, Op::Read { .. } | Op::Write { .. }) {
                // opnum, then stateid4 (16 bytes), then offset4.
                io_offset = Some(v.len() + 4 + 16);
            }
            o.encode(&mut v);
        }
        let mut t = finish(v, Some((seq_off, seq_off + 4)), true);
        t.io_offset = io_offset;
        t
    }

    /// Append a copy with this xid (and slot/seqid, and I/O offset) to `out`.
    #[inline]
    pub fn emit(&self, out: &mut Vec<u8>, xid: u32, slot: u32, seqid: u32, offset: u64) {
        let at = out.len();
        out.extend_from_slice(&self.bytes);
        let r = &mut out[at..];
        r[self.xid_off..self.xid_off + 4].copy_from_slice(&xid.to_be_bytes());
        if let Some((s, l)) = self.seq {
            r[s..s + 4].copy_from_slice(&seqid.to_be_bytes());
            r[l..l + 4].copy_from_slice(&slot.to_be_bytes());
        }
        if let Some(o) = self.io_offset {
            r[o..o + 8].copy_from_slice(&offset.to_be_bytes());
        }
    }
}

fn finish(mut v: Vec<u8>, seq: Option<(usize, usize)>, compound: bool) -> Template {
    let m = mark(v.len() - 4);
    v[..4].copy_from_slice(&m);
    Template {
        bytes: v,
        xid_off: 4,
        seq,
        compound,
        io_offset: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{RpcMessage, decode_message};
    use crate::xdr::XdrDecoder;

    #[test]
    fn patched_sequence_decodes() {
        let sid = [9u8; 16];
        let t = Template::sequenced(&Credential::None, sid, 31, &[Op::PutRootFh]);
        let mut out = Vec::new();
        t.emit(&mut out, 0xABCD, 7, 42, 0);
        let len = u32::from_be_bytes(out[..4].try_into().unwrap()) & 0x7fff_ffff;
        assert_eq!(len as usize, out.len() - 4);
        let RpcMessage::Call(c) = decode_message(&out[4..]).unwrap() else {
            panic!()
        };
        assert_eq!((c.xid, c.proc_), (0xABCD, PROC_COMPOUND));
        let mut d = XdrDecoder::new(c.args);
        assert_eq!(d.opaque(8).unwrap(), b"");
        assert_eq!(d.u32().unwrap(), 1);
        assert_eq!(d.u32().unwrap(), 2);
        assert_eq!(d.u32().unwrap(), op::SEQUENCE);
        assert_eq!(d.array::<16>().unwrap(), sid);
        assert_eq!(d.u32().unwrap(), 42);
        assert_eq!(d.u32().unwrap(), 7);
        assert_eq!(d.u32().unwrap(), 31);
        assert!(!d.bool().unwrap());
        assert_eq!(d.u32().unwrap(), op::PUTROOTFH);
        assert_eq!(d.remaining(), 0);

        let t = Template::null(&Credential::None);
        let mut out = Vec::new();
        t.emit(&mut out, 5, 0, 0, 0);
        let RpcMessage::Call(c) = decode_message(&out[4..]).unwrap() else {
            panic!()
        };
        assert_eq!((c.xid, c.proc_, c.args.len()), (5, PROC_NULL, 0));
    }
}
