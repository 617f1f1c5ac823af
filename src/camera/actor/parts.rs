//! The camera actor's state, in named parts: what it was configured with, its link to the
//! device, its counters, its frame-rate meter and its backoff.

use std::time::{Duration, Instant};

use super::Timing;
use crate::camera::control::{ControlInfo, ControlProblem};
use crate::camera::source::{self, Device, Opener};
use crate::camera::CameraId;
use crate::config::{CameraConfig, CaptureMode, DesiredControl, SourceConfig};

/// What the configuration says about the camera; fixed for the actor's life.
pub(super) struct Settings {
    pub(super) id: CameraId,
    pub(super) name: String,
    /// The configured controls, applied on every open before the overrides.
    pub(super) desired: Vec<DesiredControl>,
    pub(super) requested_fps: f64,
    pub(super) capture: CaptureMode,
    pub(super) idle_timeout: Duration,
    pub(super) jpeg_quality: u8,
}

impl Settings {
    pub(super) fn new(cfg: &CameraConfig) -> Self {
        let requested_fps = match &cfg.source {
            SourceConfig::Synthetic(s) => f64::from(s.fps),
            SourceConfig::V4l2(v) => v.fps.map_or(0.0, f64::from),
        };
        Settings {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            desired: cfg.controls.clone(),
            requested_fps,
            capture: cfg.capture,
            idle_timeout: cfg.idle_timeout,
            jpeg_quality: cfg.jpeg_quality,
        }
    }
}

/// The device and what the camera knows of it.
pub(super) struct DeviceLink {
    /// Opens the device; kept for the camera's whole life, to reopen after faults.
    pub(super) opener: Box<dyn Opener>,
    /// The open device; `None` while it is closed.
    pub(super) device: Option<Box<dyn Device>>,
    /// What the device delivered when last open; kept while it is away.
    pub(super) format: Option<source::StreamFormat>,
    /// How that format differs from the configuration's request.
    pub(super) format_note: Option<String>,
    /// The device's controls as last read.
    pub(super) controls: Vec<ControlInfo>,
    /// Desired controls that are not in effect.
    pub(super) problems: Vec<ControlProblem>,
    /// What is known of the device's H.264 stream, if it sends one.
    pub(super) h264: crate::camera::h264::Stream,
}

impl DeviceLink {
    pub(super) fn new(cfg: &CameraConfig) -> Self {
        let opener: Box<dyn Opener> = match &cfg.source {
            SourceConfig::Synthetic(s) => Box::new(source::synthetic::SyntheticOpener::new(
                s.clone(),
                &cfg.name,
            )),
            SourceConfig::V4l2(v) => Box::new(source::v4l2::V4l2Opener::new(v.clone())),
        };
        DeviceLink {
            opener,
            device: None,
            format: None,
            format_note: None,
            controls: Vec::new(),
            problems: Vec::new(),
            h264: crate::camera::h264::Stream::default(),
        }
    }
}

/// What the camera counts since it started.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) captured: u64,
    pub(super) dropped: u64,
    pub(super) corrupt: u64,
    pub(super) encoded: u64,
    pub(super) encode_time: Duration,
    pub(super) reconnects: u64,
    /// Control writes the device or the checks refused, desired ones included.
    pub(super) control_writes_failed: u64,
}

/// Frames and bits per second, measured over windows of one status interval.
pub(super) struct FpsMeter {
    start: Instant,
    frames: u64,
    bytes: u64,
    fps: f64,
    bitrate: f64,
}

impl FpsMeter {
    pub(super) fn new() -> Self {
        FpsMeter {
            start: Instant::now(),
            frames: 0,
            bytes: 0,
            fps: 0.0,
            bitrate: 0.0,
        }
    }

    /// Starts measuring afresh (the device was just opened or lost).
    pub(super) fn reset(&mut self) {
        *self = FpsMeter::new();
    }

    /// Counts one frame of `bytes` bytes; closes the window once it is `window` long.
    pub(super) fn tick(&mut self, window: Duration, bytes: usize) {
        self.frames += 1;
        self.bytes += bytes as u64;
        let elapsed = self.start.elapsed();
        if elapsed >= window {
            self.fps = self.frames as f64 / elapsed.as_secs_f64();
            self.bitrate = self.bytes as f64 * 8.0 / elapsed.as_secs_f64();
            self.start = Instant::now();
            self.frames = 0;
            self.bytes = 0;
        }
    }

    pub(super) fn bitrate(&self) -> f64 {
        self.bitrate
    }

    pub(super) fn fps(&self) -> f64 {
        self.fps
    }
}

/// When to try the device again after failures: waits that double from
/// [`Timing::backoff_initial`] up to [`Timing::backoff_max`].
#[derive(Default)]
pub(super) struct Backoff {
    failures_in_a_row: u32,
    /// Whether the device has ever failed, so the next open counts as a reconnect.
    pub(super) has_failed: bool,
    /// When the next attempt is due.
    pub(super) retry_at: Option<Instant>,
}

impl Backoff {
    /// Notes a failure and schedules the next attempt.
    pub(super) fn failed(&mut self, timing: &Timing) {
        let wait = timing
            .backoff_initial
            .saturating_mul(1 << self.failures_in_a_row.min(8))
            .min(timing.backoff_max);
        self.failures_in_a_row += 1;
        self.has_failed = true;
        self.retry_at = Some(Instant::now() + wait);
    }

    /// Notes a successful open.
    pub(super) fn succeeded(&mut self) {
        self.failures_in_a_row = 0;
        self.retry_at = None;
    }
}
