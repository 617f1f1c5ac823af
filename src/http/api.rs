//! JSON endpoints for scripts and monitoring.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use super::error::{ApiError, ErrorBody};
use super::wire;
use super::{caller, AppState};
use crate::auth::Role;
use crate::hub::{CheckHealth, ListCameras, ListViewers, HEALTH_TIMEOUT};
use crate::proto;

/// `GET /schema/cameras.json`: the JSON Schema of `cameras.yaml`, for editors. It holds
/// no secret, so it needs no account.
#[utoipa::path(get, path = "/schema/cameras.json", tag = "configuration",
    responses((status = 200, description = "The JSON Schema (draft 2020-12) of cameras.yaml",
        content_type = "application/schema+json", body = Object)))]
pub async fn config_schema() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/schema+json")
        .json(crate::config::schema())
}

/// `GET /healthz`: 200 when the hub and every running camera answer; 503 with the reason
/// when one does not (a stuck device, a hub held up), so a supervisor can act on it.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses(
        (status = 200, description = "The hub and every running camera answer", content_type = "text/plain", body = String, example = "ok\n"),
        (status = 503, description = "What does not answer, e.g. a camera whose device hangs", content_type = "text/plain", body = String),
    ))]
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let waited = state
        .hub
        .send(CheckHealth)
        .timeout(HEALTH_TIMEOUT * 2)
        .await;
    let problem = match waited {
        Ok(stuck) if stuck.is_empty() => {
            return HttpResponse::Ok().content_type("text/plain").body("ok\n")
        }
        Ok(stuck) => {
            let names: Vec<String> = stuck.iter().map(|id| format!("`{id}`")).collect();
            format!(
                "camera {} did not answer within {} s; its device may be hanging (see dmesg)",
                names.join(", "),
                HEALTH_TIMEOUT.as_secs()
            )
        }
        Err(_) => format!(
            "the hub did not answer within {} s; the fleet is held up",
            (HEALTH_TIMEOUT * 2).as_secs()
        ),
    };
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain")
        .body(format!("{problem}\n"))
}

/// `GET /api/cameras`: the status of every camera the caller may see, in configuration
/// order.
#[utoipa::path(get, path = "/api/cameras", tag = "cameras",
    responses(
        (status = 200, description = "Every camera the caller may see, in configuration order", body = [proto::CameraStatus]),
        (status = 401, description = "The server has accounts and the request carries no valid credentials", body = ErrorBody),
        (status = 503, description = "The server is stopping, or a limit is reached", body = ErrorBody),
    ))]
pub async fn cameras(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let access = caller::require(&req, &state, Role::Viewer).await?;
    match state.hub.send(ListCameras).await {
        Ok(list) => Ok(HttpResponse::Ok().json(
            list.iter()
                .filter(|s| access.sees(&s.id))
                .map(|s| wire::status(s))
                .collect::<Vec<_>>(),
        )),
        Err(_) => Err(ApiError::stopping()),
    }
}

/// `GET /api/host`: the port of the RTSP server (`rtsp_port`, `null` when it does not run),
/// and this host's MQTT link (`null` without one): its broker, `host_id`,
/// `state` (`connecting`, `connected` or `down`) and, when down, why.
pub async fn host(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller::require(&req, &state, Role::Viewer).await?;
    Ok(HttpResponse::Ok().json(json!({
        "mqtt": state.mqtt.as_ref().map(crate::mqtt::Link::describe),
        "rtsp_port": state.rtsp.map(|a| a.port()),
    })))
}

/// `GET /api/viewers`: every viewer of every camera with what it was sent and skipped;
/// for admins.
#[utoipa::path(get, path = "/api/viewers", tag = "viewers",
    responses(
        (status = 200, description = "Every viewer of every camera", body = [ViewerEntry]),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The account is not an admin", body = ErrorBody),
        (status = 503, description = "The server is stopping, or a limit is reached", body = ErrorBody),
    ))]
pub async fn viewers(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(e) = caller::require(&req, &state, Role::Admin).await {
        return e.error_response();
    }
    match state.hub.send(ListViewers).await {
        Ok(list) => HttpResponse::Ok().json(
            list.iter()
                .map(|v| ViewerEntry {
                    id: v.id,
                    client: v.client.map(|ip| ip.to_string()),
                    camera: v.camera.to_string(),
                    kind: v.kind.name(),
                    since_unix_ms: v
                        .since
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64),
                    frames_sent: v.sent,
                    frames_skipped: v.skipped,
                    bytes_sent: v.bytes,
                    first_frame_wait_ms: v.first_frame_wait.map(|d| d.as_secs_f64() * 1000.0),
                })
                .collect::<Vec<_>>(),
        ),
        Err(_) => ApiError::stopping().error_response(),
    }
}

/// One viewer of one camera, as `GET /api/viewers` lists it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ViewerEntry {
    /// The viewer's number, unique while the server runs.
    pub id: u64,
    /// The client's IP address, when known.
    pub client: Option<String>,
    /// The camera's id.
    pub camera: String,
    /// How it watches: `mjpeg`, `websocket`, `snapshot`, `mp4` or `rtsp`.
    #[schema(value_type = String, example = "mjpeg")]
    pub kind: &'static str,
    /// When it started, in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// Frames sent to it.
    pub frames_sent: u64,
    /// Frames it skipped because it could not keep up (or asked for a lower rate).
    pub frames_skipped: u64,
    /// Bytes sent to it.
    pub bytes_sent: u64,
    /// Milliseconds from watching to the first frame sent (`null` before it): for an H.264
    /// camera, the wait for a keyframe.
    pub first_frame_wait_ms: Option<f64>,
}

/// The answer to a reload that took effect.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    /// Always true: a reload that failed answers with an error.
    pub reloaded: bool,
}

/// `POST /api/reload`: reads the configuration file again, as SIGHUP does, and answers
/// with the outcome; for admins. A form posted by another site is refused.
#[utoipa::path(post, path = "/api/reload", tag = "configuration",
    responses(
        (status = 200, description = "The new configuration runs", body = Reloaded),
        (status = 400, description = "The file has a problem; the running fleet is unchanged. The error says what and where", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The account is not an admin", body = ErrorBody),
        (status = 421, description = "Posted by a page of another site", body = ErrorBody),
        (status = 503, description = "Started without a configuration file, or stopping", body = ErrorBody),
    ))]
pub async fn reload(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller::require(&req, &state, Role::Admin).await?;
    if let Err(super::hosts::Refused(why)) = state.hosts.check_origin(&req, state.scheme) {
        return Err(ApiError::new(crate::hub::ErrorCode::WrongHost, why));
    }
    let Some(reloads) = &state.reloads else {
        return Err(ApiError::new(
            crate::hub::ErrorCode::CameraNotRunning,
            "this server was started without a configuration file to read again",
        ));
    };
    let (answer, outcome) = tokio::sync::oneshot::channel();
    if reloads.send(answer).is_err() {
        return Err(ApiError::stopping());
    }
    match outcome.await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Reloaded { reloaded: true })),
        Ok(Err(problem)) => Err(ApiError::new(
            crate::hub::ErrorCode::InvalidMessage,
            format!(
                "the configuration was not reloaded; the running fleet is unchanged: {problem}"
            ),
        )),
        Err(_) => Err(ApiError::stopping()),
    }
}

/// A camera's state as the JSON API names it.
#[derive(Clone, Copy, Debug, serde::Serialize, utoipa::ToSchema)]
pub enum StateName {
    /// The device is being opened and configured.
    Opening,
    /// Frames are flowing.
    Streaming,
    /// The device is absent, vanished or failed; `reason` says why, and it is retried.
    Reconnecting,
    /// Disabled in the configuration, or the server is stopping.
    Stopped,
    /// An on-demand camera with no viewer.
    Idle,
    /// Never written for a known state.
    Unspecified,
}

impl StateName {
    /// The name of the wire's `CameraState`.
    pub fn of(state: i32) -> Self {
        match proto::CameraState::try_from(state) {
            Ok(proto::CameraState::Opening) => StateName::Opening,
            Ok(proto::CameraState::Streaming) => StateName::Streaming,
            Ok(proto::CameraState::Reconnecting) => StateName::Reconnecting,
            Ok(proto::CameraState::Stopped) => StateName::Stopped,
            Ok(proto::CameraState::Idle) => StateName::Idle,
            Ok(proto::CameraState::Unspecified) | Err(_) => StateName::Unspecified,
        }
    }
}

/// The state's name as the JSON API writes it, e.g. `Streaming`.
pub(crate) fn state_name(state: i32) -> &'static str {
    match StateName::of(state) {
        StateName::Opening => "Opening",
        StateName::Streaming => "Streaming",
        StateName::Reconnecting => "Reconnecting",
        StateName::Stopped => "Stopped",
        StateName::Idle => "Idle",
        StateName::Unspecified => "Unspecified",
    }
}

/// Writes `CameraStatus.state` by name.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `serialize_with` passes a reference
pub(crate) fn serialize_state<S: serde::Serializer>(state: &i32, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&StateName::of(*state), s)
}

/// Writes `CameraStatus.controls` as an object from name to value.
pub(crate) fn serialize_controls<S: serde::Serializer>(
    controls: &[proto::ControlValue],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(controls.iter().map(|c| (&c.name, c.value)))
}
