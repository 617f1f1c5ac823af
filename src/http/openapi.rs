//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the REST side, made from the
//! handlers' own annotations and the types they answer with, so it cannot drift from them.
//! The WebSocket is described by `proto/` instead.

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use super::api::{Reloaded, StateName, ViewerEntry};
use super::error::ErrorBody;
use crate::proto;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "camfleet",
        description = "Cameras, viewers, health, snapshots and MJPEG streams of one camfleet \
            server. Live status and control changes go over the WebSocket at /ws \
            (proto/camfleet/v1/camfleet.proto). On a server with accounts, send an API \
            token (Bearer), a user's name and password (Basic) or the dashboard's sign-in \
            cookie; on one without, nothing."
    ),
    paths(
        super::api::cameras,
        super::api::viewers,
        super::api::healthz,
        super::api::reload,
        super::api::config_schema,
        super::mjpeg::snapshot,
        super::mjpeg::stream,
        super::fmp4::stream,
        document,
    ),
    components(schemas(proto::CameraStatus, proto::ControlProblem, StateName, ViewerEntry, Reloaded, ErrorBody)),
    // Every route takes the same credentials, and none on a server without accounts.
    security((), ("bearer" = []), ("basic" = []), ("session" = [])),
    modifiers(&Credentials),
    tags(
        (name = "cameras", description = "Each camera's state, counters and control values"),
        (name = "viewers", description = "Who watches what (admins)"),
        (name = "health", description = "For supervisors and load balancers"),
        (name = "snapshots", description = "One JPEG of a camera"),
        (name = "streams", description = "MJPEG streams (multipart/x-mixed-replace)"),
        (name = "configuration", description = "cameras.yaml: its schema, and reloading it"),
    )
)]
struct Document;

/// The ways a client signs in, as the operations' `security` names them.
struct Credentials;

impl utoipa::Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token made by `camfleet token new`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("A user's name and password from cameras.yaml"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::caller::COOKIE,
                "The dashboard's sign-in cookie, set by POST /login",
            ))),
        );
    }
}

/// The document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    Document::openapi()
}

/// `GET /api/openapi.json`.
#[utoipa::path(get, path = "/api/openapi.json", tag = "configuration",
    responses((status = 200, description = "This document", body = Object)))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}
