//! Every message that crosses between actors: cameras, the hub and client sessions.
//!
//! Messages are nouns with declared results. They carry status and commands only;
//! frames travel through each camera's frame slot, never through a mailbox.

use std::sync::Arc;

use actix::{Message, Recipient};

use crate::camera::control::{ControlError, ControlInfo};
use crate::camera::status::CameraStatus;
use crate::camera::{CameraId, FrameWatch};

/// Identifies a client session inside the hub.
pub type SessionId = u64;

/// Why a command routed to a camera failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No camera has that id.
    #[error("no camera has id `{id}`; the cameras are: {known}")]
    UnknownCamera {
        /// The id asked for.
        id: String,
        /// The ids there are, comma-separated.
        known: String,
    },
    /// The camera exists but its actor is not running (disabled or stopping).
    #[error("camera `{0}` is not running; enable it in the configuration")]
    NotRunning(CameraId),
    /// The camera did not answer in time.
    #[error("camera `{0}` did not answer within {1} s; try again")]
    Timeout(CameraId, u64),
    /// The camera refused the control change or read.
    #[error("camera `{camera}`: {error}")]
    Control {
        /// The camera.
        camera: CameraId,
        /// What it said.
        error: ControlError,
    },
}

/// A camera's new status, from the camera to the hub.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StatusUpdate(pub Arc<CameraStatus>);

/// Set one control. Sent by a session to the hub, which forwards it to the camera; the
/// answer is the value read back from the device.
#[derive(Message, Clone)]
#[rtype(result = "Result<i64, CommandError>")]
pub struct SetControl {
    /// The camera.
    pub camera: CameraId,
    /// The control's name.
    pub control: String,
    /// The new value.
    pub value: i64,
}

/// Read every control of one camera. Routed like [`SetControl`].
#[derive(Message, Clone)]
#[rtype(result = "Result<Vec<ControlInfo>, CommandError>")]
pub struct GetControls {
    /// The camera.
    pub camera: CameraId,
}

/// Tells a camera to release its device and capture no more.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopCamera;

/// A session introduces itself to the hub; the answer is its id.
#[derive(Message)]
#[rtype(result = "SessionId")]
pub struct Connect {
    /// Where the hub sends the session's events.
    pub events: Recipient<SessionEvent>,
}

/// A session leaves; the hub forgets it and its subscriptions.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    /// The session.
    pub session: SessionId,
}

/// A session subscribes to cameras' status. Unknown ids refuse the whole command.
#[derive(Message)]
#[rtype(result = "Result<(), CommandError>")]
pub struct Subscribe {
    /// The session.
    pub session: SessionId,
    /// The cameras; empty means all, including cameras added later.
    pub cameras: Vec<CameraId>,
}

/// A session unsubscribes from cameras.
#[derive(Message)]
#[rtype(result = "Result<(), CommandError>")]
pub struct Unsubscribe {
    /// The session.
    pub session: SessionId,
    /// The cameras; empty means all.
    pub cameras: Vec<CameraId>,
}

/// Asks for every camera's latest status, in configuration order.
#[derive(Message)]
#[rtype(result = "Vec<Arc<CameraStatus>>")]
pub struct ListCameras;

/// Asks for a camera's frame slot, to watch its frames.
#[derive(Message)]
#[rtype(result = "Result<FrameWatch, CommandError>")]
pub struct WatchFrames {
    /// The camera.
    pub camera: CameraId,
}

/// What the hub sends to a session.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum SessionEvent {
    /// A subscribed camera's status.
    Status(Arc<CameraStatus>),
    /// How many of this session's events the hub dropped because it could not keep up.
    Dropped(u64),
}
