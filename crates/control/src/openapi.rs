//! The OpenAPI 3 document of the REST API, generated from the handlers and types with
//! `utoipa`, served at `GET /api/v1/openapi.json`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use ringnfs_state::settings::{LEASE_TIME_RANGE, MAX_CONNECTIONS_PER_SESSION_RANGE, Range};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::{Ctx, api, cluster, exports, metrics, tls};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = doc.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The ranges of the settings, from the constants `PATCH /api/v1/settings` checks with:
/// `minimum`, `maximum` and the range in words added to each ranged property of
/// [`api::SettingsDto`] and [`api::SettingsPatch`].
struct SettingRanges;

/// The settings with a range, by property name.
const RANGED_SETTINGS: [(&str, Range); 2] = [
    (
        "max_connections_per_session",
        MAX_CONNECTIONS_PER_SESSION_RANGE,
    ),
    ("lease_time", LEASE_TIME_RANGE),
];

impl Modify for SettingRanges {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(c) = doc.components.as_mut() else {
            return;
        };
        for schema in ["SettingsDto", "SettingsPatch"] {
            let Some(RefOr::T(Schema::Object(obj))) = c.schemas.get_mut(schema) else {
                continue;
            };
            for (name, range) in RANGED_SETTINGS {
                let Some(RefOr::T(Schema::Object(p))) = obj.properties.get_mut(name) else {
                    continue;
                };
                let said = p.description.take().unwrap_or_default();
                let sep = if said.is_empty() { "" } else { " " };
                p.description = Some(format!("{said}{sep}Range: {range}."));
                p.minimum = Some(utoipa::Number::UInt(range.min as usize));
                p.maximum = Some(utoipa::Number::UInt(range.max as usize));
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ringnfs control plane",
        description = "Sessions, connections, clients and live settings of a ringnfs NFSv4.1 server. \
            Requests that change something (and every request on a non-loopback address) need \
            `Authorization: Bearer <token>` with the token from the control token file. Errors are \
            `{\"error\": \"...\"}`. Prometheus metrics are at `GET /metrics`."
    ),
    paths(
        api::list_clients,
        api::get_client,
        api::list_sessions,
        api::get_session,
        api::delete_session,
        api::list_connections,
        api::drain_connection,
        api::get_settings,
        api::patch_settings,
        api::reset_settings,
        api::reset_setting,
        exports::list_exports,
        exports::get_export,
        exports::add_export,
        exports::update_export,
        exports::remove_export,
        tls::get_tls,
        tls::reload_tls,
        cluster::get_cluster,
        openapi_document,
        scrape_metrics,
    ),
    components(schemas(
        ErrorBody,
        api::ClientDto,
        api::ClientDetail,
        api::DelegationDto,
        api::PrincipalDto,
        api::SessionDto,
        api::BoundConnDto,
        api::SummaryDto,
        api::ChannelAttrsDto,
        api::ConnDto,
        api::SettingsDto,
        api::SettingsPatch,
        api::ActionResult,
        exports::ExportSpec,
        exports::ClientSpec,
        exports::ExportView,
        tls::TlsView,
        cluster::ClusterView,
        cluster::NodeView,
    )),
    modifiers(&BearerAuth, &SettingRanges),
    tags(
        (name = "clients"),
        (name = "sessions"),
        (name = "connections"),
        (name = "settings"),
        (name = "exports"),
        (name = "tls"),
        (name = "cluster"),
        (name = "meta"),
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The OpenAPI document of this API", body = Object,
            content_type = "application/json"),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody)))]
pub async fn openapi_document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

/// Prometheus metrics (OpenMetrics text; see `control::metrics`).
#[utoipa::path(get, path = "/metrics", tag = "meta",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Counters and gauges in OpenMetrics text format", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 401, description = "Wrong token, or none on a non-loopback control address", body = ErrorBody)))]
pub async fn scrape_metrics(State(ctx): State<Arc<Ctx>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&ctx),
    )
}

/// The document as JSON.
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings' ranges in the document are the constants the server checks with.
    #[test]
    fn settings_ranges_come_from_the_state() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        for schema in ["SettingsDto", "SettingsPatch"] {
            let props = &doc["components"]["schemas"][schema]["properties"];
            for (name, range) in RANGED_SETTINGS {
                let p = &props[name];
                assert_eq!(
                    p["minimum"],
                    serde_json::json!(range.min),
                    "{schema}.{name}"
                );
                assert_eq!(
                    p["maximum"],
                    serde_json::json!(range.max),
                    "{schema}.{name}"
                );
                let d = p["description"].as_str().unwrap();
                assert!(
                    d.ends_with(&format!("Range: {range}.")),
                    "{schema}.{name}: {d}"
                );
            }
        }
        let d = &doc["components"]["schemas"]["SettingsDto"]["properties"]["lease_time"];
        assert!(
            d["description"]
                .as_str()
                .unwrap()
                .starts_with("Lease time in seconds")
        );
    }
}
