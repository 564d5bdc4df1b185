//! A session: its channels and slot table. Its connection bindings are kept by its shard
//! (`shard.rs`).

use std::sync::Arc;

use ringnfs_proto::rpc::Credential;

use super::client::{Principal, StateProtect};
use super::ids::{ClientId, SessionId};
use super::lease::Lease;
use super::slots::SlotTable;

pub use ringnfs_proto::nfs4::types::ChannelAttrs;

/// Back-channel slots the server uses at most per session, whatever the client grants.
pub const MAX_BACK_SLOTS_USED: u32 = 16;

#[derive(Debug)]
pub struct Session {
    pub id: SessionId,
    pub client: ClientId,
    pub lease: Arc<Lease>,
    pub protect: StateProtect,
    /// The client's principal (for SP4_MACH_CRED checks without the client lock).
    pub principal: Principal,
    pub fore: ChannelAttrs,
    pub back: ChannelAttrs,
    pub flags: u32,
    pub cb_program: u32,
    /// Credential to use on callbacks (from csa_sec_parms).
    pub cb_cred: Credential,
    /// csa_sec_parms offered a flavor the server can call back with (AUTH_NONE or
    /// AUTH_SYS; an empty list counts as AUTH_NONE): without one the session has no
    /// usable callback path, whatever connections it binds for the back channel.
    pub cb_sec_ok: bool,
    pub slots: SlotTable,
    /// Sequence id of each back-channel slot the server uses: as many as the client
    /// granted (ca_maxrequests of the back channel), at most [`MAX_BACK_SLOTS_USED`].
    pub cb_seqids: Vec<u32>,
    /// The minor version of the COMPOUND that created the session: its callbacks use
    /// it (Linux finds the session a CB_SEQUENCE names only among clients of the CB
    /// COMPOUND's minor version, and answers NFS4ERR_BADSESSION otherwise).
    pub minor: u32,
    pub created_at_ms: u64,
    /// Its COMPOUNDs' operations and bytes (kept in the client's lease when it goes).
    pub traffic: crate::lease::Traffic,
}
