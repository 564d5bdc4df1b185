//! OPEN, OPEN_DOWNGRADE and CLOSE. OPEN grants a read delegation when the export
//! allows (see `grant`; the wish bits and the answer when none is granted in
//! `open_deleg`), and first recalls other clients' conflicting delegations. The stateid
//! each returns becomes the current stateid (their rows say so).

use crate::attrs;
use crate::consts::{NfsStatus, status};
use crate::ctx::{CompoundCtx, OpResult, resolved};
use ringnfs_fs::{Attrs, FileType, FsError, ObjHandle, SetAttrs, SetTime, Timespec, check_name};
use ringnfs_proto::nfs4::ops::{
    CloseArgs, CloseResOk, CreateHow, DelegClaim, NfsAce, OpenArgs, OpenClaim, OpenDelegation,
    OpenDowngradeArgs, OpenDowngradeResOk, OpenHow, OpenResOk, SpaceLimit, WantDelegationArgs, Xdr,
    open_delegation_type4, open4_result,
};
use ringnfs_state::files::{Owner, SHARE_ACCESS_READ, SHARE_ACCESS_WRITE};
use ringnfs_state::grace::Reclaim;
use ringnfs_state::stateid::{StateKind, Stateid};

use super::attr::granted;
use super::open_deleg::{Want, access_only, no_delegation, split_share_access};
use super::{access, change_info, component, require_dir, require_search};

enum How {
    NoCreate,
    Unchecked(SetAttrs, Vec<u32>),
    Guarded(SetAttrs, Vec<u32>),
    Exclusive([u8; 8], SetAttrs, Vec<u32>),
}

/// openflag4 as the handler uses it: the createattrs judged (their errors before
/// anything else but the share_access wish), an undefined opentype4 or createmode4
/// NFS4ERR_INVAL.
fn how(h: &OpenHow<'_>) -> Result<How, NfsStatus> {
    match h {
        OpenHow::NoCreate => Ok(How::NoCreate),
        OpenHow::Create(CreateHow::Unchecked(f)) => {
            let (s, b) = attrs::decode_settable(f)?;
            Ok(How::Unchecked(s, b))
        }
        OpenHow::Create(CreateHow::Guarded(f)) => {
            let (s, b) = attrs::decode_settable(f)?;
            Ok(How::Guarded(s, b))
        }
        OpenHow::Create(CreateHow::Exclusive4(verf)) => {
            Ok(How::Exclusive(*verf, SetAttrs::default(), Vec::new()))
        }
        OpenHow::Create(CreateHow::Exclusive41(verf, f)) => {
            let (s, b) = attrs::decode_settable(f)?;
            // The times hold the verifier: only suppattr_exclcreat may be set.
            let allowed = attrs::suppattr_exclcreat();
            if b.iter()
                .enumerate()
                .any(|(i, w)| w & !allowed.get(i).copied().unwrap_or(0) != 0)
            {
                return Err(status::NFS4ERR_INVAL);
            }
            Ok(How::Exclusive(*verf, s, b))
        }
        OpenHow::Create(CreateHow::Undefined(_)) | OpenHow::Undefined(_) => {
            Err(status::NFS4ERR_INVAL)
        }
    }
}

/// Where EXCLUSIVE creates keep their verifier (as knfsd: in the file's times), so a
/// retransmitted create is recognised.
fn verifier_times(v: [u8; 8]) -> (Timespec, Timespec) {
    let hi = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let lo = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
    (
        Timespec {
            secs: hi as i64,
            nsecs: 0,
        },
        Timespec {
            secs: lo as i64,
            nsecs: 0,
        },
    )
}

fn check_open_type(a: &Attrs) -> OpResult {
    match a.ftype {
        FileType::Regular => Ok(()),
        FileType::Directory => Err(status::NFS4ERR_ISDIR),
        FileType::Symlink => Err(status::NFS4ERR_SYMLINK),
        _ => Err(status::NFS4ERR_INVAL),
    }
}

/// Find or create the file CLAIM_NULL names. Returns (file, created, attrs set).
fn open_by_name(
    ctx: &CompoundCtx<'_>,
    dir: &ObjHandle,
    name: &[u8],
    how: How,
) -> Result<(ObjHandle, bool, Vec<u32>), NfsStatus> {
    let fs = &ctx.export.backend;
    match how {
        How::NoCreate => {
            require_search(&fs.getattr(dir)?, &ctx.caller)?;
            Ok((fs.lookup(dir, name)?, false, Vec::new()))
        }
        How::Unchecked(set, bits) => {
            ctx.writable()?;
            let (obj, created) = fs.create_file(dir, name, &set, false, &ctx.caller)?;
            if !created && set.size == Some(0) {
                // UNCHECKED over an existing file with size 0 truncates (O_TRUNC).
                fs.setattr(
                    &obj,
                    &SetAttrs {
                        size: Some(0),
                        ..SetAttrs::default()
                    },
                    &ctx.caller,
                )?;
            }
            Ok((obj, created, if created { bits } else { Vec::new() }))
        }
        How::Guarded(set, bits) => {
            ctx.writable()?;
            // Run again after its claim was granted (`wait_before`): the file is the one
            // this OPEN created on its first run.
            let again = ctx.waited.is_some();
            let (obj, _) = fs.create_file(dir, name, &set, !again, &ctx.caller)?;
            Ok((obj, true, bits))
        }
        How::Exclusive(verf, set, mut bits) => {
            ctx.writable()?;
            // Like knfsd: report time_access and time_modify in attrset, since they hold
            // the verifier; Linux then sets the real times with a SETATTR.
            if bits.len() < 2 {
                bits.resize(2, 0);
            }
            bits[1] |=
                (1 << (attrs::attr::TIME_ACCESS - 32)) | (1 << (attrs::attr::TIME_MODIFY - 32));
            let (atime, mtime) = verifier_times(verf);
            match fs.create_file(dir, name, &set, true, &ctx.caller) {
                Ok((obj, _)) => {
                    let times = SetAttrs {
                        atime: Some(SetTime::Client(atime)),
                        mtime: Some(SetTime::Client(mtime)),
                        ..SetAttrs::default()
                    };
                    fs.setattr(&obj, &times, &ctx.caller)?;
                    Ok((obj, true, bits))
                }
                Err(FsError::Exist) => {
                    // A retry of our own create carries the same verifier.
                    let obj = fs.lookup(dir, name)?;
                    let a = fs.getattr(&obj)?;
                    if a.ftype == FileType::Regular && a.atime == atime && a.mtime == mtime {
                        Ok((obj, true, bits))
                    } else {
                        Err(status::NFS4ERR_EXIST)
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

pub fn open(
    ctx: &mut CompoundCtx<'_>,
    a: OpenArgs<'_>,
    out: &mut Vec<u8>,
) -> Result<Stateid, NfsStatus> {
    let (share_access, wish) = split_share_access(a.share_access)?;
    let share_deny = a.share_deny;
    let how = how(&a.how)?;
    let client = ctx.client()?;
    let cur = ctx.cur()?;
    let fs = ctx.export.backend.clone();
    if !matches!(a.claim, OpenClaim::Previous(_)) {
        ctx.may_take_new_locks()?;
    }
    let (obj, created, attrset, cinfo) = match a.claim {
        OpenClaim::Null(name) => {
            let name = component(name)?;
            let before = fs.getattr(&cur.obj)?;
            require_dir(&before)?;
            check_name(name)?;
            let (obj, created, bits) = open_by_name(ctx, &cur.obj, name, how)?;
            let after = fs.getattr(&cur.obj)?;
            (obj, created, bits, Some((before, after)))
        }
        OpenClaim::Fh => {
            if !matches!(how, How::NoCreate) {
                return Err(status::NFS4ERR_INVAL);
            }
            (cur.obj, false, Vec::new(), None)
        }
        OpenClaim::Previous(_delegate_type) => {
            // Reclaim of an open held before the restart: the current filehandle is the file.
            ctx.state.check_reclaim(client, Reclaim::Open)?;
            if !matches!(how, How::NoCreate) {
                return Err(status::NFS4ERR_INVAL);
            }
            (cur.obj, false, Vec::new(), None)
        }
        // An open the client made locally under its delegation, claimed now (before it
        // returns the delegation): the delegation must be its own and current.
        OpenClaim::DelegCurFh(dsid) => {
            delegation_of(ctx, &dsid, client)?;
            if !matches!(how, How::NoCreate) {
                return Err(status::NFS4ERR_INVAL);
            }
            (cur.obj, false, Vec::new(), None)
        }
        OpenClaim::DelegateCur { stateid, file } => {
            delegation_of(ctx, &stateid, client)?;
            if !matches!(how, How::NoCreate) {
                return Err(status::NFS4ERR_INVAL);
            }
            let name = component(file)?;
            check_name(name)?;
            (fs.lookup(&cur.obj, name)?, false, Vec::new(), None)
        }
        OpenClaim::DelegatePrev(_) | OpenClaim::DelegPrevFh => {
            return Err(status::NFS4ERR_NOTSUPP);
        }
        // `Unread` cannot reach here: its undefined openflag4 was refused above.
        OpenClaim::Undefined(_) | OpenClaim::Unread => return Err(status::NFS4ERR_INVAL),
    };
    let attrs = fs.getattr(&obj)?;
    check_open_type(&attrs)?;
    if share_access & SHARE_ACCESS_WRITE != 0 {
        ctx.writable()?;
    }
    if !created {
        let g = granted(&attrs, &ctx.caller, ctx.read_only);
        let need_read = share_access & SHARE_ACCESS_READ != 0 && g & access::READ == 0;
        let need_write = share_access & SHARE_ACCESS_WRITE != 0 && g & access::MODIFY == 0;
        if need_read || need_write {
            return Err(status::NFS4ERR_ACCESS);
        }
    }
    let owner = Owner {
        client,
        owner: a.owner.owner.to_vec(),
    };
    // Other clients' delegations give way first (a write open conflicts with any, a
    // read open with write delegations).
    ctx.yield_delegations(&obj, share_access & SHARE_ACCESS_WRITE != 0)?;
    let sid = match ctx.state.files.cluster() {
        None => ctx.state.files.open(owner, obj, share_access, share_deny)?,
        Some(_) => open_in_cluster(ctx, owner, obj, share_access, share_deny)?,
    };
    let delegation = grant(ctx, &a.claim, obj, client, share_access, share_deny, wish);
    note_write_baseline(ctx, &obj, delegation.as_ref())?;
    let others_access = if wish.is_stated() {
        ctx.state.files.others_access(&obj, client)
    } else {
        0
    };
    let (before, after) = cinfo.unwrap_or((attrs, attrs));
    OpenResOk {
        stateid: sid,
        cinfo: change_info(&before, &after),
        // Byte-range locks follow POSIX semantics.
        rflags: open4_result::LOCKTYPE_POSIX,
        attrset,
        delegation: delegation.unwrap_or_else(|| no_delegation(wish, others_access)),
    }
    .encode(out);
    ctx.set_current(obj);
    Ok(sid)
}

/// The open on a cluster node (`FileStateTable::open_in_cluster`): refused by another
/// node's deny (NFS4ERR_SHARE_DENIED); NFS4ERR_DELAY while another node's conflicting
/// delegations are recalled (this node asks it to); and an open with deny bits this
/// node's claim does not cover yet waits for the claim (`wait_before`), then runs again:
/// granted, it opens; refused, NFS4ERR_SHARE_DENIED; undecided, NFS4ERR_DELAY.
fn open_in_cluster(
    ctx: &mut CompoundCtx<'_>,
    owner: Owner,
    obj: ObjHandle,
    share_access: u32,
    share_deny: u32,
) -> Result<Stateid, NfsStatus> {
    use ringnfs_service::Waited;
    use ringnfs_state::files::OpenBlocked;
    let Some(cluster) = ctx.state.files.cluster().cloned() else {
        return Err(status::NFS4ERR_SERVERFAULT);
    };
    let waited = ctx.waited;
    match waited {
        Some(Waited::Refused) => return Err(status::NFS4ERR_SHARE_DENIED),
        Some(Waited::Failed) => return Err(status::NFS4ERR_DELAY),
        Some(Waited::Succeeded) | None => {}
    }
    match ctx
        .state
        .files
        .open_in_cluster(owner, obj, share_access, share_deny)
    {
        Ok(sid) => Ok(sid),
        Err(OpenBlocked::Status(st)) => Err(st),
        Err(OpenBlocked::Recall(holders)) => {
            cluster.ask_recall(&obj, &holders);
            Err(status::NFS4ERR_DELAY)
        }
        Err(OpenBlocked::Claim(share)) => {
            let wait = if waited.is_some() {
                // Granted, and shrunk again before this run: no second wait in one
                // request (the claim goes on without a waiter; the client retries).
                Err(status::NFS4ERR_DELAY)
            } else {
                crate::wait_before::wait(crate::wait_before::Before::Claim)
            };
            match wait {
                Ok((signal, io)) => {
                    cluster.claim(&obj, share, Some(signal));
                    ctx.wait_before = Some(io);
                    // Not sent: the loop suspends before the op instead.
                    Err(status::NFS4ERR_DELAY)
                }
                Err(st) => {
                    // The claim in flight is recorded: it must still run to its end.
                    cluster.claim(&obj, share, None);
                    Err(st)
                }
            }
        }
    }
}

/// `sid` must be a current delegation of `client` (CLAIM_DELEGATE_CUR, DELEG_CUR_FH).
fn delegation_of(ctx: &CompoundCtx<'_>, sid: &Stateid, client: u64) -> Result<(), NfsStatus> {
    match ctx.state.files.test(sid, client) {
        st if st == status::NFS4_OK && sid.other[6] == StateKind::Deleg as u8 => Ok(()),
        st if st == status::NFS4_OK => Err(status::NFS4ERR_BAD_STATEID),
        st => Err(st),
    }
}

/// A delegation for this OPEN (RFC 8881 §10.4), when delegations are on, the open
/// denies nothing, the client's session has a back channel to recall it on, and the
/// state allows one (bounds, the client's callback path, the file's opens and other
/// delegations: `FileStateTable::delegate`): a read delegation for an open that only
/// reads, a write delegation for one that writes (only when no other client has the
/// file open), each unless the client's wish says otherwise. A reclaim after a restart
/// (CLAIM_PREVIOUS naming a delegation type, RFC 8881 §10.2.1 and §18.16.3) gets the
/// type it held back, whatever the open's access.
fn grant(
    ctx: &CompoundCtx<'_>,
    claim: &OpenClaim<'_>,
    obj: ObjHandle,
    client: u64,
    share_access: u32,
    share_deny: u32,
    wish: Want,
) -> Option<OpenDelegation<'static>> {
    let (write, wished) = match claim {
        OpenClaim::Null(_) | OpenClaim::Fh => {
            let write = share_access & SHARE_ACCESS_WRITE != 0;
            let wished = if write {
                wish.allows_write_delegation()
            } else {
                wish.allows_read_delegation()
            };
            (write, wished && share_deny == 0)
        }
        OpenClaim::Previous(open_delegation_type4::READ) => (false, true),
        OpenClaim::Previous(open_delegation_type4::WRITE) => (true, true),
        _ => return None,
    };
    if !wished {
        return None;
    }
    issue(ctx, obj, client, write)
}

/// A delegation of `obj` for `client` (a write delegation if `write`), when delegations
/// are on, the client's session has a back channel to recall it on, and the state allows
/// one (`FileStateTable::delegate`: bounds, the client's callback path, the file's opens
/// and other delegations). A client that holds one of the file gets it again.
fn issue(
    ctx: &CompoundCtx<'_>,
    obj: ObjHandle,
    client: u64,
    write: bool,
) -> Option<OpenDelegation<'static>> {
    if !ctx.state.settings.delegations() {
        return None;
    }
    let session = ctx.session?;
    ctx.state.back_channel(&session.sessionid, None)?;
    let now = std::time::Instant::now();
    let (stateid, write) = match ctx.state.files.cluster() {
        None => ctx.state.files.delegate(client, obj, write, now)?,
        Some(cluster) => {
            // A cluster node gives a delegation only under its granted claim on the file;
            // without one it starts the claim and gives none this time (OPEN does not
            // wait for it: a later OPEN may get one).
            let fh = ctx.export.handles.encode(&obj);
            let (d, claim) =
                ctx.state
                    .files
                    .delegate_in_cluster(client, obj, write, now, fh.as_bytes());
            if let Some(share) = claim {
                cluster.claim(&obj, share, None);
            }
            d?
        }
    };
    // Whom the client may serve from its cache without asking: whoever the file's mode
    // lets (the client checks ACCESS as usual); an empty ACE defers to it (as knfsd).
    let permissions = NfsAce {
        acetype: 0,
        flag: 0,
        access_mask: 0,
        who: b"",
    };
    Some(if write {
        OpenDelegation::Write {
            stateid,
            recall: false,
            // No space the client may fill before it writes back: Linux then flushes on
            // close (as knfsd asks), so ENOSPC reaches the application's close().
            space_limit: SpaceLimit::Size(0),
            permissions,
        }
    } else {
        OpenDelegation::Read {
            stateid,
            recall: false,
            permissions,
        }
    })
}

/// For a write delegation just granted: the file's change attribute and size now, what
/// the holder's CB_GETATTR answers will be compared with.
fn note_write_baseline(
    ctx: &CompoundCtx<'_>,
    obj: &ObjHandle,
    delegation: Option<&OpenDelegation<'_>>,
) -> OpResult {
    if let Some(OpenDelegation::Write { stateid, .. }) = delegation {
        let now = ctx.export.backend.getattr(obj)?;
        ctx.state
            .files
            .set_write_baseline(stateid, now.change, now.size);
    }
    Ok(())
}

/// WANT_DELEGATION (RFC 8881 §18.49): a delegation of the current file without an
/// OPEN. CLAIM_FH asks for a new one (a read delegation for a wish of READ, ANY or no
/// preference, a write delegation for WRITE; the same rules as OPEN's, and nobody's
/// delegation is recalled to make room), CLAIM_PREVIOUS reclaims one during the grace
/// period; CLAIM_DELEG_PREV_FH is not supported (as CLAIM_DELEGATE_PREV). None granted:
/// OPEN_DELEGATE_NONE_EXT with the reason.
pub fn want_delegation(
    ctx: &mut CompoundCtx<'_>,
    a: WantDelegationArgs,
    out: &mut Vec<u8>,
) -> OpResult {
    let (access, wish) = split_share_access(a.want)?;
    if access != 0 {
        return Err(status::NFS4ERR_INVAL);
    }
    let client = ctx.client()?;
    let cur = ctx.cur()?;
    let attrs = ctx.export.backend.getattr(&cur.obj)?;
    check_open_type(&attrs)?;
    let delegation = match a.claim {
        DelegClaim::Fh => {
            ctx.may_take_new_locks()?;
            match wish.wanted_type() {
                Some(write) => issue(ctx, cur.obj, client, write),
                None => None,
            }
        }
        DelegClaim::Previous(t) => {
            ctx.state.check_reclaim(client, Reclaim::Delegation)?;
            match t {
                open_delegation_type4::READ => issue(ctx, cur.obj, client, false),
                open_delegation_type4::WRITE => issue(ctx, cur.obj, client, true),
                _ => return Err(status::NFS4ERR_INVAL),
            }
        }
        DelegClaim::DelegPrevFh => return Err(status::NFS4ERR_NOTSUPP),
        DelegClaim::Other(_) => return Err(status::NFS4ERR_INVAL),
    };
    note_write_baseline(ctx, &cur.obj, delegation.as_ref())?;
    let others = ctx.state.files.others_access(&cur.obj, client);
    // A wish always has a reason when nothing is granted (no preference is a wish too).
    let wish = if wish.is_stated() { wish } else { Want::any() };
    delegation
        .unwrap_or_else(|| no_delegation(wish, others))
        .encode(out);
    Ok(())
}

pub fn open_downgrade(
    ctx: &mut CompoundCtx<'_>,
    a: OpenDowngradeArgs,
    out: &mut Vec<u8>,
) -> Result<Stateid, NfsStatus> {
    let share_access = access_only(a.share_access);
    let cur = ctx.cur()?;
    let sid = resolved(a.stateid)?;
    let new = ctx.state.files.open_downgrade(
        &sid,
        ctx.client()?,
        &cur.obj,
        share_access,
        a.share_deny,
    )?;
    OpenDowngradeResOk { stateid: new }.encode(out);
    Ok(new)
}

pub fn close(
    ctx: &mut CompoundCtx<'_>,
    a: CloseArgs,
    out: &mut Vec<u8>,
) -> Result<Stateid, NfsStatus> {
    let cur = ctx.cur()?;
    let sid = resolved(a.stateid)?;
    ctx.state.files.close(&sid, ctx.client()?, &cur.obj)?;
    // RFC 8881 §18.2.4: a closed stateid is answered with the invalid special stateid.
    CloseResOk {
        stateid: Stateid::INVALID,
    }
    .encode(out);
    Ok(Stateid::INVALID)
}
