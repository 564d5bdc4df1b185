//! Client setup: EXCHANGE_ID, CREATE_SESSION and extra (trunked) connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::callback::{CallbackHandler, DEFAULT_CB_PROGRAM, DefaultCallbackHandler};
use super::compound::ExchangeIdRes;
use super::conn::{DEFAULT_TIMEOUT, RpcConn};
use super::error::ClientError;
use super::ops::wire::CreateSessionResOk;
use super::ops::{
    CallbackSec, ChannelAttrs, CreateSessionArgs, ExchangeIdArgs, ImplId, Op, StateProtect,
    Verifier,
};
use super::session::Session;
use ringnfs_proto::nfs4::consts::{create_session_flag, op};
use ringnfs_proto::rpc::Credential;

/// 1 MiB of payload plus room for RPC and COMPOUND headers.
pub const DEFAULT_MAX_MESSAGE: u32 = (1 << 20) + 1024;

/// How `Client::connect` sets the client and session up.
#[derive(Clone)]
pub struct ClientOptions {
    pub cred: Credential,
    /// co_ownerid; a unique one per call when None.
    pub owner: Option<Vec<u8>>,
    /// co_verifier; random when None.
    pub verifier: Option<Verifier>,
    pub exchange_flags: u32,
    pub state_protect: StateProtect,
    pub impl_id: Option<ImplId>,
    /// Fore-channel slots requested (ca_maxrequests).
    pub slots: u32,
    /// Total connections, spread round robin over the addresses (at least 1).
    pub connections: usize,
    /// Ask for the back channel on the first connection (CONN_BACK_CHAN).
    pub back_channel: bool,
    pub cb_program: u32,
    /// Override the fore / back channel attributes (maxrequests from `slots` otherwise).
    pub fore_attrs: Option<ChannelAttrs>,
    pub back_attrs: Option<ChannelAttrs>,
    pub timeout: Duration,
    /// Callback handler for every connection; a shared [`DefaultCallbackHandler`] when None.
    pub callback_handler: Option<Arc<dyn CallbackHandler>>,
    /// Send RECLAIM_COMPLETE(one_fs = false) after CREATE_SESSION, as a client must
    /// before its first OPEN or LOCK that reclaims nothing (RFC 8881 §18.51.3). On by
    /// default; off for a client that reclaims state first, or a test of the rule.
    pub reclaim_complete: bool,
    /// csa_sec_parms of CREATE_SESSION; when None, the flavor of `cred`.
    pub cb_sec: Option<Vec<CallbackSec>>,
    /// The local address to connect from (e.g. 127.0.0.2, to be another client on
    /// loopback); the system's choice when None.
    pub source: Option<std::net::IpAddr>,
    /// RPC-with-TLS on every connection (RFC 9289); plain TCP when None.
    pub tls: Option<crate::tls::ClientTls>,
    /// RPCSEC_GSS with Kerberos (krb5, krb5i, krb5p) for every call of every connection,
    /// each connection with a context of its own (inside TLS when `tls` is set too);
    /// `cred` then only gives the callbacks' default security (`cb_sec`). AUTH_SYS or
    /// AUTH_NONE from `cred` when None.
    pub gss: Option<crate::gss::ClientGss>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            cred: Credential::None,
            owner: None,
            verifier: None,
            exchange_flags: 0,
            state_protect: StateProtect::None,
            impl_id: None,
            slots: 64,
            connections: 1,
            back_channel: true,
            cb_program: DEFAULT_CB_PROGRAM,
            fore_attrs: None,
            back_attrs: None,
            timeout: DEFAULT_TIMEOUT,
            callback_handler: None,
            reclaim_complete: true,
            cb_sec: None,
            source: None,
            tls: None,
            gss: None,
        }
    }
}

/// Default fore channel attributes for `slots` slots.
pub fn default_fore_attrs(slots: u32) -> ChannelAttrs {
    ChannelAttrs {
        headerpadsize: 0,
        maxrequestsize: DEFAULT_MAX_MESSAGE,
        maxresponsesize: DEFAULT_MAX_MESSAGE,
        maxresponsesize_cached: 64 * 1024,
        maxoperations: 16,
        maxrequests: slots,
        rdma_ird: None,
    }
}

/// Default back channel attributes (one callback slot, as Linux asks).
pub fn default_back_attrs() -> ChannelAttrs {
    ChannelAttrs {
        headerpadsize: 0,
        maxrequestsize: 16 * 1024,
        maxresponsesize: 16 * 1024,
        maxresponsesize_cached: 0,
        maxoperations: 8,
        maxrequests: 1,
        rdma_ird: None,
    }
}

/// A co_ownerid unique to this process and call.
pub fn unique_owner() -> Vec<u8> {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "ringnfs-client-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
    .into_bytes()
}

/// What the server said when the client and session were set up.
#[derive(Debug, Clone)]
pub struct ClientIds {
    pub clientid: u64,
    pub owner: Vec<u8>,
    pub exchange: ExchangeIdRes,
    pub create: CreateSessionResOk,
    /// The shared default callback handler, unless the options supplied one.
    pub callbacks: Option<Arc<DefaultCallbackHandler>>,
}

/// Entry point of the client library.
pub struct Client;

impl Client {
    /// EXCHANGE_ID and CREATE_SESSION on a connection to `addrs[0]`, then open the
    /// remaining connections (round robin over `addrs`) as part of the session. The server
    /// binds the extra connections when their first SEQUENCE arrives.
    pub fn connect(
        addrs: &[SocketAddr],
        opts: ClientOptions,
    ) -> Result<(ClientIds, Arc<Session>), ClientError> {
        let first = *addrs
            .first()
            .ok_or_else(|| ClientError::BadReply("no server address".into()))?;
        let default_handler = match opts.callback_handler {
            Some(_) => None,
            None => Some(Arc::new(DefaultCallbackHandler::new(opts.cb_program))),
        };
        let handler: Arc<dyn CallbackHandler> = match (&opts.callback_handler, &default_handler) {
            (Some(h), _) => h.clone(),
            (None, Some(h)) => h.clone(),
            (None, None) => unreachable!(),
        };
        let conn = open_conn(first, &opts, &handler)?;

        let owner = opts.owner.clone().unwrap_or_else(unique_owner);
        let verifier = opts.verifier.unwrap_or_else(rand::random);
        let r = conn.compound(
            1,
            b"",
            &[Op::ExchangeId(ExchangeIdArgs {
                verifier,
                owner_id: owner.clone(),
                flags: opts.exchange_flags,
                state_protect: opts.state_protect.clone(),
                impl_id: opts.impl_id.clone(),
            })],
        )?;
        let exchange = r.exchange_id()?;
        tracing::debug!(
            clientid = %ringnfs_proto::ids::client_id_str(exchange.clientid),
            "EXCHANGE_ID done"
        );

        let flags = if opts.back_channel {
            create_session_flag::CONN_BACK_CHAN
        } else {
            0
        };
        let create_args = CreateSessionArgs {
            clientid: exchange.clientid,
            sequence: exchange.sequenceid,
            flags,
            fore: opts
                .fore_attrs
                .unwrap_or_else(|| default_fore_attrs(opts.slots)),
            back: opts.back_attrs.unwrap_or_else(default_back_attrs),
            cb_program: opts.cb_program,
            sec_parms: opts
                .cb_sec
                .clone()
                .unwrap_or_else(|| vec![CallbackSec::from_credential(&opts.cred)]),
        };
        let r = conn.compound(1, b"", &[Op::CreateSession(create_args.clone())])?;
        let create = r.create_session()?;
        tracing::debug!(slots = create.fore.maxrequests, "CREATE_SESSION done");

        let session = Arc::new(Session::new(create_args, create, conn));
        for i in 1..opts.connections.max(1) {
            let c = open_conn(addrs[i % addrs.len()], &opts, &handler)?;
            session.add_connection(c);
        }
        if opts.reclaim_complete {
            let r = session.call(0, &[Op::ReclaimComplete { one_fs: false }], false)?;
            r.ok_body(op::RECLAIM_COMPLETE)?;
        }
        Ok((
            ClientIds {
                clientid: exchange.clientid,
                owner,
                exchange,
                create,
                callbacks: default_handler,
            },
            session,
        ))
    }
}

/// One connection of the client: TCP, then TLS and RPCSEC_GSS as the options say.
fn open_conn(
    addr: SocketAddr,
    opts: &ClientOptions,
    handler: &Arc<dyn CallbackHandler>,
) -> Result<RpcConn, ClientError> {
    let mut conn = RpcConn::connect_from(
        addr,
        opts.source,
        opts.cred.clone(),
        handler.clone(),
        opts.tls.as_ref(),
    )?;
    conn.set_timeout(opts.timeout);
    if let Some(gss) = &opts.gss {
        conn.start_gss(gss)?;
    }
    Ok(conn)
}
