//! fattr4 decoding: SETATTR / CREATE / OPEN createattrs, and VERIFY / NVERIFY.

use crate::consts::{NfsStatus, status};
use ringnfs_fs::types::{SetAttrs, SetTime, Timespec};
use ringnfs_proto::nfs4::ops::Fattr4;
use ringnfs_proto::xdr::{XdrDecoder, XdrError};

use super::{
    AttrSource, SET_TO_CLIENT_TIME4, SET_TO_SERVER_TIME4, SETTABLE_BITMAP, SUPPORTED_BITMAP, WORDS,
    WRITE_ONLY_BITMAP, answerable, attr, encode::encode_values,
};

fn bad(_: XdrError) -> NfsStatus {
    status::NFS4ERR_BADXDR
}

/// The bitmap of a decoded fattr4 as exactly [`WORDS`] words, refusing attributes we
/// do not support (NFS4ERR_ATTRNOTSUPP).
fn supported_mask(f: &Fattr4<'_>) -> Result<[u32; WORDS], NfsStatus> {
    if f.mask.iter().skip(WORDS).any(|w| *w != 0) {
        return Err(status::NFS4ERR_ATTRNOTSUPP);
    }
    let mut mask = [0u32; WORDS];
    for (i, m) in mask.iter_mut().enumerate() {
        *m = f.mask.get(i).copied().unwrap_or(0);
        if *m & !SUPPORTED_BITMAP[i] != 0 {
            return Err(status::NFS4ERR_ATTRNOTSUPP);
        }
    }
    Ok(mask)
}

fn intersects(a: &[u32; WORDS], b: &[u32; WORDS]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

/// nfstime4 as a client sends it: nseconds ≥ 10^9 is NFS4ERR_INVAL.
fn decode_time(d: &mut XdrDecoder<'_>) -> Result<Timespec, NfsStatus> {
    let secs = d.i64().map_err(bad)?;
    let nsecs = d.u32().map_err(bad)?;
    if nsecs >= 1_000_000_000 {
        return Err(status::NFS4ERR_INVAL);
    }
    Ok(Timespec { secs, nsecs })
}

/// settime4.
fn decode_settime(d: &mut XdrDecoder<'_>) -> Result<SetTime, NfsStatus> {
    match d.u32().map_err(bad)? {
        SET_TO_SERVER_TIME4 => Ok(SetTime::ServerNow),
        SET_TO_CLIENT_TIME4 => Ok(SetTime::Client(decode_time(d)?)),
        _ => Err(status::NFS4ERR_BADXDR),
    }
}

/// A numeric owner/owner_group string; anything else is NFS4ERR_BADOWNER.
fn decode_id(d: &mut XdrDecoder<'_>) -> Result<u32, NfsStatus> {
    let s = d.opaque(d.remaining()).map_err(bad)?;
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return Err(status::NFS4ERR_BADOWNER);
    }
    let v = s.iter().fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    // u32::MAX is (uid_t)-1, "no change" to chown: not an owner.
    match u32::try_from(v) {
        Ok(id) if id != u32::MAX => Ok(id),
        _ => Err(status::NFS4ERR_BADOWNER),
    }
}

/// SETATTR / CREATE createattrs / OPEN createattrs: the values of a fattr4 (decoded by
/// proto, which checked its framing) as [`SetAttrs`]. Returns the bitmap of attributes
/// set (for attrsset). Errors: NFS4ERR_ATTRNOTSUPP for unsupported attributes,
/// NFS4ERR_INVAL for supported read-only ones, for mode > 07777 and for nseconds
/// ≥ 10^9, NFS4ERR_BADOWNER for non-numeric owners, NFS4ERR_BADXDR for values that do
/// not match the bitmap (including attr_vals longer than the attributes).
pub fn decode_settable(f: &Fattr4<'_>) -> Result<(SetAttrs, Vec<u32>), NfsStatus> {
    let mask = supported_mask(f)?;
    let vals = f.vals;
    if mask.iter().zip(SETTABLE_BITMAP).any(|(m, s)| m & !s != 0) {
        return Err(status::NFS4ERR_INVAL);
    }
    let mut v = XdrDecoder::new(vals);
    let mut sa = SetAttrs::default();
    // Attribute order: size(4) mode(33) owner(36) owner_group(37) time_access_set(48)
    // time_modify_set(54).
    if super::has(&mask, attr::SIZE) {
        sa.size = Some(v.u64().map_err(bad)?);
    }
    if super::has(&mask, attr::MODE) {
        let mode = v.u32().map_err(bad)?;
        if mode > 0o7777 {
            return Err(status::NFS4ERR_INVAL);
        }
        sa.mode = Some(mode);
    }
    if super::has(&mask, attr::OWNER) {
        sa.uid = Some(decode_id(&mut v)?);
    }
    if super::has(&mask, attr::OWNER_GROUP) {
        sa.gid = Some(decode_id(&mut v)?);
    }
    if super::has(&mask, attr::TIME_ACCESS_SET) {
        sa.atime = Some(decode_settime(&mut v)?);
    }
    if super::has(&mask, attr::TIME_MODIFY_SET) {
        sa.mtime = Some(decode_settime(&mut v)?);
    }
    if v.remaining() != 0 {
        return Err(status::NFS4ERR_BADXDR);
    }
    let len = mask.iter().rposition(|w| *w != 0).map_or(0, |i| i + 1);
    Ok((sa, mask[..len].to_vec()))
}

/// VERIFY/NVERIFY: compare the client's fattr4 with ours: Ok(true) if every given
/// attribute equals ours (byte for byte, as knfsd). Unsupported attribute
/// → NFS4ERR_ATTRNOTSUPP; rdattr_error or a set-only attribute → NFS4ERR_INVAL.
/// If the mask holds statfs attributes, `src.stats` must be Some (else
/// NFS4ERR_SERVERFAULT).
pub fn verify(f: &Fattr4<'_>, src: &AttrSource<'_>) -> Result<bool, NfsStatus> {
    let mask = supported_mask(f)?;
    let vals = f.vals;
    let mut invalid = WRITE_ONLY_BITMAP;
    invalid[0] |= 1 << attr::RDATTR_ERROR;
    if intersects(&mask, &invalid) {
        return Err(status::NFS4ERR_INVAL);
    }
    if answerable(&mask, src) != mask {
        return Err(status::NFS4ERR_SERVERFAULT);
    }
    let mut ours = Vec::with_capacity(vals.len());
    encode_values(&mut ours, &mask, src);
    Ok(ours == vals)
}
