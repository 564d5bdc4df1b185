//! Creating a worker's io_uring: `SINGLE_ISSUER | DEFER_TASKRUN`, falling back to
//! `COOP_TASKRUN`, then to no flags, as the kernel allows. With SQPOLL asked for
//! (off by default) a separate path: `SQPOLL` only (it excludes `DEFER_TASKRUN`),
//! no fallback, so a kernel that refuses it fails the start visibly.

use std::io;

use io_uring::IoUring;

/// Which setup flags the ring was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingMode {
    DeferTaskrun,
    CoopTaskrun,
    Plain,
    /// A kernel thread polls the submission queue.
    SqPoll,
}

/// Build a ring: with `sqpoll_idle_ms` Some, an SQPOLL ring whose kernel thread sleeps
/// after that many idle milliseconds; otherwise [`build`].
pub(crate) fn build_with(
    entries: u32,
    sqpoll_idle_ms: Option<u32>,
) -> io::Result<(IoUring, RingMode)> {
    let Some(idle) = sqpoll_idle_ms else {
        return build(entries);
    };
    let ring = IoUring::builder()
        .setup_sqpoll(idle)
        .setup_cqsize(entries.saturating_mul(4))
        .setup_clamp()
        .build(entries)
        .map_err(|e| io::Error::new(e.kind(), format!("io_uring with SQPOLL refused: {e}")))?;
    Ok((ring, RingMode::SqPoll))
}

pub(crate) fn build(entries: u32) -> io::Result<(IoUring, RingMode)> {
    let cq = entries.saturating_mul(4);
    match IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(cq)
        .setup_clamp()
        .build(entries)
    {
        Ok(r) => return Ok((r, RingMode::DeferTaskrun)),
        Err(e) => tracing::debug!("io_uring SINGLE_ISSUER|DEFER_TASKRUN refused: {e}"),
    }
    match IoUring::builder()
        .setup_coop_taskrun()
        .setup_cqsize(cq)
        .setup_clamp()
        .build(entries)
    {
        Ok(r) => return Ok((r, RingMode::CoopTaskrun)),
        Err(e) => tracing::debug!("io_uring COOP_TASKRUN refused: {e}"),
    }
    Ok((
        IoUring::builder()
            .setup_cqsize(cq)
            .setup_clamp()
            .build(entries)?,
        RingMode::Plain,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn builds_with_some_mode() {
        let (ring, mode) = super::build(64).unwrap();
        assert!(ring.params().sq_entries() >= 64);
        tracing::debug!(?mode, "ring mode");
    }

    #[test]
    fn sqpoll_path_is_separate() {
        // Kernels or sandboxes may refuse SQPOLL; when it builds, it is an SQPOLL ring.
        if let Ok((ring, mode)) = super::build_with(64, Some(10)) {
            assert_eq!(mode, super::RingMode::SqPoll);
            assert!(ring.params().is_setup_sqpoll());
        }
        let (ring, mode) = super::build_with(64, None).unwrap();
        assert_ne!(mode, super::RingMode::SqPoll);
        assert!(!ring.params().is_setup_sqpoll());
    }
}
