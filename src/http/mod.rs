//! HTTP: the routes, and the checks every request passes first.
//!
//! - `GET /`: the dashboard, and its files ([`assets`]); `GET`/`POST /login`, `POST /logout`,
//!   `GET /api/me` ([`login`]). Who is asking is read by [`caller`].
//! - `GET /ws`: the WebSocket session ([`ws`]), protobuf over binary messages
//! - `GET /api/cameras`: every camera's status as JSON ([`api`])
//! - `GET /api/host`: this host, and its MQTT link's state when it has one
//! - `GET /api/fleet`, `GET /api/fleet/{host}/{camera}/thumbnail.jpg`,
//!   `POST /api/fleet/{host}/{camera}/control/{name}` and `.../reset`: the other hosts on
//!   the MQTT broker, their thumbnails, and commands to their cameras ([`fleet`])
//! - `GET /cameras/{id}/stream.mjpg[?fps=N]`: MJPEG ([`mjpeg`])
//! - `GET /cameras/{id}/snapshot.jpg`: the newest frame, or a 503 NO SIGNAL picture
//! - `GET /cameras/{id}/stream.mp4`: an H.264 camera's stream as fragmented MP4 ([`fmp4`])
//! - mjpg-streamer's `/?action=stream` and `?action=snapshot` and ustreamer's `/stream` and
//!   `/snapshot`, bare (`server.default_camera`) and under `/cameras/{id}/` ([`compat`])
//! - every `GET` route answers `HEAD` too
//! - `GET /api/viewers`: every viewer with its delivery counters, as JSON (admins)
//! - `POST /api/reload`: reads `cameras.yaml` again (admins)
//! - `GET /metrics`: Prometheus metrics ([`metrics`])
//! - `GET /healthz`: 200 when the hub and every camera answer, else 503 with the reason
//! - `GET /api/openapi.json`: the OpenAPI document of these routes ([`openapi`]);
//!   `GET /schema/cameras.json`: the JSON Schema of `cameras.yaml`
//! - anything else: 404 with a JSON error naming where to look

pub(crate) mod api;
mod assets;
mod budget;
pub mod caller;
mod compat;
pub mod direct;
pub mod error;
pub mod fanout;
pub mod feed;
mod fleet;
mod fmp4;
pub(crate) mod frame_guard;
pub mod hosts;
pub mod listener;
mod login;
mod metrics;
mod mjpeg;
mod openapi;
mod watchdog;
pub mod wire;
pub mod ws;

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::hub::{ErrorCode, Hub};
use crate::shutdown::ShutdownSignal;
use error::ApiError;
pub(crate) use watchdog::ConnectionSocket;

/// What every request handler can reach.
pub struct AppState {
    /// The hub, for status and commands.
    pub hub: Addr<Hub>,
    /// Largest client WebSocket message, in bytes.
    pub max_message_bytes: u32,
    /// Raised when the server stops; long-lived responses end on it.
    pub shutdown: ShutdownSignal,
    /// The accounts, as the hub last loaded them.
    pub auth: tokio::sync::watch::Receiver<std::sync::Arc<crate::auth::Auth>>,
    /// Signs the dashboard's sign-in cookie.
    pub cookie_key: crate::auth::CookieKey,
    /// Slows wrong passwords per client address.
    pub gate: Addr<caller::Gate>,
    /// `http`, or `https` when the server speaks TLS.
    pub scheme: &'static str,
    /// Where an admin's reload request goes; `None` when no configuration file is watched.
    pub reloads: Option<tokio::sync::mpsc::UnboundedSender<crate::app::ReloadRequest>>,
    /// The names the server answers to.
    pub hosts: hosts::Hosts,
    /// The MQTT link's state, when one is configured.
    pub mqtt: Option<crate::mqtt::Link>,
    /// Where the RTSP server listens, when it runs.
    pub rtsp: Option<std::net::SocketAddr>,
}

/// Refuses every request that names a host the server does not answer to (see [`hosts`]).
///
/// # Errors
/// 421 for such a request; otherwise what the route answers.
pub async fn check_host(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let refused = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.hosts.check_request(&req).err());
    if let Some(hosts::Refused(why)) = refused {
        return Err(ApiError::new(ErrorCode::WrongHost, why).into());
    }
    next.call(req).await
}

/// A route for `GET` and `HEAD`: a `HEAD` gets the headers its `GET` would, without the
/// body (actix-http leaves it out), so link checkers and `wget --spider` see working URLs.
pub(crate) fn get() -> actix_web::Route {
    web::route().guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(assets::routes)
        .configure(login::routes)
        .configure(compat::routes)
        .route("/healthz", get().to(api::healthz))
        .route("/schema/cameras.json", get().to(api::config_schema))
        .route("/api/openapi.json", get().to(openapi::document))
        .route("/api/cameras", get().to(api::cameras))
        .route("/api/host", get().to(api::host))
        .route("/api/fleet", get().to(fleet::hosts))
        .route(
            "/api/fleet/{host}/{camera}/control/{control}",
            web::post().to(fleet::set_control),
        )
        .route(
            "/api/fleet/{host}/{camera}/reset",
            web::post().to(fleet::reset),
        )
        .route(
            "/api/fleet/{host}/{camera}/thumbnail.jpg",
            get().to(fleet::thumbnail),
        )
        .route("/api/viewers", get().to(api::viewers))
        .route("/api/reload", web::post().to(api::reload))
        .route("/metrics", get().to(metrics::metrics))
        .route("/cameras/{id}/stream.mjpg", get().to(mjpeg::stream))
        .route("/cameras/{id}/snapshot.jpg", get().to(mjpeg::snapshot))
        .route("/cameras/{id}/stream.mp4", get().to(fmp4::stream))
        .service(
            web::resource("/ws")
                .guard(actix_web::guard::Get())
                .to(websocket),
        )
        .default_service(web::to(no_such_page));
}

/// Every path no route serves: a JSON 404 that names what exists.
async fn no_such_page(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(error::ErrorBody {
        error: format!(
            "nothing is served at `{}`; the dashboard is at `/`, the REST routes are listed \
             in `/api/openapi.json`, a camera's stream is `/cameras/ID/stream.mjpg`",
            req.path()
        ),
        code: "not_found",
    })
}

/// Refuses WebSocket connections opened by pages of other sites, which could otherwise drive the
/// cameras from a user's browser; clients that are not browsers send no `Origin`.
async fn websocket(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    if let Err(hosts::Refused(why)) = state.hosts.check_origin(&req, state.scheme) {
        return Err(ApiError::new(ErrorCode::WrongHost, why).into());
    }
    let access = caller::identify(&req, &state).await?;
    ws::route(&req, payload, &state, access)
}
