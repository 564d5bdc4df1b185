//! REST handlers under `/api/v1` and the JSON types they answer with. The types mirror
//! the query API's snapshots ([`ringnfs_state::query`]) so the OpenAPI document can
//! describe them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Ctx;
use super::error::{ApiError, ApiResult, ErrorBody};
use ringnfs_state::binding::Direction;
use ringnfs_state::ids::{client_id_str, hex};
use ringnfs_state::query::{BoundConnInfo, ClientInfo, ConnInfo, SessionInfo};
use ringnfs_state::session::ChannelAttrs;
use ringnfs_state::settings::{PersistedSettings, SETTING_KEYS, unknown_key};
use ringnfs_state::{Principal, SessionId};

// ---- JSON types -----------------------------------------------------------------------

/// Who created a client record, as far as state protection is concerned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PrincipalDto {
    /// "none", "sys" or "krb5" (RPCSEC_GSS, whatever the service).
    pub flavor: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The Kerberos principal, for "krb5".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientDto {
    /// The clientid4 as a number: unsigned 64 bits, the server's boot time in the upper
    /// half, so above 2^53 (beyond exact JavaScript numbers and jq); `id_str` has it
    /// exactly.
    #[schema(format = "uint64")]
    pub id: u64,
    /// The clientid4 as logs and `ringnfs ctl` print it: `0x` and 16 hex digits. The API
    /// takes this form or decimal.
    #[schema(example = "0x6b0796b400000002")]
    pub id_str: String,
    /// The client owner string, lossily as UTF-8.
    pub owner: String,
    pub confirmed: bool,
    pub principal: PrincipalDto,
    /// "none", "mach_cred" or "ssv".
    pub state_protection: String,
    pub impl_name: String,
    /// Session ids (hex).
    pub sessions: Vec<String>,
    pub lease_remaining_ms: u64,
    /// Unix time in milliseconds.
    pub created_at_ms: u64,
    /// `created_at_ms` in RFC 3339 (UTC).
    #[schema(example = "2026-11-26T05:28:05.510Z")]
    pub created_at: String,
    /// Delegations the client holds.
    pub delegations: u32,
    /// Operations in the client's COMPOUNDs in sessions (SEQUENCE included).
    pub ops: u64,
    /// RPC bytes of those COMPOUNDs' calls and replies.
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientDetail {
    #[serde(flatten)]
    pub client: ClientDto,
    /// The client's sessions in detail.
    pub session_details: Vec<SessionDto>,
    /// The client's delegations: held, and revoked ones it has not freed yet.
    pub delegation_details: Vec<DelegationDto>,
}

/// One delegation (RFC 8881 §10.2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DelegationDto {
    /// The stateid: seqid, then `other` in hex.
    #[schema(example = "1:6b0796b40003030000000007")]
    pub stateid: String,
    /// "read" or "write".
    pub kind: String,
    /// The file's handle in the backend, hex.
    pub file: String,
    /// Milliseconds since the server recalled it (CB_RECALL), if it did.
    pub recalled_ms_ago: Option<u64>,
    /// Revoked (not returned within a lease of its recall); the stateid answers
    /// NFS4ERR_DELEG_REVOKED until the client frees it.
    pub revoked: bool,
}

impl From<&ringnfs_state::files::DelegationView> for DelegationDto {
    fn from(d: &ringnfs_state::files::DelegationView) -> Self {
        DelegationDto {
            stateid: format!("{}:{}", d.stateid.seqid, hex(&d.stateid.other)),
            kind: if d.write { "write" } else { "read" }.into(),
            file: hex(d.file.as_bytes()),
            recalled_ms_ago: d.recalled_for.map(|t| t.as_millis() as u64),
            revoked: d.revoked,
        }
    }
}

/// channel_attrs4 of one channel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChannelAttrsDto {
    pub headerpadsize: u32,
    pub maxrequestsize: u32,
    pub maxresponsesize: u32,
    pub maxresponsesize_cached: u32,
    pub maxoperations: u32,
    pub maxrequests: u32,
    pub rdma_ird: Option<u32>,
}

/// A connection bound to a session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoundConnDto {
    /// Connection id (for `POST /api/v1/connections/{id}/drain`); the worker core is in
    /// the upper 16 bits, so it may exceed 2^53: `id_str` has it exactly.
    #[schema(format = "uint64")]
    pub id: u64,
    /// The connection id in decimal, as logs and `ringnfs ctl` print it.
    pub id_str: String,
    pub peer: String,
    pub local: String,
    /// Worker core serving the connection.
    pub core: usize,
    /// "fore", "back" or "both".
    pub direction: String,
    /// Unix time in milliseconds.
    pub bound_at_ms: u64,
    /// `bound_at_ms` in RFC 3339 (UTC).
    pub bound_at: String,
    pub draining: bool,
    /// Requests served on this connection.
    pub requests: u64,
    /// Transport security: "none" (plain TCP), "tls" or "mtls" (TLS with a verified
    /// client certificate).
    pub xprtsec: String,
}

/// How many connections a session has bound, by direction.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct SummaryDto {
    pub fore: usize,
    pub back: usize,
    pub both: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionDto {
    /// Session id (32 hex digits).
    pub id: String,
    /// The clientid4 of the session's client (see `ClientDto.id`).
    #[schema(format = "uint64")]
    pub clientid: u64,
    /// The clientid4 as printed: `0x` and 16 hex digits.
    pub clientid_str: String,
    /// Unix time in milliseconds.
    pub created_at_ms: u64,
    /// `created_at_ms` in RFC 3339 (UTC).
    pub created_at: String,
    pub fore: ChannelAttrsDto,
    pub back: ChannelAttrsDto,
    pub back_channel_requested: bool,
    pub cached_reply_bytes: usize,
    pub connections: Vec<BoundConnDto>,
    pub summary: SummaryDto,
}

/// An open connection, bound or not.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnDto {
    /// Connection id (for `POST /api/v1/connections/{id}/drain`); see `BoundConnDto.id`.
    #[schema(format = "uint64")]
    pub id: u64,
    /// The connection id in decimal, as logs and `ringnfs ctl` print it.
    pub id_str: String,
    pub peer: String,
    pub local: String,
    pub core: usize,
    /// Unix time in milliseconds.
    pub accepted_at_ms: u64,
    /// `accepted_at_ms` in RFC 3339 (UTC).
    pub accepted_at: String,
    pub draining: bool,
    pub requests: u64,
    /// Sessions the connection is bound to (hex ids).
    pub sessions: Vec<String>,
    /// Transport security: "none" (plain TCP), "tls" or "mtls" (TLS with a verified
    /// client certificate).
    pub xprtsec: String,
}

/// Settings that can change while the server runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct SettingsDto {
    // The OpenAPI document adds the ranges, from the state's constants
    // (`openapi::SettingRanges`).
    /// Connections one session may bind; applies to the next bind.
    pub max_connections_per_session: u32,
    /// Binding a connection to a session unbinds it from its other sessions.
    pub exclusive_binding: bool,
    /// Lease time in seconds.
    pub lease_time: u32,
    /// Log filter (tracing EnvFilter syntax, e.g. "info" or "debug").
    pub log_level: String,
    /// OPEN grants delegations. Turned off, no new ones are granted; those held stay
    /// until returned or recalled.
    pub delegations: bool,
}

/// A settings change: only the fields given change. All are validated before any is
/// applied; the change is written to `state_dir/settings.toml` and used at the next start,
/// except for a setting given explicitly at that start (command line, config file,
/// `RUST_LOG`), which wins with a warning. `DELETE /api/v1/settings/persisted[/{key}]`
/// drops persisted values.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub max_connections_per_session: Option<u64>,
    pub exclusive_binding: Option<bool>,
    pub lease_time: Option<u64>,
    pub log_level: Option<String>,
    pub delegations: Option<bool>,
}

/// Answer of an operator action.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionResult {
    /// What was acted on: a session id or a connection id.
    pub target: String,
    /// "destroyed" or "draining".
    pub result: String,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionFilter {
    /// Only this client's sessions (`0x` hex as printed, or decimal).
    pub client: Option<String>,
}

// ---- conversions ------------------------------------------------------------------------

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Fore => "fore",
        Direction::Back => "back",
        Direction::Both => "both",
    }
}

impl From<&ChannelAttrs> for ChannelAttrsDto {
    fn from(a: &ChannelAttrs) -> Self {
        Self {
            headerpadsize: a.headerpadsize,
            maxrequestsize: a.maxrequestsize,
            maxresponsesize: a.maxresponsesize,
            maxresponsesize_cached: a.maxresponsesize_cached,
            maxoperations: a.maxoperations,
            maxrequests: a.maxrequests,
            rdma_ird: a.rdma_ird,
        }
    }
}

impl From<&BoundConnInfo> for BoundConnDto {
    fn from(c: &BoundConnInfo) -> Self {
        Self {
            id: c.conn,
            id_str: c.conn.to_string(),
            peer: c.peer.clone(),
            local: c.local.clone(),
            core: c.core,
            direction: dir_name(c.direction).to_string(),
            bound_at_ms: c.bound_at_ms,
            bound_at: rfc3339(c.bound_at_ms),
            draining: c.draining,
            requests: c.requests,
            xprtsec: c.xprtsec.to_string(),
        }
    }
}

impl From<&SessionInfo> for SessionDto {
    fn from(s: &SessionInfo) -> Self {
        Self {
            id: s.id.clone(),
            clientid: s.clientid,
            clientid_str: client_id_str(s.clientid),
            created_at_ms: s.created_at_ms,
            created_at: rfc3339(s.created_at_ms),
            fore: (&s.fore).into(),
            back: (&s.back).into(),
            back_channel_requested: s.back_channel_requested,
            cached_reply_bytes: s.cached_reply_bytes,
            connections: s.connections.iter().map(Into::into).collect(),
            summary: SummaryDto {
                fore: s.summary.fore,
                back: s.summary.back,
                both: s.summary.both,
                total: s.summary.total,
            },
        }
    }
}

impl From<&ClientInfo> for ClientDto {
    fn from(c: &ClientInfo) -> Self {
        let principal = match &c.principal {
            Principal::None => PrincipalDto {
                flavor: "none".into(),
                uid: None,
                gid: None,
                name: None,
            },
            Principal::Sys { uid, gid } => PrincipalDto {
                flavor: "sys".into(),
                uid: Some(*uid),
                gid: Some(*gid),
                name: None,
            },
            Principal::Gss { principal } => PrincipalDto {
                flavor: "krb5".into(),
                uid: None,
                gid: None,
                name: Some(principal.clone()),
            },
        };
        Self {
            id: c.id,
            id_str: client_id_str(c.id),
            owner: c.owner.clone(),
            confirmed: c.confirmed,
            principal,
            state_protection: c.state_protection.to_string(),
            impl_name: c.impl_name.clone(),
            sessions: c.sessions.clone(),
            lease_remaining_ms: c.lease_remaining_ms,
            created_at_ms: c.created_at_ms,
            created_at: rfc3339(c.created_at_ms),
            delegations: 0,
            ops: c.traffic.ops,
            bytes_in: c.traffic.bytes_in,
            bytes_out: c.traffic.bytes_out,
        }
    }
}

/// A client as the API shows it, with its delegation count.
fn client_dto(ctx: &Ctx, c: &ClientInfo) -> ClientDto {
    ClientDto {
        delegations: ctx.state.files.delegations_held_by(c.id),
        ..ClientDto::from(c)
    }
}

impl From<&ConnInfo> for ConnDto {
    fn from(c: &ConnInfo) -> Self {
        Self {
            id: c.id,
            id_str: c.id.to_string(),
            peer: c.peer.clone(),
            local: c.local.clone(),
            core: c.core,
            accepted_at_ms: c.accepted_at_ms,
            accepted_at: rfc3339(c.accepted_at_ms),
            draining: c.draining,
            requests: c.requests,
            sessions: c.sessions.clone(),
            xprtsec: c.xprtsec.to_string(),
        }
    }
}

// ---- parsing ------------------------------------------------------------------------------

/// Unix milliseconds as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-11-26T05:28:05.510Z`.
pub fn rfc3339(unix_ms: u64) -> String {
    let (secs, ms) = (unix_ms / 1000, unix_ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's
    // days_from_civil inverse, for days >= 0).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A client id as printed (`0x` and hex digits) or in decimal.
pub fn parse_client_id(s: &str) -> Result<u64, ApiError> {
    ringnfs_state::ids::parse_client_id(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid client id {:?} (0x and hex digits, or decimal)",
            s.trim()
        ))
    })
}

fn parse_session_id(s: &str) -> Result<SessionId, ApiError> {
    SessionId::from_hex(s.trim())
        .ok_or_else(|| ApiError::bad_request(format!("invalid session id {s:?} (32 hex digits)")))
}

/// A connection id in decimal (as printed) or `0x` hex.
fn parse_conn_id(s: &str) -> Result<u64, ApiError> {
    // The same two forms as a client id.
    ringnfs_state::ids::parse_client_id(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid connection id {:?} (decimal, or 0x and hex digits)",
            s.trim()
        ))
    })
}

// ---- handlers -----------------------------------------------------------------------------

/// List client records.
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "All clients", body = [ClientDto]),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody)))]
pub async fn list_clients(State(ctx): State<Arc<Ctx>>) -> Json<Vec<ClientDto>> {
    Json(
        ctx.state
            .clients()
            .iter()
            .map(|c| client_dto(&ctx, c))
            .collect(),
    )
}

/// One client with its sessions.
#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "Client id: 0x and 16 hex digits (as printed), or decimal")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The client", body = ClientDetail),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody),
        (status = 404, description = "No such client", body = ErrorBody)))]
pub async fn get_client(
    State(ctx): State<Arc<Ctx>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ClientDetail>> {
    let Path(id) = id?;
    let id = parse_client_id(&id)?;
    let client = ctx
        .state
        .clients()
        .iter()
        .find(|c| c.id == id)
        .map(|c| client_dto(&ctx, c))
        .ok_or_else(|| ApiError::not_found(format!("no client {}", client_id_str(id))))?;
    let session_details = ctx
        .state
        .sessions_of_client(id)
        .iter()
        .map(Into::into)
        .collect();
    let delegation_details = ctx
        .state
        .files
        .delegations_of(id, std::time::Instant::now())
        .iter()
        .map(Into::into)
        .collect();
    Ok(Json(ClientDetail {
        client,
        session_details,
        delegation_details,
    }))
}

/// List sessions, optionally of one client.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(SessionFilter),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Sessions", body = [SessionDto]),
        (status = 400, description = "Malformed client id", body = ErrorBody),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody)))]
pub async fn list_sessions(
    State(ctx): State<Arc<Ctx>>,
    filter: Result<Query<SessionFilter>, QueryRejection>,
) -> ApiResult<Json<Vec<SessionDto>>> {
    let Query(f) = filter?;
    let list = match f.client.as_deref() {
        Some(c) => ctx.state.sessions_of_client(parse_client_id(c)?),
        None => ctx.state.sessions(),
    };
    Ok(Json(list.iter().map(Into::into).collect()))
}

/// One session with its connections and the binding summary.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id, 32 hex digits")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The session", body = SessionDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody)))]
pub async fn get_session(
    State(ctx): State<Arc<Ctx>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<SessionDto>> {
    let Path(id) = id?;
    let sid = parse_session_id(&id)?;
    ctx.state
        .session_info(&sid)
        .map(|s| Json((&s).into()))
        .ok_or_else(|| ApiError::not_found(format!("no session {}", sid.to_hex())))
}

/// Destroy a session whatever its state (its bindings end with reason
/// `session_destroy`; the client gets NFS4ERR_BADSESSION next).
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id, 32 hex digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Destroyed", body = ActionResult),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody)))]
pub async fn delete_session(
    State(ctx): State<Arc<Ctx>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ActionResult>> {
    let Path(id) = id?;
    let sid = parse_session_id(&id)?;
    if !ctx.state.force_destroy_session(&sid) {
        return Err(ApiError::not_found(format!("no session {}", sid.to_hex())));
    }
    tracing::info!(session = %sid.to_hex(), "session destroyed by the operator");
    Ok(Json(ActionResult {
        target: sid.to_hex(),
        result: "destroyed".into(),
    }))
}

/// List open connections.
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Connections", body = [ConnDto]),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody)))]
pub async fn list_connections(State(ctx): State<Arc<Ctx>>) -> Json<Vec<ConnDto>> {
    let mut v: Vec<ConnDto> = ctx.state.connections().iter().map(Into::into).collect();
    v.sort_by_key(|c| c.id);
    Json(v)
}

/// Drain a connection: mark it draining, flush what it owes and close it (its bindings
/// end with reason `drain`).
#[utoipa::path(post, path = "/api/v1/connections/{id}/drain", tag = "connections",
    params(("id" = String, Path, description = "Connection id, decimal (as printed) or 0x hex")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Draining", body = ActionResult),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such connection", body = ErrorBody)))]
pub async fn drain_connection(
    State(ctx): State<Arc<Ctx>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<(StatusCode, Json<ActionResult>)> {
    let Path(id) = id?;
    let conn = parse_conn_id(&id)?;
    if !ctx.state.drain_connection(conn) {
        return Err(ApiError::not_found(format!("no connection {conn}")));
    }
    tracing::info!(conn, "connection drained by the operator");
    Ok((
        StatusCode::ACCEPTED,
        Json(ActionResult {
            target: conn.to_string(),
            result: "draining".into(),
        }),
    ))
}

fn current_settings(ctx: &Ctx) -> SettingsDto {
    let s = &ctx.state.settings;
    SettingsDto {
        max_connections_per_session: s.max_connections_per_session(),
        exclusive_binding: s.exclusive_binding(),
        lease_time: s.lease_secs(),
        log_level: super::current_log_level(),
        delegations: s.delegations(),
    }
}

/// Current settings.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Settings", body = SettingsDto),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody)))]
pub async fn get_settings(State(ctx): State<Arc<Ctx>>) -> Json<SettingsDto> {
    Json(current_settings(&ctx))
}

/// Change settings: validated all together, persisted, then applied at once.
/// In a cluster, the settings go to every node before they are saved and applied here:
/// a change the cluster did not take is made nowhere.
fn share(ctx: &Ctx, saved: &PersistedSettings) -> ApiResult<()> {
    match &ctx.share_settings {
        Some(share) => (share.0)(saved).map_err(|e| {
            ApiError::internal(format!(
                "cannot share the change with the cluster's other nodes, so it is not made: {e}"
            ))
        }),
        None => Ok(()),
    }
}

#[utoipa::path(patch, path = "/api/v1/settings", tag = "settings",
    request_body = SettingsPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings now", body = SettingsDto),
        (status = 400, description = "Malformed body or value out of range; nothing changed", body = ErrorBody),
        (status = 401, description = "Missing or wrong token; nothing changed", body = ErrorBody),
        (status = 500, description = "Could not persist; nothing changed", body = ErrorBody)))]
pub async fn patch_settings(
    State(ctx): State<Arc<Ctx>>,
    body: Bytes,
) -> ApiResult<Json<SettingsDto>> {
    let p: SettingsPatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid settings body: {e}")))?;
    let _guard = ctx.settings_lock.lock();
    // Validate everything on a scratch copy first: a refused change changes nothing.
    let scratch = ringnfs_state::settings::LiveSettings::default();
    if let Some(n) = p.max_connections_per_session {
        scratch
            .set_max_connections_per_session(n)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    if let Some(l) = p.lease_time {
        scratch
            .set_lease_secs(l)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    if let Some(level) = &p.log_level {
        super::check_log_level(level).map_err(ApiError::bad_request)?;
    }
    // Persist the keys changed (merged into what was persisted before).
    if let Some(dir) = &ctx.state_dir {
        let mut saved = PersistedSettings::load(dir)
            .map_err(ApiError::internal)?
            .unwrap_or_default();
        if let Some(n) = p.max_connections_per_session {
            saved.max_connections_per_session = Some(n as u32);
        }
        if let Some(b) = p.exclusive_binding {
            saved.exclusive_binding = Some(b);
        }
        if let Some(l) = p.lease_time {
            saved.lease_time = Some(l as u32);
        }
        if let Some(level) = &p.log_level {
            saved.log_level = Some(level.clone());
        }
        if let Some(b) = p.delegations {
            saved.delegations = Some(b);
        }
        share(&ctx, &saved)?;
        saved
            .save(dir)
            .map_err(|e| ApiError::internal(format!("writing the settings file: {e}")))?;
    }
    // Apply (already validated).
    let live = &ctx.state.settings;
    if let Some(n) = p.max_connections_per_session {
        live.set_max_connections_per_session(n)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    if let Some(b) = p.exclusive_binding {
        live.set_exclusive_binding(b);
    }
    if let Some(l) = p.lease_time {
        live.set_lease_secs(l)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    if let Some(b) = p.delegations {
        live.set_delegations(b);
    }
    if let Some(level) = &p.log_level {
        super::apply_log_level(level).map_err(ApiError::bad_request)?;
    }
    tracing::info!(change = ?p, "settings changed by the operator");
    Ok(Json(current_settings(&ctx)))
}

/// Drop the persisted values of `keys` and set those settings back to their start values.
fn reset(ctx: &Ctx, keys: &[&str]) -> ApiResult<Json<SettingsDto>> {
    let _guard = ctx.settings_lock.lock();
    if let Some(dir) = &ctx.state_dir {
        let mut saved = PersistedSettings::load(dir)
            .map_err(ApiError::internal)?
            .unwrap_or_default();
        let before = saved.clone();
        for k in keys {
            saved.remove(k).map_err(ApiError::bad_request)?;
        }
        if saved != before {
            share(ctx, &saved)?;
            saved
                .save(dir)
                .map_err(|e| ApiError::internal(format!("writing the settings file: {e}")))?;
        }
    }
    let (live, start) = (&ctx.state.settings, &ctx.start_settings);
    for k in keys {
        match *k {
            "max_connections_per_session" => live
                .set_max_connections_per_session(start.max_connections_per_session.into())
                .map_err(|e| ApiError::internal(e.to_string()))?,
            "exclusive_binding" => live.set_exclusive_binding(start.exclusive_binding),
            "lease_time" => live
                .set_lease_secs(start.lease_time.into())
                .map_err(|e| ApiError::internal(e.to_string()))?,
            "log_level" => super::apply_log_level(&start.log_level).map_err(ApiError::internal)?,
            "delegations" => live.set_delegations(start.delegations),
            other => return Err(ApiError::bad_request(unknown_key(other))),
        }
    }
    tracing::info!(keys = ?keys, "settings reset to their start values by the operator");
    Ok(Json(current_settings(ctx)))
}

/// Drop every persisted setting (`state_dir/settings.toml`) and set the live settings
/// back to their start values (command line, config file or default).
#[utoipa::path(delete, path = "/api/v1/settings/persisted", tag = "settings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings now", body = SettingsDto),
        (status = 401, description = "Missing or wrong token; nothing changed", body = ErrorBody),
        (status = 500, description = "Could not read or write the settings file; nothing changed", body = ErrorBody)))]
pub async fn reset_settings(State(ctx): State<Arc<Ctx>>) -> ApiResult<Json<SettingsDto>> {
    reset(&ctx, &SETTING_KEYS)
}

/// Drop one persisted setting and set it back to its start value (command line, config
/// file or default).
#[utoipa::path(delete, path = "/api/v1/settings/persisted/{key}", tag = "settings",
    params(("key" = String, Path,
        description = "max_connections_per_session, exclusive_binding, lease_time or log_level")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings now", body = SettingsDto),
        (status = 400, description = "Not a setting; nothing changed", body = ErrorBody),
        (status = 401, description = "Missing or wrong token; nothing changed", body = ErrorBody),
        (status = 500, description = "Could not read or write the settings file; nothing changed", body = ErrorBody)))]
pub async fn reset_setting(
    State(ctx): State<Arc<Ctx>>,
    key: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<SettingsDto>> {
    let Path(key) = key?;
    let key = SETTING_KEYS
        .iter()
        .find(|k| **k == key)
        .ok_or_else(|| ApiError::bad_request(unknown_key(&key)))?;
    reset(&ctx, &[key])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_670_885_510), "2026-11-26T05:28:05.510Z");
        assert_eq!(rfc3339(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_704_067_199_000), "2023-12-31T23:59:59.000Z");
    }
}
