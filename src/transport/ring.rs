//! Creating a worker's io_uring: `SINGLE_ISSUER | DEFER_TASKRUN`, falling back to
//! `COOP_TASKRUN`, then to no flags, as the kernel allows.

use std::io;

use io_uring::IoUring;

/// Which setup flags the ring was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingMode {
    DeferTaskrun,
    CoopTaskrun,
    Plain,
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
}
