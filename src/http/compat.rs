//! The URLs that existing setups already point at, so that the webcam entry of a 3D
//! printer's web interface, crowsnest or Home Assistant needs only its host, port and path
//! prefix changed:
//!
//! - mjpg-streamer's `?action=stream` and `?action=snapshot`, at `/` and at `/cameras/ID/`;
//! - ustreamer's `/stream` and `/snapshot`, bare and under `/cameras/ID/`.
//!
//! The bare forms serve `server.default_camera`; without one they say how to name a camera.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::ApiError;
use super::mjpeg::{self, StreamQuery};
use super::{get, login, AppState};
use crate::hub::{DefaultCamera, ErrorCode};

/// Registers the URL shapes of mjpg-streamer and ustreamer. `/` itself is here because
/// without `?action=` it is the dashboard.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", get().to(root))
        .route("/stream", get().to(default_stream))
        .route("/snapshot", get().to(default_snapshot))
        .route("/cameras/{id}/", get().to(camera_root))
        .route("/cameras/{id}/stream", get().to(camera_stream))
        .route("/cameras/{id}/snapshot", get().to(camera_snapshot));
}

#[derive(Deserialize)]
struct ActionQuery {
    action: Option<String>,
}

/// What mjpg-streamer's `?action=` asks for.
enum Action {
    Stream,
    Snapshot,
}

impl Action {
    fn parse(action: &str) -> Result<Self, ApiError> {
        match action {
            "stream" => Ok(Self::Stream),
            "snapshot" => Ok(Self::Snapshot),
            other => Err(ApiError::new(
                ErrorCode::InvalidMessage,
                format!(
                    "`?action={other}` is not served; camfleet answers `?action=stream` (MJPEG) \
                     and `?action=snapshot` (one JPEG)"
                ),
            )),
        }
    }
}

/// The camera that the bare URLs serve, or how to choose one.
async fn default_camera(state: &AppState, asked: &str) -> Result<String, ApiError> {
    let camera = state
        .hub
        .send(DefaultCamera)
        .await
        .map_err(|_| ApiError::stopping())?;
    camera.map(|c| c.to_string()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownCamera,
            format!(
                "`{asked}` names no camera and this server has no default one; ask for \
                 /cameras/ID{asked}, or set `server.default_camera: ID` in cameras.yaml"
            ),
        )
    })
}

/// `GET /`: the dashboard, or with `?action=`, the default camera as mjpg-streamer serves it.
async fn root(
    req: HttpRequest,
    action: web::Query<ActionQuery>,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(action) = action.action.as_deref() else {
        return Ok(login::dashboard(&req, &state).await);
    };
    let action = Action::parse(action)?;
    let asked = match action {
        Action::Stream => "/?action=stream",
        Action::Snapshot => "/?action=snapshot",
    };
    let id = default_camera(&state, asked).await?;
    serve(&req, &id, action, &query, &state).await
}

/// `GET /cameras/{id}/?action=...`: mjpg-streamer's shape under a camera's prefix; without
/// an action, the dashboard with that camera's tile at hand.
async fn camera_root(
    req: HttpRequest,
    path: web::Path<String>,
    action: web::Query<ActionQuery>,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    match action.action.as_deref() {
        Some(action) => serve(&req, &path, Action::parse(action)?, &query, &state).await,
        None => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/#camera={}", path.as_str())))
            .finish()),
    }
}

async fn serve(
    req: &HttpRequest,
    id: &str,
    action: Action,
    query: &StreamQuery,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    match action {
        Action::Stream => mjpeg::stream_of(req, id, query, state).await,
        Action::Snapshot => mjpeg::snapshot_of(req, id, state).await,
    }
}

/// `GET /stream`: ustreamer's stream, of the default camera.
async fn default_stream(
    req: HttpRequest,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = default_camera(&state, "/stream").await?;
    mjpeg::stream_of(&req, &id, &query, &state).await
}

/// `GET /snapshot`: ustreamer's snapshot, of the default camera.
async fn default_snapshot(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = default_camera(&state, "/snapshot").await?;
    mjpeg::snapshot_of(&req, &id, &state).await
}

/// `GET /cameras/{id}/stream`: ustreamer's shape under a camera's prefix.
async fn camera_stream(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    mjpeg::stream_of(&req, &path, &query, &state).await
}

/// `GET /cameras/{id}/snapshot`: ustreamer's shape under a camera's prefix.
async fn camera_snapshot(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    mjpeg::snapshot_of(&req, &path, &state).await
}
