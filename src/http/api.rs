//! JSON endpoints for scripts and monitoring.

use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;

use super::error::ApiError;
use super::wire;
use super::AppState;
use crate::hub::{ListCameras, ListViewers};
use crate::proto;

/// `GET /healthz`: 200 while the server runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// `GET /api/cameras`: every camera's status, in configuration order.
pub async fn cameras(state: web::Data<AppState>) -> HttpResponse {
    match state.hub.send(ListCameras).await {
        Ok(list) => {
            HttpResponse::Ok().json(list.iter().map(|s| wire::status(s)).collect::<Vec<_>>())
        }
        Err(_) => ApiError::stopping().error_response(),
    }
}

/// `GET /api/viewers`: every viewer of every camera with what it was sent and skipped.
pub async fn viewers(state: web::Data<AppState>) -> HttpResponse {
    match state.hub.send(ListViewers).await {
        Ok(list) => HttpResponse::Ok().json(
            list.iter()
                .map(|v| {
                    json!({
                        "id": v.id,
                        "camera": v.camera.as_str(),
                        "kind": v.kind.name(),
                        "since_unix_ms": v.since.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
                        "frames_sent": v.sent,
                        "frames_skipped": v.skipped,
                        "bytes_sent": v.bytes,
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Err(_) => ApiError::stopping().error_response(),
    }
}

/// The state's name as the JSON API writes it, e.g. `Streaming`.
pub(crate) fn state_name(state: i32) -> &'static str {
    match proto::CameraState::try_from(state) {
        Ok(proto::CameraState::Opening) => "Opening",
        Ok(proto::CameraState::Streaming) => "Streaming",
        Ok(proto::CameraState::Reconnecting) => "Reconnecting",
        Ok(proto::CameraState::Stopped) => "Stopped",
        Ok(proto::CameraState::Idle) => "Idle",
        Ok(proto::CameraState::Unspecified) | Err(_) => "Unspecified",
    }
}

/// Writes `CameraStatus.state` by name.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `serialize_with` passes a reference
pub(crate) fn serialize_state<S: serde::Serializer>(state: &i32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state_name(*state))
}

/// Writes `CameraStatus.controls` as an object from name to value.
pub(crate) fn serialize_controls<S: serde::Serializer>(
    controls: &[proto::ControlValue],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(controls.iter().map(|c| (&c.name, c.value)))
}
