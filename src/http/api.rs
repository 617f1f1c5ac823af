//! JSON endpoints for scripts and monitoring.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::camera::status::CameraStatus;
use crate::hub::{ListCameras, ListViewers};

/// `GET /healthz`: 200 while the server runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// `GET /api/cameras`: every camera's status, in configuration order.
pub async fn cameras(state: web::Data<AppState>) -> HttpResponse {
    match state.hub.send(ListCameras).await {
        Ok(list) => {
            HttpResponse::Ok().json(list.iter().map(|s| camera_json(s)).collect::<Vec<_>>())
        }
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({
            "error": "the server is shutting down"
        })),
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
                        "since_unix_ms": v.since.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
                        "frames_sent": v.sent,
                        "frames_skipped": v.skipped,
                        "bytes_sent": v.bytes,
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({
            "error": "the server is shutting down"
        })),
    }
}

fn camera_json(s: &CameraStatus) -> serde_json::Value {
    json!({
        "id": s.id.as_str(),
        "name": s.name,
        "state": s.state.to_string(),
        "reason": s.reason,
        "fps": (s.fps * 10.0).round() / 10.0,
        "requested_fps": s.requested_fps,
        "frames_captured": s.frames_captured,
        "frames_dropped": s.frames_dropped,
        "reconnects": s.reconnects,
        "last_frame_seq": s.last_frame_seq,
        "width": s.format.map(|f| f.width),
        "height": s.format.map(|f| f.height),
        "pixel_format": s.format.map(|f| f.fourcc.to_string()),
        "format_note": s.format_note,
        "device_fps": s.format.map(|f| f.fps),
        "controls": s.controls.iter().map(|(n, v)| (n.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "capture": crate::http::wire::capture_mode(s.capture),
        "viewers": s.viewers,
        "frames_corrupt": s.frames_corrupt,
        "frames_encoded": s.frames_encoded,
        "encode_seconds": s.encode_seconds,
        "send_latency_p50_ms": s.send_latency_p50_ms,
        "send_latency_p99_ms": s.send_latency_p99_ms,
        "control_problems": s.control_problems.iter().map(|p| json!({
            "control": p.name, "desired": p.desired, "actual": p.actual, "message": p.message,
        })).collect::<Vec<_>>(),
    })
}
