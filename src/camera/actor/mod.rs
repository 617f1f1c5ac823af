//! The camera actor: one per camera, on its own `SyncArbiter` thread, sole owner of its
//! device.
//!
//! The actor drives capture by sending itself a `Capture` message after every step. Each
//! step blocks for at most [`Timing::capture_wait`], so a `SetControl` that arrives
//! meanwhile waits behind at most one step and is applied between frames, with no lock:
//! the mailbox is the only way in. Every failure, a panic included, becomes the
//! Reconnecting state: the device is dropped (closing its file descriptors), the frame
//! slot gets the NO SIGNAL picture with the reason, and the device is opened again with
//! backoff.

mod capture;
mod controls;
mod handlers;
mod parts;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Message, Recipient, SyncArbiter, SyncContext};
use tracing::{info, warn};

use super::control::ControlType;
use super::encode_pool::{EncodePool, PoolCounters};
use super::frame::FramePublisher;
use super::source::Device;
use super::status::{CameraState, CameraStatus};
use crate::config::CameraConfig;
use crate::hub::StatusUpdate;
use crate::stats::{HistogramSnapshot, LatencyHistogram};
use parts::{Backoff, Counters, DeviceLink, FpsMeter, Settings};

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

/// The camera actor's clock: how long it waits for what. The defaults are the constants
/// above; tests pass shorter ones so recovery takes milliseconds instead of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// See [`CAPTURE_WAIT`].
    pub capture_wait: Duration,
    /// See [`STATUS_INTERVAL`].
    pub status_interval: Duration,
    /// See [`BACKOFF_INITIAL`].
    pub backoff_initial: Duration,
    /// See [`BACKOFF_MAX`].
    pub backoff_max: Duration,
    /// See [`STALL_TIMEOUT`].
    pub stall_timeout: Duration,
    /// How long the hub waits for a camera's answer; see [`crate::hub::COMMAND_TIMEOUT`].
    pub command_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            capture_wait: CAPTURE_WAIT,
            status_interval: STATUS_INTERVAL,
            backoff_initial: BACKOFF_INITIAL,
            backoff_max: BACKOFF_MAX,
            stall_timeout: STALL_TIMEOUT,
            command_timeout: crate::hub::COMMAND_TIMEOUT,
        }
    }
}

/// The camera's next step; sent by the camera to itself.
#[derive(Message)]
#[rtype(result = "()")]
struct Capture;

/// One camera and its device.
pub struct CameraActor {
    settings: Settings,
    timing: Timing,
    link: DeviceLink,
    /// Values set while running (and saved by earlier runs), re-applied after the
    /// configured ones on every open.
    overrides: Vec<(String, i64)>,
    state: CameraState,
    counters: Counters,
    meter: FpsMeter,
    backoff: Backoff,
    /// Viewers watching now, as the hub last said.
    viewers: usize,
    /// When the last viewer left, while the device is open and unwatched.
    unwatched_since: Option<Instant>,
    slot: FramePublisher,
    hub: Recipient<StatusUpdate>,
    /// Which start of this camera this is; sent with every status.
    generation: u64,
    /// Encoder threads, once encoding a frame on this thread takes longer than the frame
    /// interval.
    pool: Option<EncodePool>,
    /// Frames in a row whose encode took longer than the frame interval.
    slow_encodes: u32,
    /// Control changes applied since this start, numbering them in the order applied.
    changes_applied: u64,
    latency: Arc<LatencyHistogram>,
    latency_seen: HistogramSnapshot,
    last_frame_at: Instant,
    last_status_at: Instant,
    status_due: bool,
}

impl Actor for CameraActor {
    type Context = SyncContext<Self>;

    fn started(&mut self, ctx: &mut SyncContext<Self>) {
        self.publish_status();
        if !matches!(self.state, CameraState::Stopped { .. }) {
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
    pub slot: FramePublisher,
    /// Its viewers' capture-to-send delays, which it reports in its status.
    pub latency: Arc<LatencyHistogram>,
    /// Overrides saved by earlier runs, applied after the configured controls.
    pub overrides: Vec<(String, i64)>,
    /// Which start of this camera this is; sent with every status.
    pub generation: u64,
    /// How long it waits for what.
    pub timing: Timing,
}

/// Starts a camera on a thread of its own and returns its address.
#[must_use]
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
        let now = Instant::now();
        CameraActor {
            settings: Settings::new(&start.config),
            timing: start.timing,
            link: DeviceLink::new(&start.config),
            overrides: start.overrides,
            state: CameraState::initial(&start.config),
            counters: Counters::default(),
            meter: FpsMeter::new(),
            backoff: Backoff::default(),
            viewers: 0,
            unwatched_since: None,
            slot: start.slot,
            hub: start.hub,
            generation: start.generation,
            pool: None,
            slow_encodes: 0,
            changes_applied: 0,
            latency_seen: start.latency.snapshot(),
            latency: start.latency,
            last_frame_at: now,
            last_status_at: now,
            status_due: true,
        }
    }

    /// Moves to a new state; a change is logged and reported at once.
    fn set_state(&mut self, state: CameraState) {
        // Retries while already reconnecting are not news; the first failure is.
        if self.state.name() != state.name() {
            info!(camera = %self.settings.id, state = %state, reason = %state.reason(), "camera state changed");
        }
        self.state = state;
        self.status_due = true;
    }

    /// Reports the status to the hub when something changed, and at least once per
    /// status interval.
    fn publish_status(&mut self) {
        if !self.status_due && self.last_status_at.elapsed() < self.timing.status_interval {
            return;
        }
        self.status_due = false;
        self.last_status_at = Instant::now();
        let streaming = self.state == CameraState::Streaming;
        let latency = self.latency.snapshot();
        let recent = latency.since(&self.latency_seen);
        self.latency_seen = latency;
        let (c, link) = (&self.counters, &self.link);
        let idle = PoolCounters::default();
        let pooled = self.pool.as_ref().map_or(&idle, |p| &*p.counters);
        let status = CameraStatus {
            id: self.settings.id.clone(),
            name: self.settings.name.clone(),
            state: self.state.clone(),
            fps: if streaming { self.meter.fps() } else { 0.0 },
            requested_fps: self.settings.requested_fps,
            frames_captured: c.captured,
            frames_dropped: c.dropped + pooled.late.load(Relaxed),
            reconnects: c.reconnects,
            last_frame_seq: self.slot.last_seq(),
            format: link.format,
            format_note: link.format_note.clone().unwrap_or_default(),
            controls: link
                .controls
                .iter()
                .filter(|c| c.kind != ControlType::Button)
                .filter_map(|c| c.value.map(|v| (c.name.clone(), v)))
                .collect(),
            control_problems: link.problems.clone(),
            capture: self.settings.capture,
            viewers: self.viewers,
            frames_corrupt: c.corrupt,
            frames_encoded: c.encoded + pooled.encoded.load(Relaxed),
            encode_seconds: c.encode_time.as_secs_f64()
                + Duration::from_nanos(pooled.encode_nanos.load(Relaxed)).as_secs_f64(),
            previews_encoded: self.slot.previews_encoded(),
            encoder_threads: self.pool.as_ref().map_or(0, EncodePool::encoders),
            codec: link
                .h264
                .codec()
                .map(ToString::to_string)
                .unwrap_or_default(),
            gop_frames: link.h264.gop_length().unwrap_or(0),
            bitrate_bps: if streaming { self.meter.bitrate() } else { 0.0 },
            send_latency_p50_ms: recent.quantile_ms(0.5).unwrap_or(0.0),
            send_latency_p99_ms: recent.quantile_ms(0.99).unwrap_or(0.0),
            control_writes_failed: c.control_writes_failed,
        };
        // The hub's mailbox holds 1024 messages (see `Hub::started`); a camera sends a few
        // small ones a second, and `do_send` still delivers when it is full.
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
                warn!(camera = %self.settings.id, "camera code panicked: {what}");
                self.fail(&format!("camera code panicked: {what}"));
                None
            }
        }
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
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
