//! The camera actor: one per camera, on its own `SyncArbiter` thread, sole owner of its
//! device.
//!
//! The actor drives capture by sending itself a `Capture` message after every step. Each
//! step blocks for at most [`CAPTURE_WAIT`], so a `SetControl` that arrives meanwhile
//! waits behind at most one step and is applied between frames, with no lock: the mailbox
//! is the only way in. Every failure, a panic included, becomes the Reconnecting state:
//! the device is dropped (closing its file descriptors) and opened again with backoff.

mod controls;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Handler, Message, Recipient, SyncArbiter, SyncContext};
use tracing::{info, warn};

use super::control::{ControlInfo, ControlProblem, ControlType};
use super::frame::FramePublisher;
use super::jpeg;
use super::source::{self, Device, FrameData, Opener, SourceError};
use super::status::{CameraState, CameraStatus};
use super::CameraId;
use crate::config::{CameraConfig, CaptureMode, DesiredControl, SourceConfig};
use crate::hub::{
    Applied, CommandError, GetControls, ResetControls, SetControl, StatusUpdate, StopCamera,
    ViewerCount,
};
use crate::stats::{HistogramSnapshot, LatencyHistogram};

/// Longest a camera thread blocks waiting for a frame before it serves queued commands.
pub const CAPTURE_WAIT: Duration = Duration::from_millis(100);
/// How often a camera publishes its status when nothing else changes.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// First wait before reopening a failed device; doubled after each failed attempt.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// Longest wait between two attempts to reopen a device.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A streaming device that delivers nothing for this long (or five frame intervals, if
/// longer) is treated as failed.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The camera's next step; sent by the camera to itself.
#[derive(Message)]
#[rtype(result = "()")]
struct Capture;

enum Phase {
    Idle,
    Opening,
    Streaming,
    Reconnecting { reason: String, retry_at: Instant },
    Stopped,
}

/// One camera and its device.
pub struct CameraActor {
    id: CameraId,
    name: String,
    desired: Vec<DesiredControl>,
    /// Values set while running (and recorded by earlier runs), re-applied after the
    /// configured ones on every open.
    overrides: Vec<(String, i64)>,
    generation: u64,
    /// Control writes the device or the checks refused, desired ones included.
    control_writes_failed: u64,
    requested_fps: f64,
    capture: CaptureMode,
    idle_timeout: Duration,
    /// When the last viewer left, while the device is open and unwatched.
    unwatched_since: Option<Instant>,
    viewers: usize,
    jpeg_quality: u8,
    opener: Box<dyn Opener>,
    device: Option<Box<dyn Device>>,
    /// What the device delivered when last open; kept while it is away.
    format: Option<source::StreamFormat>,
    /// How that format differs from the configuration's request.
    format_note: Option<String>,
    controls: Vec<ControlInfo>,
    problems: Vec<ControlProblem>,
    phase: Phase,
    failures_in_a_row: u32,
    has_failed: bool,
    frames: FramePublisher,
    hub: Recipient<StatusUpdate>,
    /// Sequence number of the newest frame this camera published.
    seq: u64,
    captured: u64,
    dropped: u64,
    corrupt: u64,
    encoded: u64,
    encode_time: Duration,
    reconnects: u64,
    latency: Arc<LatencyHistogram>,
    latency_seen: HistogramSnapshot,
    last_frame_at: Instant,
    meter_start: Instant,
    meter_frames: u64,
    fps: f64,
    last_status_at: Instant,
    status_due: bool,
}

impl Actor for CameraActor {
    type Context = SyncContext<Self>;

    fn started(&mut self, ctx: &mut SyncContext<Self>) {
        self.publish_status();
        if !matches!(self.phase, Phase::Stopped) {
            ctx.address().do_send(Capture);
        }
    }
}

/// What a camera starts with.
#[derive(Clone)]
pub struct CameraStart {
    /// Its configuration.
    pub config: CameraConfig,
    /// Where it reports its status.
    pub hub: Recipient<StatusUpdate>,
    /// Where it publishes its frames.
    pub frames: FramePublisher,
    /// Its viewers' capture-to-send delays, which it reports in its status.
    pub latency: Arc<LatencyHistogram>,
    /// Control changes recorded by earlier runs, applied after the configured ones.
    pub recorded: Vec<(String, i64)>,
    /// Which start of this camera this is; sent with every status.
    pub generation: u64,
}

/// Starts a camera on a thread of its own and returns its address.
pub fn start(start: CameraStart) -> Addr<CameraActor> {
    let thread_name = format!("camera-{}", start.config.id);
    SyncArbiter::start_with_thread_builder(
        1,
        move || std::thread::Builder::new().name(thread_name.clone()),
        move || CameraActor::new(start.clone()),
    )
}

impl CameraActor {
    fn new(start: CameraStart) -> Self {
        let CameraStart {
            config,
            hub,
            frames,
            latency,
            recorded,
            generation,
        } = start;
        let cfg = &config;
        let (opener, requested_fps): (Box<dyn Opener>, f64) = match &cfg.source {
            SourceConfig::Synthetic(s) => (
                Box::new(source::synthetic::SyntheticOpener::new(
                    s.clone(),
                    &cfg.name,
                )),
                f64::from(s.fps),
            ),
            SourceConfig::V4l2(v) => (
                Box::new(source::v4l2::V4l2Opener::new(v.clone())),
                v.fps.map(f64::from).unwrap_or(0.0),
            ),
        };
        let now = Instant::now();
        CameraActor {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            desired: cfg.controls.clone(),
            overrides: recorded,
            generation,
            control_writes_failed: 0,
            requested_fps,
            capture: cfg.capture,
            idle_timeout: cfg.idle_timeout,
            unwatched_since: None,
            viewers: 0,
            jpeg_quality: cfg.jpeg_quality,
            opener,
            device: None,
            format: None,
            format_note: None,
            controls: Vec::new(),
            problems: Vec::new(),
            phase: match (cfg.enabled, cfg.capture) {
                (false, _) => Phase::Stopped,
                (true, CaptureMode::OnDemand) => Phase::Idle,
                (true, CaptureMode::Always) => Phase::Opening,
            },
            failures_in_a_row: 0,
            has_failed: false,
            frames,
            hub,
            seq: 0,
            captured: 0,
            dropped: 0,
            corrupt: 0,
            encoded: 0,
            encode_time: Duration::ZERO,
            reconnects: 0,
            latency_seen: latency.snapshot(),
            latency,
            last_frame_at: now,
            meter_start: now,
            meter_frames: 0,
            fps: 0.0,
            last_status_at: now,
            status_due: true,
        }
    }

    /// One step: capture a frame, or (re)open the device when its time has come, or, for
    /// an on-demand camera, close it once it has been unwatched for its idle timeout.
    fn step(&mut self) {
        if self.capture == CaptureMode::OnDemand {
            let idle_for = self
                .unwatched_since
                .map(|t| t.elapsed())
                .unwrap_or_default();
            match self.phase {
                Phase::Idle if self.viewers > 0 => self.set_phase(Phase::Opening),
                Phase::Idle => return std::thread::sleep(CAPTURE_WAIT),
                Phase::Streaming | Phase::Reconnecting { .. } | Phase::Opening
                    if self.viewers == 0 && idle_for >= self.idle_timeout =>
                {
                    drop_quietly(self.device.take());
                    self.frames.clear();
                    return self.set_phase(Phase::Idle);
                }
                _ => {}
            }
        }
        let retry_at = match &self.phase {
            Phase::Streaming => return self.capture(),
            Phase::Stopped | Phase::Idle => return,
            Phase::Opening => Instant::now(),
            Phase::Reconnecting { retry_at, .. } => *retry_at,
        };
        let now = Instant::now();
        if now >= retry_at {
            self.open();
        } else {
            std::thread::sleep((retry_at - now).min(CAPTURE_WAIT));
        }
    }

    fn open(&mut self) {
        let device = match self.opener.open() {
            Ok(device) => device,
            Err(e) => return self.fail(&e),
        };
        self.format = Some(device.format());
        self.format_note = device.note();
        self.device = Some(device);
        if let Err(e) = self.apply_desired() {
            return self.fail(&e);
        }
        if self.has_failed {
            self.reconnects += 1;
        }
        self.failures_in_a_row = 0;
        self.last_frame_at = Instant::now();
        self.meter_start = self.last_frame_at;
        self.meter_frames = 0;
        self.set_phase(Phase::Streaming);
    }

    fn capture(&mut self) {
        let device = self
            .device
            .as_mut()
            .expect("a streaming camera has a device");
        let format = device.format();
        let captured = match device.next_frame(CAPTURE_WAIT) {
            Ok(Some(c)) => c,
            Ok(None) => {
                let limit = STALL_TIMEOUT.max(Duration::from_secs_f64(5.0 / format.fps.max(0.1)));
                if self.last_frame_at.elapsed() > limit {
                    let reason = format!("no frame for {:.1} s", limit.as_secs_f64());
                    self.fail(&SourceError::Failed(reason));
                }
                return;
            }
            Err(e) => return self.fail(&e),
        };
        self.captured += 1;
        self.dropped += captured.lost_before;
        let captured_at = captured.captured_at;
        self.last_frame_at = Instant::now();
        self.meter_frames += 1;
        let jpeg = match captured.data {
            // The source made this JPEG itself; it is complete by construction.
            FrameData::Jpeg(b) => Some(b),
            FrameData::JpegBorrowed(data) => {
                let jpeg = jpeg::normalize(data);
                if jpeg.is_none() {
                    self.corrupt += 1;
                }
                jpeg
            }
            // Raw frames are encoded once each, and only while someone watches.
            FrameData::Raw(_) if self.viewers == 0 => None,
            FrameData::Raw(data) => {
                let started = Instant::now();
                let f = format;
                match jpeg::encode_raw(f.fourcc, f.width, f.height, data, self.jpeg_quality) {
                    Ok(jpeg) => {
                        self.encoded += 1;
                        self.encode_time += started.elapsed();
                        Some(jpeg)
                    }
                    Err(e) => {
                        warn!(camera = %self.id, "dropping a frame: {e}");
                        self.corrupt += 1;
                        None
                    }
                }
            }
        };
        self.update_fps();
        let Some(jpeg) = jpeg else { return };
        self.seq = self
            .frames
            .publish(captured_at, jpeg, format.width, format.height);
    }

    fn update_fps(&mut self) {
        let window = self.meter_start.elapsed();
        if window >= STATUS_INTERVAL {
            self.fps = self.meter_frames as f64 / window.as_secs_f64();
            self.meter_start = Instant::now();
            self.meter_frames = 0;
        }
    }

    /// Gives up the device and schedules a reopen with backoff.
    fn fail(&mut self, error: &dyn std::fmt::Display) {
        drop_quietly(self.device.take());
        self.frames.clear();
        self.fps = 0.0;
        self.has_failed = true;
        let backoff = BACKOFF_INITIAL
            .saturating_mul(1 << self.failures_in_a_row.min(8))
            .min(BACKOFF_MAX);
        self.failures_in_a_row += 1;
        self.set_phase(Phase::Reconnecting {
            reason: error.to_string(),
            retry_at: Instant::now() + backoff,
        });
    }

    fn set_phase(&mut self, phase: Phase) {
        let (old, new) = (self.state(), state_of(&phase));
        self.phase = phase;
        // Retries while already reconnecting are not news; the first failure is.
        if old != new {
            info!(camera = %self.id, state = %new, reason = %self.reason(), "camera state changed");
        }
        self.status_due = true;
    }

    fn state(&self) -> CameraState {
        state_of(&self.phase)
    }

    fn reason(&self) -> String {
        match &self.phase {
            Phase::Reconnecting { reason, .. } => reason.clone(),
            Phase::Stopped => "stopped".into(),
            Phase::Idle => "no viewer; opens when someone watches".into(),
            _ => String::new(),
        }
    }

    fn publish_status(&mut self) {
        if !self.status_due && self.last_status_at.elapsed() < STATUS_INTERVAL {
            return;
        }
        self.status_due = false;
        self.last_status_at = Instant::now();
        let streaming = matches!(self.phase, Phase::Streaming);
        let latency = self.latency.snapshot();
        let recent = latency.since(&self.latency_seen);
        self.latency_seen = latency;
        let status = CameraStatus {
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state(),
            reason: self.reason(),
            fps: if streaming { self.fps } else { 0.0 },
            requested_fps: self.requested_fps,
            frames_captured: self.captured,
            frames_dropped: self.dropped,
            reconnects: self.reconnects,
            last_frame_seq: self.seq,
            format: self.format,
            format_note: self.format_note.clone().unwrap_or_default(),
            controls: self
                .controls
                .iter()
                .filter(|c| c.kind != ControlType::Button)
                .filter_map(|c| c.value.map(|v| (c.name.clone(), v)))
                .collect(),
            control_problems: self.problems.clone(),
            capture: self.capture,
            viewers: self.viewers,
            frames_corrupt: self.corrupt,
            frames_encoded: self.encoded,
            encode_seconds: self.encode_time.as_secs_f64(),
            send_latency_p50_ms: recent.quantile_ms(0.5).unwrap_or(0.0),
            send_latency_p99_ms: recent.quantile_ms(0.99).unwrap_or(0.0),
            control_writes_failed: self.control_writes_failed,
        };
        // The hub's mailbox is unbounded; a camera sends a few small messages a second.
        self.hub.do_send(StatusUpdate {
            status: Arc::new(status),
            generation: self.generation,
        });
    }

    /// Runs `f`; a panic inside it is a failure of this camera, never of the process.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(v) => Some(v),
            Err(panic) => {
                let what = panic_text(panic.as_ref());
                warn!(camera = %self.id, "camera code panicked: {what}");
                self.fail(&format!("camera code panicked: {what}"));
                None
            }
        }
    }
}

fn state_of(phase: &Phase) -> CameraState {
    match phase {
        Phase::Idle => CameraState::Idle,
        Phase::Opening => CameraState::Opening,
        Phase::Streaming => CameraState::Streaming,
        Phase::Reconnecting { .. } => CameraState::Reconnecting,
        Phase::Stopped => CameraState::Stopped,
    }
}

/// Drops a device; a device whose teardown panics is still gone.
fn drop_quietly(device: Option<Box<dyn Device>>) {
    if catch_unwind(AssertUnwindSafe(move || drop(device))).is_err() {
        warn!("closing a device panicked; its resources are released anyway");
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl Handler<Capture> for CameraActor {
    type Result = ();

    fn handle(&mut self, _: Capture, ctx: &mut SyncContext<Self>) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        self.guarded(|me| me.step());
        self.publish_status();
        ctx.address().do_send(Capture);
    }
}

impl Handler<SetControl> for CameraActor {
    type Result = Result<Applied, CommandError>;

    fn handle(&mut self, msg: SetControl, _: &mut SyncContext<Self>) -> Self::Result {
        let result = self
            .guarded(|me| me.set_control(&msg))
            .unwrap_or_else(|| Err(self.unavailable()));
        self.publish_status();
        result
    }
}

impl Handler<ResetControls> for CameraActor {
    type Result = Result<(), CommandError>;

    fn handle(&mut self, _: ResetControls, _: &mut SyncContext<Self>) -> Self::Result {
        let result = self
            .guarded(|me| me.reset_controls())
            .unwrap_or_else(|| Err(self.unavailable()));
        self.publish_status();
        result
    }
}

impl Handler<GetControls> for CameraActor {
    type Result = Result<Vec<ControlInfo>, CommandError>;

    fn handle(&mut self, _: GetControls, _: &mut SyncContext<Self>) -> Self::Result {
        let read = self.guarded(|me| me.device.as_mut().map(|d| d.controls()));
        match read {
            Some(Some(Ok(controls))) => {
                self.controls = controls.clone();
                Ok(controls)
            }
            Some(Some(Err(e))) => {
                self.fail(&e);
                Err(self.unavailable())
            }
            _ => Err(self.unavailable()),
        }
    }
}

impl Handler<ViewerCount> for CameraActor {
    type Result = ();

    fn handle(&mut self, ViewerCount(n): ViewerCount, _: &mut SyncContext<Self>) {
        self.unwatched_since = match (n, self.unwatched_since) {
            (0, None) => Some(Instant::now()),
            (0, since) => since,
            _ => None,
        };
        self.viewers = n;
        self.status_due = true;
        self.publish_status();
    }
}

impl Handler<StopCamera> for CameraActor {
    type Result = ();

    fn handle(&mut self, _: StopCamera, _: &mut SyncContext<Self>) {
        drop_quietly(self.device.take());
        self.frames.clear();
        self.set_phase(Phase::Stopped);
        self.publish_status();
    }
}
