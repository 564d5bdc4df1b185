//! Shared helpers for whole-server tests: a server on ephemeral loopback ports, stopped
//! when dropped, and a bounded wait for asynchronous effects (closes, drains).
//!
//! Each test file declares it `pub mod common;`, so its public helpers count as used in every
//! test binary, whichever ones that file calls, without a blanket `allow(dead_code)`: a
//! private item nothing reaches still warns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringnfs::client::{Client, ClientIds, ClientOptions, RpcConn, Session};
use ringnfs::rpc::Credential;
use ringnfs::server::{Server, ServerConfig};
use ringnfs::state::{SessionId, StateManager};

pub struct TestServer {
    server: Option<Server>,
    pub addrs: Vec<SocketAddr>,
}

impl TestServer {
    /// Two worker threads, one listener on 127.0.0.1 with an ephemeral port.
    pub fn start() -> Self {
        Self::with(|_| {})
    }

    pub fn with(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut cfg = ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            threads: 2,
            pin_cores: false,
            backend: ringnfs::server::BackendKind::Memory,
            ..ServerConfig::default()
        };
        tweak(&mut cfg);
        let server = Server::start(cfg).expect("server starts");
        let addrs = server.local_addrs();
        Self {
            server: Some(server),
            addrs,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn state(&self) -> &Arc<StateManager> {
        self.server.as_ref().expect("running").state()
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    pub fn transport_stats(&self) -> ringnfs::transport::TransportStats {
        self.server.as_ref().expect("running").transport_stats()
    }

    pub fn connect(&self) -> RpcConn {
        RpcConn::connect(self.addr(), Credential::None).expect("connect")
    }

    /// EXCHANGE_ID + CREATE_SESSION (back channel requested) on one connection.
    pub fn session(&self) -> (ClientIds, Arc<Session>) {
        self.session_with(ClientOptions::default())
    }

    pub fn session_with(&self, opts: ClientOptions) -> (ClientIds, Arc<Session>) {
        let opts = ClientOptions {
            timeout: Duration::from_secs(10),
            ..opts
        };
        Client::connect(&self.addrs, opts).expect("client session")
    }

    /// A session with `n` connections, each bound by one SEQUENCE (the first BOTH, the
    /// others FORE).
    pub fn trunked_session(&self, n: usize) -> Arc<Session> {
        let (_, s) = self.session_with(ClientOptions {
            connections: n,
            ..Default::default()
        });
        for i in 0..n {
            let r = s.call(i, &[], false).expect("SEQUENCE");
            assert_eq!(r.status, ringnfs::nfs4::consts::status::NFS4_OK);
        }
        s
    }

    /// Stop the server and wait for it (also done on drop).
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
            s.join().expect("server joins");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn sid(s: &Session) -> SessionId {
    s.sessionid()
}

/// Poll `cond` until it holds or `timeout` passes; returns whether it held. For effects
/// that happen on another thread (a close reaching the server), never for timing claims.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub const WAIT: Duration = Duration::from_secs(10);

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// `tag` names the test in the directory name; process id and a random suffix keep
    /// parallel tests apart.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "ringnfs-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client's callback handler that never answers (a hostile or hung client): every
/// callback the server sends it runs into the server's timeout.
pub struct SilentCallbacks;

impl ringnfs::client::CallbackHandler for SilentCallbacks {
    fn handle(&self, _: &ringnfs::rpc::CallHeader<'_>) -> ringnfs::client::CallbackReply {
        ringnfs::client::CallbackReply::Drop
    }
}

/// Node `id` of cluster `name` (its etcd members' client URLs in `etcd`): the local
/// backend over `base/export`, its state in `base/state-ID`, a 2 s lease; `tweak` sets
/// the rest (and may change these).
pub fn cluster_node(
    etcd: Vec<String>,
    name: &str,
    id: u32,
    base: &std::path::Path,
    tweak: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    let (export, state) = (base.join("export"), base.join(format!("state-{id}")));
    TestServer::with(move |c| {
        c.backend = ringnfs::server::BackendKind::Local;
        c.export_path = export;
        c.state_dir = Some(state);
        c.cluster = Some(ringnfs::cluster::ClusterOptions {
            endpoints: etcd,
            name: name.into(),
            node_id: Some(id),
            node_ttl_secs: 2,
        });
        tweak(c);
    })
}
