//! Fixtures the state crate's unit and property tests share.

use crate::session::ChannelAttrs;

/// Channel attributes a well-behaved client asks for: 1 MiB requests and replies,
/// 64 KiB cached replies, 16 operations, `maxrequests` slots.
pub(crate) fn channel_attrs(maxrequests: u32) -> ChannelAttrs {
    ChannelAttrs {
        headerpadsize: 0,
        maxrequestsize: 1 << 20,
        maxresponsesize: 1 << 20,
        maxresponsesize_cached: 1 << 16,
        maxoperations: 16,
        maxrequests,
        rdma_ird: None,
    }
}
