//! Client records and the EXCHANGE_ID rules of RFC 8881 §18.35.5.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use ringnfs_proto::nfs4::consts::{NfsStatus, exchgid_flag, op, sp4, status};
use ringnfs_proto::nfs4::ops::{
    ExchangeIdArgs, ImplId, StateProtectArgs, StateProtectOps, StateProtectRes,
};
use ringnfs_proto::nfs4::types::{bitmap_to_ops, ops_to_bitmap};
use ringnfs_proto::rpc::Credential;

use super::ids::{ClientId, SessionId, client_id_boot, make_client_id};
use super::lease::Lease;
use super::locks::CheckInvariants;

/// Who sent a request, as far as state protection is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Principal {
    None,
    Sys {
        uid: u32,
        gid: u32,
    },
    /// A Kerberos principal (RPCSEC_GSS), whatever service protected the call.
    Gss {
        principal: String,
    },
}

impl Principal {
    pub fn of(cred: &Credential) -> Self {
        match cred {
            Credential::None => Principal::None,
            Credential::Sys(s) => Principal::Sys {
                uid: s.uid,
                gid: s.gid,
            },
            Credential::Gss(g) => Principal::Gss {
                principal: g.principal.clone(),
            },
        }
    }
}

/// Ops a SP4_MACH_CRED client may ask us to enforce.
pub const MACH_CRED_ENFORCEABLE: [u32; 5] = [
    op::EXCHANGE_ID,
    op::CREATE_SESSION,
    op::BIND_CONN_TO_SESSION,
    op::DESTROY_SESSION,
    op::DESTROY_CLIENTID,
];

/// State protection agreed at EXCHANGE_ID, as the client record keeps it: built from
/// what the client asked (proto's state_protect4_a, [`StateProtect::agreed`]) and
/// answered as state_protect4_r ([`StateProtect::to_wire`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateProtect {
    pub how: u32,
    /// Op numbers whose credentials must match the client's principal.
    pub enforce: Vec<u32>,
    /// Op numbers the client may send with the machine credential.
    pub allow: Vec<u32>,
}

impl StateProtect {
    pub fn enforces(&self, opnum: u32) -> bool {
        self.how == sp4::MACH_CRED && self.enforce.contains(&opnum)
    }

    /// What this server agrees to of the protection asked for (RFC 8881 §18.35.3):
    /// under SP4_MACH_CRED it enforces what was asked among the ops that matter for
    /// state protection, BIND_CONN_TO_SESSION always (RFC 8881 §18.34.3), and allows
    /// what was asked. SP4_SSV never gets here: EXCHANGE_ID refuses it first.
    pub fn agreed(asked: &StateProtectArgs<'_>) -> Self {
        match asked {
            StateProtectArgs::MachCred(ops) => {
                let enforce = bitmap_to_ops(&ops.must_enforce);
                StateProtect {
                    how: sp4::MACH_CRED,
                    enforce: MACH_CRED_ENFORCEABLE
                        .iter()
                        .copied()
                        .filter(|o| enforce.contains(o) || *o == op::BIND_CONN_TO_SESSION)
                        .collect(),
                    allow: bitmap_to_ops(&ops.must_allow)
                        .into_iter()
                        .filter(|o| *o < 80)
                        .collect(),
                }
            }
            StateProtectArgs::None | StateProtectArgs::Ssv { .. } => StateProtect::default(),
        }
    }

    /// state_protect4_r, as EXCHANGE_ID answers it.
    pub fn to_wire(&self) -> StateProtectRes<'static> {
        if self.how == sp4::MACH_CRED {
            StateProtectRes::MachCred(StateProtectOps {
                must_enforce: ops_to_bitmap(&self.enforce),
                must_allow: ops_to_bitmap(&self.allow),
            })
        } else {
            StateProtectRes::None
        }
    }
}

/// nfs_impl_id4 as operators see the client's implementation: "name (domain)".
fn impl_name(id: &Option<ImplId<'_>>) -> String {
    match id {
        Some(i) => format!(
            "{} ({})",
            String::from_utf8_lossy(i.name),
            String::from_utf8_lossy(i.domain)
        ),
        None => String::new(),
    }
}

#[derive(Debug)]
pub struct ClientRecord {
    pub id: ClientId,
    pub owner: Vec<u8>,
    pub verifier: [u8; 8],
    pub principal: Principal,
    pub confirmed: bool,
    pub protect: StateProtect,
    /// csa_sequence of the last CREATE_SESSION executed (the next must be this + 1).
    pub cs_last: u32,
    /// Reply of the last successful CREATE_SESSION, for replays.
    pub cs_cache: Option<Result<super::CreateSessionReply, NfsStatus>>,
    pub lease: Arc<Lease>,
    pub sessions: Vec<SessionId>,
    pub impl_name: String,
    pub created_at_ms: u64,
}

/// What EXCHANGE_ID answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeIdReply {
    pub clientid: ClientId,
    pub sequenceid: u32,
    pub flags: u32,
    pub protect: StateProtect,
}

#[derive(Debug, Default, Clone, Copy)]
struct OwnerEntry {
    confirmed: Option<ClientId>,
    unconfirmed: Option<ClientId>,
}

/// All client records. Guarded by one mutex in `StateManager` (first in the lock order);
/// only EXCHANGE_ID, CREATE_SESSION, DESTROY_*, the reaper and queries take it, never
/// SEQUENCE or file operations.
#[derive(Debug)]
pub struct ClientTable {
    boot: u32,
    next_seq: u32,
    records: HashMap<ClientId, ClientRecord>,
    by_owner: HashMap<Vec<u8>, OwnerEntry>,
}

impl ClientTable {
    pub fn new(boot: u32) -> Self {
        Self {
            boot,
            next_seq: 1,
            records: HashMap::new(),
            by_owner: HashMap::new(),
        }
    }

    pub fn get(&self, id: ClientId) -> Option<&ClientRecord> {
        self.records.get(&id)
    }

    pub fn get_mut(&mut self, id: ClientId) -> Option<&mut ClientRecord> {
        self.records.get_mut(&id)
    }

    pub fn records(&self) -> impl Iterator<Item = &ClientRecord> {
        self.records.values()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn new_record(
        &mut self,
        args: &ExchangeIdArgs<'_>,
        principal: Principal,
        now_ms: u64,
        created_at_ms: u64,
    ) -> ClientId {
        // Skip ids still in use after the 32-bit counter wraps.
        let mut id = make_client_id(self.boot, self.next_seq);
        while self.records.contains_key(&id) {
            self.next_seq = self.next_seq.wrapping_add(1);
            id = make_client_id(self.boot, self.next_seq);
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        self.records.insert(
            id,
            ClientRecord {
                id,
                owner: args.owner.to_vec(),
                verifier: args.verifier,
                principal,
                confirmed: false,
                protect: StateProtect::agreed(&args.state_protect),
                cs_last: 0,
                cs_cache: None,
                lease: Arc::new(Lease::new(now_ms)),
                sessions: Vec::new(),
                impl_name: impl_name(&args.impl_id),
                created_at_ms,
            },
        );
        self.by_owner
            .entry(args.owner.to_vec())
            .or_default()
            .unconfirmed = Some(id);
        id
    }

    fn reply_for(&self, id: ClientId) -> ExchangeIdReply {
        let r = &self.records[&id];
        let mut flags = exchgid_flag::USE_NON_PNFS;
        if r.confirmed {
            flags |= exchgid_flag::CONFIRMED_R;
        }
        ExchangeIdReply {
            clientid: id,
            sequenceid: r.cs_last.wrapping_add(1),
            flags,
            protect: r.protect.clone(),
        }
    }

    /// Remove a record and its owner index entry; returns it (the caller destroys its
    /// sessions).
    pub fn remove(&mut self, id: ClientId) -> Option<ClientRecord> {
        let rec = self.records.remove(&id)?;
        if let Some(e) = self.by_owner.get_mut(&rec.owner) {
            if e.confirmed == Some(id) {
                e.confirmed = None;
            }
            if e.unconfirmed == Some(id) {
                e.unconfirmed = None;
            }
            if e.confirmed.is_none() && e.unconfirmed.is_none() {
                self.by_owner.remove(&rec.owner);
            }
        }
        Some(rec)
    }

    /// EXCHANGE_ID (RFC 8881 §18.35.5). Returns the reply and records the caller must
    /// destroy (with their sessions) because this request replaced them.
    pub fn exchange_id(
        &mut self,
        args: &ExchangeIdArgs<'_>,
        principal: Principal,
        now_ms: u64,
        lease_ms: u64,
        created_at_ms: u64,
    ) -> Result<(ExchangeIdReply, Vec<ClientRecord>), NfsStatus> {
        let entry = self.by_owner.get(args.owner).copied().unwrap_or_default();
        let update = args.flags & exchgid_flag::UPD_CONFIRMED_REC_A != 0;
        let mut removed = Vec::new();

        let Some(conf_id) = entry.confirmed else {
            if update {
                // Case 7: update of a record that does not exist.
                return Err(status::NFS4ERR_NOENT);
            }
            // Cases 1 and 4: a new client, replacing any unconfirmed record.
            if let Some(u) = entry.unconfirmed {
                removed.extend(self.remove(u));
            }
            let id = self.new_record(args, principal, now_ms, created_at_ms);
            return Ok((self.reply_for(id), removed));
        };

        let conf = &self.records[&conf_id];
        let same_verifier = conf.verifier == args.verifier;
        let same_principal = conf.principal == principal;
        if update {
            if !same_verifier {
                return Err(status::NFS4ERR_NOT_SAME); // case 8
            }
            if !same_principal {
                return Err(status::NFS4ERR_PERM); // case 9
            }
            // Case 6: update the confirmed record.
            let rec = self
                .records
                .get_mut(&conf_id)
                .expect("indexed record exists");
            rec.protect = StateProtect::agreed(&args.state_protect);
            rec.impl_name = impl_name(&args.impl_id);
            return Ok((self.reply_for(conf_id), removed));
        }
        if !same_principal {
            // Case 3: another principal claims this owner. Refuse while the
            // confirmed client still holds state under an unexpired lease.
            let live = !conf.lease.expired(now_ms, lease_ms);
            if live && !conf.sessions.is_empty() {
                return Err(status::NFS4ERR_CLID_INUSE);
            }
            removed.extend(self.remove(conf_id));
            if let Some(u) = entry.unconfirmed {
                removed.extend(self.remove(u));
            }
            let id = self.new_record(args, principal, now_ms, created_at_ms);
            return Ok((self.reply_for(id), removed));
        }
        if same_verifier {
            // Case 2: the same client again; drop any half-made replacement.
            if let Some(u) = entry.unconfirmed {
                removed.extend(self.remove(u));
            }
            return Ok((self.reply_for(conf_id), removed));
        }
        // Case 5: the client rebooted. The new record replaces the old one when a
        // CREATE_SESSION confirms it.
        if let Some(u) = entry.unconfirmed {
            removed.extend(self.remove(u));
        }
        let id = self.new_record(args, principal, now_ms, created_at_ms);
        Ok((self.reply_for(id), removed))
    }

    /// Confirm `id` (its first CREATE_SESSION succeeded); returns the previous confirmed
    /// record of the same owner, which the caller destroys.
    pub fn confirm(&mut self, id: ClientId) -> Option<ClientRecord> {
        let owner = {
            let rec = self.records.get_mut(&id)?;
            if rec.confirmed {
                return None;
            }
            rec.confirmed = true;
            rec.owner.clone()
        };
        let e = self.by_owner.entry(owner).or_default();
        let old = e.confirmed.replace(id);
        if e.unconfirmed == Some(id) {
            e.unconfirmed = None;
        }
        old.and_then(|o| self.records.remove(&o))
    }

    /// Records whose lease ran out (unconfirmed ones too).
    pub fn expired(&self, now_ms: u64, lease_ms: u64) -> Vec<ClientId> {
        self.records
            .values()
            .filter(|r| r.lease.expired(now_ms, lease_ms))
            .map(|r| r.id)
            .collect()
    }
}

impl CheckInvariants for ClientTable {
    /// - every record is stored under its id, of this boot;
    /// - the owner index names every record, as the confirmed or the unconfirmed one of
    ///   its owner as the record says, and names nothing else;
    /// - only a confirmed record has sessions, and a session belongs to one record once;
    /// - a cached CREATE_SESSION reply answers the last csa_sequence.
    fn check_invariants(&self) -> Result<(), String> {
        let mut sessions = std::collections::HashSet::new();
        for (id, r) in &self.records {
            if r.id != *id {
                return Err(format!("client {:#x} stored under {id:#x}", r.id));
            }
            if client_id_boot(*id) != self.boot {
                return Err(format!("client {id:#x} not of boot {:#x}", self.boot));
            }
            let Some(e) = self.by_owner.get(&r.owner) else {
                return Err(format!("client {id:#x}: its owner is not indexed"));
            };
            let indexed = if r.confirmed {
                e.confirmed
            } else {
                e.unconfirmed
            };
            if indexed != Some(*id) {
                return Err(format!(
                    "client {id:#x} (confirmed {}): its owner indexes {e:?}",
                    r.confirmed
                ));
            }
            if !r.confirmed && !r.sessions.is_empty() {
                return Err(format!("unconfirmed client {id:#x} has sessions"));
            }
            for sid in &r.sessions {
                if !sessions.insert(*sid) {
                    return Err(format!("session {sid} listed twice (client {id:#x})"));
                }
            }
            if let Some(Ok(reply)) = &r.cs_cache
                && reply.sequence != r.cs_last
            {
                return Err(format!(
                    "client {id:#x}: cached CREATE_SESSION reply for sequence {}, last {}",
                    reply.sequence, r.cs_last
                ));
            }
        }
        for (owner, e) in &self.by_owner {
            if e.confirmed.is_none() && e.unconfirmed.is_none() {
                return Err(format!("owner {owner:02x?} indexed without records"));
            }
            for (id, confirmed) in [(e.confirmed, true), (e.unconfirmed, false)] {
                let Some(id) = id else { continue };
                match self.records.get(&id) {
                    Some(r) if r.owner == *owner && r.confirmed == confirmed => {}
                    _ => {
                        return Err(format!(
                            "owner {owner:02x?} indexes {id:#x} (confirmed {confirmed}), \
                             which is not such a record of that owner"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(owner: &[u8], verifier: u8, flags: u32) -> ExchangeIdArgs<'_> {
        ExchangeIdArgs {
            verifier: [verifier; 8],
            owner,
            flags,
            state_protect: StateProtectArgs::None,
            impl_id: None,
        }
    }

    const ROOT: Principal = Principal::Sys { uid: 0, gid: 0 };
    const USER: Principal = Principal::Sys {
        uid: 1000,
        gid: 1000,
    };

    #[test]
    fn new_confirm_and_same_client_again() {
        let mut t = ClientTable::new(7);
        let (r1, _) = t
            .exchange_id(&args(b"a", 1, 0), ROOT, 0, 90_000, 0)
            .unwrap();
        assert_eq!(r1.flags & exchgid_flag::CONFIRMED_R, 0);
        assert_eq!(r1.sequenceid, 1);
        // Unconfirmed, same owner again: replaced with a new id (case 4).
        let (r2, removed) = t
            .exchange_id(&args(b"a", 1, 0), ROOT, 0, 90_000, 0)
            .unwrap();
        assert_ne!(r1.clientid, r2.clientid);
        assert_eq!(removed.len(), 1);
        assert!(t.confirm(r2.clientid).is_none());
        // Confirmed, same verifier and principal: same id, CONFIRMED_R (case 2).
        let (r3, _) = t
            .exchange_id(&args(b"a", 1, 0), ROOT, 0, 90_000, 0)
            .unwrap();
        assert_eq!(r3.clientid, r2.clientid);
        assert_ne!(r3.flags & exchgid_flag::CONFIRMED_R, 0);
        t.check_invariants().unwrap();
    }

    #[test]
    fn reboot_update_and_collision_cases() {
        let mut t = ClientTable::new(7);
        let (r1, _) = t
            .exchange_id(&args(b"a", 1, 0), ROOT, 0, 90_000, 0)
            .unwrap();
        t.confirm(r1.clientid);
        // Update cases 6, 8, 9, 7.
        let upd = exchgid_flag::UPD_CONFIRMED_REC_A;
        let (r, _) = t
            .exchange_id(&args(b"a", 1, upd), ROOT, 0, 90_000, 0)
            .unwrap();
        assert_eq!(r.clientid, r1.clientid);
        assert_eq!(
            t.exchange_id(&args(b"a", 2, upd), ROOT, 0, 90_000, 0)
                .unwrap_err(),
            status::NFS4ERR_NOT_SAME
        );
        assert_eq!(
            t.exchange_id(&args(b"a", 1, upd), USER, 0, 90_000, 0)
                .unwrap_err(),
            status::NFS4ERR_PERM
        );
        assert_eq!(
            t.exchange_id(&args(b"b", 1, upd), ROOT, 0, 90_000, 0)
                .unwrap_err(),
            status::NFS4ERR_NOENT
        );
        // Collision with a live client holding sessions (case 3).
        t.get_mut(r1.clientid)
            .unwrap()
            .sessions
            .push(SessionId([0; 16]));
        assert_eq!(
            t.exchange_id(&args(b"a", 1, 0), USER, 0, 90_000, 0)
                .unwrap_err(),
            status::NFS4ERR_CLID_INUSE
        );
        // Reboot (case 5): new id, old record kept until the new one is confirmed.
        let (r5, removed) = t
            .exchange_id(&args(b"a", 9, 0), ROOT, 0, 90_000, 0)
            .unwrap();
        assert!(removed.is_empty());
        assert_ne!(r5.clientid, r1.clientid);
        assert!(t.get(r1.clientid).is_some());
        let old = t.confirm(r5.clientid).unwrap();
        assert_eq!(old.id, r1.clientid);
        assert!(t.get(r1.clientid).is_none());
        assert_eq!(t.len(), 1);
        t.check_invariants().unwrap();
    }

    #[test]
    fn check_invariants_finds_a_stale_owner_index() {
        let mut t = ClientTable::new(7);
        let (r, _) = t
            .exchange_id(&args(b"a", 1, 0), ROOT, 0, 90_000, 0)
            .unwrap();
        t.check_invariants().unwrap();
        // Confirmed behind the index's back.
        t.get_mut(r.clientid).unwrap().confirmed = true;
        let e = t.check_invariants().unwrap_err();
        assert!(e.contains("its owner indexes"), "{e}");
        t.get_mut(r.clientid).unwrap().confirmed = false;
        // Removed without its index entry.
        t.records.remove(&r.clientid);
        let e = t.check_invariants().unwrap_err();
        assert!(e.contains("not such a record"), "{e}");
    }
}
