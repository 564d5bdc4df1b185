//! The OpenAPI 3 document of the REST API, generated from the handlers and types with
//! `utoipa`, served at `GET /api/v1/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api;
use super::error::ErrorBody;

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
    ),
    components(schemas(
        ErrorBody,
        api::ClientDto,
        api::ClientDetail,
        api::PrincipalDto,
        api::SessionDto,
        api::BoundConnDto,
        api::SummaryDto,
        api::ChannelAttrsDto,
        api::ConnDto,
        api::SettingsDto,
        api::SettingsPatch,
        api::ActionResult,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "clients"),
        (name = "sessions"),
        (name = "connections"),
        (name = "settings"),
    )
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
