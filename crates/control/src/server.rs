//! The control plane's thread: a current-thread tokio runtime serving the axum router
//! on one listener, stopped by a oneshot signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use super::error::ApiError;
use super::{ControlConfig, Ctx, api, auth, cluster, exports, openapi, tls};
use ringnfs_state::StateManager;
use ringnfs_transport::TransportStats;

/// How long a stop waits for requests in flight.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A running control plane.
pub struct ControlHandle {
    addr: SocketAddr,
    token_path: Option<PathBuf>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl ControlHandle {
    /// The address actually bound (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token file, when there is one.
    pub fn token_path(&self) -> Option<&std::path::Path> {
        self.token_path.as_deref()
    }

    /// Stop serving and wait for the thread (idempotent).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The router (also usable without a listener, e.g. in tests).
pub fn router(ctx: Arc<Ctx>) -> Router {
    let api = Router::new()
        .route("/clients", get(api::list_clients))
        .route("/clients/{id}", get(api::get_client))
        .route("/sessions", get(api::list_sessions))
        .route(
            "/sessions/{id}",
            get(api::get_session).delete(api::delete_session),
        )
        .route("/connections", get(api::list_connections))
        .route("/connections/{id}/drain", post(api::drain_connection))
        .route(
            "/settings",
            get(api::get_settings).patch(api::patch_settings),
        )
        .route(
            "/settings/persisted",
            axum::routing::delete(api::reset_settings),
        )
        .route(
            "/settings/persisted/{key}",
            axum::routing::delete(api::reset_setting),
        )
        .route(
            "/exports",
            get(exports::list_exports).post(exports::add_export),
        )
        .route(
            "/exports/{id}",
            get(exports::get_export)
                .put(exports::update_export)
                .delete(exports::remove_export),
        )
        .route("/cluster", get(cluster::get_cluster))
        .route("/tls", get(tls::get_tls))
        .route("/tls/reload", post(tls::reload_tls))
        .route("/openapi.json", get(openapi::openapi_document));
    Router::new()
        .route("/metrics", get(openapi::scrape_metrics))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::not_found("no such endpoint").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response()
        })
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::require_token,
        ))
        .with_state(ctx)
}

/// Bind the listener (errors come back here) and start the control thread.
pub fn start(
    cfg: ControlConfig,
    state: Arc<StateManager>,
    transport_stats: Box<dyn Fn() -> TransportStats + Send + Sync>,
) -> anyhow::Result<ControlHandle> {
    let token = match &cfg.token_file {
        Some(p) => auth::load_or_create_token(p)?,
        None => auth::fresh_token(),
    };
    let listener = std::net::TcpListener::bind(cfg.addr)
        .with_context(|| format!("binding the control address {}", cfg.addr))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let token_always = !addr.ip().is_loopback();
    if token_always {
        tracing::warn!(%addr, "control plane on a non-loopback address: every request needs the token");
    }
    let ctx = Arc::new(Ctx {
        state,
        transport_stats,
        token,
        token_always,
        state_dir: cfg.state_dir.clone(),
        start_settings: cfg.start_settings.clone(),
        settings_lock: parking_lot::Mutex::new(()),
        exports: cfg.exports.clone(),
        tls: cfg.tls.clone(),
        share_settings: cfg.share_settings.clone(),
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let app = router(ctx);
    let thread = std::thread::Builder::new()
        .name("ringnfs-control".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "control plane: no tokio runtime");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "control plane: listener");
                        return;
                    }
                };
                let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                let serve = axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(stopped(rx.clone()));
                // Requests in flight get a moment to finish; a client that holds its
                // connection open without finishing a request does not hold up the stop.
                tokio::select! {
                    served = serve => if let Err(e) = served {
                        tracing::error!(error = %e, "control plane stopped");
                    },
                    _ = async {
                        stopped(rx).await;
                        tokio::time::sleep(STOP_GRACE).await;
                    } => tracing::debug!("control plane: stopped with connections still open"),
                }
            });
        })
        .context("spawning the control thread")?;
    tracing::info!(%addr, "control plane listening");
    Ok(ControlHandle {
        addr,
        token_path: cfg.token_file,
        stop: Some(tx),
        thread: Some(thread),
    })
}
