//! One descriptor per operation (after knfsd's `nfsd4_ops[]`): the COMPOUND loop
//! enforces what the flags say, so handlers never re-check it.

use super::compound::{CompoundCtx, OpResult};
use super::consts::op;
use super::ops::{attr, dir, fh, io, lock, open, session};
use ringnfs_proto::xdr::XdrDecoder;

pub type Handler = fn(&mut CompoundCtx<'_>, &mut XdrDecoder<'_>, &mut Vec<u8>) -> OpResult;

/// May start a COMPOUND without SEQUENCE (RFC 8881 §2.6.3.1.1.1 exempt ops).
pub const SESSIONLESS: u32 = 1 << 0;
/// Without SEQUENCE it must be the only op (NFS4ERR_NOT_ONLY_OP otherwise).
pub const SOLO_WITHOUT_SEQUENCE: u32 = 1 << 1;
/// Always the only op, even after SEQUENCE (BIND_CONN_TO_SESSION).
pub const ALWAYS_SOLO: u32 = 1 << 2;
/// Needs a current filehandle (NFS4ERR_NOFILEHANDLE otherwise).
pub const NEEDS_FH: u32 = 1 << 3;
/// Not implemented yet: answers NFS4ERR_NOTSUPP (listed in the README).
pub const NOT_BUILT: u32 = 1 << 4;
/// NFSv4.0-only op: NFS4ERR_NOTSUPP in 4.1 (RFC 8881 §18).
pub const V40_ONLY: u32 = 1 << 5;
/// NFSv4.2 op (RFC 7862): illegal in minor version 1.
pub const V42: u32 = 1 << 6;
/// Changes server state (knfsd's OP_MODIFIES_SOMETHING): runs only when `max_reply`
/// still fits the session's reply limits, since it cannot be undone afterwards. Other
/// ops run first and are answered NFS4ERR_REP_TOO_BIG if their result does not fit.
pub const MODIFIES: u32 = 1 << 7;

#[derive(Clone, Copy)]
pub struct OpDesc {
    pub name: &'static str,
    pub handler: Handler,
    pub flags: u32,
    /// Upper bound on the encoded result (opnum + status + resok), for the reply budget.
    pub max_reply: u32,
}

impl OpDesc {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

fn notsupp(_: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    Err(super::consts::status::NFS4ERR_NOTSUPP)
}

const fn d(name: &'static str, handler: Handler, flags: u32, max_reply: u32) -> Option<OpDesc> {
    Some(OpDesc {
        name,
        handler,
        flags,
        max_reply,
    })
}

const fn todo(name: &'static str) -> Option<OpDesc> {
    d(name, notsupp, NOT_BUILT, 8)
}

const fn v40(name: &'static str) -> Option<OpDesc> {
    d(name, notsupp, V40_ONLY, 8)
}

const fn v42(name: &'static str) -> Option<OpDesc> {
    d(name, notsupp, V42 | NOT_BUILT, 8)
}

const TABLE_LEN: usize = op::REMOVEXATTR as usize + 1;

/// Indexed by op number; `None` means illegal.
static TABLE: [Option<OpDesc>; TABLE_LEN] = {
    let mut t: [Option<OpDesc>; TABLE_LEN] = [None; TABLE_LEN];
    t[op::ACCESS as usize] = d("ACCESS", attr::access, NEEDS_FH, 16);
    t[op::CLOSE as usize] = d("CLOSE", open::close, NEEDS_FH | MODIFIES, 24);
    t[op::COMMIT as usize] = d("COMMIT", io::commit, NEEDS_FH | MODIFIES, 16);
    t[op::CREATE as usize] = d("CREATE", dir::create, NEEDS_FH | MODIFIES, 64);
    t[op::DELEGPURGE as usize] = todo("DELEGPURGE");
    t[op::DELEGRETURN as usize] = d("DELEGRETURN", open::delegreturn, NEEDS_FH | MODIFIES, 8);
    t[op::GETATTR as usize] = d("GETATTR", attr::getattr, NEEDS_FH, 2048);
    t[op::GETFH as usize] = d("GETFH", fh::getfh, NEEDS_FH, 144);
    t[op::LINK as usize] = d("LINK", dir::link, NEEDS_FH | MODIFIES, 32);
    t[op::LOCK as usize] = d("LOCK", lock::lock, NEEDS_FH | MODIFIES, 1100);
    t[op::LOCKT as usize] = d("LOCKT", lock::lockt, NEEDS_FH, 1100);
    t[op::LOCKU as usize] = d("LOCKU", lock::locku, NEEDS_FH | MODIFIES, 24);
    t[op::LOOKUP as usize] = d("LOOKUP", fh::lookup, NEEDS_FH, 8);
    t[op::LOOKUPP as usize] = d("LOOKUPP", fh::lookupp, NEEDS_FH, 8);
    t[op::NVERIFY as usize] = d("NVERIFY", attr::nverify, NEEDS_FH, 8);
    t[op::OPEN as usize] = d("OPEN", open::open, NEEDS_FH | MODIFIES, 128);
    t[op::OPENATTR as usize] = todo("OPENATTR");
    t[op::OPEN_CONFIRM as usize] = v40("OPEN_CONFIRM");
    t[op::OPEN_DOWNGRADE as usize] = d(
        "OPEN_DOWNGRADE",
        open::open_downgrade,
        NEEDS_FH | MODIFIES,
        24,
    );
    t[op::PUTFH as usize] = d("PUTFH", fh::putfh, 0, 8);
    t[op::PUTPUBFH as usize] = d("PUTPUBFH", fh::putrootfh, 0, 8);
    t[op::PUTROOTFH as usize] = d("PUTROOTFH", fh::putrootfh, 0, 8);
    t[op::READ as usize] = d("READ", io::read, NEEDS_FH, 24);
    t[op::READDIR as usize] = d("READDIR", dir::readdir, NEEDS_FH, 4096);
    t[op::READLINK as usize] = d("READLINK", dir::readlink, NEEDS_FH, 4104);
    t[op::REMOVE as usize] = d("REMOVE", dir::remove, NEEDS_FH | MODIFIES, 32);
    t[op::RENAME as usize] = d("RENAME", dir::rename, NEEDS_FH | MODIFIES, 56);
    t[op::RENEW as usize] = v40("RENEW");
    t[op::RESTOREFH as usize] = d("RESTOREFH", fh::restorefh, 0, 8);
    t[op::SAVEFH as usize] = d("SAVEFH", fh::savefh, NEEDS_FH, 8);
    t[op::SECINFO as usize] = d("SECINFO", dir::secinfo, NEEDS_FH, 24);
    t[op::SETATTR as usize] = d("SETATTR", attr::setattr, NEEDS_FH | MODIFIES, 24);
    t[op::SETCLIENTID as usize] = v40("SETCLIENTID");
    t[op::SETCLIENTID_CONFIRM as usize] = v40("SETCLIENTID_CONFIRM");
    t[op::VERIFY as usize] = d("VERIFY", attr::verify, NEEDS_FH, 8);
    t[op::WRITE as usize] = d("WRITE", io::write, NEEDS_FH | MODIFIES, 24);
    t[op::RELEASE_LOCKOWNER as usize] = v40("RELEASE_LOCKOWNER");
    t[op::BACKCHANNEL_CTL as usize] = todo("BACKCHANNEL_CTL");
    t[op::BIND_CONN_TO_SESSION as usize] = d(
        "BIND_CONN_TO_SESSION",
        session::bind_conn_to_session,
        MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE | ALWAYS_SOLO,
        40,
    );
    t[op::EXCHANGE_ID as usize] = d(
        "EXCHANGE_ID",
        session::exchange_id,
        MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE,
        2400,
    );
    t[op::CREATE_SESSION as usize] = d(
        "CREATE_SESSION",
        session::create_session,
        MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE,
        112,
    );
    t[op::DESTROY_SESSION as usize] = d(
        "DESTROY_SESSION",
        session::destroy_session,
        MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE,
        8,
    );
    t[op::FREE_STATEID as usize] = d("FREE_STATEID", open::free_stateid, MODIFIES, 8);
    t[op::GET_DIR_DELEGATION as usize] = todo("GET_DIR_DELEGATION");
    t[op::GETDEVICEINFO as usize] = todo("GETDEVICEINFO");
    t[op::GETDEVICELIST as usize] = todo("GETDEVICELIST");
    t[op::LAYOUTCOMMIT as usize] = todo("LAYOUTCOMMIT");
    t[op::LAYOUTGET as usize] = todo("LAYOUTGET");
    t[op::LAYOUTRETURN as usize] = todo("LAYOUTRETURN");
    t[op::SECINFO_NO_NAME as usize] = d("SECINFO_NO_NAME", dir::secinfo_no_name, NEEDS_FH, 24);
    // SEQUENCE is handled by the COMPOUND loop itself (it may replace the whole reply).
    t[op::SEQUENCE as usize] = d("SEQUENCE", notsupp, 0, 48);
    t[op::SET_SSV as usize] = todo("SET_SSV");
    t[op::TEST_STATEID as usize] = d("TEST_STATEID", open::test_stateid, 0, 4104);
    t[op::WANT_DELEGATION as usize] = todo("WANT_DELEGATION");
    t[op::DESTROY_CLIENTID as usize] = d(
        "DESTROY_CLIENTID",
        session::destroy_clientid,
        MODIFIES | SESSIONLESS | SOLO_WITHOUT_SEQUENCE,
        8,
    );
    t[op::RECLAIM_COMPLETE as usize] =
        d("RECLAIM_COMPLETE", session::reclaim_complete, MODIFIES, 8);
    t[op::ALLOCATE as usize] = v42("ALLOCATE");
    t[op::COPY as usize] = v42("COPY");
    t[op::COPY_NOTIFY as usize] = v42("COPY_NOTIFY");
    t[op::DEALLOCATE as usize] = v42("DEALLOCATE");
    t[op::IO_ADVISE as usize] = v42("IO_ADVISE");
    t[op::LAYOUTERROR as usize] = v42("LAYOUTERROR");
    t[op::LAYOUTSTATS as usize] = v42("LAYOUTSTATS");
    t[op::OFFLOAD_CANCEL as usize] = v42("OFFLOAD_CANCEL");
    t[op::OFFLOAD_STATUS as usize] = v42("OFFLOAD_STATUS");
    t[op::READ_PLUS as usize] = v42("READ_PLUS");
    t[op::SEEK as usize] = v42("SEEK");
    t[op::WRITE_SAME as usize] = v42("WRITE_SAME");
    t[op::CLONE as usize] = v42("CLONE");
    t[op::GETXATTR as usize] = v42("GETXATTR");
    t[op::SETXATTR as usize] = v42("SETXATTR");
    t[op::LISTXATTRS as usize] = v42("LISTXATTRS");
    t[op::REMOVEXATTR as usize] = v42("REMOVEXATTR");
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
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("because they are not built yet:")
            .nth(1)
            .and_then(|s| s.split("\n\n").next())
            .expect("README has the list of ops not built");
        for name in not_built().filter(|n| lookup(1, op_by_name(n)).is_some()) {
            assert!(
                section
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .any(|w| w == name),
                "README does not list {name} as not built"
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
}
