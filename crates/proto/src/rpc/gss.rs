//! RPCSEC_GSS version 1 on the wire (RFC 2203 §5): the credential every call carries,
//! the context-creation arguments and results, the integrity and privacy bodies, and the
//! sequence window that turns away replayed calls (§5.3.3.1). No GSS-API here: tokens,
//! checksums and wrapped bodies are opaque bytes the mechanism (Kerberos) makes and
//! checks.

use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// The only version (RFC 2203 §5).
pub const RPCSEC_GSS_VERS_1: u32 = 1;
/// Sequence numbers at or above this end the context (§5.3.3.1).
pub const MAXSEQ: u32 = 0x8000_0000;
/// auth_stat values RFC 2203 §5.3.3.3 adds: the credential is bad (no such context),
/// or the context is (expired, sequence number past MAXSEQ).
pub const RPCSEC_GSS_CREDPROBLEM: u32 = 13;
pub const RPCSEC_GSS_CTXPROBLEM: u32 = 14;
/// A context handle is the server's: bounded so a client cannot make it allocate much.
pub const MAX_HANDLE: usize = 128;
/// GSS tokens (a Kerberos AP-REQ with a ticket runs to a few KiB).
pub const MAX_TOKEN: usize = 64 * 1024;

/// rpc_gss_proc_t.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GssProc {
    Data = 0,
    Init = 1,
    ContinueInit = 2,
    Destroy = 3,
}

/// rpc_gss_service_t: what protects a DATA call's arguments and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GssService {
    /// Authentication only (krb5).
    None = 1,
    /// A checksum over the sequence number and the body (krb5i).
    Integrity = 2,
    /// The sequence number and the body encrypted (krb5p).
    Privacy = 3,
}

/// The Kerberos V5 mechanism's OID (1.2.840.113554.1.2.2), as secinfo4 carries it (the
/// OID's content octets, as Linux and knfsd compare them).
pub const KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// The pseudo-flavors that name Kerberos with a service (IANA's RPC authentication
/// flavor numbers, the values of `sec=krb5`, `krb5i`, `krb5p` in exports and mounts).
pub const KRB5: u32 = 390003;
pub const KRB5I: u32 = 390004;
pub const KRB5P: u32 = 390005;

impl GssService {
    /// The service as an rpc_gss_service_t number.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The Kerberos pseudo-flavor with this service.
    pub fn krb5_flavor(self) -> u32 {
        match self {
            GssService::None => KRB5,
            GssService::Integrity => KRB5I,
            GssService::Privacy => KRB5P,
        }
    }

    /// The service a Kerberos pseudo-flavor names.
    pub fn of_krb5_flavor(flavor: u32) -> Option<GssService> {
        match flavor {
            KRB5 => Some(GssService::None),
            KRB5I => Some(GssService::Integrity),
            KRB5P => Some(GssService::Privacy),
            _ => None,
        }
    }
}

/// rpc_gss_cred_vers_1_t, the body of a call's RPCSEC_GSS credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssCred {
    pub proc_: GssProc,
    pub seq_num: u32,
    pub service: GssService,
    /// The context handle the server gave at creation (empty for INIT).
    pub handle: Vec<u8>,
}

impl GssCred {
    /// The credential body (after the flavor and length of opaque_auth).
    pub fn decode(body: &[u8]) -> Result<GssCred, XdrError> {
        let mut d = XdrDecoder::new(body);
        if d.u32()? != RPCSEC_GSS_VERS_1 {
            return Err(XdrError::BadValue);
        }
        let proc_ = match d.u32()? {
            0 => GssProc::Data,
            1 => GssProc::Init,
            2 => GssProc::ContinueInit,
            3 => GssProc::Destroy,
            _ => return Err(XdrError::BadValue),
        };
        let seq_num = d.u32()?;
        let service = match d.u32()? {
            1 => GssService::None,
            2 => GssService::Integrity,
            3 => GssService::Privacy,
            _ => return Err(XdrError::BadValue),
        };
        let handle = d.opaque(MAX_HANDLE)?.to_vec();
        if d.remaining() != 0 {
            return Err(XdrError::BadValue);
        }
        Ok(GssCred {
            proc_,
            seq_num,
            service,
            handle,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(RPCSEC_GSS_VERS_1);
        out.put_u32(self.proc_ as u32);
        out.put_u32(self.seq_num);
        out.put_u32(self.service as u32);
        out.put_opaque(&self.handle);
    }
}

/// rpc_gss_init_res: the answer to INIT and CONTINUE_INIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssInitRes {
    pub handle: Vec<u8>,
    pub major: u32,
    pub minor: u32,
    pub seq_window: u32,
    pub token: Vec<u8>,
}

impl GssInitRes {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(&self.handle);
        out.put_u32(self.major);
        out.put_u32(self.minor);
        out.put_u32(self.seq_window);
        out.put_opaque(&self.token);
    }

    pub fn decode(b: &[u8]) -> Result<GssInitRes, XdrError> {
        let mut d = XdrDecoder::new(b);
        Ok(GssInitRes {
            handle: d.opaque(MAX_HANDLE)?.to_vec(),
            major: d.u32()?,
            minor: d.u32()?,
            seq_window: d.u32()?,
            token: d.opaque(MAX_TOKEN)?.to_vec(),
        })
    }
}

/// rpc_gss_init_arg: the client's token (the procedure's arguments of INIT and
/// CONTINUE_INIT).
pub fn decode_init_arg(b: &[u8]) -> Result<&[u8], XdrError> {
    let mut d = XdrDecoder::new(b);
    let token = d.opaque(MAX_TOKEN)?;
    if d.remaining() != 0 {
        return Err(XdrError::BadValue);
    }
    Ok(token)
}

/// rpc_gss_integ_data: `databody_integ` (the sequence number, then the procedure's
/// arguments or results) and the checksum over it. Borrowed from the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegData<'a> {
    pub body: &'a [u8],
    pub checksum: &'a [u8],
}

impl<'a> IntegData<'a> {
    pub fn decode(b: &'a [u8], max: usize) -> Result<IntegData<'a>, XdrError> {
        let mut d = XdrDecoder::new(b);
        Ok(IntegData {
            body: d.opaque(max)?,
            checksum: d.opaque(MAX_TOKEN)?,
        })
    }

    pub fn encode(body: &[u8], checksum: &[u8], out: &mut Vec<u8>) {
        out.put_opaque(body);
        out.put_opaque(checksum);
    }
}

/// The sequence number at the front of a `databody_integ` or an unwrapped
/// `databody_priv`, and what follows it; the number must be the credential's
/// (RFC 2203 §5.3.2.2), else the body is not the one the credential was made for.
pub fn split_seq(body: &[u8], want: u32) -> Result<&[u8], XdrError> {
    let mut d = XdrDecoder::new(body);
    if d.u32()? != want {
        return Err(XdrError::BadValue);
    }
    Ok(d.rest())
}

/// What the sequence window says of a DATA call's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// New: process it.
    Fresh,
    /// Seen already, or below the window: drop it silently (§5.3.3.1).
    Drop,
    /// At or above MAXSEQ: the context is finished (RPCSEC_GSS_CTXPROBLEM).
    Exhausted,
}

/// The server's replay window of one context: the highest sequence number seen and
/// which of the `size` numbers up to it have been seen (RFC 2203 §5.3.3.1).
#[derive(Debug, Clone)]
pub struct SeqWindow {
    size: u32,
    highest: Option<u32>,
    /// Bit i: `highest - i` was seen.
    seen: Vec<u64>,
}

impl SeqWindow {
    /// A window of `size` numbers (at least 1, at most 4096).
    pub fn new(size: u32) -> SeqWindow {
        let size = size.clamp(1, 4096);
        SeqWindow {
            size,
            highest: None,
            seen: vec![0; size.div_ceil(64) as usize],
        }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    fn bit(&self, back: u32) -> bool {
        self.seen[(back / 64) as usize] & (1 << (back % 64)) != 0
    }

    fn set(&mut self, back: u32) {
        self.seen[(back / 64) as usize] |= 1 << (back % 64);
    }

    /// Slide the window up by `by` numbers.
    fn shift(&mut self, by: u32) {
        if by >= self.size {
            self.seen.iter_mut().for_each(|w| *w = 0);
            return;
        }
        for back in (0..self.size).rev() {
            let was = back >= by && self.bit(back - by);
            let w = &mut self.seen[(back / 64) as usize];
            if was {
                *w |= 1 << (back % 64);
            } else {
                *w &= !(1 << (back % 64));
            }
        }
    }

    /// Check `seq` and, when fresh, mark it seen.
    pub fn check(&mut self, seq: u32) -> SeqCheck {
        if seq >= MAXSEQ {
            return SeqCheck::Exhausted;
        }
        match self.highest {
            None => {
                self.highest = Some(seq);
                self.set(0);
                SeqCheck::Fresh
            }
            Some(h) if seq > h => {
                self.shift(seq - h);
                self.highest = Some(seq);
                self.set(0);
                SeqCheck::Fresh
            }
            Some(h) => {
                let back = h - seq;
                if back >= self.size || self.bit(back) {
                    SeqCheck::Drop
                } else {
                    self.set(back);
                    SeqCheck::Fresh
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_round_trip_and_refusals() {
        let c = GssCred {
            proc_: GssProc::Data,
            seq_num: 7,
            service: GssService::Integrity,
            handle: vec![1, 2, 3],
        };
        let mut b = Vec::new();
        c.encode(&mut b);
        assert_eq!(GssCred::decode(&b).unwrap(), c);
        let mut v2 = b.clone();
        v2[3] = 2;
        assert!(GssCred::decode(&v2).is_err(), "version 2");
        let mut bad_proc = b.clone();
        bad_proc[7] = 9;
        assert!(GssCred::decode(&bad_proc).is_err());
        let mut bad_service = b.clone();
        bad_service[15] = 4;
        assert!(GssCred::decode(&bad_service).is_err());
        let mut trailing = b.clone();
        trailing.extend_from_slice(&[0; 4]);
        assert!(GssCred::decode(&trailing).is_err());
        assert!(GssCred::decode(&b[..10]).is_err());
    }

    #[test]
    fn init_res_and_integ_data() {
        let r = GssInitRes {
            handle: b"ctx1".to_vec(),
            major: 0,
            minor: 0,
            seq_window: 128,
            token: vec![9; 5],
        };
        let mut b = Vec::new();
        r.encode(&mut b);
        assert_eq!(GssInitRes::decode(&b).unwrap(), r);
        let mut arg = Vec::new();
        arg.put_opaque(b"token");
        assert_eq!(decode_init_arg(&arg).unwrap(), b"token");
        let mut body = Vec::new();
        body.put_u32(42);
        body.extend_from_slice(b"args");
        let mut i = Vec::new();
        IntegData::encode(&body, b"mic", &mut i);
        let d = IntegData::decode(&i, 1 << 20).unwrap();
        assert_eq!((d.body, d.checksum), (&body[..], &b"mic"[..]));
        assert_eq!(split_seq(d.body, 42).unwrap(), b"args");
        assert!(split_seq(d.body, 43).is_err(), "another call's body");
    }

    #[test]
    fn the_window_drops_replays_and_old_numbers() {
        let mut w = SeqWindow::new(4);
        assert_eq!(w.check(10), SeqCheck::Fresh);
        assert_eq!(w.check(10), SeqCheck::Drop, "replay");
        assert_eq!(w.check(8), SeqCheck::Fresh, "late, in the window");
        assert_eq!(w.check(8), SeqCheck::Drop);
        assert_eq!(w.check(6), SeqCheck::Drop, "below the window");
        assert_eq!(w.check(12), SeqCheck::Fresh);
        assert_eq!(w.check(10), SeqCheck::Drop, "still seen after the slide");
        assert_eq!(w.check(9), SeqCheck::Fresh);
        assert_eq!(w.check(8), SeqCheck::Drop, "slid out of the window");
        assert_eq!(w.check(100), SeqCheck::Fresh, "a jump clears the window");
        assert_eq!(w.check(97), SeqCheck::Fresh);
        assert_eq!(w.check(MAXSEQ), SeqCheck::Exhausted);
        let mut big = SeqWindow::new(200);
        for s in 0..300 {
            assert_eq!(big.check(s), SeqCheck::Fresh);
        }
        assert_eq!(big.check(150), SeqCheck::Drop);
        assert_eq!(big.check(99), SeqCheck::Drop);
    }
}
