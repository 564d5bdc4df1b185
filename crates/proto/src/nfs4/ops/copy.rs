//! Server-side copy and clone (RFC 7862 §15.2, §15.8, §15.9, §15.13, §16.1): COPY,
//! OFFLOAD_CANCEL, OFFLOAD_STATUS, CLONE, and the CB_OFFLOAD callback that ends an
//! asynchronous COPY.
//!
//! COPY and CLONE take the source as the saved filehandle and the destination as the
//! current one. `stable_how4` values decode as sent.

use super::{MAX_ARRAY, Xdr};
use crate::nfs4::consts::{NFS4_FHSIZE, NFS4_VERIFIER_SIZE, NfsStatus};
use crate::stateid::Stateid;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// COPY4args. `source_servers` (netloc4 entries, kept as their raw XDR) names other
/// servers for an inter-server copy; empty for a copy within this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs<'a> {
    pub src_stateid: Stateid,
    pub dst_stateid: Stateid,
    pub src_offset: u64,
    pub dst_offset: u64,
    /// 0: to the end of the source.
    pub count: u64,
    pub consecutive: bool,
    pub synchronous: bool,
    pub source_servers: Vec<&'a [u8]>,
}

/// One netloc4 as raw XDR: its discriminant and its body (a name, a universal address
/// as netid + address, or a URL).
fn netloc<'a>(d: &mut XdrDecoder<'a>) -> Result<&'a [u8], XdrError> {
    let start = d.position();
    match d.u32()? {
        // NL4_NAME, NL4_URL: one utf8str; NL4_NETADDR: netid and uaddr.
        1 | 3 => {
            d.opaque(1024)?;
        }
        2 => {
            d.opaque(1024)?;
            d.opaque(1024)?;
        }
        _ => return Err(XdrError::BadValue),
    }
    Ok(d.consumed_since(start))
}

impl<'a> Xdr<'a> for CopyArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let src_stateid = Stateid::decode(d)?;
        let dst_stateid = Stateid::decode(d)?;
        let src_offset = d.u64()?;
        let dst_offset = d.u64()?;
        let count = d.u64()?;
        let consecutive = d.bool()?;
        let synchronous = d.bool()?;
        let n = d.array_len(MAX_ARRAY, 8)?;
        let source_servers = (0..n).map(|_| netloc(d)).collect::<Result<_, _>>()?;
        Ok(CopyArgs {
            src_stateid,
            dst_stateid,
            src_offset,
            dst_offset,
            count,
            consecutive,
            synchronous,
            source_servers,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.src_stateid.encode(out);
        self.dst_stateid.encode(out);
        out.put_u64(self.src_offset);
        out.put_u64(self.dst_offset);
        out.put_u64(self.count);
        out.put_bool(self.consecutive);
        out.put_bool(self.synchronous);
        out.put_u32(self.source_servers.len() as u32);
        for s in &self.source_servers {
            out.put_raw(s);
        }
    }
}

/// write_response4: the callback id of an asynchronous copy (none for a synchronous
/// one), bytes written, their stability and the write verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteResponse {
    pub callback_id: Option<Stateid>,
    pub count: u64,
    pub committed: u32,
    pub verifier: [u8; NFS4_VERIFIER_SIZE],
}

impl Xdr<'_> for WriteResponse {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        let callback_id = match d.array_len(1, 16)? {
            0 => None,
            _ => Some(Stateid::decode(d)?),
        };
        Ok(WriteResponse {
            callback_id,
            count: d.u64()?,
            committed: d.u32()?,
            verifier: d.array()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match &self.callback_id {
            Some(s) => {
                out.put_u32(1);
                s.encode(out);
            }
            None => out.put_u32(0),
        }
        out.put_u64(self.count);
        out.put_u32(self.committed);
        out.put_fixed(&self.verifier);
    }
}

/// copy_requirements4: what the server did (or, with NFS4ERR_OFFLOAD_NO_REQS, would
/// do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyRequirements {
    pub consecutive: bool,
    pub synchronous: bool,
}

impl Xdr<'_> for CopyRequirements {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CopyRequirements {
            consecutive: d.bool()?,
            synchronous: d.bool()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bool(self.consecutive);
        out.put_bool(self.synchronous);
    }
}

/// COPY4resok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyResOk {
    pub response: WriteResponse,
    pub requirements: CopyRequirements,
}

impl CopyResOk {
    /// Its largest XDR: a callback id present.
    pub const MAX_LEN: usize = 4 + 16 + 8 + 4 + NFS4_VERIFIER_SIZE + 8;
}

impl Xdr<'_> for CopyResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CopyResOk {
            response: WriteResponse::decode(d)?,
            requirements: CopyRequirements::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.response.encode(out);
        self.requirements.encode(out);
    }
}

/// OFFLOAD_CANCEL4args and OFFLOAD_STATUS4args: the copy's stateid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffloadArgs {
    pub stateid: Stateid,
}

impl Xdr<'_> for OffloadArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(OffloadArgs {
            stateid: Stateid::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.stateid.encode(out);
    }
}

/// OFFLOAD_STATUS4resok: bytes copied so far and, once it ended, the copy's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffloadStatusResOk {
    pub count: u64,
    pub complete: Option<NfsStatus>,
}

impl Xdr<'_> for OffloadStatusResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        let count = d.u64()?;
        let complete = match d.array_len(1, 4)? {
            0 => None,
            _ => Some(NfsStatus::from_code(d.u32()?)),
        };
        Ok(OffloadStatusResOk { count, complete })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.count);
        match self.complete {
            Some(st) => {
                out.put_u32(1);
                out.put_u32(st.code());
            }
            None => out.put_u32(0),
        }
    }
}

/// CB_OFFLOAD4args (RFC 7862 §16.1): the destination's filehandle, the copy's stateid,
/// and either the write_response4 of a copy that succeeded or the status and bytes
/// copied of one that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbOffloadArgs<'a> {
    pub fh: &'a [u8],
    pub stateid: Stateid,
    pub result: Result<WriteResponse, (NfsStatus, u64)>,
}

impl<'a> Xdr<'a> for CbOffloadArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let fh = d.opaque(NFS4_FHSIZE)?;
        let stateid = Stateid::decode(d)?;
        let st = NfsStatus::from_code(d.u32()?);
        let result = if st.is_ok() {
            Ok(WriteResponse::decode(d)?)
        } else {
            Err((st, d.u64()?))
        };
        Ok(CbOffloadArgs {
            fh,
            stateid,
            result,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(self.fh);
        self.stateid.encode(out);
        match &self.result {
            Ok(w) => {
                out.put_u32(0);
                w.encode(out);
            }
            Err((st, copied)) => {
                out.put_u32(st.code());
                out.put_u64(*copied);
            }
        }
    }
}

/// CLONE4args; a count of 0 means to the end of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneArgs {
    pub src_stateid: Stateid,
    pub dst_stateid: Stateid,
    pub src_offset: u64,
    pub dst_offset: u64,
    pub count: u64,
}

impl Xdr<'_> for CloneArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CloneArgs {
            src_stateid: Stateid::decode(d)?,
            dst_stateid: Stateid::decode(d)?,
            src_offset: d.u64()?,
            dst_offset: d.u64()?,
            count: d.u64()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.src_stateid.encode(out);
        self.dst_stateid.encode(out);
        out.put_u64(self.src_offset);
        out.put_u64(self.dst_offset);
        out.put_u64(self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::super::open::tests::stateid;
    use super::super::roundtrip;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn copy_types_round_trip(s in stateid(), d in stateid(), w in any::<[u64; 3]>(),
                                 b in any::<[bool; 2]>(), v in any::<[u8; 8]>(),
                                 st in 1u32..20_000) {
            roundtrip!(CloneArgs { src_stateid: s, dst_stateid: d, src_offset: w[0],
                                   dst_offset: w[1], count: w[2] });
            let mut name = Vec::new();
            name.put_u32(1);
            name.put_opaque(b"server.example");
            let mut addr = Vec::new();
            addr.put_u32(2);
            addr.put_opaque(b"tcp");
            addr.put_opaque(b"10.0.0.1.8.1");
            roundtrip!(CopyArgs { src_stateid: s, dst_stateid: d, src_offset: w[0],
                                  dst_offset: w[1], count: w[2], consecutive: b[0],
                                  synchronous: b[1], source_servers: vec![&name, &addr] });
            let response = WriteResponse { callback_id: Some(d), count: w[0], committed: 1,
                                           verifier: v };
            let r = CopyResOk { response, requirements: CopyRequirements {
                consecutive: b[0], synchronous: b[1] } };
            prop_assert_eq!(r.to_bytes().len(), CopyResOk::MAX_LEN);
            roundtrip!(r);
            roundtrip!(CopyResOk { response: WriteResponse { callback_id: None, ..response },
                                   ..r });
            roundtrip!(OffloadArgs { stateid: s });
            roundtrip!(OffloadStatusResOk { count: w[1], complete: None });
            roundtrip!(OffloadStatusResOk { count: w[1],
                                            complete: Some(NfsStatus::from_code(st)) });
            roundtrip!(CbOffloadArgs { fh: &v, stateid: s, result: Ok(response) });
            roundtrip!(CbOffloadArgs { fh: &v, stateid: s,
                                       result: Err((NfsStatus::from_code(st), w[2])) });
        }
    }
}
