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
        .route(
            "/stream",
            get().to(|req, query, state| of_default(req, query, state, Action::Stream, "/stream")),
        )
        .route(
            "/snapshot",
            get().to(|req, query, state| {
                of_default(req, query, state, Action::Snapshot, "/snapshot")
            }),
        )
        .route("/cameras/{id}/", get().to(camera_root))
        .route(
            "/cameras/{id}/stream",
            get().to(|req, path, query, state| of_camera(req, path, query, state, Action::Stream)),
        )
        .route(
            "/cameras/{id}/snapshot",
            get()
                .to(|req, path, query, state| of_camera(req, path, query, state, Action::Snapshot)),
        );
}

#[derive(Deserialize)]
struct ActionQuery {
    action: Option<String>,
}

/// What mjpg-streamer's `?action=` asks for, and what ustreamer's `/stream` and `/snapshot`
/// ask for.
#[derive(Clone, Copy)]
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

    async fn serve(
        self,
        req: &HttpRequest,
        id: &str,
        query: &StreamQuery,
        state: &AppState,
    ) -> Result<HttpResponse, ApiError> {
        match self {
            Self::Stream => mjpeg::stream_of(req, id, query, state).await,
            Self::Snapshot => mjpeg::snapshot_of(req, id, query, state).await,
        }
    }
}

/// `action` of `server.default_camera`; `asked` is the URL, for the error that says how to
/// name a camera when there is no default one.
async fn of_default(
    req: HttpRequest,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
    action: Action,
    asked: &'static str,
) -> Result<HttpResponse, ApiError> {
    let camera = state
        .hub
        .send(DefaultCamera)
        .await
        .map_err(|_| ApiError::stopping())?;
    let Some(id) = camera else {
        return Err(ApiError::new(
            ErrorCode::UnknownCamera,
            format!(
                "`{asked}` names no camera and this server has no default one; ask for \
                 /cameras/ID{asked}, or set `server.default_camera: ID` in cameras.yaml"
            ),
        ));
    };
    action.serve(&req, id.as_str(), &query, &state).await
}

/// `action` of the camera in the path: ustreamer's shapes under a camera's prefix.
async fn of_camera(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    action.serve(&req, &path, &query, &state).await
}

/// `GET /`: the dashboard, or with `?action=`, the default camera as mjpg-streamer serves it.
async fn root(
    req: HttpRequest,
    action: web::Query<ActionQuery>,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    match action.action.as_deref().map(Action::parse).transpose()? {
        None => Ok(login::dashboard(&req, &state).await),
        Some(Action::Stream) => {
            of_default(req, query, state, Action::Stream, "/?action=stream").await
        }
        Some(Action::Snapshot) => {
            of_default(req, query, state, Action::Snapshot, "/?action=snapshot").await
        }
    }
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
        Some(action) => {
            Action::parse(action)?
                .serve(&req, &path, &query, &state)
                .await
        }
        None => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("../../#camera={}", path.as_str())))
            .finish()),
    }
}
