//! The protobuf edge: decodes client messages into commands and encodes server messages.
//!
//! Nothing past this module sees a wire struct: incoming bytes become a [`Command`] with
//! parsed camera ids, or a [`Rejection`] that says what was wrong.

use prost::Message as _;

use crate::camera::control::{ControlInfo, ControlType};
use crate::camera::status::{CameraState, CameraStatus};
use crate::camera::{CameraId, Frame};
use crate::config::CaptureMode;
use crate::proto::{self, client_message::Kind as ClientKind, server_message::Kind as ServerKind};

/// The wire protocol's version.
pub const PROTOCOL_VERSION: u32 = 1;

/// A decoded client command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// List every camera.
    ListCameras,
    /// Subscribe to cameras (empty: all).
    Subscribe {
        /// Echoed in the answer.
        request_id: u64,
        /// The cameras.
        cameras: Vec<CameraId>,
        /// Whether frames are wanted too.
        frames: bool,
        /// Frames per second at most, per camera (0: the camera's rate).
        max_fps: u32,
    },
    /// Unsubscribe from cameras (empty: all).
    Unsubscribe {
        /// Echoed in the answer.
        request_id: u64,
        /// The cameras.
        cameras: Vec<CameraId>,
    },
    /// Set a control.
    SetControl {
        /// Echoed in the answer.
        request_id: u64,
        /// The camera.
        camera: CameraId,
        /// The control's name.
        control: String,
        /// The new value.
        value: i64,
    },
    /// Read a camera's controls.
    GetControls {
        /// Echoed in the answer.
        request_id: u64,
        /// The camera.
        camera: CameraId,
    },
    /// Put a camera's controls back to its configuration.
    ResetControls {
        /// Echoed in the answer.
        request_id: u64,
        /// The camera.
        camera: CameraId,
    },
    /// Present the operator token.
    Authenticate {
        /// Echoed in the answer.
        request_id: u64,
        /// The token.
        token: String,
    },
}

impl Command {
    /// Whether the command changes settings, which needs the operator's rights.
    pub fn changes_settings(&self) -> Option<u64> {
        match self {
            Command::SetControl { request_id, .. } | Command::ResetControls { request_id, .. } => {
                Some(*request_id)
            }
            _ => None,
        }
    }
}

/// Why a client message was not turned into a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The bytes are not a `ClientMessage`; answered with `Error`.
    Malformed(String),
    /// A command that names something invalid; answered with a failed `CommandResult`.
    Refused {
        /// The command's request id.
        request_id: u64,
        /// What was wrong.
        message: String,
    },
}

/// Decodes one binary WebSocket message.
pub fn decode(bytes: &[u8]) -> Result<Command, Rejection> {
    let msg = proto::ClientMessage::decode(bytes).map_err(|e| {
        Rejection::Malformed(format!(
            "the message is not a camfleet.v1.ClientMessage ({e}); send one \
             protobuf-encoded ClientMessage per binary WebSocket message"
        ))
    })?;
    let Some(kind) = msg.kind else {
        return Err(Rejection::Malformed(
            "the ClientMessage has no command; set one of list_cameras, subscribe, \
             unsubscribe, set_control, get_controls, reset_controls or authenticate"
                .into(),
        ));
    };
    Ok(match kind {
        ClientKind::ListCameras(_) => Command::ListCameras,
        ClientKind::Subscribe(s) => Command::Subscribe {
            request_id: s.request_id,
            cameras: ids(s.request_id, &s.camera_ids)?,
            frames: s.frames,
            max_fps: s.max_fps,
        },
        ClientKind::Unsubscribe(u) => Command::Unsubscribe {
            request_id: u.request_id,
            cameras: ids(u.request_id, &u.camera_ids)?,
        },
        ClientKind::SetControl(s) => Command::SetControl {
            request_id: s.request_id,
            camera: id(s.request_id, &s.camera_id)?,
            control: s.control,
            value: s.value,
        },
        ClientKind::GetControls(g) => Command::GetControls {
            request_id: g.request_id,
            camera: id(g.request_id, &g.camera_id)?,
        },
        ClientKind::ResetControls(r) => Command::ResetControls {
            request_id: r.request_id,
            camera: id(r.request_id, &r.camera_id)?,
        },
        ClientKind::Authenticate(a) => Command::Authenticate {
            request_id: a.request_id,
            token: a.token,
        },
    })
}

fn id(request_id: u64, raw: &str) -> Result<CameraId, Rejection> {
    CameraId::parse(raw).map_err(|why| Rejection::Refused {
        request_id,
        message: format!("no camera has id `{raw}`: {why}"),
    })
}

fn ids(request_id: u64, raw: &[String]) -> Result<Vec<CameraId>, Rejection> {
    raw.iter().map(|r| id(request_id, r)).collect()
}

/// Encodes one server message.
pub fn encode(kind: ServerKind) -> Vec<u8> {
    proto::ServerMessage { kind: Some(kind) }.encode_to_vec()
}

/// The greeting sent on connect.
pub fn hello(max_message_bytes: u32, operator_token_required: bool) -> ServerKind {
    ServerKind::Hello(proto::Hello {
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: PROTOCOL_VERSION,
        max_message_bytes,
        operator_token_required,
    })
}

/// A command's answer.
pub fn result(request_id: u64, outcome: Result<Option<i64>, String>) -> ServerKind {
    let (ok, error, value) = match outcome {
        Ok(value) => (true, String::new(), value),
        Err(e) => (false, e, None),
    };
    ServerKind::CommandResult(proto::CommandResult {
        request_id,
        ok,
        error,
        value,
    })
}

/// The whole fleet.
pub fn camera_list(list: &[std::sync::Arc<CameraStatus>]) -> ServerKind {
    ServerKind::CameraList(proto::CameraList {
        cameras: list.iter().map(|s| status(s)).collect(),
    })
}

/// An `Error` reply.
pub fn error(message: String) -> ServerKind {
    ServerKind::Error(proto::Error {
        message,
        request_id: 0,
    })
}

/// A camera's status on the wire.
pub fn status(s: &CameraStatus) -> proto::CameraStatus {
    let format = s.format.as_ref();
    proto::CameraStatus {
        camera_id: s.id.to_string(),
        state: match s.state {
            CameraState::Opening => proto::CameraState::Opening,
            CameraState::Streaming => proto::CameraState::Streaming,
            CameraState::Reconnecting => proto::CameraState::Reconnecting,
            CameraState::Stopped => proto::CameraState::Stopped,
            CameraState::Idle => proto::CameraState::Idle,
        } as i32,
        reason: s.reason.clone(),
        fps: s.fps,
        frames_captured: s.frames_captured,
        frames_dropped: s.frames_dropped,
        controls: s
            .controls
            .iter()
            .map(|(name, value)| proto::ControlValue {
                name: name.clone(),
                value: *value,
            })
            .collect(),
        name: s.name.clone(),
        width: format.map_or(0, |f| f.width),
        height: format.map_or(0, |f| f.height),
        pixel_format: format.map(|f| f.fourcc.to_string()).unwrap_or_default(),
        reconnects: s.reconnects,
        control_problems: s
            .control_problems
            .iter()
            .map(|p| proto::ControlProblem {
                name: p.name.clone(),
                desired: p.desired,
                actual: p.actual,
                message: p.message.clone(),
            })
            .collect(),
        last_frame_seq: s.last_frame_seq,
        requested_fps: s.requested_fps,
        capture_mode: capture_mode(s.capture).to_string(),
        viewers: s.viewers as u32,
        frames_corrupt: s.frames_corrupt,
        frames_encoded: s.frames_encoded,
        encode_seconds: s.encode_seconds,
        send_latency_p50_ms: s.send_latency_p50_ms,
        send_latency_p99_ms: s.send_latency_p99_ms,
        format_note: s.format_note.clone(),
        control_writes_failed: s.control_writes_failed,
        device_fps: format.map_or(0.0, |f| f.fps),
    }
}

/// The capture mode's name, as in `cameras.yaml`.
pub fn capture_mode(mode: CaptureMode) -> &'static str {
    match mode {
        CaptureMode::Always => "always",
        CaptureMode::OnDemand => "on_demand",
    }
}

/// A frame as a complete `ServerMessage`, encoded once and shared by every session.
pub fn frame(camera: &CameraId, f: &Frame) -> bytes::Bytes {
    f.encoded
        .get_or_init(|| {
            bytes::Bytes::from(encode(ServerKind::Frame(proto::Frame {
                camera_id: camera.to_string(),
                seq: f.seq,
                capture_timestamp: f.timestamp_micros(),
                jpeg: f.jpeg.clone(),
            })))
        })
        .clone()
}

/// A control on the wire.
pub fn control(c: &ControlInfo) -> proto::ControlInfo {
    let (kind, unsupported_type) = match &c.kind {
        ControlType::Integer => (proto::ControlType::Integer, String::new()),
        ControlType::Boolean => (proto::ControlType::Boolean, String::new()),
        ControlType::Menu => (proto::ControlType::Menu, String::new()),
        ControlType::IntegerMenu => (proto::ControlType::IntegerMenu, String::new()),
        ControlType::Button => (proto::ControlType::Button, String::new()),
        ControlType::Integer64 => (proto::ControlType::Integer64, String::new()),
        ControlType::Bitmask => (proto::ControlType::Bitmask, String::new()),
        ControlType::Unsupported(t) => (proto::ControlType::Unsupported, t.clone()),
    };
    proto::ControlInfo {
        name: c.name.clone(),
        r#type: kind as i32,
        min: c.min,
        max: c.max,
        step: c.step,
        default: c.default,
        value: c.value,
        menu_items: c
            .menu
            .iter()
            .map(|m| proto::MenuItem {
                index: m.index,
                name: m.name.clone(),
            })
            .collect(),
        disabled: c.flags.disabled,
        inactive: c.flags.inactive,
        read_only: c.flags.read_only,
        grabbed: c.flags.grabbed,
        write_only: c.flags.write_only,
        volatile: c.flags.volatile,
        unsupported_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            decode(b"\xff\xff\xff"),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(decode(b""), Err(Rejection::Malformed(_))));
    }

    #[test]
    fn bad_camera_ids_are_refused_with_the_request_id() {
        let msg = proto::ClientMessage {
            kind: Some(ClientKind::SetControl(proto::SetControl {
                request_id: 7,
                camera_id: "no such/camera".into(),
                control: "brightness".into(),
                value: 1,
            })),
        };
        match decode(&msg.encode_to_vec()) {
            Err(Rejection::Refused {
                request_id,
                message,
            }) => {
                assert_eq!(request_id, 7);
                assert!(message.contains("no such/camera"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
