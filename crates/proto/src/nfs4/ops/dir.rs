//! The namespace (RFC 8881 §18.4, §18.9, §18.23–§18.26, §18.29, §18.45): CREATE,
//! LINK, READDIR, READLINK, REMOVE, RENAME, SECINFO and SECINFO_NO_NAME.

use super::common::{ChangeInfo, Fattr4, NameArgs, decode_borrowed, decode_component};
use super::{MAX_ARRAY, Xdr};
use crate::nfs4::consts::{NFS4_OPAQUE_LIMIT, NFS4_VERIFIER_SIZE};
use crate::nfs4::types::{decode_bitmap, encode_bitmap};
use crate::rpc::auth::RPCSEC_GSS;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

pub use crate::nfs4::consts::ftype4;
use ftype4::*;

// ---- CREATE -----------------------------------------------------------------------------

/// specdata4: a device's major and minor numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecData {
    pub specdata1: u32,
    pub specdata2: u32,
}

/// createtype4: the type of object CREATE makes, with its type-specific data.
///
/// The union's `default` arm is void, so any other nfs_ftype4 — NF4REG (OPEN's job),
/// NF4ATTRDIR, NF4NAMEDATTR, a value RFC 8881 does not define — decodes as [`Other`]
/// and the handler answers NFS4ERR_BADTYPE. The handler must also refuse an empty
/// linkdata (NFS4ERR_INVAL) and one longer than it can store (the server today:
/// NFS4ERR_BADXDR past 4096 bytes).
///
/// [`Other`]: CreateType::Other
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateType<'a> {
    /// NF4LNK: linktext4 linkdata (bounded by the buffer only).
    Link(&'a [u8]),
    Block(SpecData),
    Char(SpecData),
    Socket,
    Fifo,
    Dir,
    /// Any type with no arm of its own: encoding `Other` of a type that has one
    /// (NF4LNK, ...) writes bytes that decode as that arm instead.
    Other(u32),
}

impl CreateType<'_> {
    /// The nfs_ftype4 discriminant.
    pub fn ftype(&self) -> u32 {
        match self {
            CreateType::Link(_) => NF4LNK,
            CreateType::Block(_) => NF4BLK,
            CreateType::Char(_) => NF4CHR,
            CreateType::Socket => NF4SOCK,
            CreateType::Fifo => NF4FIFO,
            CreateType::Dir => NF4DIR,
            CreateType::Other(t) => *t,
        }
    }
}

impl<'a> Xdr<'a> for CreateType<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let spec = |d: &mut XdrDecoder<'a>| -> Result<SpecData, XdrError> {
            Ok(SpecData {
                specdata1: d.u32()?,
                specdata2: d.u32()?,
            })
        };
        Ok(match d.u32()? {
            NF4LNK => CreateType::Link(decode_borrowed(d)?),
            NF4BLK => CreateType::Block(spec(d)?),
            NF4CHR => CreateType::Char(spec(d)?),
            NF4SOCK => CreateType::Socket,
            NF4FIFO => CreateType::Fifo,
            NF4DIR => CreateType::Dir,
            other => CreateType::Other(other),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.ftype());
        match self {
            CreateType::Link(data) => out.put_opaque(data),
            CreateType::Block(s) | CreateType::Char(s) => {
                out.put_u32(s.specdata1);
                out.put_u32(s.specdata2);
            }
            CreateType::Socket | CreateType::Fifo | CreateType::Dir | CreateType::Other(_) => {}
        }
    }
}

/// CREATE4args. The handler must still check the type (see [`CreateType`]), the name
/// (see [`decode_component`]) and createattrs (see [`Fattr4`], as SETATTR's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateArgs<'a> {
    pub objtype: CreateType<'a>,
    pub objname: &'a [u8],
    pub createattrs: Fattr4<'a>,
}

impl<'a> Xdr<'a> for CreateArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(CreateArgs {
            objtype: CreateType::decode(d)?,
            objname: decode_component(d)?,
            createattrs: Fattr4::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.objtype.encode(out);
        out.put_opaque(self.objname);
        self.createattrs.encode(out);
    }
}

/// CREATE4resok.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateResOk {
    pub cinfo: ChangeInfo,
    pub attrset: Vec<u32>,
}

impl Xdr<'_> for CreateResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CreateResOk {
            cinfo: ChangeInfo::decode(d)?,
            attrset: decode_bitmap(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.cinfo.encode(out);
        encode_bitmap(out, &self.attrset);
    }
}

// ---- REMOVE, RENAME, LINK ---------------------------------------------------------------

/// REMOVE4args: component4 target.
pub type RemoveArgs<'a> = NameArgs<'a>;
/// LINK4args: component4 newname (the saved filehandle gets it in the current one).
pub type LinkArgs<'a> = NameArgs<'a>;
/// SECINFO4args: component4 name.
pub type SecinfoArgs<'a> = NameArgs<'a>;

/// One change_info4 result: REMOVE4resok, LINK4resok.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CinfoResOk {
    pub cinfo: ChangeInfo,
}

impl Xdr<'_> for CinfoResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CinfoResOk {
            cinfo: ChangeInfo::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.cinfo.encode(out);
    }
}

/// REMOVE4resok.
pub type RemoveResOk = CinfoResOk;
/// LINK4resok.
pub type LinkResOk = CinfoResOk;

/// RENAME4args: `oldname` in the saved filehandle's directory becomes `newname` in
/// the current one. The handler checks both names (see [`decode_component`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenameArgs<'a> {
    pub oldname: &'a [u8],
    pub newname: &'a [u8],
}

impl<'a> Xdr<'a> for RenameArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(RenameArgs {
            oldname: decode_component(d)?,
            newname: decode_component(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(self.oldname);
        out.put_opaque(self.newname);
    }
}

/// RENAME4resok.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenameResOk {
    pub source_cinfo: ChangeInfo,
    pub target_cinfo: ChangeInfo,
}

impl Xdr<'_> for RenameResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(RenameResOk {
            source_cinfo: ChangeInfo::decode(d)?,
            target_cinfo: ChangeInfo::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.source_cinfo.encode(out);
        self.target_cinfo.encode(out);
    }
}

// ---- READLINK ---------------------------------------------------------------------------

/// READLINK4resok: linktext4 link (bounded by the buffer only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadlinkResOk<'a> {
    pub link: &'a [u8],
}

impl<'a> Xdr<'a> for ReadlinkResOk<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(ReadlinkResOk {
            link: decode_borrowed(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(self.link);
    }
}

// ---- READDIR ----------------------------------------------------------------------------

/// READDIR4args.
///
/// The handler must still check: set-only attributes requested (NFS4ERR_INVAL), the
/// reserved cookies 1 and 2 (NFS4ERR_BAD_COOKIE), a cookie verifier that is not its
/// own (NFS4ERR_NOT_SAME), and fit the reply into `maxcount` and the session's reply
/// size (NFS4ERR_TOOSMALL when not one entry fits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaddirArgs {
    pub cookie: u64,
    pub cookieverf: [u8; NFS4_VERIFIER_SIZE],
    pub dircount: u32,
    pub maxcount: u32,
    pub attr_request: Vec<u32>,
}

impl Xdr<'_> for ReaddirArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(ReaddirArgs {
            cookie: d.u64()?,
            cookieverf: d.array()?,
            dircount: d.u32()?,
            maxcount: d.u32()?,
            attr_request: decode_bitmap(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.cookie);
        out.put_fixed(&self.cookieverf);
        out.put_u32(self.dircount);
        out.put_u32(self.maxcount);
        encode_bitmap(out, &self.attr_request);
    }
}

/// entry4 without its link: cookie, name, attrs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaddirEntry<'a> {
    pub cookie: u64,
    pub name: &'a [u8],
    pub attrs: Fattr4<'a>,
}

impl ReaddirEntry<'_> {
    /// One link of dirlist4's list: value_follows (TRUE), then the entry. A reply
    /// built one entry at a time writes these, then [`ReaddirResOk::encode_end`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        Self::encode_head(out, self.cookie, self.name);
        self.attrs.encode(out);
    }

    /// The link of an entry whose attributes are written next, in place (see
    /// [`Fattr4::encode_head`]): value_follows (TRUE), the cookie and the name.
    pub fn encode_head(out: &mut Vec<u8>, cookie: u64, name: &[u8]) {
        out.put_bool(true);
        out.put_u64(cookie);
        out.put_opaque(name);
    }
}

/// READDIR4resok: cookieverf, then dirlist4 (entries linked by value_follows
/// booleans, then eof).
///
/// The list has no count: each entry takes at least 24 bytes of input, so the buffer
/// bounds how many decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaddirResOk<'a> {
    pub cookieverf: [u8; NFS4_VERIFIER_SIZE],
    pub entries: Vec<ReaddirEntry<'a>>,
    pub eof: bool,
}

impl ReaddirResOk<'_> {
    /// Bytes of the resok around its entries: the cookie verifier before them, the
    /// last value_follows (FALSE) and eof after them.
    pub const FRAME_LEN: usize = NFS4_VERIFIER_SIZE + 4 + 4;

    /// The start of a READDIR4resok built one entry at a time: the cookie verifier.
    /// Then each entry ([`ReaddirEntry::encode`] or [`ReaddirEntry::encode_head`]),
    /// then [`ReaddirResOk::encode_end`].
    pub fn encode_head(out: &mut Vec<u8>, cookieverf: &[u8; NFS4_VERIFIER_SIZE]) {
        out.put_fixed(cookieverf);
    }

    /// The end of dirlist4 after the last entry: value_follows (FALSE), eof.
    pub fn encode_end(out: &mut Vec<u8>, eof: bool) {
        out.put_bool(false);
        out.put_bool(eof);
    }
}

impl<'a> Xdr<'a> for ReaddirResOk<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let cookieverf = d.array()?;
        let mut entries = Vec::new();
        while d.bool()? {
            entries.push(ReaddirEntry {
                cookie: d.u64()?,
                name: decode_component(d)?,
                attrs: Fattr4::decode(d)?,
            });
        }
        Ok(ReaddirResOk {
            cookieverf,
            entries,
            eof: d.bool()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        Self::encode_head(out, &self.cookieverf);
        for e in &self.entries {
            e.encode(out);
        }
        Self::encode_end(out, self.eof);
    }
}

// ---- SECINFO, SECINFO_NO_NAME -----------------------------------------------------------

/// SECINFO_NO_NAME4args: secinfo_style4, raw. An undefined value (not
/// SECINFO_STYLE4_CURRENT_FH = 0 or SECINFO_STYLE4_PARENT = 1) is the handler's
/// NFS4ERR_INVAL, not a decoding error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecinfoNoNameArgs {
    pub style: u32,
}

impl Xdr<'_> for SecinfoNoNameArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(SecinfoNoNameArgs { style: d.u32()? })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.style);
    }
}

/// secinfo4: a security flavor, with rpcsec_gss_info for RPCSEC_GSS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secinfo<'a> {
    /// RPCSEC_GSS: sec_oid4 oid (at most NFS4_OPAQUE_LIMIT bytes), qop4 qop,
    /// rpc_gss_svc_t service (raw).
    Gss {
        oid: &'a [u8],
        qop: u32,
        service: u32,
    },
    /// Any other flavor (AUTH_NONE, AUTH_SYS, ...): no data. `Flavor(RPCSEC_GSS)`
    /// encodes bytes that decode as `Gss` instead.
    Flavor(u32),
}

impl Secinfo<'_> {
    pub fn flavor(&self) -> u32 {
        match self {
            Secinfo::Gss { .. } => RPCSEC_GSS,
            Secinfo::Flavor(f) => *f,
        }
    }
}

impl<'a> Xdr<'a> for Secinfo<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(match d.u32()? {
            RPCSEC_GSS => Secinfo::Gss {
                oid: d.opaque(NFS4_OPAQUE_LIMIT)?,
                qop: d.u32()?,
                service: d.u32()?,
            },
            f => Secinfo::Flavor(f),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.flavor());
        if let Secinfo::Gss { oid, qop, service } = self {
            out.put_opaque(oid);
            out.put_u32(*qop);
            out.put_u32(*service);
        }
    }
}

/// SECINFO4resok: secinfo4<> (at most `MAX_ARRAY` flavors).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecinfoResOk<'a> {
    pub flavors: Vec<Secinfo<'a>>,
}

impl<'a> Xdr<'a> for SecinfoResOk<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let n = d.array_len(MAX_ARRAY, 4)?;
        Ok(SecinfoResOk {
            flavors: (0..n)
                .map(|_| Secinfo::decode(d))
                .collect::<Result<_, _>>()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        Self::encode_list(out, &self.flavors);
    }
}

impl SecinfoResOk<'_> {
    /// The resok of `flavors`, without building one (a server's fixed list).
    pub fn encode_list(out: &mut Vec<u8>, flavors: &[Secinfo<'_>]) {
        out.put_u32(flavors.len() as u32);
        for f in flavors {
            f.encode(out);
        }
    }
}

/// SECINFO_NO_NAME4resok: the same as SECINFO's.
pub type SecinfoNoNameResOk<'a> = SecinfoResOk<'a>;

#[cfg(test)]
mod tests {
    use super::super::common::tests::bitmap;
    use super::super::roundtrip;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn cinfo() -> impl Strategy<Value = ChangeInfo> {
        any::<(bool, u64, u64)>().prop_map(|(atomic, before, after)| ChangeInfo {
            atomic,
            before,
            after,
        })
    }

    /// A type with no arm of its own.
    fn other_type() -> impl Strategy<Value = u32> {
        any::<u32>().prop_filter("has an arm", |t| !(NF4DIR..=NF4FIFO).contains(t))
    }

    proptest! {
        #[test]
        fn create_round_trips(kind in 0u8..7, data in vec(any::<u8>(), 0..300),
                              w in any::<[u32; 2]>(), other in other_type(),
                              name in vec(any::<u8>(), 0..300), mask in bitmap(),
                              c in cinfo()) {
            let spec = SpecData { specdata1: w[0], specdata2: w[1] };
            let objtype = match kind {
                0 => CreateType::Link(&data),
                1 => CreateType::Block(spec),
                2 => CreateType::Char(spec),
                3 => CreateType::Socket,
                4 => CreateType::Fifo,
                5 => CreateType::Dir,
                _ => CreateType::Other(other),
            };
            roundtrip!(objtype);
            roundtrip!(CreateArgs { objtype, objname: &name,
                createattrs: Fattr4 { mask: mask.clone(), vals: &data } });
            roundtrip!(CreateResOk { cinfo: c, attrset: mask });
        }

        #[test]
        fn names_and_change_info_round_trip(a in vec(any::<u8>(), 0..300),
                                            b in vec(any::<u8>(), 0..300),
                                            c1 in cinfo(), c2 in cinfo()) {
            roundtrip!(RemoveArgs { name: &a });
            roundtrip!(LinkArgs { name: &b });
            roundtrip!(SecinfoArgs { name: &a });
            roundtrip!(RenameArgs { oldname: &a, newname: &b });
            roundtrip!(RemoveResOk { cinfo: c1 });
            roundtrip!(LinkResOk { cinfo: c2 });
            roundtrip!(RenameResOk { source_cinfo: c1, target_cinfo: c2 });
            roundtrip!(ReadlinkResOk { link: &b });
            prop_assert_eq!(RenameResOk { source_cinfo: c1, target_cinfo: c2 }.to_bytes().len(),
                2 * ChangeInfo::LEN);
        }

        #[test]
        fn readdir_round_trips(cookie in any::<u64>(), verf in any::<[u8; 8]>(),
                               w in any::<[u32; 2]>(), mask in bitmap(), eof in any::<bool>(),
                               names in vec(vec(any::<u8>(), 0..40), 0..8),
                               vals in vec(any::<u8>(), 0..40)) {
            roundtrip!(ReaddirArgs { cookie, cookieverf: verf, dircount: w[0], maxcount: w[1],
                attr_request: mask.clone() });
            let entries = names.iter().enumerate().map(|(i, n)| ReaddirEntry {
                cookie: cookie.wrapping_add(i as u64),
                name: n,
                attrs: Fattr4 { mask: mask.clone(), vals: &vals[..i.min(vals.len())] },
            }).collect();
            roundtrip!(ReaddirResOk { cookieverf: verf, entries, eof });
        }

        #[test]
        fn secinfo_round_trips(style in any::<u32>(), kinds in vec(any::<bool>(), 0..6),
                               oid in vec(any::<u8>(), 0..20), w in any::<[u32; 2]>(),
                               flavor in any::<u32>().prop_filter("gss", |f| *f != RPCSEC_GSS)) {
            roundtrip!(SecinfoNoNameArgs { style });
            let flavors = kinds.iter().map(|gss| if *gss {
                Secinfo::Gss { oid: &oid, qop: w[0], service: w[1] }
            } else {
                Secinfo::Flavor(flavor)
            }).collect();
            roundtrip!(SecinfoNoNameResOk { flavors });
        }
    }

    #[test]
    fn undefined_create_types_decode_for_the_handler() {
        // NF4REG and an undefined type: the default arm is void, the name and
        // createattrs follow, and the handler answers NFS4ERR_BADTYPE.
        for t in [NF4REG, NF4NAMEDATTR, 0, 99] {
            let mut b = Vec::new();
            b.put_u32(t);
            b.put_opaque(b"n");
            encode_bitmap(&mut b, &[]);
            b.put_opaque(&[]);
            let a = CreateArgs::from_bytes(&b).unwrap();
            assert_eq!((a.objtype, a.objname), (CreateType::Other(t), &b"n"[..]));
        }
        // An empty link target decodes too (the handler's NFS4ERR_INVAL).
        let a = CreateType::from_bytes(&[0, 0, 0, 5, 0, 0, 0, 0]).unwrap();
        assert_eq!(a, CreateType::Link(b""));
        // A device without its numbers does not.
        assert!(CreateType::from_bytes(&[0, 0, 0, 3, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn a_dirlist_built_in_place_is_the_resok() {
        let e = ReaddirEntry {
            cookie: 9,
            name: b"name",
            attrs: Fattr4 {
                mask: vec![1 << 1, 1],
                vals: &[0, 0, 0, 1, 0, 0, 0, 2],
            },
        };
        let whole = ReaddirResOk {
            cookieverf: *b"verifier",
            entries: vec![e.clone(), e.clone()],
            eof: true,
        }
        .to_bytes();
        let mut out = Vec::new();
        ReaddirResOk::encode_head(&mut out, b"verifier");
        e.encode(&mut out);
        ReaddirEntry::encode_head(&mut out, e.cookie, e.name);
        let at = Fattr4::encode_head(&mut out, &e.attrs.mask);
        out.extend_from_slice(e.attrs.vals);
        Fattr4::finish_head(&mut out, at);
        ReaddirResOk::encode_end(&mut out, true);
        assert_eq!(out, whole);
        let empty = ReaddirResOk {
            cookieverf: [0; 8],
            entries: vec![],
            eof: false,
        };
        assert_eq!(empty.to_bytes().len(), ReaddirResOk::FRAME_LEN);
    }

    #[test]
    fn dirlist_walks_and_stops() {
        let e = ReaddirEntry {
            cookie: 3,
            name: b"a",
            attrs: Fattr4 {
                mask: vec![1 << 1],
                vals: &[0, 0, 0, 2],
            },
        };
        let mut b = Vec::new();
        b.put_fixed(b"cookieve");
        e.encode(&mut b);
        ReaddirResOk::encode_end(&mut b, true);
        let r = ReaddirResOk::from_bytes(&b).unwrap();
        assert_eq!((r.entries, r.eof), (vec![e], true));
        // A value_follows that is not a bool, or a list cut short, does not decode.
        let mut bad = b.clone();
        bad[8..12].copy_from_slice(&2u32.to_be_bytes());
        assert!(ReaddirResOk::from_bytes(&bad).is_err());
        assert!(ReaddirResOk::from_bytes(&b[..b.len() - 4]).is_err());
    }
}
