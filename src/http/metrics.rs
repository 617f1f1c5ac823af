//! `GET /metrics`: Prometheus text format (version 0.0.4). Every metric is listed with its
//! meaning in docs/METRICS.md.

use std::fmt::Write as _;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::wire;
use super::AppState;
use crate::camera::status::CameraState;
use crate::hub::{Metrics, MetricsSnapshot};
use crate::proto;
use crate::stats::LATENCY_BUCKETS_MS;

/// `GET /metrics`, for an account that sees every camera (the metrics name them all).
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match super::caller::require(&req, &state, crate::auth::Role::Viewer).await {
        Ok(access) if access.cameras.is_some() => {
            return super::error::ApiError::new(
                crate::hub::ErrorCode::NotPermitted,
                format!(
                    "the metrics name every camera, and `{}` may see only some; scrape with a \
                     token that has no camera list",
                    access.name
                ),
            )
            .error_response()
        }
        Ok(_) => {}
        Err(e) => return e.error_response(),
    }
    let failed_sign_ins = state
        .gate
        .send(super::caller::FailedSignIns)
        .await
        .unwrap_or(0);
    match state.hub.send(Metrics).await {
        Ok(snapshot) => {
            let mut text = render(&snapshot);
            Family::new(
                &mut text,
                "camfleet_sign_ins_failed_total",
                "counter",
                "Wrong names, passwords or tokens presented; each slows its address's next try.",
            )
            .sample(
                "camfleet_sign_ins_failed_total",
                &[],
                failed_sign_ins as f64,
            );
            if let Some(link) = &state.mqtt {
                let connected = *link.state.borrow() == crate::mqtt::LinkState::Connected;
                Family::new(
                    &mut text,
                    "camfleet_mqtt_connected",
                    "gauge",
                    "1 while the MQTT link is connected to its broker, 0 while it is not.",
                )
                .sample(
                    "camfleet_mqtt_connected",
                    &[],
                    f64::from(u8::from(connected)),
                );
            }
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(text)
        }
        Err(_) => HttpResponse::ServiceUnavailable().body("the server is shutting down\n"),
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family: its HELP and TYPE lines, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = if labels.is_empty() {
            writeln!(self.out, "{name} {value}")
        } else {
            writeln!(self.out, "{name}{{{}}} {value}", labels.join(","))
        };
    }
}

/// The whole exposition.
pub fn render(m: &MetricsSnapshot) -> String {
    let mut out = String::new();
    // The same view of each camera as the WebSocket and `/api/cameras` give.
    let views: Vec<proto::CameraStatus> =
        m.cameras.iter().map(|c| wire::status(&c.status)).collect();
    let per_camera = |out: &mut String,
                      name: &str,
                      kind: &str,
                      help: &str,
                      f: &dyn Fn(&proto::CameraStatus) -> f64| {
        let mut fam = Family::new(out, name, kind, help);
        for v in &views {
            fam.sample(name, &[("camera", &v.camera_id)], f(v));
        }
    };
    {
        let name = "camfleet_camera_state";
        let mut fam = Family::new(
            &mut out,
            name,
            "gauge",
            "1 for the state the camera is in, 0 for the others.",
        );
        for v in &views {
            let now = super::api::state_name(v.state);
            for s in CameraState::NAMES {
                let state = s.to_lowercase();
                fam.sample(
                    name,
                    &[("camera", &v.camera_id), ("state", &state)],
                    f64::from(u8::from(now == s)),
                );
            }
        }
    }
    {
        let name = "camfleet_camera_info";
        let mut fam = Family::new(
            &mut out,
            name,
            "gauge",
            "Always 1; labels carry the camera's name, capture mode, format and H.264 codec.",
        );
        for v in &views {
            fam.sample(
                name,
                &[
                    ("camera", &v.camera_id),
                    ("name", &v.name),
                    ("capture", &v.capture_mode),
                    ("pixel_format", &v.pixel_format),
                    ("codec", &v.codec),
                ],
                1.0,
            );
        }
    }
    per_camera(
        &mut out,
        "camfleet_camera_fps",
        "gauge",
        "Frames per second measured over the last second.",
        &|v| v.fps,
    );
    per_camera(
        &mut out,
        "camfleet_camera_bitrate_bits_per_second",
        "gauge",
        "Bits per second the device delivered over the last second.",
        &|v| v.bitrate_bps,
    );
    per_camera(
        &mut out,
        "camfleet_camera_gop_frames",
        "gauge",
        "For an H.264 camera, frames from one keyframe to the next (0 until known).",
        &|v| v.gop_frames as f64,
    );
    per_camera(
        &mut out,
        "camfleet_camera_frames_captured_total",
        "counter",
        "Frames captured.",
        &|v| v.frames_captured as f64,
    );
    per_camera(
        &mut out,
        "camfleet_camera_frames_dropped_total",
        "counter",
        "Frames the device or the capture loop lost.",
        &|v| v.frames_dropped as f64,
    );
    per_camera(
        &mut out,
        "camfleet_camera_frames_corrupt_total",
        "counter",
        "Frames dropped because they were truncated or corrupt JPEG.",
        &|v| v.frames_corrupt as f64,
    );
    per_camera(
        &mut out,
        "camfleet_camera_reconnects_total",
        "counter",
        "Times the device was reopened after a failure.",
        &|v| v.reconnects as f64,
    );
    per_camera(
        &mut out,
        "camfleet_camera_control_writes_failed_total",
        "counter",
        "Control writes refused by the checks or the device, desired ones included.",
        &|v| v.control_writes_failed as f64,
    );
    per_camera(
        &mut out,
        "camfleet_camera_frames_encoded_total",
        "counter",
        "Frames encoded to JPEG from a raw pixel format.",
        &|v| v.frames_encoded as f64,
    );
    per_camera(
        &mut out,
        "camfleet_camera_encode_seconds_total",
        "counter",
        "CPU time the camera's thread spent encoding frames to JPEG.",
        &|v| v.encode_seconds,
    );
    {
        let name = "camfleet_camera_viewers";
        let mut fam = Family::new(
            &mut out,
            name,
            "gauge",
            "Viewers watching the camera's frames now, by kind.",
        );
        for (c, v) in m.cameras.iter().zip(&views) {
            for (kind, n) in &c.viewers {
                fam.sample(
                    name,
                    &[("camera", &v.camera_id), ("kind", kind.name())],
                    *n as f64,
                );
            }
        }
    }
    {
        let name = "camfleet_camera_send_latency_seconds";
        let mut fam = Family::new(
            &mut out,
            name,
            "histogram",
            "Delay from a frame's capture to its hand-over to a viewer's connection.",
        );
        for (c, v) in m.cameras.iter().zip(&views) {
            let id = v.camera_id.as_str();
            let mut cumulative = 0;
            for (i, count) in c.latency.counts.iter().enumerate() {
                cumulative += count;
                let le = LATENCY_BUCKETS_MS
                    .get(i)
                    .map_or_else(|| "+Inf".into(), |ms| format!("{}", ms / 1000.0));
                fam.sample(
                    &format!("{name}_bucket"),
                    &[("camera", id), ("le", &le)],
                    cumulative as f64,
                );
            }
            fam.sample(
                &format!("{name}_sum"),
                &[("camera", id)],
                c.latency.sum_seconds,
            );
            fam.sample(
                &format!("{name}_count"),
                &[("camera", id)],
                c.latency.count() as f64,
            );
        }
    }
    {
        let name = "camfleet_overrides_file_moved_aside";
        let mut fam = Family::new(
            &mut out,
            name,
            "gauge",
            "1 when controls.json was corrupt at start and was moved aside (see the log).",
        );
        fam.sample(name, &[], f64::from(u8::from(m.overrides_moved_aside)));
    }
    {
        let name = "camfleet_overrides_saving";
        let mut fam = Family::new(
            &mut out,
            name,
            "gauge",
            "1 while control changes are being saved; 0 after a write of controls.json failed.",
        );
        fam.sample(name, &[], f64::from(u8::from(m.overrides_saving)));
        let name = "camfleet_overrides_write_failures_total";
        let mut fam = Family::new(
            &mut out,
            name,
            "counter",
            "Writes of controls.json that failed; each change they carried was answered NOT_SAVED.",
        );
        fam.sample(name, &[], m.overrides_write_failures as f64);
    }
    {
        let mut fam = Family::new(
            &mut out,
            "camfleet_sessions",
            "gauge",
            "WebSocket clients connected.",
        );
        fam.sample("camfleet_sessions", &[], m.sessions.connected as f64);
    }
    // Summed over sessions: a label per connection would make a new series per client.
    let sessions = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
        Family::new(out, name, kind, help).sample(name, &[], value as f64);
    };
    sessions(
        &mut out,
        "camfleet_session_queue_depth_max",
        "gauge",
        "The longest queue of status events not yet written out to one client.",
        m.sessions.queue_depth_max,
    );
    sessions(
        &mut out,
        "camfleet_session_events_dropped_total",
        "counter",
        "Status events dropped because a client's queue was full, all clients since start.",
        m.sessions.dropped,
    );
    sessions(
        &mut out,
        "camfleet_session_frames_replaced_total",
        "counter",
        "Frames replaced by a newer one before a client could be sent them, all clients since start.",
        m.sessions.frames_replaced,
    );
    out
}
