//! Exports over the control plane: their description (the same `[[export]]` table the
//! config file holds, as JSON), the REST handlers that list, add, change and remove
//! them, and the [`ExportAdmin`] the server gives the control plane to do it (the
//! server opens backends; this crate does not know them).

pub mod exports5;

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Ctx;
use super::error::{ApiError, ApiResult, ErrorBody};

/// Declares a description struct with its own fields followed by the access options
/// (`read_only`, `root_squash`, `all_squash`, `anon_uid`, `anon_gid`, `sec`, `xprtsec`),
/// and its
/// [`AccessSpec`]. Spelled out in each struct rather than flattened: serde cannot refuse
/// unknown keys of a flattened struct, and a misspelled option must be an error.
macro_rules! with_access_options {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub read_only: Option<bool>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub root_squash: Option<bool>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub all_squash: Option<bool>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(format = "uint32")]
            pub anon_uid: Option<u32>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(format = "uint32")]
            pub anon_gid: Option<u32>,
            /// Security flavors admitted, in the order SECINFO lists them: "sys", "none".
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub sec: Option<Vec<String>>,
            /// Transport security admitted (knfsd's `xprtsec`): "none" (plain TCP),
            /// "tls" (RPC-with-TLS), "mtls" (TLS with a verified client certificate).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub xprtsec: Option<Vec<String>>,
        }

        impl $name {
            /// The access options this names.
            pub fn access(&self) -> AccessSpec {
                AccessSpec {
                    read_only: self.read_only,
                    root_squash: self.root_squash,
                    all_squash: self.all_squash,
                    anon_uid: self.anon_uid,
                    anon_gid: self.anon_gid,
                    sec: self.sec.clone(),
                    xprtsec: self.xprtsec.clone(),
                }
            }
        }
    };
}

with_access_options! {
    /// One export: where its files are, where clients find it, and who may do what. An
    /// option left out takes the server's default (`ringnfs serve --help`).
    pub struct ExportSpec {
        /// Where clients find it in the pseudo file system, e.g. "/home". "/" only for
        /// an export that is the only one.
        #[schema(example = "/home")]
        pub pseudo: String,
        /// The exported directory (local backend).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(example = "/srv/home")]
        pub path: Option<String>,
        /// "local" or "memory" (default: the server's `--backend`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub backend: Option<String>,
        /// The export's number: its file handles carry it and clients see it as the
        /// fsid (default: a hash of the pseudo path, stable across restarts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(format = "uint32")]
        pub fsid: Option<u32>,
        /// "buffered", "dontcache" or "direct" (local backend).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub io_mode: Option<String>,
        /// Client rules, first match wins (as exports(5)); a client none matches may not
        /// use the export. None: every client (or those `--allow` names), with the
        /// options here.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub clients: Vec<ClientSpec>,
    }
}

with_access_options! {
    /// A client rule: who, and what they may do (left out: what the export says).
    pub struct ClientSpec {
        /// `*`, an IP address, a network in CIDR notation, or a host name (resolved
        /// when the rule is made).
        #[schema(example = "10.0.0.0/8")]
        pub host: String,
    }
}

/// What a client may do, as [`ExportSpec`] and [`ClientSpec`] say it. Left out: the
/// export's value (for a client rule) or the server's default (for the export).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessSpec {
    pub read_only: Option<bool>,
    pub root_squash: Option<bool>,
    pub all_squash: Option<bool>,
    pub anon_uid: Option<u32>,
    pub anon_gid: Option<u32>,
    pub sec: Option<Vec<String>>,
    pub xprtsec: Option<Vec<String>>,
}

/// An export as served now, with its counters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportView {
    /// The export's number (its fsid): `PUT` and `DELETE /api/v1/exports/{id}` take it.
    #[schema(format = "uint32")]
    pub id: u32,
    /// Its description, as added or last changed.
    pub export: ExportSpec,
    /// Operations on the export's files since it was added.
    pub ops: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// Why an export change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportError {
    /// The change is invalid (the message says why); nothing changed.
    Invalid(String),
    /// No export has that number.
    NotFound(u32),
    /// It could not be written to the state directory; nothing changed.
    Persist(String),
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::Invalid(m) | ExportError::Persist(m) => f.write_str(m),
            ExportError::NotFound(id) => write!(f, "no export has the id {id}"),
        }
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        let status = match e {
            ExportError::Invalid(_) => StatusCode::BAD_REQUEST,
            ExportError::NotFound(_) => StatusCode::NOT_FOUND,
            ExportError::Persist(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// What the server does for the control plane's export requests. Each change is
/// checked whole (all exports together) before anything changes, persisted, then
/// served; a change touches no other export's clients.
pub trait ExportAdmin: Send + Sync {
    fn list(&self) -> Vec<ExportView>;
    fn add(&self, spec: ExportSpec) -> Result<ExportView, ExportError>;
    fn update(&self, id: u32, spec: ExportSpec) -> Result<ExportView, ExportError>;
    fn remove(&self, id: u32) -> Result<(), ExportError>;
}

impl std::fmt::Debug for dyn ExportAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportAdmin")
    }
}

fn admin(ctx: &Ctx) -> ApiResult<&Arc<dyn ExportAdmin>> {
    ctx.exports
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this server has no export administration"))
}

fn body(b: &[u8]) -> ApiResult<ExportSpec> {
    serde_json::from_slice(b).map_err(|e| ApiError::bad_request(format!("invalid export: {e}")))
}

/// The exports served now, by id, with their counters.
#[utoipa::path(get, path = "/api/v1/exports", tag = "exports",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Exports", body = [ExportView]),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody)))]
pub async fn list_exports(State(ctx): State<Arc<Ctx>>) -> ApiResult<Json<Vec<ExportView>>> {
    Ok(Json(admin(&ctx)?.list()))
}

/// One export as served now, with its counters.
#[utoipa::path(get, path = "/api/v1/exports/{id}", tag = "exports",
    params(("id" = u32, Path, format = "uint32", description = "The export's id (its fsid)")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The export", body = ExportView),
        (status = 400, description = "Not an export id", body = ErrorBody),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody),
        (status = 404, description = "No such export", body = ErrorBody)))]
pub async fn get_export(
    State(ctx): State<Arc<Ctx>>,
    id: Result<Path<u32>, PathRejection>,
) -> ApiResult<Json<ExportView>> {
    let Path(id) = id?;
    admin(&ctx)?
        .list()
        .into_iter()
        .find(|v| v.id == id)
        .map(Json)
        .ok_or_else(|| ExportError::NotFound(id).into())
}

/// Add an export: checked with all the others, persisted, then served.
#[utoipa::path(post, path = "/api/v1/exports", tag = "exports",
    request_body = ExportSpec,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The export as served", body = ExportView),
        (status = 400, description = "Invalid, or in conflict with another export; nothing changed", body = ErrorBody),
        (status = 401, description = "Missing or wrong token; nothing changed", body = ErrorBody),
        (status = 500, description = "Could not persist; nothing changed", body = ErrorBody)))]
pub async fn add_export(
    State(ctx): State<Arc<Ctx>>,
    b: Bytes,
) -> ApiResult<(StatusCode, Json<ExportView>)> {
    let spec = body(&b)?;
    let view = admin(&ctx)?.add(spec)?;
    tracing::info!(export = %view.export.pseudo, id = view.id, "export added by the operator");
    Ok((StatusCode::CREATED, Json(view)))
}

/// Replace an export's description. Options alone change in place (its clients keep
/// their state); a new directory, backend, pseudo path or fsid serves a new export
/// there (the old one's handles become stale).
#[utoipa::path(put, path = "/api/v1/exports/{id}", tag = "exports",
    params(("id" = u32, Path, format = "uint32", description = "The export's id (its fsid)")),
    request_body = ExportSpec,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The export as served", body = ExportView),
        (status = 400, description = "Invalid, not an export id, or in conflict with another export; nothing changed", body = ErrorBody),
        (status = 401, description = "Missing or wrong token; nothing changed", body = ErrorBody),
        (status = 404, description = "No such export", body = ErrorBody),
        (status = 500, description = "Could not persist; nothing changed", body = ErrorBody)))]
pub async fn update_export(
    State(ctx): State<Arc<Ctx>>,
    id: Result<Path<u32>, PathRejection>,
    b: Bytes,
) -> ApiResult<Json<ExportView>> {
    let Path(id) = id?;
    let spec = body(&b)?;
    let view = admin(&ctx)?.update(id, spec)?;
    tracing::info!(export = %view.export.pseudo, id, "export changed by the operator");
    Ok(Json(view))
}

/// Stop serving an export: its file handles answer NFS4ERR_STALE from then on; other
/// exports' clients see nothing.
#[utoipa::path(delete, path = "/api/v1/exports/{id}", tag = "exports",
    params(("id" = u32, Path, format = "uint32", description = "The export's id (its fsid)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not an export id, or the last export; nothing changed", body = ErrorBody),
        (status = 401, description = "Missing or wrong token; nothing changed", body = ErrorBody),
        (status = 404, description = "No such export", body = ErrorBody),
        (status = 500, description = "Could not persist; nothing changed", body = ErrorBody)))]
pub async fn remove_export(
    State(ctx): State<Arc<Ctx>>,
    id: Result<Path<u32>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    admin(&ctx)?.remove(id)?;
    tracing::info!(id, "export removed by the operator");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form() {
        let s: ExportSpec = serde_json::from_str(
            r#"{"pseudo": "/home", "path": "/srv/home", "read_only": true,
                "clients": [{"host": "10.0.0.0/8", "root_squash": false}]}"#,
        )
        .unwrap();
        assert_eq!(s.access().read_only, Some(true));
        assert_eq!(s.clients[0].access().root_squash, Some(false));
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["read_only"], true);
        assert!(back.get("fsid").is_none());
        let e = serde_json::from_str::<ExportSpec>(r#"{"pseudo": "/a", "rw": true}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rw"), "{e}");
    }
}
