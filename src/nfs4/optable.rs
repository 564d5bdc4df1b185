//! One descriptor per operation (after knfsd's `nfsd4_ops[]`): the COMPOUND loop
//! enforces what the flags say, so handlers never re-check it.

use super::compound::{CompoundCtx, OpResult};
use super::consts::op;
use super::ops::{fh, session};
use crate::xdr::XdrDecoder;

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
    t[op::ACCESS as usize] = todo("ACCESS");
    t[op::CLOSE as usize] = todo("CLOSE");
    t[op::COMMIT as usize] = todo("COMMIT");
    t[op::CREATE as usize] = todo("CREATE");
    t[op::DELEGPURGE as usize] = todo("DELEGPURGE");
    t[op::DELEGRETURN as usize] = todo("DELEGRETURN");
    t[op::GETATTR as usize] = d("GETATTR", fh::getattr, NEEDS_FH, 512);
    t[op::GETFH as usize] = d("GETFH", fh::getfh, NEEDS_FH, 144);
    t[op::LINK as usize] = todo("LINK");
    t[op::LOCK as usize] = todo("LOCK");
    t[op::LOCKT as usize] = todo("LOCKT");
    t[op::LOCKU as usize] = todo("LOCKU");
    t[op::LOOKUP as usize] = todo("LOOKUP");
    t[op::LOOKUPP as usize] = todo("LOOKUPP");
    t[op::NVERIFY as usize] = todo("NVERIFY");
    t[op::OPEN as usize] = todo("OPEN");
    t[op::OPENATTR as usize] = todo("OPENATTR");
    t[op::OPEN_CONFIRM as usize] = v40("OPEN_CONFIRM");
    t[op::OPEN_DOWNGRADE as usize] = todo("OPEN_DOWNGRADE");
    t[op::PUTFH as usize] = d("PUTFH", fh::putfh, 0, 8);
    t[op::PUTPUBFH as usize] = d("PUTPUBFH", fh::putrootfh, 0, 8);
    t[op::PUTROOTFH as usize] = d("PUTROOTFH", fh::putrootfh, 0, 8);
    t[op::READ as usize] = todo("READ");
    t[op::READDIR as usize] = todo("READDIR");
    t[op::READLINK as usize] = todo("READLINK");
    t[op::REMOVE as usize] = todo("REMOVE");
    t[op::RENAME as usize] = todo("RENAME");
    t[op::RENEW as usize] = v40("RENEW");
    t[op::RESTOREFH as usize] = d("RESTOREFH", fh::restorefh, 0, 8);
    t[op::SAVEFH as usize] = d("SAVEFH", fh::savefh, NEEDS_FH, 8);
    t[op::SECINFO as usize] = todo("SECINFO");
    t[op::SETATTR as usize] = todo("SETATTR");
    t[op::SETCLIENTID as usize] = v40("SETCLIENTID");
    t[op::SETCLIENTID_CONFIRM as usize] = v40("SETCLIENTID_CONFIRM");
    t[op::VERIFY as usize] = todo("VERIFY");
    t[op::WRITE as usize] = todo("WRITE");
    t[op::RELEASE_LOCKOWNER as usize] = v40("RELEASE_LOCKOWNER");
    t[op::BACKCHANNEL_CTL as usize] = todo("BACKCHANNEL_CTL");
    t[op::BIND_CONN_TO_SESSION as usize] = d(
        "BIND_CONN_TO_SESSION",
        session::bind_conn_to_session,
        SESSIONLESS | SOLO_WITHOUT_SEQUENCE | ALWAYS_SOLO,
        40,
    );
    t[op::EXCHANGE_ID as usize] = d(
        "EXCHANGE_ID",
        session::exchange_id,
        SESSIONLESS | SOLO_WITHOUT_SEQUENCE,
        2400,
    );
    t[op::CREATE_SESSION as usize] = d(
        "CREATE_SESSION",
        session::create_session,
        SESSIONLESS | SOLO_WITHOUT_SEQUENCE,
        112,
    );
    t[op::DESTROY_SESSION as usize] = d(
        "DESTROY_SESSION",
        session::destroy_session,
        SESSIONLESS | SOLO_WITHOUT_SEQUENCE,
        8,
    );
    t[op::FREE_STATEID as usize] = todo("FREE_STATEID");
    t[op::GET_DIR_DELEGATION as usize] = todo("GET_DIR_DELEGATION");
    t[op::GETDEVICEINFO as usize] = todo("GETDEVICEINFO");
    t[op::GETDEVICELIST as usize] = todo("GETDEVICELIST");
    t[op::LAYOUTCOMMIT as usize] = todo("LAYOUTCOMMIT");
    t[op::LAYOUTGET as usize] = todo("LAYOUTGET");
    t[op::LAYOUTRETURN as usize] = todo("LAYOUTRETURN");
    t[op::SECINFO_NO_NAME as usize] = todo("SECINFO_NO_NAME");
    // SEQUENCE is handled by the COMPOUND loop itself (it may replace the whole reply).
    t[op::SEQUENCE as usize] = d("SEQUENCE", notsupp, 0, 48);
    t[op::SET_SSV as usize] = todo("SET_SSV");
    t[op::TEST_STATEID as usize] = todo("TEST_STATEID");
    t[op::WANT_DELEGATION as usize] = todo("WANT_DELEGATION");
    t[op::DESTROY_CLIENTID as usize] = d(
        "DESTROY_CLIENTID",
        session::destroy_clientid,
        SESSIONLESS | SOLO_WITHOUT_SEQUENCE,
        8,
    );
    t[op::RECLAIM_COMPLETE as usize] = d("RECLAIM_COMPLETE", session::reclaim_complete, 0, 8);
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
        let readme = include_str!("../../README.md");
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
            .find(|&i| crate::nfs4::consts::op_name(i) == name)
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
                assert_eq!(crate::nfs4::consts::op_name(i as u32), d.name);
            }
        }
    }
}
