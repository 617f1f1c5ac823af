//! Every message that crosses between actors: cameras, the hub and client sessions.
//!
//! Messages are nouns with declared results. They carry status and commands only;
//! frames travel through each camera's frame slot, never through a mailbox.

use std::sync::Arc;

use actix::{Message, Recipient};

use crate::camera::control::{ControlError, ControlInfo};
use crate::camera::status::CameraStatus;
use crate::camera::{CameraId, FrameWatch};
use crate::stats::{LatencyHistogram, ViewerCounters};

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
    /// A limit on viewers or clients is reached.
    #[error("{0}")]
    TooMany(String),
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

/// A session introduces itself to the hub; the answer is its id, or a refusal when the
/// server has as many sessions as it takes.
#[derive(Message)]
#[rtype(result = "Result<SessionId, CommandError>")]
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

/// A session subscribes to cameras' status, and frames if asked. Unknown ids refuse the
/// whole command. The answer holds a [`Viewer`] per camera when frames are asked for.
#[derive(Message)]
#[rtype(result = "Result<Vec<Viewer>, CommandError>")]
pub struct Subscribe {
    /// The session.
    pub session: SessionId,
    /// The cameras; empty means all (for status, also cameras added later).
    pub cameras: Vec<CameraId>,
    /// Whether the session wants frames too.
    pub frames: bool,
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

/// How a viewer watches a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewerKind {
    /// An MJPEG stream over HTTP.
    Mjpeg,
    /// Frames over a WebSocket session.
    WebSocket,
    /// One snapshot.
    Snapshot,
}

impl ViewerKind {
    /// Lower-case name, for the API and metrics.
    pub fn name(self) -> &'static str {
        match self {
            ViewerKind::Mjpeg => "mjpeg",
            ViewerKind::WebSocket => "websocket",
            ViewerKind::Snapshot => "snapshot",
        }
    }
}

/// Identifies a viewer inside the hub.
pub type ViewerId = u64;

/// Asks to watch a camera's frames. The hub counts viewers (so on-demand cameras open and
/// raw frames are encoded only while someone watches) and enforces the stream limits.
#[derive(Message)]
#[rtype(result = "Result<Viewer, CommandError>")]
pub struct Watch {
    /// The camera.
    pub camera: CameraId,
    /// How it is watched.
    pub kind: ViewerKind,
}

/// A viewer stops watching; sent when its [`Viewer`] is dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unwatch {
    /// The viewer.
    pub viewer: ViewerId,
}

/// The right to watch one camera's frames, from [`Watch`]. Dropping it tells the hub.
pub struct Viewer {
    /// The camera.
    pub camera: CameraId,
    /// The camera's frame slot.
    pub frames: FrameWatch,
    /// This viewer's counters.
    pub counters: Arc<ViewerCounters>,
    /// The camera's capture-to-send latency, shared by all its viewers.
    pub latency: Arc<LatencyHistogram>,
    /// The camera's latest status when watching began.
    pub status: Arc<CameraStatus>,
    id: ViewerId,
    hub: Recipient<Unwatch>,
}

impl Viewer {
    pub(super) fn new(
        id: ViewerId,
        hub: Recipient<Unwatch>,
        camera: CameraId,
        frames: FrameWatch,
        latency: Arc<LatencyHistogram>,
        status: Arc<CameraStatus>,
    ) -> Self {
        Viewer {
            camera,
            frames,
            counters: Arc::default(),
            latency,
            status,
            id,
            hub,
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.hub.do_send(Unwatch { viewer: self.id });
    }
}

/// Tells a camera how many viewers watch its frames.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ViewerCount(pub usize);

/// What the hub sends to a session.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum SessionEvent {
    /// A subscribed camera's status.
    Status(Arc<CameraStatus>),
    /// How many of this session's events the hub dropped because it could not keep up.
    Dropped(u64),
}
