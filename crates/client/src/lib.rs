//! NFSv4.1 client: connections, COMPOUND encoding, sessions, RPC-with-TLS and RPCSEC_GSS.
//! Depends on the wire types and on the Kerberos mechanism (`ringnfs-gss`), never on the
//! server. The load generator built on it is `ringnfs-bench`.

pub mod callback;
pub mod compound;
pub mod conn;
pub mod error;
pub mod files;
pub mod gss;
#[cfg(any(test, feature = "mock"))]
pub mod mock;
pub mod ops;
pub mod session;
mod setup;
pub mod tls;

pub use callback::{
    CallbackHandler, CallbackReply, CallbackStats, DEFAULT_CB_PROGRAM, DefaultCallbackHandler,
};
pub use compound::{
    ChangeInfo, CompoundReply, Delegation, DirEntry, ExchangeIdRes, FileAttrs, LockDenied,
    OpResult, OpenRes, ReadPlusRes, ReadRes, ReaddirRes, ServerOwner, StateProtectRes, WriteRes,
};
pub use conn::{ReplyBody, RpcConn};
pub use error::ClientError;
pub use files::{Fh, Files, OpenFile};
pub use gss::ClientGss;
/// The proto argument and result types the client uses as they are (their XDR is the
/// server's).
pub use ops::wire::{
    BindConnArgs, BindConnResOk, CloneArgs, CloseArgs, CommitArgs, CreateSessionResOk,
    ListXattrsArgs, LockuArgs, OpenDowngradeArgs, ReadArgs, ReaddirArgs, SeekArgs, SeekResOk,
    SequenceArgs, SequenceResOk, SpaceArgs, data_content4, setxattr_option4,
};
pub use ops::{
    CallbackSec, ChannelAttrs, CreateSessionArgs, CreateType, ExchangeIdArgs, Fattr, ImplId,
    Locker, Op, OpenArgs, OpenClaim, OpenHow, SessionId, StateProtect, Stateid, TimeSet, Verifier,
};
/// RPCSEC_GSS's services, for [`ClientGss::service`].
pub use ringnfs_proto::rpc::gss::GssService;
pub use session::Session;
pub use setup::{
    Client, ClientIds, ClientOptions, DEFAULT_MAX_MESSAGE, default_back_attrs, default_fore_attrs,
    unique_owner,
};
pub use tls::ClientTls;

#[cfg(test)]
mod tests {
    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Session>();
        check::<super::RpcConn>();
        check::<super::DefaultCallbackHandler>();
    }
}
