//! COMPOUND replies: splitting the result array and typed decoders for the results the
//! client understands (RFC 8881 §18).

use super::error::ClientError;
use super::ops::{ImplId, Stateid, Verifier, wire};
use ringnfs_proto::nfs4::consts::{NFS4_FHSIZE, NFS4_OPAQUE_LIMIT, NfsStatus, op, sp4, status};
use ringnfs_proto::nfs4::ops::Xdr;
use ringnfs_proto::nfs4::types::decode_bitmap;
use ringnfs_proto::xdr::{XdrDecoder, XdrError};
pub use wire::ChangeInfo;

/// Upper bound on array lengths accepted from a reply (bitmaps, handle lists, ...).
const MAX_ARRAY: usize = 1024;

/// One entry of resarray.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpResult {
    pub opnum: u32,
    pub status: NfsStatus,
    /// The bytes after the status: the resok for a success; for a failure (always the
    /// last result) whatever the server put after the status. For a successful operation
    /// whose result layout this client does not know, the rest of the reply.
    pub body: Vec<u8>,
}

/// COMPOUND4res.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompoundReply {
    pub status: NfsStatus,
    pub tag: Vec<u8>,
    pub results: Vec<OpResult>,
}

impl CompoundReply {
    /// Decode COMPOUND4res. Splitting stops at the first failed result (the server stops
    /// there too) or at a successful result of an operation whose layout is unknown.
    pub fn decode(buf: &[u8]) -> Result<Self, ClientError> {
        let mut d = XdrDecoder::new(buf);
        let status = NfsStatus::from_code(d.u32()?);
        let tag = d.opaque(NFS4_OPAQUE_LIMIT)?.to_vec();
        let n = d.array_len(MAX_ARRAY, 8)?;
        let mut results = Vec::with_capacity(n);
        for _ in 0..n {
            let opnum = d.u32()?;
            let st = NfsStatus::from_code(d.u32()?);
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
                ringnfs_proto::nfs4::consts::op_name(opnum)
            ))),
        }
    }

    /// Status of the leading SEQUENCE, if the reply has one.
    pub fn sequence_status(&self) -> Option<NfsStatus> {
        self.results
            .first()
            .filter(|r| r.opnum == op::SEQUENCE)
            .map(|r| r.status)
    }

    pub fn sequence(&self) -> Result<wire::SequenceResOk, ClientError> {
        Ok(wire::SequenceResOk::from_bytes(
            self.ok_body(op::SEQUENCE)?,
        )?)
    }
    pub fn exchange_id(&self) -> Result<ExchangeIdRes, ClientError> {
        ExchangeIdRes::decode(self.ok_body(op::EXCHANGE_ID)?)
    }
    pub fn create_session(&self) -> Result<wire::CreateSessionResOk, ClientError> {
        Ok(wire::CreateSessionResOk::from_bytes(
            self.ok_body(op::CREATE_SESSION)?,
        )?)
    }
    pub fn bind_conn(&self) -> Result<wire::BindConnResOk, ClientError> {
        Ok(wire::BindConnResOk::from_bytes(
            self.ok_body(op::BIND_CONN_TO_SESSION)?,
        )?)
    }
    /// The file handle of the first GETFH.
    pub fn getfh(&self) -> Result<Vec<u8>, ClientError> {
        let r = wire::GetFhResOk::from_bytes(self.ok_body(op::GETFH)?)?;
        Ok(r.fh.to_vec())
    }
    /// The first GETATTR's fattr4: (attrmask, attr_vals).
    pub fn getattr(&self) -> Result<(Vec<u32>, Vec<u8>), ClientError> {
        let r = wire::GetAttrResOk::from_bytes(self.ok_body(op::GETATTR)?)?;
        Ok((r.attrs.mask, r.attrs.vals.to_vec()))
    }
}

/// Typed results of the file operations.
impl CompoundReply {
    /// The error of the first failed operation (the one the server stopped at), or Ok.
    pub fn check(&self) -> Result<(), ClientError> {
        if let Some(r) = self.results.iter().find(|r| r.status != status::NFS4_OK) {
            return Err(ClientError::Nfs {
                opnum: r.opnum,
                status: r.status,
            });
        }
        if self.status != status::NFS4_OK {
            return Err(ClientError::Nfs {
                opnum: self.results.last().map_or(0, |r| r.opnum),
                status: self.status,
            });
        }
        Ok(())
    }

    /// Status of the first result for `opnum` (None if the server never got to it).
    pub fn status_of(&self, opnum: u32) -> Option<NfsStatus> {
        self.result(opnum).map(|r| r.status)
    }

    /// The failed operation's (opnum, status), if any.
    pub fn failure(&self) -> Option<(u32, NfsStatus)> {
        self.results
            .iter()
            .find(|r| r.status != status::NFS4_OK)
            .map(|r| (r.opnum, r.status))
    }

    /// The first GETATTR decoded into [`FileAttrs`].
    pub fn attrs(&self) -> Result<FileAttrs, ClientError> {
        let (mask, vals) = self.getattr()?;
        Ok(FileAttrs::decode(&mask, &vals)?)
    }
    pub fn open(&self) -> Result<OpenRes, ClientError> {
        OpenRes::decode(self.ok_body(op::OPEN)?)
    }
    /// WANT_DELEGATION's open_delegation4.
    pub fn want_delegation(&self) -> Result<Delegation, ClientError> {
        let d = wire::OpenDelegation::from_bytes(self.ok_body(op::WANT_DELEGATION)?)?;
        Ok(Delegation::from_wire(d))
    }
    pub fn read(&self) -> Result<ReadRes, ClientError> {
        let r = wire::ReadResOk::from_bytes(self.ok_body(op::READ)?)?;
        Ok(ReadRes {
            eof: r.eof,
            data: r.data.to_vec(),
        })
    }
    pub fn write(&self) -> Result<WriteRes, ClientError> {
        let r = wire::WriteResOk::from_bytes(self.ok_body(op::WRITE)?)?;
        Ok(WriteRes {
            count: r.count,
            committed: r.committed,
            verifier: r.verifier,
        })
    }
    pub fn copy(&self) -> Result<wire::CopyResOk, ClientError> {
        Ok(wire::CopyResOk::from_bytes(self.ok_body(op::COPY)?)?)
    }
    pub fn offload_status(&self) -> Result<wire::OffloadStatusResOk, ClientError> {
        Ok(wire::OffloadStatusResOk::from_bytes(
            self.ok_body(op::OFFLOAD_STATUS)?,
        )?)
    }
    pub fn getxattr(&self) -> Result<Vec<u8>, ClientError> {
        Ok(
            wire::GetXattrResOk::from_bytes(self.ok_body(op::GETXATTR)?)?
                .value
                .to_vec(),
        )
    }
    pub fn setxattr(&self) -> Result<wire::ChangeInfo, ClientError> {
        Ok(wire::ChangeInfo::from_bytes(self.ok_body(op::SETXATTR)?)?)
    }
    pub fn removexattr(&self) -> Result<wire::ChangeInfo, ClientError> {
        Ok(wire::ChangeInfo::from_bytes(
            self.ok_body(op::REMOVEXATTR)?,
        )?)
    }
    /// LISTXATTRS4resok: (names, next cookie, eof).
    pub fn listxattrs(&self) -> Result<(Vec<Vec<u8>>, u64, bool), ClientError> {
        let r = wire::ListXattrsResOk::from_bytes(self.ok_body(op::LISTXATTRS)?)?;
        Ok((
            r.names.iter().map(|n| n.to_vec()).collect(),
            r.cookie,
            r.eof,
        ))
    }
    pub fn seek(&self) -> Result<wire::SeekResOk, ClientError> {
        Ok(wire::SeekResOk::from_bytes(self.ok_body(op::SEEK)?)?)
    }
    /// READ_PLUS4resok, its segments expanded: the bytes from the first segment's offset
    /// on (holes as zeros), checked to be adjacent and in order.
    pub fn read_plus(&self) -> Result<ReadPlusRes, ClientError> {
        let r = wire::ReadPlusResOk::from_bytes(self.ok_body(op::READ_PLUS)?)?;
        let mut res = ReadPlusRes {
            eof: r.eof,
            ..Default::default()
        };
        let mut at = None;
        for s in r.contents {
            let (offset, len) = match s {
                wire::ReadPlusSegment::Data { offset, data } => {
                    res.data.extend_from_slice(data);
                    res.data_segments += 1;
                    (offset, data.len() as u64)
                }
                wire::ReadPlusSegment::Hole { offset, length } => {
                    let len = usize::try_from(length).map_err(|_| {
                        ClientError::BadReply(format!("READ_PLUS hole of {length} bytes"))
                    })?;
                    res.data.resize(res.data.len() + len, 0);
                    res.hole_segments += 1;
                    (offset, length)
                }
            };
            match at {
                None => res.offset = offset,
                Some(expected) if expected != offset => {
                    return Err(ClientError::BadReply(format!(
                        "READ_PLUS segment at {offset}, expected {expected}"
                    )));
                }
                Some(_) => {}
            }
            at = Some(offset + len);
        }
        Ok(res)
    }
    pub fn commit(&self) -> Result<Verifier, ClientError> {
        Ok(wire::CommitResOk::from_bytes(self.ok_body(op::COMMIT)?)?.verifier)
    }
    pub fn readdir(&self) -> Result<ReaddirRes, ClientError> {
        ReaddirRes::decode(self.ok_body(op::READDIR)?)
    }
    pub fn readlink(&self) -> Result<Vec<u8>, ClientError> {
        let r = wire::ReadlinkResOk::from_bytes(self.ok_body(op::READLINK)?)?;
        Ok(r.link.to_vec())
    }
    /// ACCESS4resok: (supported, access).
    pub fn access(&self) -> Result<(u32, u32), ClientError> {
        let r = wire::AccessResOk::from_bytes(self.ok_body(op::ACCESS)?)?;
        Ok((r.supported, r.access))
    }
    /// CREATE4resok: (cinfo, attrset).
    pub fn create(&self) -> Result<(ChangeInfo, Vec<u32>), ClientError> {
        let r = wire::CreateResOk::from_bytes(self.ok_body(op::CREATE)?)?;
        Ok((r.cinfo, r.attrset))
    }
    pub fn remove(&self) -> Result<ChangeInfo, ClientError> {
        let r = wire::RemoveResOk::from_bytes(self.ok_body(op::REMOVE)?)?;
        Ok(r.cinfo)
    }
    pub fn link(&self) -> Result<ChangeInfo, ClientError> {
        let r = wire::LinkResOk::from_bytes(self.ok_body(op::LINK)?)?;
        Ok(r.cinfo)
    }
    /// RENAME4resok: (source_cinfo, target_cinfo).
    pub fn rename(&self) -> Result<(ChangeInfo, ChangeInfo), ClientError> {
        let r = wire::RenameResOk::from_bytes(self.ok_body(op::RENAME)?)?;
        Ok((r.source_cinfo, r.target_cinfo))
    }
    /// LOCK: the lock stateid, or LOCK4denied on NFS4ERR_DENIED (other errors as Err).
    pub fn lock(&self) -> Result<Result<Stateid, LockDenied>, ClientError> {
        self.stateid_or_denied(op::LOCK)
    }
    /// LOCKT: Ok(None) when no conflict, Ok(Some(denied)) on NFS4ERR_DENIED.
    pub fn lockt(&self) -> Result<Option<LockDenied>, ClientError> {
        match self.result(op::LOCKT) {
            Some(r) if r.status == status::NFS4_OK => Ok(None),
            Some(r) if r.status == status::NFS4ERR_DENIED => Ok(Some(LockDenied::decode(&r.body)?)),
            _ => self.ok_body(op::LOCKT).map(|_| None),
        }
    }
    fn stateid_or_denied(&self, opnum: u32) -> Result<Result<Stateid, LockDenied>, ClientError> {
        match self.result(opnum) {
            Some(r) if r.status == status::NFS4ERR_DENIED => Ok(Err(LockDenied::decode(&r.body)?)),
            _ => Ok(Ok(self.stateid_of(opnum)?)),
        }
    }
    /// The stateid a LOCK, LOCKU, CLOSE or OPEN_DOWNGRADE returned.
    pub fn stateid_of(&self, opnum: u32) -> Result<Stateid, ClientError> {
        let b = self.ok_body(opnum)?;
        Ok(match opnum {
            op::LOCK => wire::LockResOk::from_bytes(b)?.stateid,
            op::LOCKU => wire::LockuResOk::from_bytes(b)?.stateid,
            op::CLOSE => wire::CloseResOk::from_bytes(b)?.stateid,
            op::OPEN_DOWNGRADE => wire::OpenDowngradeResOk::from_bytes(b)?.stateid,
            _ => {
                return Err(ClientError::BadReply(format!(
                    "{} returns no stateid",
                    ringnfs_proto::nfs4::consts::op_name(opnum)
                )));
            }
        })
    }
    pub fn locku(&self) -> Result<Stateid, ClientError> {
        self.stateid_of(op::LOCKU)
    }
    pub fn close(&self) -> Result<Stateid, ClientError> {
        self.stateid_of(op::CLOSE)
    }
    pub fn open_downgrade(&self) -> Result<Stateid, ClientError> {
        self.stateid_of(op::OPEN_DOWNGRADE)
    }
    /// TEST_STATEID: one status per stateid tested.
    pub fn test_stateid(&self) -> Result<Vec<NfsStatus>, ClientError> {
        Ok(wire::TestStateidResOk::from_bytes(self.ok_body(op::TEST_STATEID)?)?.status_codes)
    }
    /// SETATTR's attrsset, present whatever the status: (status, attrsset).
    pub fn setattr(&self) -> Result<(NfsStatus, Vec<u32>), ClientError> {
        let r = match self.result(op::SETATTR) {
            Some(r) => r,
            None => {
                return self
                    .ok_body(op::SETATTR)
                    .map(|_| (status::NFS4_OK, Vec::new()));
            }
        };
        let mut d = XdrDecoder::new(&r.body);
        let res = wire::SetAttrRes::decode_body(r.status, &mut d)?;
        if d.remaining() != 0 {
            return Err(XdrError::BadValue.into());
        }
        Ok((res.status, res.attrsset))
    }
    /// SECINFO / SECINFO_NO_NAME: the flavors offered (RPCSEC_GSS details dropped).
    pub fn secinfo(&self, opnum: u32) -> Result<Vec<u32>, ClientError> {
        let r = wire::SecinfoResOk::from_bytes(self.ok_body(opnum)?)?;
        Ok(r.flavors.iter().map(wire::Secinfo::flavor).collect())
    }
}

/// LOCK4denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockDenied {
    pub offset: u64,
    pub length: u64,
    pub locktype: u32,
    pub clientid: u64,
    pub owner: Vec<u8>,
}

impl LockDenied {
    pub fn decode(b: &[u8]) -> Result<Self, ClientError> {
        Ok(Self::from_wire(wire::LockDenied::from_bytes(b)?))
    }

    fn from_wire(r: wire::LockDenied<'_>) -> Self {
        LockDenied {
            offset: r.offset,
            length: r.length,
            locktype: r.locktype,
            clientid: r.owner.clientid,
            owner: r.owner.owner.to_vec(),
        }
    }
}

/// open_delegation4 (the client never asks for delegations; decoded so replies walk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegation {
    None,
    Read {
        stateid: Stateid,
        recall: bool,
    },
    Write {
        stateid: Stateid,
        recall: bool,
    },
    /// OPEN_DELEGATE_NONE_EXT with why_no_delegation4 (and its bool when it has one).
    NoneExt {
        why: u32,
        flag: Option<bool>,
    },
}

impl Delegation {
    pub fn kind(&self) -> u32 {
        match self {
            Delegation::None => 0,
            Delegation::Read { .. } => 1,
            Delegation::Write { .. } => 2,
            Delegation::NoneExt { .. } => 3,
        }
    }

    fn from_wire(d: wire::OpenDelegation<'_>) -> Self {
        match d {
            wire::OpenDelegation::None => Delegation::None,
            wire::OpenDelegation::Read {
                stateid, recall, ..
            } => Delegation::Read { stateid, recall },
            wire::OpenDelegation::Write {
                stateid, recall, ..
            } => Delegation::Write { stateid, recall },
            wire::OpenDelegation::NoneExt(why) => Delegation::NoneExt {
                why: why.why(),
                flag: match why {
                    wire::WhyNoDelegation::Contention { will_push: b }
                    | wire::WhyNoDelegation::Resource { will_signal: b } => Some(b),
                    wire::WhyNoDelegation::Other(_) => None,
                },
            },
        }
    }
}

/// OPEN4resok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRes {
    pub stateid: Stateid,
    pub cinfo: ChangeInfo,
    pub rflags: u32,
    pub attrset: Vec<u32>,
    pub delegation: Delegation,
}

impl OpenRes {
    pub fn decode(b: &[u8]) -> Result<Self, ClientError> {
        let r = wire::OpenResOk::from_bytes(b)?;
        Ok(OpenRes {
            stateid: r.stateid,
            cinfo: r.cinfo,
            rflags: r.rflags,
            attrset: r.attrset,
            delegation: Delegation::from_wire(r.delegation),
        })
    }
}

/// READ4resok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRes {
    pub eof: bool,
    pub data: Vec<u8>,
}

/// READ_PLUS4resok expanded: the bytes from `offset` on that the segments stand for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPlusRes {
    pub eof: bool,
    pub offset: u64,
    pub data: Vec<u8>,
    pub data_segments: usize,
    pub hole_segments: usize,
}

/// WRITE4resok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRes {
    pub count: u32,
    pub committed: u32,
    pub verifier: Verifier,
}

/// One entry4 of READDIR: its fattr4 kept as raw bytes (bitmap4 + attrlist4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub cookie: u64,
    pub name: Vec<u8>,
    pub attrs: Vec<u8>,
}

impl DirEntry {
    pub fn decode_attrs(&self) -> Result<FileAttrs, ClientError> {
        let a = wire::Fattr4::from_bytes(&self.attrs)?;
        Ok(FileAttrs::decode(&a.mask, a.vals)?)
    }
}

/// READDIR4resok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaddirRes {
    pub cookieverf: Verifier,
    pub entries: Vec<DirEntry>,
    pub eof: bool,
}

impl ReaddirRes {
    pub fn decode(b: &[u8]) -> Result<Self, ClientError> {
        let r = wire::ReaddirResOk::from_bytes(b)?;
        Ok(ReaddirRes {
            cookieverf: r.cookieverf,
            entries: r
                .entries
                .into_iter()
                .map(|e| DirEntry {
                    cookie: e.cookie,
                    name: e.name.to_vec(),
                    attrs: e.attrs.to_bytes(),
                })
                .collect(),
            eof: r.eof,
        })
    }
}

/// nfstime4: (seconds, nseconds).
pub type NfsTime = (i64, u32);

/// The attributes of a GETATTR or READDIR fattr4 this client understands; the others
/// are skipped by their XDR size. None = not in the reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAttrs {
    /// The attribute bitmap the server answered.
    pub mask: Vec<u32>,
    pub ftype: Option<u32>,
    pub change: Option<u64>,
    pub size: Option<u64>,
    pub fsid: Option<(u64, u64)>,
    pub rdattr_error: Option<NfsStatus>,
    pub filehandle: Option<Vec<u8>>,
    pub fileid: Option<u64>,
    pub mode: Option<u32>,
    pub numlinks: Option<u32>,
    pub owner: Option<String>,
    pub owner_group: Option<String>,
    pub rawdev: Option<(u32, u32)>,
    pub space_used: Option<u64>,
    pub time_access: Option<NfsTime>,
    pub time_metadata: Option<NfsTime>,
    pub time_modify: Option<NfsTime>,
    pub mounted_on_fileid: Option<u64>,
}

impl FileAttrs {
    /// type, change, size, fileid, mode, numlinks, owner, owner_group, space_used,
    /// time_access, time_metadata, time_modify.
    pub const REQUEST: [u32; 2] = [
        1 << 1 | 1 << 3 | 1 << 4 | 1 << 20,
        1 << (33 - 32)
            | 1 << (35 - 32)
            | 1 << (36 - 32)
            | 1 << (37 - 32)
            | 1 << (45 - 32)
            | 1 << (47 - 32)
            | 1 << (52 - 32)
            | 1 << (53 - 32),
    ];

    /// Walk attr_vals for the attributes in `mask`, in increasing order.
    pub fn decode(mask: &[u32], vals: &[u8]) -> Result<Self, XdrError> {
        let mut a = FileAttrs {
            mask: mask.to_vec(),
            ..Default::default()
        };
        let mut d = XdrDecoder::new(vals);
        let time =
            |d: &mut XdrDecoder<'_>| -> Result<NfsTime, XdrError> { Ok((d.i64()?, d.u32()?)) };
        let string = |d: &mut XdrDecoder<'_>| -> Result<String, XdrError> {
            Ok(String::from_utf8_lossy(d.opaque(NFS4_OPAQUE_LIMIT)?).into_owned())
        };
        for (wi, &word) in mask.iter().enumerate() {
            let mut w = word;
            while w != 0 {
                let bit = w.trailing_zeros();
                w &= w - 1;
                match wi as u32 * 32 + bit {
                    0 | 75 => {
                        decode_bitmap(&mut d)?;
                    }
                    1 => a.ftype = Some(d.u32()?),
                    3 => a.change = Some(d.u64()?),
                    4 => a.size = Some(d.u64()?),
                    8 => a.fsid = Some((d.u64()?, d.u64()?)),
                    11 => a.rdattr_error = Some(NfsStatus::from_code(d.u32()?)),
                    19 => a.filehandle = Some(d.opaque(NFS4_FHSIZE)?.to_vec()),
                    20 => a.fileid = Some(d.u64()?),
                    33 => a.mode = Some(d.u32()?),
                    35 => a.numlinks = Some(d.u32()?),
                    36 => a.owner = Some(string(&mut d)?),
                    37 => a.owner_group = Some(string(&mut d)?),
                    41 => a.rawdev = Some((d.u32()?, d.u32()?)),
                    45 => a.space_used = Some(d.u64()?),
                    47 => a.time_access = Some(time(&mut d)?),
                    52 => a.time_metadata = Some(time(&mut d)?),
                    53 => a.time_modify = Some(time(&mut d)?),
                    55 => a.mounted_on_fileid = Some(d.u64()?),
                    // u32 / bool sized
                    2 | 5 | 6 | 7 | 9 | 10 | 13 | 14 | 15 | 16 | 17 | 18 | 25 | 26 | 28 | 29
                    | 34 | 46 => d.skip(4)?,
                    // u64 sized
                    21 | 22 | 23 | 27 | 30 | 31 | 38 | 39 | 40 | 42 | 43 | 44 => d.skip(8)?,
                    // nfstime4
                    49..=51 => d.skip(12)?,
                    // utf8 strings / opaques
                    32 => {
                        d.opaque(usize::MAX)?;
                    }
                    12 => {
                        // nfsace4<>
                        let n = d.array_len(MAX_ARRAY, 16)?;
                        for _ in 0..n {
                            d.skip(12)?;
                            d.opaque(NFS4_OPAQUE_LIMIT)?;
                        }
                    }
                    24 => skip_fs_locations(&mut d)?,
                    _ => return Err(XdrError::BadValue),
                }
            }
        }
        if d.remaining() != 0 {
            return Err(XdrError::BadValue);
        }
        Ok(a)
    }
}

/// fs_locations4 { pathname4 fs_root; fs_location4 locations<>; }
fn skip_fs_locations(d: &mut XdrDecoder<'_>) -> Result<(), XdrError> {
    fn pathname(d: &mut XdrDecoder<'_>) -> Result<(), XdrError> {
        let n = d.array_len(MAX_ARRAY, 4)?;
        for _ in 0..n {
            d.opaque(NFS4_OPAQUE_LIMIT)?;
        }
        Ok(())
    }
    pathname(d)?;
    let n = d.array_len(MAX_ARRAY, 8)?;
    for _ in 0..n {
        pathname(d)?; // server<> is an array of strings, same layout
        pathname(d)?;
    }
    Ok(())
}

/// Skip a resok of `opnum`; false when this client does not know its layout.
fn skip_resok(opnum: u32, d: &mut XdrDecoder<'_>) -> Result<bool, XdrError> {
    match opnum {
        op::SEQUENCE => {
            wire::SequenceResOk::decode(d)?;
        }
        op::BIND_CONN_TO_SESSION => {
            wire::BindConnResOk::decode(d)?;
        }
        op::EXCHANGE_ID => {
            wire::ExchangeIdResOk::decode(d)?;
        }
        op::CREATE_SESSION => {
            wire::CreateSessionResOk::decode(d)?;
        }
        op::GETFH => {
            wire::GetFhResOk::decode(d)?;
        }
        op::GETATTR => {
            wire::GetAttrResOk::decode(d)?;
        }
        op::ACCESS => {
            wire::AccessResOk::decode(d)?;
        }
        op::CLOSE => {
            wire::CloseResOk::decode(d)?;
        }
        op::LOCK => {
            wire::LockResOk::decode(d)?;
        }
        op::LOCKU => {
            wire::LockuResOk::decode(d)?;
        }
        op::OPEN_DOWNGRADE => {
            wire::OpenDowngradeResOk::decode(d)?;
        }
        op::COMMIT => {
            wire::CommitResOk::decode(d)?;
        }
        op::CREATE => {
            wire::CreateResOk::decode(d)?;
        }
        op::LINK | op::REMOVE => {
            wire::CinfoResOk::decode(d)?;
        }
        op::RENAME => {
            wire::RenameResOk::decode(d)?;
        }
        op::OPEN => {
            wire::OpenResOk::decode(d)?;
        }
        op::READ => {
            wire::ReadResOk::decode(d)?;
        }
        op::WRITE => {
            wire::WriteResOk::decode(d)?;
        }
        op::READDIR => {
            wire::ReaddirResOk::decode(d)?;
        }
        op::READLINK => {
            wire::ReadlinkResOk::decode(d)?;
        }
        op::SECINFO | op::SECINFO_NO_NAME => {
            wire::SecinfoResOk::decode(d)?;
        }
        op::SETATTR => {
            wire::SetAttrRes::decode_body(status::NFS4_OK, d)?;
        }
        op::TEST_STATEID => {
            wire::TestStateidResOk::decode(d)?;
        }
        op::LOCKT
        | op::NVERIFY
        | op::VERIFY
        | op::FREE_STATEID
        | op::DELEGRETURN
        | op::RELEASE_LOCKOWNER => {}
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
        Ok(Self::from_wire(wire::ExchangeIdResOk::from_bytes(b)?))
    }

    fn from_wire(r: wire::ExchangeIdResOk<'_>) -> Self {
        let owned = |b: &[u8]| b.to_vec();
        ExchangeIdRes {
            clientid: r.clientid,
            sequenceid: r.sequenceid,
            flags: r.flags,
            state_protect: match r.state_protect {
                wire::StateProtectRes::None => StateProtectRes::None,
                wire::StateProtectRes::MachCred(ops) => StateProtectRes::MachCred {
                    must_enforce: ops.must_enforce,
                    must_allow: ops.must_allow,
                },
                wire::StateProtectRes::Ssv {
                    ops,
                    hash_alg,
                    encr_alg,
                    ssv_len,
                    window,
                    handles,
                } => StateProtectRes::Ssv {
                    must_enforce: ops.must_enforce,
                    must_allow: ops.must_allow,
                    hash_alg,
                    encr_alg,
                    ssv_len,
                    window,
                    handles: handles.into_iter().map(owned).collect(),
                },
            },
            server_owner: ServerOwner {
                minor_id: r.server_owner.minor_id,
                major_id: owned(r.server_owner.major_id),
            },
            server_scope: owned(r.server_scope),
            impl_id: r.impl_id.map(|i| ImplId {
                domain: owned(i.domain),
                name: owned(i.name),
                date: i.date,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{ChannelAttrs, SessionId};
    use ringnfs_proto::nfs4::types::encode_channel_attrs;
    use ringnfs_proto::xdr::XdrEncoder;

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

    fn header(v: &mut Vec<u8>, status: NfsStatus, n: u32) {
        v.put_u32(status.code());
        v.put_opaque(b"t");
        v.put_u32(n);
    }

    #[test]
    fn sequence_then_getfh_then_error() {
        let sid = SessionId([3u8; 16]);
        let mut v = Vec::new();
        header(&mut v, status::NFS4ERR_NOENT, 4);
        v.put_u32(op::SEQUENCE);
        v.put_u32(0);
        v.put_fixed(&sid.0);
        for x in [5, 2, 63, 31, 0x200] {
            v.put_u32(x);
        }
        v.put_u32(op::PUTROOTFH);
        v.put_u32(0);
        v.put_u32(op::GETFH);
        v.put_u32(0);
        v.put_opaque(&[9, 9, 9]);
        v.put_u32(op::LOOKUP);
        v.put_u32(status::NFS4ERR_NOENT.code());
        let r = CompoundReply::decode(&v).unwrap();
        assert_eq!(r.status, status::NFS4ERR_NOENT);
        assert_eq!(r.tag, b"t");
        assert_eq!(r.results.len(), 4);
        assert_eq!(r.sequence_status(), Some(status::NFS4_OK));
        let s = r.sequence().unwrap();
        assert_eq!(
            s,
            wire::SequenceResOk {
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
        v.put_u32(status::NFS4ERR_BADSESSION.code());
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
        header(&mut v, status::NFS4_OK, 2);
        v.put_u32(op::LAYOUTGET);
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
        header(&mut v, status::NFS4_OK, 2);
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
        let sid = SessionId([0x5Au8; 16]);
        let mut v = Vec::new();
        v.put_fixed(&sid.0);
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
        let r = wire::CreateSessionResOk::from_bytes(&v).unwrap();
        assert_eq!(r.sessionid, sid);
        assert_eq!((r.sequence, r.flags), (1, 2));
        assert_eq!(r.fore, attrs(64));
        assert_eq!(r.back.rdma_ird, Some(3));
        assert_eq!(r.back.maxrequests, 1);
        assert_eq!(v.len(), 16 + 8 + 28 + 32);

        let mut v = Vec::new();
        v.put_fixed(&sid.0);
        v.put_u32(3);
        v.put_u32(0);
        let b = wire::BindConnResOk::from_bytes(&v).unwrap();
        assert_eq!(
            b,
            wire::BindConnResOk {
                sessionid: sid,
                dir: 3,
                use_rdma: false
            }
        );
    }

    #[test]
    fn getattr_result() {
        let mut v = Vec::new();
        header(&mut v, status::NFS4_OK, 1);
        v.put_u32(op::GETATTR);
        v.put_u32(0);
        v.put_u32(2);
        v.put_u32(1);
        v.put_u32(2);
        v.put_opaque(&[0, 0, 0, 1]);
        let r = CompoundReply::decode(&v).unwrap();
        assert_eq!(r.getattr().unwrap(), (vec![1, 2], vec![0, 0, 0, 1]));
    }

    fn sid(n: u8) -> Stateid {
        Stateid {
            seqid: n as u32,
            other: [n; 12],
        }
    }

    #[test]
    fn file_op_results_walk_in_one_compound() {
        let mut v = Vec::new();
        header(&mut v, status::NFS4ERR_DENIED, 9);
        // OPEN4resok with OPEN_DELEGATE_NONE_EXT (WND4_CONTENTION + bool).
        v.put_u32(op::OPEN);
        v.put_u32(0);
        sid(1).encode(&mut v);
        v.put_bool(true);
        v.put_u64(10);
        v.put_u64(11);
        v.put_u32(4);
        v.put_u32(1);
        v.put_u32(1 << 4);
        v.put_u32(3);
        v.put_u32(1);
        v.put_bool(true);
        v.put_u32(op::WRITE);
        v.put_u32(0);
        v.put_u32(5);
        v.put_u32(2);
        v.put_fixed(b"verifier");
        v.put_u32(op::READ);
        v.put_u32(0);
        v.put_bool(true);
        v.put_opaque(b"hello");
        v.put_u32(op::COMMIT);
        v.put_u32(0);
        v.put_fixed(b"verifie2");
        v.put_u32(op::RENAME);
        v.put_u32(0);
        for x in [1u64, 2, 3, 4] {
            if x % 2 == 1 {
                v.put_bool(false);
            }
            v.put_u64(x);
        }
        v.put_u32(op::READDIR);
        v.put_u32(0);
        v.put_fixed(b"cookieve");
        v.put_bool(true);
        v.put_u64(3);
        v.put_opaque(b"a");
        v.put_u32(1);
        v.put_u32(1 << 1);
        v.put_opaque(&[0, 0, 0, 2]);
        v.put_bool(false);
        v.put_bool(true);
        v.put_u32(op::TEST_STATEID);
        v.put_u32(0);
        v.put_u32(2);
        v.put_u32(0);
        v.put_u32(status::NFS4ERR_BAD_STATEID.code());
        v.put_u32(op::LOCKU);
        v.put_u32(0);
        sid(2).encode(&mut v);
        v.put_u32(op::LOCK);
        v.put_u32(status::NFS4ERR_DENIED.code());
        v.put_u64(0);
        v.put_u64(100);
        v.put_u32(2);
        v.put_u64(77);
        v.put_opaque(b"owner");
        let r = CompoundReply::decode(&v).unwrap();
        assert_eq!(r.results.len(), 9);
        let o = r.open().unwrap();
        assert_eq!(o.stateid, sid(1));
        assert_eq!(
            o.cinfo,
            ChangeInfo {
                atomic: true,
                before: 10,
                after: 11
            }
        );
        assert_eq!((o.rflags, o.attrset.clone()), (4, vec![1 << 4]));
        assert_eq!(
            o.delegation,
            Delegation::NoneExt {
                why: 1,
                flag: Some(true)
            }
        );
        let w = r.write().unwrap();
        assert_eq!((w.count, w.committed, &w.verifier), (5, 2, b"verifier"));
        assert_eq!(
            r.read().unwrap(),
            ReadRes {
                eof: true,
                data: b"hello".to_vec()
            }
        );
        assert_eq!(&r.commit().unwrap(), b"verifie2");
        let (a, b) = r.rename().unwrap();
        assert_eq!((a.before, a.after, b.before, b.after), (1, 2, 3, 4));
        let d = r.readdir().unwrap();
        assert_eq!(
            (&d.cookieverf, d.eof, d.entries.len()),
            (b"cookieve", true, 1)
        );
        assert_eq!(
            (d.entries[0].cookie, &d.entries[0].name[..]),
            (3, &b"a"[..])
        );
        assert_eq!(d.entries[0].decode_attrs().unwrap().ftype, Some(2));
        assert_eq!(
            r.test_stateid().unwrap(),
            vec![status::NFS4_OK, status::NFS4ERR_BAD_STATEID]
        );
        assert_eq!(r.locku().unwrap(), sid(2));
        let denied = r.lock().unwrap().unwrap_err();
        assert_eq!(
            denied,
            LockDenied {
                offset: 0,
                length: 100,
                locktype: 2,
                clientid: 77,
                owner: b"owner".to_vec()
            }
        );
        assert_eq!(
            r.check().unwrap_err().nfs_status(),
            Some(status::NFS4ERR_DENIED)
        );
        assert_eq!(r.failure(), Some((op::LOCK, status::NFS4ERR_DENIED)));
    }

    #[test]
    fn namespace_results_walk_in_one_compound() {
        let mut v = Vec::new();
        header(&mut v, status::NFS4_OK, 6);
        v.put_u32(op::ACCESS);
        v.put_u32(0);
        v.put_u32(0x3f);
        v.put_u32(0x1f);
        v.put_u32(op::CREATE);
        v.put_u32(0);
        v.put_bool(true);
        v.put_u64(1);
        v.put_u64(2);
        v.put_u32(1);
        v.put_u32(1 << 1);
        v.put_u32(op::READLINK);
        v.put_u32(0);
        v.put_opaque(b"/target");
        // secinfo4<>: RPCSEC_GSS (oid, qop, service), AUTH_SYS, AUTH_NONE.
        v.put_u32(op::SECINFO);
        v.put_u32(0);
        v.put_u32(3);
        v.put_u32(6);
        v.put_opaque(&[0x2a, 0x86, 0x48]);
        v.put_u32(0);
        v.put_u32(1);
        v.put_u32(1);
        v.put_u32(0);
        v.put_u32(op::REMOVE);
        v.put_u32(0);
        v.put_bool(false);
        v.put_u64(3);
        v.put_u64(4);
        v.put_u32(op::LINK);
        v.put_u32(0);
        v.put_bool(false);
        v.put_u64(5);
        v.put_u64(6);
        let r = CompoundReply::decode(&v).unwrap();
        assert_eq!(r.results.len(), 6);
        assert_eq!(r.access().unwrap(), (0x3f, 0x1f));
        let (c, set) = r.create().unwrap();
        assert_eq!(
            (c.atomic, c.before, c.after, set),
            (true, 1, 2, vec![1 << 1])
        );
        assert_eq!(r.readlink().unwrap(), b"/target");
        assert_eq!(r.secinfo(op::SECINFO).unwrap(), vec![6, 1, 0]);
        assert_eq!(
            (r.remove().unwrap().before, r.link().unwrap().after),
            (3, 6)
        );
    }

    #[test]
    fn setattr_error_keeps_attrsset_and_delegations_decode() {
        let mut v = Vec::new();
        header(&mut v, status::NFS4ERR_PERM, 1);
        v.put_u32(op::SETATTR);
        v.put_u32(status::NFS4ERR_PERM.code());
        v.put_u32(1);
        v.put_u32(1 << 4);
        let r = CompoundReply::decode(&v).unwrap();
        assert_eq!(r.setattr().unwrap(), (status::NFS4ERR_PERM, vec![1 << 4]));

        // A WRITE delegation (NFS_LIMIT_SIZE) and a READ one.
        for (kind, extra) in [(2u32, true), (1, false)] {
            let mut v = Vec::new();
            sid(3).encode(&mut v);
            v.put_bool(false);
            v.put_u64(1);
            v.put_u64(2);
            v.put_u32(0);
            v.put_u32(0);
            v.put_u32(kind);
            sid(4).encode(&mut v);
            v.put_bool(false);
            if extra {
                v.put_u32(1);
                v.put_u64(4096);
            }
            v.put_u32(0);
            v.put_u32(0);
            v.put_u32(0);
            v.put_opaque(b"EVERYONE@");
            let o = OpenRes::decode(&v).unwrap();
            assert_eq!(o.delegation.kind(), kind);
        }
    }

    #[test]
    fn file_attrs_walk_every_size() {
        // type, change, size, fsid, fileid, mode, numlinks, owner, owner_group, rawdev,
        // time_access, time_modify, mounted_on_fileid, with skipped ones in between.
        let mut mask = [0u32; 2];
        let mut vals = Vec::new();
        let mut set = |a: u32| mask[a as usize / 32] |= 1 << (a % 32);
        for a in [
            1, 3, 4, 5, 8, 10, 19, 20, 27, 33, 35, 36, 37, 41, 47, 51, 53, 55,
        ] {
            set(a);
        }
        vals.put_u32(1); // type
        vals.put_u64(9); // change
        vals.put_u64(1000); // size
        vals.put_bool(true); // link_support
        vals.put_u64(1);
        vals.put_u64(2); // fsid
        vals.put_u32(90); // lease
        vals.put_opaque(&[1, 2, 3]); // filehandle
        vals.put_u64(42); // fileid
        vals.put_u64(u64::MAX); // maxfilesize
        vals.put_u32(0o644);
        vals.put_u32(2);
        vals.put_opaque(b"1000");
        vals.put_opaque(b"100");
        vals.put_u32(8);
        vals.put_u32(1); // rawdev
        vals.put_i64(-5);
        vals.put_u32(6); // atime
        vals.put_i64(0);
        vals.put_u32(1); // time_delta
        vals.put_i64(7);
        vals.put_u32(8); // mtime
        vals.put_u64(43);
        let a = FileAttrs::decode(&mask, &vals).unwrap();
        assert_eq!((a.ftype, a.change, a.size), (Some(1), Some(9), Some(1000)));
        assert_eq!((a.fsid, a.fileid), (Some((1, 2)), Some(42)));
        assert_eq!(a.filehandle, Some(vec![1, 2, 3]));
        assert_eq!((a.mode, a.numlinks), (Some(0o644), Some(2)));
        assert_eq!(a.owner.as_deref(), Some("1000"));
        assert_eq!(a.owner_group.as_deref(), Some("100"));
        assert_eq!(a.rawdev, Some((8, 1)));
        assert_eq!(
            (a.time_access, a.time_modify),
            (Some((-5, 6)), Some((7, 8)))
        );
        assert_eq!(a.mounted_on_fileid, Some(43));
        // Leftover bytes or an unknown attribute are errors.
        let mut more = vals.clone();
        more.put_u32(0);
        assert!(FileAttrs::decode(&mask, &more).is_err());
        assert!(FileAttrs::decode(&[0, 0, 1 << 31], &[]).is_err());
    }
}
