//! Acting as the client: the server runs as root, and around each operation that
//! changes something it switches the *calling thread's* file-system credentials (fsuid,
//! fsgid, supplementary groups) to the caller's, so the kernel makes every POSIX
//! permission decision (write+search on directories, sticky bit, chown/chmod rules,
//! device creation, set-id clearing). A guard puts root's back when dropped.
//!
//! setfsuid(2)/setfsgid(2) are per-thread in glibc (no cross-thread broadcast), and so is
//! the raw `setgroups` syscall; glibc's `setgroups()` wrapper would change every thread of
//! the process, so it is not used. A non-zero fsuid drops the fs capabilities
//! (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN, CAP_MKNOD, ...) until it
//! is set back to 0, which is exactly what we want for the caller's operation; it also
//! means `open_by_handle_at` must happen before switching.

use std::marker::PhantomData;

use crate::{Caller, FsError, FsResult};

/// Most supplementary groups passed on (AUTH_SYS carries at most 16).
const MAX_GROUPS: usize = 64;

/// While alive, the thread's fs credentials are the caller's (unless the caller is root).
pub(super) struct CredGuard {
    saved: Option<Saved>,
    /// Credentials belong to the thread: the guard must be dropped where it was made.
    _not_send: PhantomData<*const ()>,
}

struct Saved {
    fsuid: u32,
    fsgid: u32,
    groups: Vec<libc::gid_t>,
}

fn current_fsuid() -> u32 {
    // SAFETY: an invalid id (-1) changes nothing and returns the current fsuid.
    unsafe { libc::setfsuid(u32::MAX) as u32 }
}

fn current_fsgid() -> u32 {
    // SAFETY: an invalid id (-1) changes nothing and returns the current fsgid.
    unsafe { libc::setfsgid(u32::MAX) as u32 }
}

fn thread_groups() -> FsResult<Vec<libc::gid_t>> {
    // SAFETY: with size 0 getgroups only returns the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n < 0 {
        return Err(FsError::Io);
    }
    let mut v = vec![0 as libc::gid_t; n as usize];
    // SAFETY: `v` has room for `n` ids.
    let m = unsafe { libc::getgroups(n, v.as_mut_ptr()) };
    if m < 0 {
        return Err(FsError::Io);
    }
    v.truncate(m as usize);
    Ok(v)
}

/// Per-thread setgroups (the raw syscall, not glibc's process-wide wrapper).
fn set_thread_groups(groups: &[libc::gid_t]) -> bool {
    // SAFETY: `groups` is readable for `groups.len()` ids during the call.
    unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) == 0 }
}

impl CredGuard {
    /// Become `caller` for file-system checks on this thread (no change for uid 0).
    pub(super) fn switch(caller: &Caller) -> FsResult<Self> {
        if caller.uid == 0 {
            return Ok(CredGuard {
                saved: None,
                _not_send: PhantomData,
            });
        }
        let saved = Saved {
            fsuid: current_fsuid(),
            fsgid: current_fsgid(),
            groups: thread_groups()?,
        };
        // From here on, dropping the guard restores whatever was changed.
        let guard = CredGuard {
            saved: Some(saved),
            _not_send: PhantomData,
        };
        let mut groups: Vec<libc::gid_t> = caller.gids.iter().copied().take(MAX_GROUPS).collect();
        groups.sort_unstable();
        groups.dedup();
        if !set_thread_groups(&groups) {
            return Err(FsError::Perm);
        }
        // SAFETY: plain per-thread syscalls; they return the previous id.
        unsafe {
            libc::setfsgid(caller.gid);
            libc::setfsuid(caller.uid);
        }
        if current_fsgid() != caller.gid || current_fsuid() != caller.uid {
            // Not privileged enough to act as the caller: refuse rather than act as root.
            return Err(FsError::Perm);
        }
        Ok(guard)
    }
}

impl Drop for CredGuard {
    fn drop(&mut self) {
        if let Some(s) = self.saved.take() {
            // SAFETY: plain per-thread syscalls. fsuid first: going back to 0 restores
            // the fs capabilities needed to set the rest.
            unsafe {
                libc::setfsuid(s.fsuid);
                libc::setfsgid(s.fsgid);
            }
            let ok = set_thread_groups(&s.groups);
            if !ok || current_fsuid() != s.fsuid || current_fsgid() != s.fsgid {
                // Continuing as someone else would be a security bug.
                tracing::error!("local backend: could not restore the thread's credentials");
                std::process::abort();
            }
        }
    }
}
