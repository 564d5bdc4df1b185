//! The fore-channel slot table and reply cache of one session (RFC 8881 §2.10.6).

use ringnfs_proto::nfs4::consts::{NfsStatus, status};

/// What a slot keeps of its last reply.
#[derive(Debug, Clone, Default)]
pub enum CachedReply {
    /// Nothing yet (fresh slot, or a request still executing).
    #[default]
    Empty,
    /// The whole COMPOUND4res body (`sa_cachethis` was set).
    Full(Vec<u8>),
    /// Only the SEQUENCE result: a retry of a multi-op compound gets
    /// NFS4ERR_RETRY_UNCACHED_REP on the op after SEQUENCE.
    SequenceOnly { seq_resok: Vec<u8>, ops: u32 },
}

#[derive(Debug, Clone, Default)]
pub struct Slot {
    /// Sequence id of the last request executed on this slot.
    pub seqid: u32,
    /// False until the first request (which must carry seqid 1).
    pub used: bool,
    pub in_progress: bool,
    /// Fingerprint of the last request, to tell a retry from a false retry.
    pub request_hash: u64,
    pub reply: CachedReply,
}

/// Outcome of checking a SEQUENCE against its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotCheck {
    /// seqid = last + 1: execute the request.
    New,
    /// seqid = last and the same request: answer from the cache.
    Replay,
    /// An error for the SEQUENCE op itself.
    Error(NfsStatus),
}

#[derive(Debug)]
pub struct SlotTable {
    slots: Vec<Slot>,
}

impl SlotTable {
    pub fn new(count: u32) -> Self {
        Self {
            slots: vec![Slot::default(); count.max(1) as usize],
        }
    }

    pub fn len(&self) -> u32 {
        self.slots.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn get(&self, slotid: u32) -> Option<&Slot> {
        self.slots.get(slotid as usize)
    }

    /// Check (without changing anything) what a SEQUENCE with this slot/seqid means.
    pub fn check(&self, slotid: u32, seqid: u32, request_hash: u64) -> SlotCheck {
        let Some(slot) = self.slots.get(slotid as usize) else {
            return SlotCheck::Error(status::NFS4ERR_BADSLOT);
        };
        if slot.used && seqid == slot.seqid {
            if slot.in_progress {
                // The original is still executing; the client will retry.
                return SlotCheck::Error(status::NFS4ERR_DELAY);
            }
            if slot.request_hash != request_hash {
                return SlotCheck::Error(status::NFS4ERR_SEQ_FALSE_RETRY);
            }
            return SlotCheck::Replay;
        }
        let expected = if slot.used {
            slot.seqid.wrapping_add(1)
        } else {
            1
        };
        if seqid == expected {
            return SlotCheck::New;
        }
        SlotCheck::Error(status::NFS4ERR_SEQ_MISORDERED)
    }

    /// Start executing a new request on the slot (after `check` said `New`).
    pub fn begin(&mut self, slotid: u32, seqid: u32, request_hash: u64) {
        if let Some(slot) = self.slots.get_mut(slotid as usize) {
            slot.seqid = seqid;
            slot.used = true;
            slot.in_progress = true;
            slot.request_hash = request_hash;
            slot.reply = CachedReply::Empty;
        }
    }

    /// Store the reply of the request that `begin` started, if the slot still holds it.
    pub fn complete(&mut self, slotid: u32, seqid: u32, reply: CachedReply) {
        if let Some(slot) = self.slots.get_mut(slotid as usize)
            && slot.seqid == seqid
            && slot.in_progress
        {
            slot.in_progress = false;
            slot.reply = reply;
        }
    }

    /// Highest slot id in use (a slot that has been used or is executing).
    #[cfg(test)]
    pub fn highest_used(&self) -> u32 {
        self.slots.iter().rposition(|s| s.used).unwrap_or(0) as u32
    }

    /// A slot never used is blank; a slot executing a request (which is always the one
    /// of its last sequence id: a slot keeps no other) has no reply yet.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.slots.is_empty() {
            return Err("a slot table without slots".into());
        }
        for (i, s) in self.slots.iter().enumerate() {
            if !s.used
                && (s.in_progress
                    || s.seqid != 0
                    || s.request_hash != 0
                    || !matches!(s.reply, CachedReply::Empty))
            {
                return Err(format!("slot {i} never used but not blank: {s:?}"));
            }
            if s.in_progress && !matches!(s.reply, CachedReply::Empty) {
                return Err(format!(
                    "slot {i} executing seqid {} holds a reply already",
                    s.seqid
                ));
            }
        }
        Ok(())
    }

    /// Bytes held by cached replies.
    pub fn cached_bytes(&self) -> usize {
        self.slots
            .iter()
            .map(|s| match &s.reply {
                CachedReply::Empty => 0,
                CachedReply::Full(v) => v.len(),
                CachedReply::SequenceOnly { seq_resok, .. } => seq_resok.len(),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_rules() {
        let mut t = SlotTable::new(4);
        assert_eq!(t.check(4, 1, 0), SlotCheck::Error(status::NFS4ERR_BADSLOT));
        // A fresh slot expects seqid 1; 0 and 2 are misordered.
        assert_eq!(
            t.check(0, 0, 0),
            SlotCheck::Error(status::NFS4ERR_SEQ_MISORDERED)
        );
        assert_eq!(
            t.check(0, 2, 0),
            SlotCheck::Error(status::NFS4ERR_SEQ_MISORDERED)
        );
        assert_eq!(t.check(0, 1, 7), SlotCheck::New);
        t.begin(0, 1, 7);
        assert_eq!(t.check(0, 1, 7), SlotCheck::Error(status::NFS4ERR_DELAY));
        t.complete(0, 1, CachedReply::Full(vec![1, 2, 3]));
        assert_eq!(t.check(0, 1, 7), SlotCheck::Replay);
        assert_eq!(
            t.check(0, 1, 8),
            SlotCheck::Error(status::NFS4ERR_SEQ_FALSE_RETRY)
        );
        assert_eq!(t.check(0, 2, 9), SlotCheck::New);
        assert_eq!(
            t.check(0, 3, 9),
            SlotCheck::Error(status::NFS4ERR_SEQ_MISORDERED)
        );
        assert_eq!(t.highest_used(), 0);
        assert_eq!(t.cached_bytes(), 3);
        t.check_invariants().unwrap();
        t.slots[1].reply = CachedReply::Full(vec![1]);
        assert!(t.check_invariants().unwrap_err().contains("never used"));
    }

    #[test]
    fn seqid_wraps() {
        let mut t = SlotTable::new(1);
        t.begin(0, u32::MAX, 1);
        t.complete(0, u32::MAX, CachedReply::Empty);
        // After 0xffffffff comes 0: RFC 8881 sequence ids wrap.
        assert_eq!(t.check(0, 0, 2), SlotCheck::New);
        assert_eq!(
            t.check(0, 1, 2),
            SlotCheck::Error(status::NFS4ERR_SEQ_MISORDERED)
        );
    }
}
