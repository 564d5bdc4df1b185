//! COMPOUND replies: splitting the result array and typed decoders for the results the
//! client understands (RFC 8881 §18).

use super::error::ClientError;
use super::ops::{ChannelAttrs, ImplId, SessionId};
use crate::nfs4::consts::{NFS4_FHSIZE, NFS4_OPAQUE_LIMIT, op, sp4, status};
use crate::xdr::{XdrDecoder, XdrError};

/// Upper bound on array lengths accepted from a reply (bitmaps, handle lists, ...).
const MAX_ARRAY: usize = 1024;

/// One entry of resarray.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpResult {
    pub opnum: u32,
    pub status: u32,
    /// The bytes after the status: the resok for a success; for a failure (always the
    /// last result) whatever the server put after the status. For a successful operation
    /// whose result layout this client does not know, the rest of the reply.
    pub body: Vec<u8>,
}

/// COMPOUND4res.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompoundReply {
    pub status: u32,
    pub tag: Vec<u8>,
    pub results: Vec<OpResult>,
}

impl CompoundReply {
    /// Decode COMPOUND4res. Splitting stops at the first failed result (the server stops
    /// there too) or at a successful result of an operation whose layout is unknown.
    pub fn decode(buf: &[u8]) -> Result<Self, ClientError> {
        let mut d = XdrDecoder::new(buf);
        let status = d.u32()?;
        let tag = d.opaque(NFS4_OPAQUE_LIMIT)?.to_vec();
        let n = d.array_len(MAX_ARRAY, 8)?;
        let mut results = Vec::with_capacity(n);
        for _ in 0..n {
            let opnum = d.u32()?;
            let st = d.u32()?;
            if st != status::NFS4_OK {
                results.push(OpResult {
                    opnum,
                    status: st,
                    body: d.rest().to_vec(),
                });
                break;
            }
            let start = d.position();
            match skip_resok(opnum, &mut d)? {
                true => results.push(OpResult {
                    opnum,
                    status: st,
                    body: d.consumed_since(start).to_vec(),
                }),
                false => {
                    results.push(OpResult {
                        opnum,
                        status: st,
                        body: d.rest().to_vec(),
                    });
                    break;
                }
            }
        }
        Ok(CompoundReply {
            status,
            tag,
            results,
        })
    }

    /// The first result for `opnum`.
    pub fn result(&self, opnum: u32) -> Option<&OpResult> {
        self.results.iter().find(|r| r.opnum == opnum)
    }

    /// The resok body of the first `opnum` result, or the error that prevented it.
    pub fn ok_body(&self, opnum: u32) -> Result<&[u8], ClientError> {
        match self.result(opnum) {
            Some(r) if r.status == status::NFS4_OK => Ok(&r.body),
            Some(r) => Err(ClientError::Nfs {
                opnum,
                status: r.status,
            }),
            None if self.status != status::NFS4_OK => Err(ClientError::Nfs {
                opnum,
                status: self.status,
            }),
            None => Err(ClientError::BadReply(format!(
                "no result for {}",
                crate::nfs4::consts::op_name(opnum)
            ))),
        }
    }

    /// Status of the leading SEQUENCE, if the reply has one.
    pub fn sequence_status(&self) -> Option<u32> {
        self.results
            .first()
            .filter(|r| r.opnum == op::SEQUENCE)
            .map(|r| r.status)
    }

    pub fn sequence(&self) -> Result<SequenceRes, ClientError> {
        SequenceRes::decode(self.ok_body(op::SEQUENCE)?)
    }
    pub fn exchange_id(&self) -> Result<ExchangeIdRes, ClientError> {
        ExchangeIdRes::decode(self.ok_body(op::EXCHANGE_ID)?)
    }
    pub fn create_session(&self) -> Result<CreateSessionRes, ClientError> {
        CreateSessionRes::decode(self.ok_body(op::CREATE_SESSION)?)
    }
    pub fn bind_conn(&self) -> Result<BindConnRes, ClientError> {
        BindConnRes::decode(self.ok_body(op::BIND_CONN_TO_SESSION)?)
    }
    /// The file handle of the first GETFH.
    pub fn getfh(&self) -> Result<Vec<u8>, ClientError> {
        let b = self.ok_body(op::GETFH)?;
        Ok(XdrDecoder::new(b).opaque(NFS4_FHSIZE)?.to_vec())
    }
    /// The first GETATTR's fattr4: (attrmask, attr_vals).
    pub fn getattr(&self) -> Result<(Vec<u32>, Vec<u8>), ClientError> {
        let b = self.ok_body(op::GETATTR)?;
        let mut d = XdrDecoder::new(b);
        let mask = decode_bitmap(&mut d)?;
        let vals = d.opaque(usize::MAX)?.to_vec();
        Ok((mask, vals))
    }
}

pub fn decode_bitmap(d: &mut XdrDecoder<'_>) -> Result<Vec<u32>, XdrError> {
    let n = d.array_len(MAX_ARRAY, 4)?;
    (0..n).map(|_| d.u32()).collect()
}

/// Skip a resok of `opnum`; false when this client does not know its layout.
fn skip_resok(opnum: u32, d: &mut XdrDecoder<'_>) -> Result<bool, XdrError> {
    match opnum {
        op::SEQUENCE => d.skip(16 + 5 * 4)?,
        op::BIND_CONN_TO_SESSION => d.skip(16 + 2 * 4)?,
        op::EXCHANGE_ID => {
            ExchangeIdRes::decode_from(d)?;
        }
        op::CREATE_SESSION => {
            CreateSessionRes::decode_from(d)?;
        }
        op::GETFH => {
            d.opaque(NFS4_FHSIZE)?;
        }
        op::GETATTR => {
            decode_bitmap(d)?;
            d.opaque(usize::MAX)?;
        }
        op::ACCESS => d.skip(8)?,
        op::DESTROY_SESSION
        | op::DESTROY_CLIENTID
        | op::RECLAIM_COMPLETE
        | op::PUTROOTFH
        | op::PUTPUBFH
        | op::PUTFH
        | op::SAVEFH
        | op::RESTOREFH
        | op::LOOKUP
        | op::LOOKUPP
        | op::ILLEGAL => {}
        _ => return Ok(false),
    }
    Ok(true)
}

/// SEQUENCE4resok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceRes {
    pub sessionid: SessionId,
    pub sequenceid: u32,
    pub slotid: u32,
    pub highest_slotid: u32,
    pub target_highest_slotid: u32,
    pub status_flags: u32,
}

impl SequenceRes {
    pub fn decode(b: &[u8]) -> Result<Self, ClientError> {
        let mut d = XdrDecoder::new(b);
        Ok(SequenceRes {
            sessionid: d.array()?,
            sequenceid: d.u32()?,
            slotid: d.u32()?,
            highest_slotid: d.u32()?,
            target_highest_slotid: d.u32()?,
            status_flags: d.u32()?,
        })
    }
}

/// state_protect4_r.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateProtectRes {
    None,
    MachCred {
        must_enforce: Vec<u32>,
        must_allow: Vec<u32>,
    },
    /// ssv_prot_info4 (decoded so the reply can be walked; this client does not use SSV).
    Ssv {
        must_enforce: Vec<u32>,
        must_allow: Vec<u32>,
        hash_alg: u32,
        encr_alg: u32,
        ssv_len: u32,
        window: u32,
        handles: Vec<Vec<u8>>,
    },
}

impl StateProtectRes {
    pub fn how(&self) -> u32 {
        match self {
            StateProtectRes::None => sp4::NONE,
            StateProtectRes::MachCred { .. } => sp4::MACH_CRED,
            StateProtectRes::Ssv { .. } => sp4::SSV,
        }
    }
}

/// server_owner4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOwner {
    pub minor_id: u64,
    pub major_id: Vec<u8>,
}

/// EXCHANGE_ID4resok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeIdRes {
    pub clientid: u64,
    pub sequenceid: u32,
    pub flags: u32,
    pub state_protect: StateProtectRes,
    pub server_owner: ServerOwner,
    pub server_scope: Vec<u8>,
    pub impl_id: Option<ImplId>,
}

impl ExchangeIdRes {
    pub fn decode(b: &[u8]) -> Result<Self, ClientError> {
        Ok(Self::decode_from(&mut XdrDecoder::new(b))?)
    }

    fn decode_from(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        let clientid = d.u64()?;
        let sequenceid = d.u32()?;
        let flags = d.u32()?;
        let state_protect = match d.u32()? {
            sp4::NONE => StateProtectRes::None,
            sp4::MACH_CRED => StateProtectRes::MachCred {
                must_enforce: decode_bitmap(d)?,
                must_allow: decode_bitmap(d)?,
            },
            sp4::SSV => {
                let must_enforce = decode_bitmap(d)?;
                let must_allow = decode_bitmap(d)?;
                let hash_alg = d.u32()?;
                let encr_alg = d.u32()?;
                let ssv_len = d.u32()?;
                let window = d.u32()?;
                let n = d.array_len(MAX_ARRAY, 4)?;
                let mut handles = Vec::with_capacity(n);
                for _ in 0..n {
                    handles.push(d.opaque(usize::MAX)?.to_vec());
                }
                StateProtectRes::Ssv {
                    must_enforce,
                    must_allow,
                    hash_alg,
                    encr_alg,
                    ssv_len,
                    window,
                    handles,
                }
            }
            _ => return Err(XdrError::BadValue),
        };
        let server_owner = ServerOwner {
            minor_id: d.u64()?,
            major_id: d.opaque(NFS4_OPAQUE_LIMIT)?.to_vec(),
        };
        let server_scope = d.opaque(NFS4_OPAQUE_LIMIT)?.to_vec();
        let impl_id = match d.u32()? {
            0 => None,
            1 => Some(ImplId {
                domain: d.opaque(NFS4_OPAQUE_LIMIT)?.to_vec(),
                name: d.opaque(NFS4_OPAQUE_LIMIT)?.to_vec(),
                date: (d.i64()?, d.u32()?),
            }),
            len => {
                return Err(XdrError::TooLong {
                    len: len as usize,
                    max: 1,
                });
            }
        };
        Ok(ExchangeIdRes {
            clientid,
            sequenceid,
            flags,
            state_protect,
            server_owner,
            server_scope,
            impl_id,
        })
    }
}

pub use crate::nfs4::types::decode_channel_attrs;

/// CREATE_SESSION4resok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSessionRes {
    pub sessionid: SessionId,
    pub sequence: u32,
    pub flags: u32,
    pub fore: ChannelAttrs,
    pub back: ChannelAttrs,
}

impl CreateSessionRes {
    pub fn decode(b: &[u8]) -> Result<Self, ClientError> {
        Ok(Self::decode_from(&mut XdrDecoder::new(b))?)
    }

    fn decode_from(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CreateSessionRes {
            sessionid: d.array()?,
            sequence: d.u32()?,
            flags: d.u32()?,
            fore: decode_channel_attrs(d)?,
            back: decode_channel_attrs(d)?,
        })
    }
}

/// BIND_CONN_TO_SESSION4resok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindConnRes {
    pub sessionid: SessionId,
    pub dir: u32,
    pub use_rdma: bool,
}

impl BindConnRes {
    pub fn decode(b: &[u8]) -> Result<Self, ClientError> {
        let mut d = XdrDecoder::new(b);
        Ok(BindConnRes {
            sessionid: d.array()?,
            dir: d.u32()?,
            use_rdma: d.bool()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ops::encode_channel_attrs;
    use crate::xdr::XdrEncoder;

    fn attrs(n: u32) -> ChannelAttrs {
        ChannelAttrs {
            headerpadsize: 0,
            maxrequestsize: 1 << 20,
            maxresponsesize: 1 << 20,
            maxresponsesize_cached: 8192,
            maxoperations: 16,
            maxrequests: n,
            rdma_ird: None,
        }
    }

    fn header(v: &mut Vec<u8>, status: u32, n: u32) {
        v.put_u32(status);
        v.put_opaque(b"t");
        v.put_u32(n);
    }

    #[test]
    fn sequence_then_getfh_then_error() {
        let sid = [3u8; 16];
        let mut v = Vec::new();
        header(&mut v, status::NFS4ERR_NOENT, 4);
        v.put_u32(op::SEQUENCE);
        v.put_u32(0);
        v.put_fixed(&sid);
        for x in [5, 2, 63, 31, 0x200] {
            v.put_u32(x);
        }
        v.put_u32(op::PUTROOTFH);
        v.put_u32(0);
        v.put_u32(op::GETFH);
        v.put_u32(0);
        v.put_opaque(&[9, 9, 9]);
        v.put_u32(op::LOOKUP);
        v.put_u32(status::NFS4ERR_NOENT);
        let r = CompoundReply::decode(&v).unwrap();
        assert_eq!(r.status, status::NFS4ERR_NOENT);
        assert_eq!(r.tag, b"t");
        assert_eq!(r.results.len(), 4);
        assert_eq!(r.sequence_status(), Some(0));
        let s = r.sequence().unwrap();
        assert_eq!(
            s,
            SequenceRes {
                sessionid: sid,
                sequenceid: 5,
                slotid: 2,
                highest_slotid: 63,
                target_highest_slotid: 31,
                status_flags: 0x200
            }
        );
        assert_eq!(r.results[1].body, Vec::<u8>::new());
        assert_eq!(r.getfh().unwrap(), vec![9, 9, 9]);
        assert_eq!(r.results[3].status, status::NFS4ERR_NOENT);
        assert_eq!(
            r.ok_body(op::LOOKUP).unwrap_err().nfs_status(),
            Some(status::NFS4ERR_NOENT)
        );
    }

    #[test]
    fn failure_stops_splitting_and_empty_resarray() {
        let mut v = Vec::new();
        header(&mut v, status::NFS4ERR_BADSESSION, 1);
        v.put_u32(op::SEQUENCE);
        v.put_u32(status::NFS4ERR_BADSESSION);
        let r = CompoundReply::decode(&v).unwrap();
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.sequence_status(), Some(status::NFS4ERR_BADSESSION));

        let mut v = Vec::new();
        header(&mut v, status::NFS4ERR_MINOR_VERS_MISMATCH, 0);
        let r = CompoundReply::decode(&v).unwrap();
        assert!(r.results.is_empty());
        assert_eq!(
            r.ok_body(op::SEQUENCE).unwrap_err().nfs_status(),
            Some(status::NFS4ERR_MINOR_VERS_MISMATCH)
        );
        // Truncated replies are errors, not panics.
        assert!(CompoundReply::decode(&v[..v.len() - 2]).is_err());
    }

    #[test]
    fn unknown_op_result_takes_the_rest() {
        let mut v = Vec::new();
        header(&mut v, 0, 2);
        v.put_u32(op::READ);
        v.put_u32(0);
        v.put_u32(1);
        v.put_opaque(b"data");
        v.put_u32(op::GETFH);
        v.put_u32(0);
        let r = CompoundReply::decode(&v).unwrap();
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].body.len(), 4 + 8 + 8);
    }

    fn exchange_id_body(sp: &[u32], impl_id: bool) -> Vec<u8> {
        let mut v = Vec::new();
        v.put_u64(0xAABB_CCDD_0000_0001);
        v.put_u32(1);
        v.put_u32(0x8001_0000);
        for w in sp {
            v.put_u32(*w);
        }
        v.put_u64(77);
        v.put_opaque(b"major");
        v.put_opaque(b"scope!");
        if impl_id {
            v.put_u32(1);
            v.put_opaque(b"dom");
            v.put_opaque(b"name");
            v.put_u64(100);
            v.put_u32(5);
        } else {
            v.put_u32(0);
        }
        v
    }

    #[test]
    fn exchange_id_res() {
        let r = ExchangeIdRes::decode(&exchange_id_body(&[0], false)).unwrap();
        assert_eq!(r.clientid, 0xAABB_CCDD_0000_0001);
        assert_eq!(r.sequenceid, 1);
        assert_eq!(r.flags, 0x8001_0000);
        assert_eq!(r.state_protect, StateProtectRes::None);
        assert_eq!(
            r.server_owner,
            ServerOwner {
                minor_id: 77,
                major_id: b"major".to_vec()
            }
        );
        assert_eq!(r.server_scope, b"scope!");
        assert_eq!(r.impl_id, None);

        let r = ExchangeIdRes::decode(&exchange_id_body(&[1, 1, 0x10, 2, 1, 2], true)).unwrap();
        assert_eq!(
            r.state_protect,
            StateProtectRes::MachCred {
                must_enforce: vec![0x10],
                must_allow: vec![1, 2]
            }
        );
        assert_eq!(r.impl_id.unwrap().date, (100, 5));

        // SSV info: ops, hash, encr, len, window, handles<>.
        let r = ExchangeIdRes::decode(&exchange_id_body(
            &[2, 0, 0, 1, 2, 32, 4, 1, 2, 0xAB00_0000],
            false,
        ))
        .unwrap();
        assert_eq!(r.state_protect.how(), sp4::SSV);
        assert_eq!(r.server_scope, b"scope!");

        // Walked as part of a compound.
        let mut v = Vec::new();
        header(&mut v, 0, 2);
        v.put_u32(op::EXCHANGE_ID);
        v.put_u32(0);
        v.put_raw(&exchange_id_body(&[0], true));
        v.put_u32(op::RECLAIM_COMPLETE);
        v.put_u32(0);
        let c = CompoundReply::decode(&v).unwrap();
        assert_eq!(c.results.len(), 2);
        assert_eq!(c.exchange_id().unwrap().server_owner.minor_id, 77);
    }

    #[test]
    fn create_session_and_bind_conn_res() {
        let sid = [0x5Au8; 16];
        let mut v = Vec::new();
        v.put_fixed(&sid);
        v.put_u32(1);
        v.put_u32(2);
        encode_channel_attrs(&mut v, &attrs(64));
        encode_channel_attrs(
            &mut v,
            &ChannelAttrs {
                rdma_ird: Some(3),
                ..attrs(1)
            },
        );
        let r = CreateSessionRes::decode(&v).unwrap();
        assert_eq!(r.sessionid, sid);
        assert_eq!((r.sequence, r.flags), (1, 2));
        assert_eq!(r.fore, attrs(64));
        assert_eq!(r.back.rdma_ird, Some(3));
        assert_eq!(r.back.maxrequests, 1);
        assert_eq!(v.len(), 16 + 8 + 28 + 32);

        let mut v = Vec::new();
        v.put_fixed(&sid);
        v.put_u32(3);
        v.put_u32(0);
        let b = BindConnRes::decode(&v).unwrap();
        assert_eq!(
            b,
            BindConnRes {
                sessionid: sid,
                dir: 3,
                use_rdma: false
            }
        );
    }

    #[test]
    fn getattr_result() {
        let mut v = Vec::new();
        header(&mut v, 0, 1);
        v.put_u32(op::GETATTR);
        v.put_u32(0);
        v.put_u32(2);
        v.put_u32(1);
        v.put_u32(2);
        v.put_opaque(&[0, 0, 0, 1]);
        let r = CompoundReply::decode(&v).unwrap();
        assert_eq!(r.getattr().unwrap(), (vec![1, 2], vec![0, 0, 0, 1]));
    }
}
