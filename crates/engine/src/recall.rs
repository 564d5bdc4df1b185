//! Delegation recalls (RFC 8881 §10.4): CB_RECALL to the holder on any of its sessions
//! with a back channel, through the callback dispatcher (`cb_dispatch.rs`, never a
//! worker); also CB_GETATTR to a write delegation's holder when another client asks for
//! the file's size or change (§10.4.3), followed by a recall when it gets no answer. The
//! access that conflicts answers NFS4ERR_DELAY meanwhile (the state layer marks each
//! delegation recalled once, so each is recalled once); a holder that does not return it
//! within a lease loses it (the lease reaper revokes it). A recall that reaches none of
//! the holder's sessions marks its callback path down.

use ringnfs_proto::nfs4::ops::CbRecallArgs;
use ringnfs_proto::stateid::Stateid;

use crate::callback::{getattr_op, getattr_result, recall_op};
use crate::cb_dispatch::{Callbacks, Target};

/// The engine's delegation callbacks.
pub struct Recalls {
    callbacks: Callbacks,
}

impl Recalls {
    pub fn new(callbacks: Callbacks) -> Self {
        Recalls { callbacks }
    }

    /// Recall each of `delegations` (holder, stateid) of the file whose filehandle is
    /// `fh`.
    pub fn send(&self, delegations: Vec<(u64, Stateid)>, fh: &[u8]) {
        for (client, stateid) in delegations {
            recall(&self.callbacks, client, stateid, fh);
        }
    }

    /// Ask the holder of write delegation `stateid` of the file whose filehandle is `fh`
    /// for its size and change attribute (CB_GETATTR); if it does not answer, recall the
    /// delegation.
    pub fn ask_attrs(&self, client: u64, stateid: Stateid, fh: &[u8]) {
        let fh = fh.to_vec();
        let op = getattr_op(&fh);
        self.callbacks.call(
            Target::Client(client),
            1,
            op,
            Box::new(move |cbs, r| {
                let answer = match r.and_then(|body| getattr_result(&body)) {
                    Ok(a) => a.change.zip(a.size),
                    Err(e) => {
                        tracing::debug!(client, "CB_GETATTR failed: {e}");
                        None
                    }
                };
                let now = std::time::Instant::now();
                if cbs
                    .state()
                    .files
                    .holder_attrs_answered(&stateid, answer, now)
                {
                    tracing::info!(client, "CB_GETATTR not answered: recalling the delegation");
                    recall(cbs, client, stateid, &fh);
                }
            }),
        );
    }
}

fn recall(callbacks: &Callbacks, client: u64, stateid: Stateid, fh: &[u8]) {
    let op = recall_op(&CbRecallArgs {
        stateid,
        truncate: false,
        fh,
    });
    callbacks.call(
        Target::Client(client),
        1,
        op,
        Box::new(move |cbs, r| match r {
            Ok(_) => {
                tracing::debug!(client, "CB_RECALL delivered");
                cbs.state().files.callback_path(client, true);
            }
            Err(e) => {
                // The holder keeps the delegation until it returns it or the lease runs
                // out; it hears SEQ4_STATUS_CB_PATH_DOWN and gets no new delegation
                // until a callback gets through or it binds a back channel again.
                cbs.state().files.callback_path(client, false);
                tracing::info!(
                    client,
                    "CB_RECALL not delivered ({e}): revoked after a lease unless returned"
                );
            }
        }),
    );
}
