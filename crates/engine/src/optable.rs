//! One row per operation, after knfsd's `nfsd4_ops[]` (fs/nfsd/nfs4proc.c): the
//! handler, the flags that say which rules of the COMPOUND loop apply, the proto type
//! its arguments decode as, the bound on its result computed from them (knfsd's
//! `op_rsize_bop`), and where its arguments carry a stateid the loop may replace. The
//! loop (`compound.rs`) enforces what a row says, so handlers never re-check it.
//!
//! An op's XDR is its proto type's (`ringnfs_proto::nfs4::ops`, one file per group like
//! the handlers in `ops/`): each row's generic step ([`crate::row::exec`]) decodes
//! the arguments once (NFS4ERR_BADXDR if they do not) and hands them to the handler.

use super::consts::{NFS4_FHSIZE, NFS4_OPAQUE_LIMIT, NfsStatus, op};
use super::ctx::{CompoundCtx, OpResult};
use super::export::MAX_FLAVORS;
use super::ops::{attr, copy, dir, fh, io, lock, open, session, space, stateid_ops, xattr};
use super::row::*;
use ringnfs_proto::nfs4::ops as wire;
use ringnfs_proto::stateid::Stateid;
use ringnfs_proto::xdr::{XdrDecoder, pad4};

/// A stateid4.
const STATEID: u32 = 16;
/// A bitmap4 of the attribute words we know (attrsset, ...).
const ATTR_BITMAP: u32 = 4 + 4 * crate::attrs::WORDS as u32;
/// channel_attrs4 with its rdma_ird.
const CHANNEL_ATTRS: u32 = 6 * 4 + 4 + 4;
/// change_info4.
const CINFO: u32 = wire::ChangeInfo::LEN as u32;
/// open_delegation4 at its largest: a write delegation (type, stateid, recall,
/// nfs_space_limit4, an nfsace4 with an empty who).
const OPEN_DELEGATION: u32 = 4 + STATEID + 4 + 12 + 16;

/// One row:
///
/// ```text
/// row! { NAME, handler, FLAGS, Args,
///     rsize: |args, ctx| bound,          // opnum and status included
///     ok: Stateid,                       // SETS_STATEID: what the handler returns
///     stateid: |args| &mut args.stateid, // USES_STATEID: where the stateid is
///     error_body: path,                  // see Op::error_body
/// }
/// ```
///
/// `ok`, `stateid` and `error_body` are optional. `Args` may name the lifetime `'a` of
/// the request it borrows from.
macro_rules! row {
    ($name:literal, $handler:path, $flags:expr, $Args:ty, rsize: $rsize:expr
     $(, ok: $Ok:ty)? $(, stateid: $sid:expr)? $(, error_body: $eb:path)? $(,)?) => {{
        struct Row;
        impl Op for Row {
            type Args<'a> = $Args;
            type Ok = row!(@ok $($Ok)?);
            const FLAGS: u32 = $flags;
            fn handle(
                ctx: &mut CompoundCtx<'_>,
                args: Self::Args<'_>,
                out: &mut Vec<u8>,
            ) -> Result<Self::Ok, NfsStatus> {
                $handler(ctx, args, out)
            }
            fn rsize(args: &Self::Args<'_>, ctx: &CompoundCtx<'_>) -> u32 {
                let f: fn(&Self::Args<'_>, &CompoundCtx<'_>) -> u32 = $rsize;
                f(args, ctx)
            }
            $(fn stateid<'s>(args: &'s mut Self::Args<'_>) -> Option<&'s mut Stateid> {
                let f: for<'x, 'y> fn(&'x mut Self::Args<'y>) -> &'x mut Stateid = $sid;
                Some(f(args))
            })?
            $(fn error_body(out: &mut Vec<u8>) {
                $eb(out)
            })?
        }
        OpDesc::of::<Row>($name)
    }};
    (@ok) => { () };
    (@ok $Ok:ty) => { $Ok };
}

/// Ops without a handler: NFS4ERR_NOTSUPP, their arguments left undecoded.
fn notsupp(_: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    Err(super::consts::status::NFS4ERR_NOTSUPP)
}

const fn unbuilt(name: &'static str, flags: u32) -> Option<OpDesc> {
    Some(OpDesc {
        name,
        exec: notsupp,
        flags,
    })
}

const fn todo(name: &'static str) -> Option<OpDesc> {
    unbuilt(name, NOT_BUILT)
}

const fn v40(name: &'static str) -> Option<OpDesc> {
    unbuilt(name, V40_ONLY)
}

const fn v42(name: &'static str) -> Option<OpDesc> {
    unbuilt(name, V42 | NOT_BUILT)
}

/// EXCHANGE_ID4resok as this server fills it: state_protect4_r with two bitmaps at
/// most, the configured server owner and scope, one nfs_impl_id4.
fn exchange_id_rsize(_: &wire::ExchangeIdArgs<'_>, ctx: &CompoundCtx<'_>) -> u32 {
    let opaque = |n: usize| 4 + pad4(n) as u32;
    let config = &ctx.state.config;
    RESULT_HEADER
        + 8
        + 4
        + 4
        + 4
        + 2 * ATTR_BITMAP
        + 8
        + opaque(config.server_owner.len())
        + opaque(config.server_scope.len())
        + 4
        + opaque(session::IMPL_DOMAIN.len())
        + opaque(session::IMPL_NAME.len())
        + 12
}

/// LOCK4denied at its largest (after NFS4ERR_DENIED): offset, length, locktype and a
/// lock owner of at most NFS4_OPAQUE_LIMIT bytes.
const LOCK_DENIED: u32 = 8 + 8 + 4 + 8 + 4 + NFS4_OPAQUE_LIMIT as u32;

const TABLE_LEN: usize = op::REMOVEXATTR as usize + 1;

/// Indexed by op number; `None` means illegal.
static TABLE: [Option<OpDesc>; TABLE_LEN] = {
    let mut t: [Option<OpDesc>; TABLE_LEN] = [None; TABLE_LEN];
    // ---- attributes (ops/attr.rs, proto nfs4/ops/attr.rs) ----
    t[op::ACCESS as usize] = row! {
        "ACCESS", attr::access, NEEDS_FH, wire::AccessArgs,
        rsize: |_, _| RESULT_HEADER + 8,
    };
    t[op::GETATTR as usize] = row! {
        "GETATTR", attr::getattr, NEEDS_FH, wire::GetAttrArgs,
        rsize: |a, ctx| RESULT_HEADER
            + crate::attrs::max_fattr_len(&a.attr_request, &[], &ctx.export.locations) as u32,
    };
    t[op::SETATTR as usize] = row! {
        "SETATTR", attr::setattr, NEEDS_FH | MODIFIES | USES_STATEID | ERROR_BODY,
        wire::SetAttrArgs<'a>,
        rsize: |_, _| RESULT_HEADER + ATTR_BITMAP,
        stateid: |a| &mut a.stateid,
        error_body: attr::setattr_failed,
    };
    t[op::VERIFY as usize] = row! {
        "VERIFY", attr::verify, NEEDS_FH, wire::VerifyArgs<'a>,
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::NVERIFY as usize] = row! {
        "NVERIFY", attr::nverify, NEEDS_FH, wire::NverifyArgs<'a>,
        rsize: |_, _| RESULT_HEADER,
    };
    // ---- filehandles (ops/fh.rs, proto nfs4/ops/fh.rs) ----
    t[op::PUTFH as usize] = row! {
        "PUTFH", fh::putfh, CLEARS_STATEID, wire::PutFhArgs<'a>,
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::PUTPUBFH as usize] = row! {
        "PUTPUBFH", fh::putrootfh, CLEARS_STATEID, (),
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::PUTROOTFH as usize] = row! {
        "PUTROOTFH", fh::putrootfh, CLEARS_STATEID, (),
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::GETFH as usize] = row! {
        "GETFH", fh::getfh, NEEDS_FH, (),
        rsize: |_, _| RESULT_HEADER + 4 + NFS4_FHSIZE as u32,
    };
    t[op::SAVEFH as usize] = row! {
        "SAVEFH", fh::savefh, NEEDS_FH, (),
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::RESTOREFH as usize] = row! {
        "RESTOREFH", fh::restorefh, 0, (),
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::LOOKUP as usize] = row! {
        "LOOKUP", fh::lookup, NEEDS_FH | CLEARS_STATEID, wire::LookupArgs<'a>,
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::LOOKUPP as usize] = row! {
        "LOOKUPP", fh::lookupp, NEEDS_FH | CLEARS_STATEID, (),
        rsize: |_, _| RESULT_HEADER,
    };
    // ---- data (ops/io.rs, proto nfs4/ops/io.rs) ----
    t[op::READ as usize] = row! {
        "READ", io::read, NEEDS_FH | USES_STATEID, wire::ReadArgs,
        rsize: |a, _| RESULT_HEADER
            + wire::ReadResOk::HEAD_LEN as u32
            + pad4(a.count.min(super::ops::MAX_IO) as usize) as u32,
        stateid: |a| &mut a.stateid,
    };
    t[op::WRITE as usize] = row! {
        "WRITE", io::write, NEEDS_FH | MODIFIES | USES_STATEID, wire::WriteArgs<'a>,
        rsize: |_, _| RESULT_HEADER + wire::WriteResOk::LEN as u32,
        stateid: |a| &mut a.stateid,
    };
    t[op::COMMIT as usize] = row! {
        "COMMIT", io::commit, NEEDS_FH | MODIFIES, wire::CommitArgs,
        rsize: |_, _| RESULT_HEADER + 8,
    };
    // ---- the namespace (ops/dir.rs, proto nfs4/ops/dir.rs) ----
    t[op::CREATE as usize] = row! {
        "CREATE", dir::create, NEEDS_FH | MODIFIES | CLEARS_STATEID, wire::CreateArgs<'a>,
        rsize: |_, _| RESULT_HEADER + CINFO + ATTR_BITMAP,
    };
    t[op::LINK as usize] = row! {
        "LINK", dir::link, NEEDS_FH | MODIFIES, wire::LinkArgs<'a>,
        rsize: |_, _| RESULT_HEADER + CINFO,
    };
    t[op::REMOVE as usize] = row! {
        "REMOVE", dir::remove, NEEDS_FH | MODIFIES, wire::RemoveArgs<'a>,
        rsize: |_, _| RESULT_HEADER + CINFO,
    };
    t[op::RENAME as usize] = row! {
        "RENAME", dir::rename, NEEDS_FH | MODIFIES, wire::RenameArgs<'a>,
        rsize: |_, _| RESULT_HEADER + 2 * CINFO,
    };
    t[op::READLINK as usize] = row! {
        "READLINK", dir::readlink, NEEDS_FH, (),
        rsize: |_, _| RESULT_HEADER + 4 + dir::MAX_LINK_TEXT as u32,
    };
    t[op::READDIR as usize] = row! {
        "READDIR", dir::readdir, NEEDS_FH, wire::ReaddirArgs,
        rsize: |a, _| RESULT_HEADER + a.maxcount.max(wire::ReaddirResOk::FRAME_LEN as u32),
    };
    t[op::SECINFO as usize] = row! {
        "SECINFO", dir::secinfo, NEEDS_FH, wire::SecinfoArgs<'a>,
        rsize: |_, _| RESULT_HEADER + 4 + 4 * MAX_FLAVORS as u32,
    };
    t[op::SECINFO_NO_NAME as usize] = row! {
        "SECINFO_NO_NAME", dir::secinfo_no_name, NEEDS_FH, wire::SecinfoNoNameArgs,
        rsize: |_, _| RESULT_HEADER + 4 + 4 * MAX_FLAVORS as u32,
    };
    // ---- opens (ops/open.rs, proto nfs4/ops/open.rs) ----
    t[op::OPEN as usize] = row! {
        "OPEN", open::open, NEEDS_FH | MODIFIES | SETS_STATEID | RECORDS_CLIENT,
        wire::OpenArgs<'a>,
        // stateid, cinfo, rflags, attrset, open_delegation4.
        rsize: |_, _| RESULT_HEADER + STATEID + CINFO + 4 + ATTR_BITMAP + OPEN_DELEGATION,
        ok: Stateid,
    };
    t[op::WANT_DELEGATION as usize] = row! {
        "WANT_DELEGATION", open::want_delegation, NEEDS_FH | MODIFIES,
        wire::WantDelegationArgs,
        rsize: |_, _| RESULT_HEADER + OPEN_DELEGATION,
    };
    t[op::OPEN_DOWNGRADE as usize] = row! {
        "OPEN_DOWNGRADE", open::open_downgrade,
        NEEDS_FH | MODIFIES | USES_STATEID | SETS_STATEID, wire::OpenDowngradeArgs,
        rsize: |_, _| RESULT_HEADER + STATEID,
        ok: Stateid,
        stateid: |a| &mut a.stateid,
    };
    t[op::CLOSE as usize] = row! {
        "CLOSE", open::close, NEEDS_FH | MODIFIES | USES_STATEID | SETS_STATEID,
        wire::CloseArgs,
        rsize: |_, _| RESULT_HEADER + STATEID,
        ok: Stateid,
        stateid: |a| &mut a.stateid,
    };
    // ---- stateids (ops/stateid_ops.rs, proto nfs4/ops/stateid_ops.rs) ----
    t[op::TEST_STATEID as usize] = row! {
        "TEST_STATEID", stateid_ops::test_stateid, 0, wire::TestStateidArgs,
        rsize: |a, _| RESULT_HEADER + 4 + 4 * a.stateids.len() as u32,
    };
    t[op::FREE_STATEID as usize] = row! {
        "FREE_STATEID", stateid_ops::free_stateid, MODIFIES | USES_STATEID,
        wire::FreeStateidArgs,
        rsize: |_, _| RESULT_HEADER,
        stateid: |a| &mut a.stateid,
    };
    t[op::DELEGRETURN as usize] = row! {
        "DELEGRETURN", stateid_ops::delegreturn, NEEDS_FH | MODIFIES | USES_STATEID,
        wire::DelegReturnArgs,
        rsize: |_, _| RESULT_HEADER,
        stateid: |a| &mut a.stateid,
    };
    // ---- byte-range locks (ops/lock.rs, proto nfs4/ops/lock.rs) ----
    t[op::LOCK as usize] = row! {
        "LOCK", lock::lock,
        NEEDS_FH | MODIFIES | USES_STATEID | SETS_STATEID | ERROR_BODY | RECORDS_CLIENT,
        wire::LockArgs<'a>,
        rsize: |_, _| RESULT_HEADER + LOCK_DENIED,
        ok: Stateid,
        stateid: lock::locker_stateid,
    };
    t[op::LOCKT as usize] = row! {
        "LOCKT", lock::lockt, NEEDS_FH | ERROR_BODY, wire::LocktArgs<'a>,
        rsize: |_, _| RESULT_HEADER + LOCK_DENIED,
    };
    t[op::LOCKU as usize] = row! {
        "LOCKU", lock::locku, NEEDS_FH | MODIFIES | USES_STATEID | SETS_STATEID,
        wire::LockuArgs,
        rsize: |_, _| RESULT_HEADER + STATEID,
        ok: Stateid,
        stateid: |a| &mut a.stateid,
    };
    // ---- client ids and sessions (ops/session.rs, proto nfs4/ops/session.rs) ----
    // SEQUENCE checks its own reply size (in the state manager, before the slot moves
    // on), so it is not MODIFIES.
    t[op::SEQUENCE as usize] = row! {
        "SEQUENCE", session::sequence, SESSIONLESS | ONLY_FIRST | REPLAYS,
        wire::SequenceArgs,
        rsize: |_, _| RESULT_HEADER + wire::SequenceResOk::LEN as u32,
    };
    t[op::EXCHANGE_ID as usize] = row! {
        "EXCHANGE_ID", session::exchange_id, MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE,
        wire::ExchangeIdArgs<'a>,
        rsize: exchange_id_rsize,
    };
    t[op::CREATE_SESSION as usize] = row! {
        "CREATE_SESSION", session::create_session,
        MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE, wire::CreateSessionArgs<'a>,
        rsize: |_, _| RESULT_HEADER + 16 + 4 + 4 + 2 * CHANNEL_ATTRS,
    };
    t[op::BIND_CONN_TO_SESSION as usize] = row! {
        "BIND_CONN_TO_SESSION", session::bind_conn_to_session,
        MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE | ALWAYS_SOLO, wire::BindConnArgs,
        rsize: |_, _| RESULT_HEADER + 16 + 4 + 4,
    };
    t[op::DESTROY_SESSION as usize] = row! {
        "DESTROY_SESSION", session::destroy_session,
        MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE, wire::DestroySessionArgs,
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::DESTROY_CLIENTID as usize] = row! {
        "DESTROY_CLIENTID", session::destroy_clientid,
        MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE, wire::DestroyClientidArgs,
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::RECLAIM_COMPLETE as usize] = row! {
        "RECLAIM_COMPLETE", session::reclaim_complete, MODIFIES, wire::ReclaimCompleteArgs,
        rsize: |_, _| RESULT_HEADER,
    };
    // ---- not built, other minor versions ----
    t[op::DELEGPURGE as usize] = todo("DELEGPURGE");
    t[op::OPENATTR as usize] = todo("OPENATTR");
    t[op::OPEN_CONFIRM as usize] = v40("OPEN_CONFIRM");
    t[op::RENEW as usize] = v40("RENEW");
    t[op::SETCLIENTID as usize] = v40("SETCLIENTID");
    t[op::SETCLIENTID_CONFIRM as usize] = v40("SETCLIENTID_CONFIRM");
    t[op::RELEASE_LOCKOWNER as usize] = v40("RELEASE_LOCKOWNER");
    t[op::BACKCHANNEL_CTL as usize] = row! {
        "BACKCHANNEL_CTL", session::backchannel_ctl, MODIFIES, wire::BackchannelCtlArgs<'a>,
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::GET_DIR_DELEGATION as usize] = todo("GET_DIR_DELEGATION");
    t[op::GETDEVICEINFO as usize] = todo("GETDEVICEINFO");
    t[op::GETDEVICELIST as usize] = todo("GETDEVICELIST");
    t[op::LAYOUTCOMMIT as usize] = todo("LAYOUTCOMMIT");
    t[op::LAYOUTGET as usize] = todo("LAYOUTGET");
    t[op::LAYOUTRETURN as usize] = todo("LAYOUTRETURN");
    t[op::SET_SSV as usize] = todo("SET_SSV");
    // ---- sparse files and space (ops/space.rs, proto nfs4/ops/space.rs) ----
    t[op::ALLOCATE as usize] = row! {
        "ALLOCATE", space::allocate, NEEDS_FH | MODIFIES | USES_STATEID | V42, wire::SpaceArgs,
        rsize: |_, _| RESULT_HEADER,
        stateid: |a| &mut a.stateid,
    };
    t[op::DEALLOCATE as usize] = row! {
        "DEALLOCATE", space::deallocate, NEEDS_FH | MODIFIES | USES_STATEID | V42,
        wire::SpaceArgs,
        rsize: |_, _| RESULT_HEADER,
        stateid: |a| &mut a.stateid,
    };
    t[op::SEEK as usize] = row! {
        "SEEK", space::seek, NEEDS_FH | USES_STATEID | V42, wire::SeekArgs,
        rsize: |_, _| RESULT_HEADER + wire::SeekResOk::LEN as u32,
        stateid: |a| &mut a.stateid,
    };
    t[op::READ_PLUS as usize] = row! {
        "READ_PLUS", space::read_plus, NEEDS_FH | USES_STATEID | V42, wire::ReadPlusArgs,
        rsize: |a, _| RESULT_HEADER + 8 + space::read_plus_budget(a.count.min(super::ops::MAX_IO)) as u32,
        stateid: |a| &mut a.stateid,
    };
    t[op::COPY_NOTIFY as usize] = v42("COPY_NOTIFY");
    t[op::IO_ADVISE as usize] = v42("IO_ADVISE");
    t[op::LAYOUTERROR as usize] = v42("LAYOUTERROR");
    t[op::LAYOUTSTATS as usize] = v42("LAYOUTSTATS");
    t[op::WRITE_SAME as usize] = v42("WRITE_SAME");
    // ---- copy and clone (ops/copy.rs, proto nfs4/ops/copy.rs) ----
    t[op::COPY as usize] = row! {
        "COPY", copy::copy, NEEDS_FH | MODIFIES | USES_STATEID | V42, wire::CopyArgs<'a>,
        rsize: |_, _| RESULT_HEADER + wire::CopyResOk::MAX_LEN as u32,
        stateid: |a| &mut a.dst_stateid,
    };
    t[op::OFFLOAD_STATUS as usize] = row! {
        "OFFLOAD_STATUS", copy::offload_status, NEEDS_FH | V42, wire::OffloadArgs,
        rsize: |_, _| RESULT_HEADER + 8 + 8,
    };
    t[op::OFFLOAD_CANCEL as usize] = row! {
        "OFFLOAD_CANCEL", copy::offload_cancel, NEEDS_FH | V42, wire::OffloadArgs,
        rsize: |_, _| RESULT_HEADER,
    };
    t[op::CLONE as usize] = row! {
        "CLONE", copy::clone, NEEDS_FH | MODIFIES | USES_STATEID | V42, wire::CloneArgs,
        rsize: |_, _| RESULT_HEADER,
        stateid: |a| &mut a.dst_stateid,
    };
    // ---- extended attributes (ops/xattr.rs, proto nfs4/ops/xattr.rs; RFC 8276) ----
    t[op::GETXATTR as usize] = row! {
        "GETXATTR", xattr::getxattr, NEEDS_FH | V42, wire::XattrNameArgs<'a>,
        rsize: |_, _| RESULT_HEADER + 4 + ringnfs_fs::XATTR_SIZE_MAX as u32,
    };
    t[op::SETXATTR as usize] = row! {
        "SETXATTR", xattr::setxattr, NEEDS_FH | MODIFIES | V42, wire::SetXattrArgs<'a>,
        rsize: |_, _| RESULT_HEADER + CINFO,
    };
    t[op::LISTXATTRS as usize] = row! {
        "LISTXATTRS", xattr::listxattrs, NEEDS_FH | V42, wire::ListXattrsArgs,
        rsize: |a, _| RESULT_HEADER + a.maxcount,
    };
    t[op::REMOVEXATTR as usize] = row! {
        "REMOVEXATTR", xattr::removexattr, NEEDS_FH | MODIFIES | V42, wire::XattrNameArgs<'a>,
        rsize: |_, _| RESULT_HEADER + CINFO,
    };
    t
};

/// The descriptor of `opnum` in minor version `minor`, or None if the op is illegal there.
pub fn lookup(minor: u32, opnum: u32) -> Option<&'static OpDesc> {
    let desc = TABLE.get(opnum as usize)?.as_ref()?;
    if desc.has(V42) && minor < 2 {
        return None;
    }
    Some(desc)
}

/// Names of the ops that answer NFS4ERR_NOTSUPP because they are not built yet.
#[cfg(test)]
pub fn not_built() -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .flatten()
        .filter(|d| d.has(NOT_BUILT))
        .map(|d| d.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_lists_every_op_not_built() {
        let readme = include_str!("../../../docs/protocol.md");
        let section = readme
            .split("because they are not built yet:")
            .nth(1)
            .and_then(|s| s.split("\n\n").next())
            .expect("docs/protocol.md has the list of ops not built");
        for name in not_built().filter(|n| lookup(1, op_by_name(n)).is_some()) {
            assert!(
                section
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .any(|w| w == name),
                "docs/protocol.md does not list {name} as not built"
            );
        }
    }

    fn op_by_name(name: &str) -> u32 {
        (0..TABLE_LEN as u32)
            .find(|&i| crate::consts::op_name(i) == name)
            .expect("known op")
    }

    #[test]
    fn lookup_by_minor_version() {
        assert!(lookup(1, 0).is_none());
        assert!(lookup(1, 2).is_none());
        assert!(lookup(1, op::READ_PLUS).is_none());
        assert!(lookup(2, op::READ_PLUS).is_some());
        assert!(lookup(2, 76).is_none());
        assert!(lookup(1, op::ILLEGAL).is_none());
        assert_eq!(lookup(1, op::SEQUENCE).unwrap().name, "SEQUENCE");
        for (i, d) in TABLE.iter().enumerate() {
            if let Some(d) = d {
                assert_eq!(crate::consts::op_name(i as u32), d.name);
            }
        }
    }

    /// The current-stateid rules of RFC 8881 §16.2.3.1.2 as rows: the ops that return
    /// a stateid set it, the ops that put a new filehandle without one clear it, and
    /// every op that takes a stateid of the current file may take the current one.
    #[test]
    fn current_stateid_rows() {
        let with = |flag| {
            let mut v: Vec<&str> = TABLE
                .iter()
                .flatten()
                .filter(|d| d.has(flag))
                .map(|d| d.name)
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(
            with(SETS_STATEID),
            ["CLOSE", "LOCK", "LOCKU", "OPEN", "OPEN_DOWNGRADE"]
        );
        assert_eq!(
            with(CLEARS_STATEID),
            [
                "CREATE",
                "LOOKUP",
                "LOOKUPP",
                "PUTFH",
                "PUTPUBFH",
                "PUTROOTFH"
            ]
        );
        assert_eq!(
            with(USES_STATEID),
            [
                "ALLOCATE",
                "CLONE",
                "CLOSE",
                "COPY",
                "DEALLOCATE",
                "DELEGRETURN",
                "FREE_STATEID",
                "LOCK",
                "LOCKU",
                "OPEN_DOWNGRADE",
                "READ",
                "READ_PLUS",
                "SEEK",
                "SETATTR",
                "WRITE"
            ]
        );
        assert_eq!(with(ERROR_BODY), ["LOCK", "LOCKT", "SETATTR"]);
        assert_eq!(with(ONLY_FIRST), ["SEQUENCE"]);
        assert_eq!(with(REPLAYS), ["SEQUENCE"]);
    }
}
