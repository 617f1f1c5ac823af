//! The protobuf edge: decodes client messages into commands and encodes server messages.
//!
//! Nothing past this module sees a wire struct: incoming bytes become a [`Command`] with
//! parsed camera ids, or a [`Rejection`] that says what was wrong.

use prost::Message as _;

use crate::camera::control::{ControlInfo, ControlType};
use crate::camera::frame::preview_index;
use crate::camera::status::{CameraState, CameraStatus};
use crate::camera::{CameraId, Frame};
use crate::config::CaptureMode;
use crate::hub::{Applied, CommandError, ErrorCode};
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
        send_frames: bool,
        /// Frames per second at most, per camera (0: the camera's rate).
        max_fps: u32,
        /// Previews of this position in `PREVIEW_WIDTHS` instead of full frames.
        preview: Option<usize>,
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
    pub fn changes_settings(&self) -> bool {
        matches!(
            self,
            Command::SetControl { .. } | Command::ResetControls { .. }
        )
    }

    /// The id the client chose for this command, echoed in its answer (0 for
    /// `ListCameras`, which has none).
    pub fn request_id(&self) -> u64 {
        match self {
            Command::ListCameras => 0,
            Command::Subscribe { request_id, .. }
            | Command::Unsubscribe { request_id, .. }
            | Command::SetControl { request_id, .. }
            | Command::GetControls { request_id, .. }
            | Command::ResetControls { request_id, .. }
            | Command::Authenticate { request_id, .. } => *request_id,
        }
    }
}

/// Why a client message was not turned into a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The command's request id, when the message could be read that far: the answer is
    /// then a failed `CommandResult`, otherwise an `Error`.
    pub request_id: Option<u64>,
    /// What was wrong.
    pub error: CommandError,
}

impl Rejection {
    fn malformed(message: String) -> Self {
        Rejection {
            request_id: None,
            error: CommandError::InvalidMessage(message),
        }
    }

    /// The answer to send.
    pub fn answer(&self) -> ServerKind {
        match self.request_id {
            Some(request_id) => failure(request_id, &self.error),
            None => error(&self.error),
        }
    }
}

/// Decodes one binary WebSocket message.
pub fn decode(bytes: &[u8]) -> Result<Command, Rejection> {
    let msg = proto::ClientMessage::decode(bytes).map_err(|e| {
        Rejection::malformed(format!(
            "the message is not a camfleet.v1.ClientMessage ({e}); send one \
             protobuf-encoded ClientMessage per binary WebSocket message"
        ))
    })?;
    let Some(kind) = msg.kind else {
        return Err(Rejection::malformed(
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
            send_frames: s.send_frames,
            max_fps: s.max_fps,
            preview: preview(s.request_id, s.preview_width)?,
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
    CameraId::parse(raw).map_err(|why| Rejection {
        request_id: Some(request_id),
        error: CommandError::BadCameraId {
            id: raw.to_string(),
            why: why.clone(),
        },
    })
}

fn ids(request_id: u64, raw: &[String]) -> Result<Vec<CameraId>, Rejection> {
    raw.iter().map(|r| id(request_id, r)).collect()
}

/// The position in `PREVIEW_WIDTHS` of a `preview_width` (0: full frames).
fn preview(request_id: u64, width: u32) -> Result<Option<usize>, Rejection> {
    if width == 0 {
        return Ok(None);
    }
    preview_index(width).map(Some).map_err(|why| Rejection {
        request_id: Some(request_id),
        error: CommandError::InvalidMessage(format!(
            "preview_width {why}, or 0 for frames at full size"
        )),
    })
}

/// A frame as a `ServerMessage` carrying its preview at `PREVIEW_WIDTHS[index]`, in one
/// binary WebSocket frame (see [`framed`]), encoded once per frame and width and shared by every session that watches at that width.
pub fn preview_frame(camera: &CameraId, f: &Frame, index: usize) -> bytes::Bytes {
    // An H.264 frame is sent as the camera made it: a tile scales it when it draws.
    if f.h264.is_some() {
        return frame(camera, f);
    }
    f.previews
        .message(index, || frame_message(camera, f, f.preview(index)))
}

/// Encodes one server message.
pub fn encode(kind: ServerKind) -> Vec<u8> {
    proto::ServerMessage { kind: Some(kind) }.encode_to_vec()
}

/// The greeting sent on connect.
pub fn hello(max_message_bytes: u32, access: Option<&crate::auth::Access>) -> ServerKind {
    ServerKind::Hello(proto::Hello {
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: PROTOCOL_VERSION,
        max_message_bytes,
        sign_in_required: access.is_none(),
        account: access.map(|a| a.name.clone()).unwrap_or_default(),
        role: access
            .map(|a| a.role.name().to_string())
            .unwrap_or_default(),
    })
}

/// The wire's code for a failure.
pub fn code(code: ErrorCode) -> proto::ErrorCode {
    match code {
        ErrorCode::UnknownCamera => proto::ErrorCode::UnknownCamera,
        ErrorCode::UnknownControl => proto::ErrorCode::UnknownControl,
        ErrorCode::OutOfRange => proto::ErrorCode::OutOfRange,
        ErrorCode::NotPermitted => proto::ErrorCode::NotPermitted,
        ErrorCode::DeviceRefused => proto::ErrorCode::DeviceRefused,
        ErrorCode::CameraNotRunning => proto::ErrorCode::CameraNotRunning,
        ErrorCode::Timeout => proto::ErrorCode::Timeout,
        ErrorCode::InvalidMessage => proto::ErrorCode::InvalidMessage,
        ErrorCode::LimitReached => proto::ErrorCode::LimitReached,
        ErrorCode::NotSaved => proto::ErrorCode::NotSaved,
        ErrorCode::WrongHost => proto::ErrorCode::WrongHost,
        ErrorCode::NotSignedIn => proto::ErrorCode::NotSignedIn,
    }
}

/// A successful command's answer.
pub fn ok(request_id: u64) -> ServerKind {
    ServerKind::CommandResult(proto::CommandResult {
        request_id,
        ok: true,
        ..Default::default()
    })
}

/// A successful `SetControl`'s answer: the value read back and the control's fresh info.
pub fn applied(request_id: u64, applied: &Applied) -> ServerKind {
    ServerKind::CommandResult(proto::CommandResult {
        request_id,
        ok: true,
        value: applied.control.value,
        control: Some(changed(control(&applied.control), applied.saved.as_ref())),
        ..Default::default()
    })
}

/// A failed command's answer.
pub fn failure(request_id: u64, e: &CommandError) -> ServerKind {
    ServerKind::CommandResult(proto::CommandResult {
        request_id,
        ok: false,
        error: e.to_string(),
        code: code(e.code()) as i32,
        ..Default::default()
    })
}

/// The answer to a command that returns nothing but success or failure.
pub fn outcome<T>(request_id: u64, outcome: &Result<T, CommandError>) -> ServerKind {
    match outcome {
        Ok(_) => ok(request_id),
        Err(e) => failure(request_id, e),
    }
}

/// The whole fleet.
pub fn camera_list(list: &[std::sync::Arc<CameraStatus>]) -> ServerKind {
    ServerKind::CameraList(proto::CameraList {
        cameras: list.iter().map(|s| status(s)).collect(),
    })
}

/// An `Error` reply to a message that could not be taken as a command.
pub fn error(e: &CommandError) -> ServerKind {
    ServerKind::Error(proto::Error {
        message: e.to_string(),
        request_id: 0,
        code: code(e.code()) as i32,
    })
}

/// An `Error` that answers nothing the client sent: something it should know.
pub fn notice(message: String) -> ServerKind {
    ServerKind::Error(proto::Error {
        message,
        ..Default::default()
    })
}

/// A camera's status on the wire: the one view of it that the WebSocket, `/api/cameras`
/// and `/metrics` all give.
pub fn status(s: &CameraStatus) -> proto::CameraStatus {
    let format = s.format.as_ref();
    proto::CameraStatus {
        camera_id: s.id.to_string(),
        state: match s.state {
            CameraState::Opening => proto::CameraState::Opening,
            CameraState::Streaming => proto::CameraState::Streaming,
            CameraState::Reconnecting { .. } => proto::CameraState::Reconnecting,
            CameraState::Stopped { .. } => proto::CameraState::Stopped,
            CameraState::Idle => proto::CameraState::Idle,
        } as i32,
        reason: s.state.reason().to_string(),
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
        previews_encoded: s.previews_encoded,
        encoder_threads: u32::try_from(s.encoder_threads).unwrap_or(u32::MAX),
        codec: s.codec.clone(),
        gop_frames: s.gop_frames,
        bitrate_bps: s.bitrate_bps,
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

/// A frame as a complete `ServerMessage` in one binary WebSocket frame (see
/// [`framed`]), encoded once and shared by every session.
pub fn frame(camera: &CameraId, f: &Frame) -> bytes::Bytes {
    f.encoded
        .get_or_init(|| frame_message(camera, f, f.jpeg.clone()))
        .clone()
}

/// The `ServerMessage` carrying `jpeg` (the frame's own picture or a preview of it), or
/// of an H.264 frame its access unit untouched.
fn frame_message(camera: &CameraId, f: &Frame, jpeg: bytes::Bytes) -> bytes::Bytes {
    let mut message = proto::Frame {
        camera_id: camera.to_string(),
        seq: f.seq,
        capture_timestamp: f.timestamp_micros(),
        jpeg,
        no_signal: f.no_signal.clone().unwrap_or_default(),
        ..proto::Frame::default()
    };
    if let Some(h264) = &f.h264 {
        message.codec = proto::Codec::H264.into();
        message.h264 = h264.access_unit.clone();
        message.keyframe = h264.keyframe;
        message.codec_string = h264.codec.to_string();
    }
    framed(&encode(ServerKind::Frame(message)))
}

/// `message` as one binary WebSocket frame from the server: header and message, ready to
/// write to a socket as it is. [`payload`] gives back the message.
pub fn framed(message: &[u8]) -> bytes::Bytes {
    let mut frame = bytes::BytesMut::with_capacity(message.len() + 10);
    actix_http::ws::Parser::write_message(
        &mut frame,
        message,
        actix_http::ws::OpCode::Binary,
        true,
        false,
    );
    frame.freeze()
}

/// The message inside a frame made by [`framed`], without copying it.
pub fn payload(frame: &bytes::Bytes) -> bytes::Bytes {
    let header = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    frame.slice(header.min(frame.len())..)
}

/// A control on the wire.
/// A control with who made its override and when, if it has one.
pub fn changed(
    mut control: proto::ControlInfo,
    last: Option<&crate::overrides::LastChange>,
) -> proto::ControlInfo {
    if let Some(last) = last {
        control.changed_by.clone_from(&last.by);
        control.changed_at_unix_ms = last.at_unix_ms;
    }
    control
}

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
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed() {
        for garbage in [&b"\xff\xff\xff"[..], b""] {
            let rejection = decode(garbage).unwrap_err();
            assert_eq!(rejection.request_id, None);
            assert_eq!(rejection.error.code(), ErrorCode::InvalidMessage);
        }
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
            Err(Rejection {
                request_id: Some(7),
                error,
            }) => {
                assert_eq!(error.code(), ErrorCode::UnknownCamera);
                assert!(error.to_string().contains("no such/camera"), "{error}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_framed_message_reads_back_as_one_binary_frame_and_its_payload_is_the_message() {
        // The three lengths of a WebSocket header: 7 bits, 16 bits and 64 bits.
        for len in [10, 200, 70_000] {
            let message: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frame = framed(&message);
            assert_eq!(payload(&frame), message);
            let mut read = bytes::BytesMut::from(&frame[..]);
            let (fin, op, body) = actix_http::ws::Parser::parse(&mut read, false, len + 1)
                .unwrap()
                .unwrap();
            assert!(fin);
            assert_eq!(op, actix_http::ws::OpCode::Binary);
            assert_eq!(body.unwrap(), message);
            assert!(read.is_empty(), "{len}: bytes left after the frame");
        }
    }
}
