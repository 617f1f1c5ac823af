//! A camera's published state: what the hub keeps and clients see.

use std::fmt;

use super::control::ControlProblem;
use super::source::StreamFormat;
use super::CameraId;
use crate::config::{CameraConfig, CaptureMode};

/// Where a camera is in its life: the camera actor's own state, and what its status
/// reports. It goes Opening -> Streaming -> Reconnecting(reason) -> Opening, or rests in
/// Idle (on-demand, unwatched) or Stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraState {
    /// Opening and configuring the device.
    Opening,
    /// Frames are flowing.
    Streaming,
    /// The device is absent or failed; it is retried with backoff.
    Reconnecting {
        /// What went wrong.
        reason: String,
    },
    /// Disabled, or the server is stopping.
    Stopped {
        /// Why.
        reason: String,
    },
    /// On-demand and unwatched: the device is closed until a viewer comes.
    Idle,
}

impl CameraState {
    /// The names of the states, as [`CameraState::name`] gives them.
    pub const NAMES: [&'static str; 5] =
        ["Opening", "Streaming", "Reconnecting", "Stopped", "Idle"];

    /// The state's name, e.g. `Streaming`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            CameraState::Opening => "Opening",
            CameraState::Streaming => "Streaming",
            CameraState::Reconnecting { .. } => "Reconnecting",
            CameraState::Stopped { .. } => "Stopped",
            CameraState::Idle => "Idle",
        }
    }

    /// Why the camera is not streaming; empty while it opens or streams.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            CameraState::Reconnecting { reason } | CameraState::Stopped { reason } => reason,
            CameraState::Idle => "no viewer; opens when someone watches",
            CameraState::Opening | CameraState::Streaming => "",
        }
    }

    /// Where a camera starts.
    #[must_use]
    pub fn initial(cfg: &CameraConfig) -> Self {
        match (cfg.enabled, cfg.capture) {
            (false, _) => CameraState::Stopped {
                reason: "disabled in the configuration".into(),
            },
            (true, CaptureMode::OnDemand) => CameraState::Idle,
            (true, CaptureMode::Always) => CameraState::Opening,
        }
    }
}

impl fmt::Display for CameraState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot of one camera's state and counters.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraStatus {
    /// The camera.
    pub id: CameraId,
    /// Its display name.
    pub name: String,
    /// Where it is in its life, and why when it is not streaming.
    pub state: CameraState,
    /// Frames per second over the last second.
    pub fps: f64,
    /// The frame rate asked for.
    pub requested_fps: f64,
    /// Frames captured since start.
    pub frames_captured: u64,
    /// Frames lost by the device or the capture loop since start.
    pub frames_dropped: u64,
    /// Times the device was reopened after a failure.
    pub reconnects: u64,
    /// Sequence number of the newest frame.
    pub last_frame_seq: u64,
    /// What the device delivers (when last open).
    pub format: Option<StreamFormat>,
    /// How that differs from what the configuration asked for; empty when it does not.
    pub format_note: String,
    /// Current control values, by name.
    pub controls: Vec<(String, i64)>,
    /// Desired control values that are not in effect.
    pub control_problems: Vec<ControlProblem>,
    /// Whether the camera captures always or only while watched.
    pub capture: CaptureMode,
    /// Viewers watching its frames now.
    pub viewers: usize,
    /// Frames dropped because they were truncated or corrupt JPEG.
    pub frames_corrupt: u64,
    /// Frames camfleet encoded from a raw format.
    pub frames_encoded: u64,
    /// Time spent encoding them, in seconds.
    pub encode_seconds: f64,
    /// Previews made from its frames.
    pub previews_encoded: u64,
    /// Encoder threads encoding its raw frames; 0 while its own thread does.
    pub encoder_threads: usize,
    /// For a camera that sends H.264: the codec string; empty otherwise.
    pub codec: String,
    /// For a camera that sends H.264: frames in its last complete GOP (0: not known yet).
    pub gop_frames: u64,
    /// Bits per second the device delivered over the last status interval.
    pub bitrate_bps: f64,
    /// Capture-to-send delay over the last status interval, median, in milliseconds
    /// (bucket upper bound; 0 when nothing was sent).
    pub send_latency_p50_ms: f64,
    /// The same, 99th percentile.
    pub send_latency_p99_ms: f64,
    /// Control writes refused by the checks or the device, desired ones included.
    pub control_writes_failed: u64,
}

impl CameraStatus {
    /// The status of a camera that has not reported yet.
    #[must_use]
    pub fn initial(cfg: &CameraConfig) -> Self {
        CameraStatus {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            state: CameraState::initial(cfg),
            fps: 0.0,
            requested_fps: 0.0,
            frames_captured: 0,
            frames_dropped: 0,
            reconnects: 0,
            last_frame_seq: 0,
            format: None,
            format_note: String::new(),
            controls: Vec::new(),
            control_problems: Vec::new(),
            capture: cfg.capture,
            viewers: 0,
            frames_corrupt: 0,
            frames_encoded: 0,
            previews_encoded: 0,
            encoder_threads: 0,
            codec: String::new(),
            gop_frames: 0,
            bitrate_bps: 0.0,
            encode_seconds: 0.0,
            send_latency_p50_ms: 0.0,
            send_latency_p99_ms: 0.0,
            control_writes_failed: 0,
        }
    }
}
