//! Pre-encoded request records with the positions the hot loop patches in place.

use ringnfs_client::SessionId;
use ringnfs_client::ops::Op;
use ringnfs_client::ops::wire::{ReadArgs, SequenceArgs, Xdr};
use ringnfs_proto::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, PROC_NULL, op};
use ringnfs_proto::rpc::record::mark;
use ringnfs_proto::rpc::{Credential, encode_call};
use ringnfs_proto::xdr::XdrEncoder;

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
    /// WRITE payload (offset, length): its block headers are rewritten per request so
    /// that it always holds the [`pattern`](super::pattern) of the offset written.
    pub data: Option<(usize, usize)>,
    /// Offsets of [`NAME_COUNTER_LEN`] hex digits in file names, patched per request
    /// with a counter (unique names for the create workload).
    pub names: Vec<usize>,
    /// Bytes a READ in this request asks for (0: no READ).
    pub read_count: u32,
    /// The request creates a file with OPEN: the third operation, after SEQUENCE and
    /// PUTFH.
    pub opens: bool,
    /// The request also REMOVEs what it created (create `--remove`).
    pub removes: bool,
}

/// Placeholder for the per-request counter in a file name given to [`Template::sequenced`].
pub const NAME_COUNTER: &[u8] = b"################";
pub const NAME_COUNTER_LEN: usize = 16;

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
        SequenceArgs {
            sessionid,
            sequenceid: 0,
            slotid: 0,
            highest_slotid,
            cachethis: false,
        }
        .encode(&mut v);
        let mut io_offset = None;
        let mut data = None;
        let mut names = Vec::new();
        let mut read_count = 0;
        let (mut opens, mut removes) = (false, false);
        for o in ops {
            let start = v.len();
            if matches!(o, Op::Read(..) | Op::Write { .. }) {
                // opnum, then stateid4 (16 bytes), then offset4.
                io_offset = Some(start + 4 + 16);
            }
            if let Op::Read(ReadArgs { count, .. }) = o {
                read_count = *count;
            }
            opens |=
                matches!(o, Op::Open(a) if !matches!(a.how, ringnfs_client::OpenHow::NoCreate));
            removes |= matches!(o, Op::Remove(_));
            if let Op::Write { data: d, .. } = o {
                // ... offset4, stable_how4, then the opaque's length and bytes.
                data = Some((start + 4 + 16 + 8 + 4 + 4, d.len()));
            }
            o.encode(&mut v);
            if let Some(p) = v[start..]
                .windows(NAME_COUNTER_LEN)
                .position(|w| w == NAME_COUNTER)
            {
                names.push(start + p);
            }
        }
        let mut t = finish(v, Some((seq_off, seq_off + 4)), true);
        t.io_offset = io_offset;
        t.data = data;
        t.names = names;
        t.read_count = read_count;
        t.opens = opens;
        t.removes = removes;
        t
    }

    /// Append a copy with this xid (and slot/seqid, I/O offset, name counter) to `out`.
    #[inline]
    pub fn emit(
        &self,
        out: &mut Vec<u8>,
        xid: u32,
        slot: u32,
        seqid: u32,
        offset: u64,
        counter: u64,
    ) {
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
        if let Some((d, n)) = self.data {
            super::pattern::retarget(offset, &mut r[d..d + n]);
        }
        if !self.names.is_empty() {
            let hex = hex16(counter);
            for &n in &self.names {
                r[n..n + NAME_COUNTER_LEN].copy_from_slice(&hex);
            }
        }
    }
}

fn hex16(x: u64) -> [u8; NAME_COUNTER_LEN] {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut h = [0u8; NAME_COUNTER_LEN];
    for (i, c) in h.iter_mut().enumerate() {
        *c = D[((x >> (60 - 4 * i)) & 0xf) as usize];
    }
    h
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
        data: None,
        names: Vec::new(),
        read_count: 0,
        opens: false,
        removes: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_client::SessionId;
    use ringnfs_proto::rpc::{RpcMessage, decode_message};
    use ringnfs_proto::xdr::XdrDecoder;

    #[test]
    fn patched_sequence_decodes() {
        let sid = SessionId([9u8; 16]);
        let t = Template::sequenced(&Credential::None, sid, 31, &[Op::PutRootFh]);
        let mut out = Vec::new();
        t.emit(&mut out, 0xABCD, 7, 42, 0, 0);
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
        assert_eq!(d.array::<16>().unwrap(), sid.0);
        assert_eq!(d.u32().unwrap(), 42);
        assert_eq!(d.u32().unwrap(), 7);
        assert_eq!(d.u32().unwrap(), 31);
        assert!(!d.bool().unwrap());
        assert_eq!(d.u32().unwrap(), op::PUTROOTFH);
        assert_eq!(d.remaining(), 0);

        let t = Template::null(&Credential::None);
        let mut out = Vec::new();
        t.emit(&mut out, 5, 0, 0, 0, 0);
        let RpcMessage::Call(c) = decode_message(&out[4..]).unwrap() else {
            panic!()
        };
        assert_eq!((c.xid, c.proc_, c.args.len()), (5, PROC_NULL, 0));
    }

    #[test]
    fn names_and_write_data_are_patched() {
        let mut name = b"rb-".to_vec();
        name.extend_from_slice(NAME_COUNTER);
        let mut data = vec![0u8; 8192];
        crate::pattern::generate(0, &mut data);
        let t = Template::sequenced(
            &Credential::None,
            SessionId([1; 16]),
            0,
            &[
                Op::Remove(name.clone()),
                Op::Write {
                    stateid: ringnfs_proto::stateid::Stateid::ANONYMOUS,
                    offset: 0,
                    stable: 0,
                    data,
                },
                Op::Remove(name),
            ],
        );
        assert_eq!(t.names.len(), 2);
        let mut out = Vec::new();
        t.emit(&mut out, 1, 0, 1, 1 << 20, 0xabc);
        let s = String::from_utf8_lossy(&out);
        assert_eq!(s.matches("rb-0000000000000abc").count(), 2);
        let (d, n) = t.data.unwrap();
        assert!(crate::pattern::matches(1 << 20, &out[d..d + n]));
    }
}
