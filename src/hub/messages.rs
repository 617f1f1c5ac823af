//! Every message that crosses between actors: cameras, the hub and client sessions.
//!
//! Messages are nouns with declared results. They carry status and commands only;
//! frames travel through each camera's frame slot, never through a mailbox.

use std::sync::Arc;

use actix::{Message, Recipient};

use super::CommandError;
use crate::camera::control::ControlInfo;
use crate::camera::status::CameraStatus;
use crate::camera::{CameraId, FrameWatch};
use crate::config::Config;
use crate::stats::{HistogramSnapshot, LatencyHistogram, ViewerCounters};

/// Identifies a client session inside the hub.
pub type SessionId = u64;

/// A camera's new status, from the camera to the hub.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StatusUpdate {
    /// The status.
    pub status: Arc<CameraStatus>,
    /// Which start of the camera sent it; a restarted camera's old actor may still report
    /// once, and the hub ignores it.
    pub generation: u64,
}

/// A control change the camera made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The control as the device reports it after the change; its `value` is the one
    /// read back.
    pub control: ControlInfo,
    /// Whether the change becomes an override, kept across reconnects and restarts
    /// (a button press does not).
    pub is_override: bool,
    /// Where the change stands among the changes this start of the camera applied.
    pub order: u64,
    /// Who made the change and when, once the hub has saved it as an override.
    pub saved: Option<crate::overrides::LastChange>,
}

/// Who asked for a change, for the log and the saved overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changer {
    /// The account or token name; `anyone` on a server without accounts.
    pub account: String,
    /// The client's address.
    pub address: Option<std::net::IpAddr>,
}

/// A camera's controls, with who made each override and when; the session's view of
/// [`GetControls`].
#[derive(Message, Clone)]
#[rtype(
    result = "Result<(Vec<ControlInfo>, Vec<(String, crate::overrides::LastChange)>), CommandError>"
)]
pub struct ReadControls {
    /// The camera.
    pub camera: CameraId,
}

/// Set one control. Sent by a session to the hub, which forwards it to the camera; the
/// answer is the value read back from the device.
#[derive(Message, Clone)]
#[rtype(result = "Result<Applied, CommandError>")]
pub struct SetControl {
    /// The camera.
    pub camera: CameraId,
    /// The control's name.
    pub control: String,
    /// The new value.
    pub value: i64,
    /// Who asked.
    pub by: Changer,
}

/// Read every control of one camera. Routed like [`SetControl`].
#[derive(Message, Clone)]
#[rtype(result = "Result<Vec<ControlInfo>, CommandError>")]
pub struct GetControls {
    /// The camera.
    pub camera: CameraId,
}

/// Tells a camera to release its device and capture no more; answered once the device
/// is closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopCamera;

/// Puts a camera back to its configured controls and drops its overrides.
/// Routed like [`SetControl`].
#[derive(Message, Clone)]
#[rtype(result = "Result<(), CommandError>")]
pub struct ResetControls {
    /// The camera.
    pub camera: CameraId,
    /// Who asked.
    pub by: Changer,
}

/// A new configuration to apply: unchanged cameras are left alone, changed ones restart,
/// new ones start and removed ones stop; what changed is logged.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload(pub Config);

/// What a reload changed, for the log.
#[derive(Debug, Default)]
pub(super) struct ReloadSummary {
    /// Cameras started.
    pub(super) added: Vec<String>,
    /// Cameras restarted with new settings.
    pub(super) restarted: Vec<String>,
    /// Cameras stopped and removed.
    pub(super) removed: Vec<String>,
    /// Cameras left as they were.
    pub(super) unchanged: usize,
}

/// Tells every client about a problem they did not cause, such as a configuration file
/// that failed to reload. Only admins read it: it may quote the file.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Broadcast(pub String);

/// Shutdown, step 2: closes every session with WebSocket close code 1001 (going away).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSessions;

/// Shutdown, step 4: stops every camera; answered once each has released its device (or
/// did not answer within [`super::CAMERA_STOP_TIMEOUT`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopCameras;

/// Counters a session shares with the hub, for metrics.
#[derive(Debug, Default)]
pub struct SessionCounters {
    /// Events the session has taken from its mailbox and written out.
    pub handled: std::sync::atomic::AtomicU64,
    /// Frames replaced before they could be sent, over all its cameras.
    pub frames_replaced: std::sync::atomic::AtomicU64,
}

/// Everything `/metrics` reports, read at one moment.
#[derive(Message)]
#[rtype(result = "MetricsSnapshot")]
pub struct Metrics;

/// One camera's figures for `/metrics`.
pub struct CameraMetrics {
    /// The latest status.
    pub status: Arc<CameraStatus>,
    /// Capture-to-send delays since start.
    pub latency: HistogramSnapshot,
    /// Viewers now, by kind.
    pub viewers: Vec<(ViewerKind, usize)>,
}

/// The WebSocket sessions' figures for `/metrics`, summed so that their number of series
/// stays fixed however many clients come and go.
#[derive(Default, Clone, Copy)]
pub struct SessionMetrics {
    /// Sessions connected now.
    pub connected: u64,
    /// The deepest queue of events not yet written out, among the connected sessions.
    pub queue_depth_max: u64,
    /// Events dropped because a session's queue was full, since start.
    pub dropped: u64,
    /// Frames replaced before they could be sent, since start.
    pub frames_replaced: u64,
}

/// The figures `/metrics` reports.
pub struct MetricsSnapshot {
    /// Per camera, in configuration order.
    pub cameras: Vec<CameraMetrics>,
    /// The WebSocket sessions, summed.
    pub sessions: SessionMetrics,
    /// Whether the overrides file found at start was corrupt and moved aside.
    pub overrides_moved_aside: bool,
    /// Writes of the overrides file that failed since start.
    pub overrides_write_failures: u64,
    /// Whether the last write of the overrides file succeeded.
    pub overrides_saving: bool,
}

/// A session introduces itself to the hub; the answer is its id, or a refusal when the
/// server has as many sessions as it takes.
#[derive(Message)]
#[rtype(result = "Result<SessionId, CommandError>")]
pub struct Connect {
    /// Where the hub sends the session's events.
    pub events: Recipient<SessionEvent>,
    /// The account the client signed in as, if it did at the handshake.
    pub account: Option<String>,
    /// The session's own counters.
    pub counters: Arc<SessionCounters>,
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
    pub send_frames: bool,
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

/// Asks which camera answers the bare `/stream` and `/?action=stream`
/// (`server.default_camera`, as last loaded).
#[derive(Message)]
#[rtype(result = "Option<CameraId>")]
pub struct DefaultCamera;

/// Asks whether a camera is declared; the error lists the ones that are.
#[derive(Message)]
#[rtype(result = "Result<(), CommandError>")]
pub struct KnownCamera(pub CameraId);

/// How a viewer watches a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewerKind {
    /// An MJPEG stream over HTTP.
    Mjpeg,
    /// Frames over a WebSocket session.
    WebSocket,
    /// One snapshot.
    Snapshot,
    /// A live fragmented MP4 of an H.264 camera over HTTP.
    Mp4,
    /// An RTSP session of an H.264 camera.
    Rtsp,
}

impl ViewerKind {
    /// Lower-case name, for the API and metrics.
    pub fn name(self) -> &'static str {
        match self {
            ViewerKind::Mjpeg => "mjpeg",
            ViewerKind::WebSocket => "websocket",
            ViewerKind::Snapshot => "snapshot",
            ViewerKind::Mp4 => "mp4",
            ViewerKind::Rtsp => "rtsp",
        }
    }

    /// Every kind, in the order `/metrics` lists them.
    pub const ALL: [ViewerKind; 5] = [
        ViewerKind::Mjpeg,
        ViewerKind::WebSocket,
        ViewerKind::Snapshot,
        ViewerKind::Mp4,
        ViewerKind::Rtsp,
    ];

    /// Whether it is a long-lived stream over its own connection, which the stream limits
    /// (`server.max_streams` and the rest) count.
    pub fn is_stream(self) -> bool {
        matches!(self, ViewerKind::Mjpeg | ViewerKind::Mp4 | ViewerKind::Rtsp)
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
    /// The client's address, for its share of the streams.
    pub client: Option<std::net::IpAddr>,
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
    /// The viewer's end of the camera's frame slot.
    pub watch: FrameWatch,
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
        watch: FrameWatch,
        latency: Arc<LatencyHistogram>,
        status: Arc<CameraStatus>,
    ) -> Self {
        Viewer {
            camera,
            watch,
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

/// Asks whether the hub and every running camera answer; the answer names the cameras
/// that did not within [`super::HEALTH_TIMEOUT`].
#[derive(Message)]
#[rtype(result = "Vec<CameraId>")]
pub struct CheckHealth;

/// Asks a camera to answer; it does between two capture steps.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ping;

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
    /// The fleet changed: the full list of cameras now.
    Fleet(Vec<Arc<CameraStatus>>),
    /// Something the client should be told, such as a configuration that did not reload.
    Notice(String),
    /// A notice only admins may read (it may quote the configuration).
    AdminNotice(String),
    /// The server is stopping: close the connection (1001, going away).
    Close,
}
