//! RPC-with-TLS over REST: which files the server uses, and re-reading them (a renewed
//! certificate) without a restart.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Ctx;
use super::error::{ApiError, ApiResult, ErrorBody};

/// The TLS configuration in use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TlsView {
    /// The server's certificate chain (PEM).
    pub cert: String,
    /// Its private key (PEM).
    pub key: String,
    /// CA certificates of client certificates (PEM); absent: clients are not asked for
    /// certificates (no mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<String>,
}

fn view(ctx: &Ctx) -> ApiResult<TlsView> {
    let t = ctx.tls.as_ref().ok_or_else(|| {
        ApiError::not_found("TLS is not configured (ringnfs serve --tls-cert FILE --tls-key FILE)")
    })?;
    let f = t.files();
    Ok(TlsView {
        cert: f.cert.display().to_string(),
        key: f.key.display().to_string(),
        client_ca: f.client_ca.as_ref().map(|p| p.display().to_string()),
    })
}

/// The certificate, key and client CA files RPC-with-TLS uses.
#[utoipa::path(get, path = "/api/v1/tls", tag = "tls",
    responses(
        (status = 200, description = "The TLS files", body = TlsView),
        (status = 404, description = "TLS is not configured", body = ErrorBody)))]
pub async fn get_tls(State(ctx): State<Arc<Ctx>>) -> ApiResult<Json<TlsView>> {
    view(&ctx).map(Json)
}

/// Read the certificate, key and client CA files again: handshakes from now on use
/// them; connections already up keep theirs. A file that cannot be read or used
/// changes nothing.
#[utoipa::path(post, path = "/api/v1/tls/reload", tag = "tls",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reloaded", body = TlsView),
        (status = 400, description = "A file could not be used; the old ones stay", body = ErrorBody),
        (status = 401, description = "Missing or wrong token; nothing changed", body = ErrorBody),
        (status = 404, description = "TLS is not configured", body = ErrorBody)))]
pub async fn reload_tls(State(ctx): State<Arc<Ctx>>) -> ApiResult<Json<TlsView>> {
    let v = view(&ctx)?;
    if let Some(t) = &ctx.tls {
        t.reload()
            .map_err(|e| ApiError::bad_request(format!("{e}; the files in use stay")))?;
        tracing::info!(cert = %v.cert, "TLS files reloaded by the operator");
    }
    Ok(Json(v))
}
