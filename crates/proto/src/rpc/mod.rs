//! ONC RPC (RFC 5531): record marking, call headers, credentials, replies.

pub mod auth;
pub mod gss;
pub mod message;
pub mod record;

pub use auth::{AuthSys, Credential, GssCaller};
pub use message::{
    AcceptStat, CallHeader, MsgError, ReplyHeader, RpcMessage, decode_message, encode_accepted,
    encode_call, encode_rejected_auth, encode_rpc_mismatch,
};
pub use record::{RecordAssembler, RecordError};
