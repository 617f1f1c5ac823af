//! The camera actor's capture loop: one step at a time, opening, capturing, failing and
//! going idle.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{drop_quietly, CameraActor};
use crate::camera::encode_pool::{EncodeFn, EncodePool};
use crate::camera::h264::Refused;
use crate::camera::jpeg;
use crate::camera::source::{FrameData, SourceError};
use crate::camera::status::CameraState;
use crate::config::CaptureMode;

/// Size of the NO SIGNAL picture of a camera whose format is not known yet.
const NO_SIGNAL_SIZE: (u32, u32) = (640, 480);
/// Encodes in a row longer than the frame interval after which encoding moves to encoder
/// threads.
const SLOW_ENCODES: u32 = 3;
/// Most encoder threads a camera uses.
const MAX_ENCODERS: usize = 4;

impl CameraActor {
    /// One step: capture a frame, or (re)open the device when its time has come, or, for
    /// an on-demand camera, close it once it has been unwatched for its idle timeout.
    pub(super) fn step(&mut self) {
        let wait = self.timing.capture_wait;
        if self.settings.capture == CaptureMode::OnDemand {
            let idle_for = self
                .unwatched_since
                .map(|t| t.elapsed())
                .unwrap_or_default();
            match self.state {
                CameraState::Idle if self.viewers > 0 => self.set_state(CameraState::Opening),
                CameraState::Idle => return std::thread::sleep(wait),
                CameraState::Streaming
                | CameraState::Reconnecting { .. }
                | CameraState::Opening
                    if self.viewers == 0 && idle_for >= self.settings.idle_timeout =>
                {
                    self.retire_pool();
                    drop_quietly(self.link.device.take());
                    self.slot.clear();
                    return self.set_state(CameraState::Idle);
                }
                _ => {}
            }
        }
        let retry_at = match &self.state {
            CameraState::Streaming => return self.capture(),
            CameraState::Stopped { .. } | CameraState::Idle => return,
            CameraState::Opening => Instant::now(),
            CameraState::Reconnecting { .. } => self.backoff.retry_at.unwrap_or_else(Instant::now),
        };
        let now = Instant::now();
        if now >= retry_at {
            self.open();
        } else {
            std::thread::sleep((retry_at - now).min(wait));
        }
    }

    fn open(&mut self) {
        let device = match self.link.opener.open() {
            Ok(device) => device,
            Err(e) => return self.fail(&e),
        };
        self.link.format = Some(device.format());
        self.link.h264.reset();
        self.link.format_note = device.note();
        self.link.device = Some(device);
        if let Err(e) = self.apply_desired() {
            return self.fail(&e);
        }
        if self.backoff.has_failed {
            self.counters.reconnects += 1;
        }
        self.backoff.succeeded();
        self.last_frame_at = Instant::now();
        self.meter.reset();
        self.set_state(CameraState::Streaming);
    }

    fn capture(&mut self) {
        let wait = self.timing.capture_wait;
        let stall_timeout = self.timing.stall_timeout;
        let status_interval = self.timing.status_interval;
        let Some(device) = self.link.device.as_mut() else {
            return self.fail(&"the device closed while streaming");
        };
        let format = device.format();
        let captured = match device.next_frame(wait) {
            Ok(Some(c)) => c,
            Ok(None) => {
                let limit = stall_timeout.max(Duration::from_secs_f64(5.0 / format.fps.max(0.1)));
                if self.last_frame_at.elapsed() > limit {
                    let reason = format!("no frame for {:.1} s", limit.as_secs_f64());
                    self.fail(&SourceError::Failed(reason));
                }
                return;
            }
            Err(e) => return self.fail(&e),
        };
        let counters = &mut self.counters;
        counters.captured += 1;
        counters.dropped += captured.lost_before;
        let captured_at = captured.captured_at;
        self.last_frame_at = Instant::now();
        self.meter.tick(status_interval, captured.data.size());
        let jpeg = match captured.data {
            // The source made this JPEG itself; it is complete by construction.
            FrameData::Jpeg(b) => Some(b),
            FrameData::JpegBorrowed(data) => {
                let jpeg = jpeg::normalize(data);
                if jpeg.is_none() {
                    counters.corrupt += 1;
                }
                jpeg
            }
            // Raw frames are encoded once each, and only while someone watches.
            FrameData::Raw(_) if self.viewers == 0 => None,
            // Every access unit is published, watched or not: a viewer who joins needs
            // the GOP from its keyframe.
            FrameData::H264(access_unit) => {
                let link = &mut self.link;
                match link.h264.accept(access_unit) {
                    Ok(unit) => {
                        let codec = link.h264.codec().cloned().unwrap_or_else(|| "avc1".into());
                        let published = self.slot.publish_h264(
                            captured_at,
                            unit.bytes,
                            unit.keyframe,
                            &codec,
                            format.fps,
                        );
                        counters.dropped += u64::from(published.is_none());
                    }
                    Err(Refused::NoPicture) => {}
                    Err(Refused::NoKeyframeYet) => counters.dropped += 1,
                }
                None
            }
            // Encoder threads publish what they encode, in capture order.
            FrameData::Raw(data) if self.pool.is_some() => {
                let taken = self
                    .pool
                    .as_mut()
                    .is_some_and(|p| p.offer(captured_at, data));
                counters.dropped += u64::from(!taken);
                None
            }
            FrameData::Raw(data) => {
                // CPU time, not wall time: on a busy machine the thread also waits for a
                // core, which is not the encoder's cost.
                let started = crate::stats::thread_cpu_time();
                let f = format;
                let quality = self.settings.jpeg_quality;
                match jpeg::encode_raw(f.fourcc, f.width, f.height, data, quality) {
                    Ok(jpeg) => {
                        let spent = crate::stats::thread_cpu_time().saturating_sub(started);
                        counters.encoded += 1;
                        counters.encode_time += spent;
                        let interval = Duration::from_secs_f64(1.0 / f.fps.max(1.0));
                        self.slow_encodes = if spent > interval {
                            self.slow_encodes + 1
                        } else {
                            0
                        };
                        Some(jpeg)
                    }
                    Err(e) => {
                        warn!(camera = %self.settings.id, "dropping a frame: {e}");
                        counters.corrupt += 1;
                        None
                    }
                }
            }
        };
        if let Some(jpeg) = jpeg {
            self.slot.publish(captured_at, jpeg);
        }
        if self.slow_encodes >= SLOW_ENCODES && self.pool.is_none() {
            self.start_pool(format);
        }
    }

    /// Moves encoding to encoder threads, one per core up to [`MAX_ENCODERS`].
    fn start_pool(&mut self, f: crate::camera::source::StreamFormat) {
        let workers = std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .clamp(2, MAX_ENCODERS);
        let quality = self.settings.jpeg_quality;
        let encode: std::sync::Arc<EncodeFn> = std::sync::Arc::new(move |data: &[u8]| {
            jpeg::encode_raw(f.fourcc, f.width, f.height, data, quality)
        });
        info!(
            camera = %self.settings.id,
            "encoding takes longer than a frame interval; encoding on {workers} threads"
        );
        let slot = std::sync::Arc::clone(&self.slot);
        self.pool = Some(EncodePool::new(workers, slot, &encode));
    }

    /// Stops the encoder threads (after the frames they hold), keeping their counts.
    pub(super) fn retire_pool(&mut self) {
        self.slow_encodes = 0;
        if let Some(pool) = self.pool.take() {
            let counters = std::sync::Arc::clone(&pool.counters);
            drop(pool);
            let get = |n: &AtomicU64| n.load(Relaxed);
            self.counters.encoded += get(&counters.encoded);
            self.counters.dropped += get(&counters.late);
            self.counters.corrupt += get(&counters.failed);
            self.counters.encode_time += Duration::from_nanos(get(&counters.encode_nanos));
        }
    }

    /// Gives up the device, shows every viewer the NO SIGNAL picture with the reason, and
    /// schedules a reopen with backoff.
    pub(super) fn fail(&mut self, error: &dyn std::fmt::Display) {
        self.retire_pool();
        drop_quietly(self.link.device.take());
        let reason = error.to_string();
        let news = self.state.reason() != reason;
        self.backoff.failed(&self.timing);
        self.meter.reset();
        self.set_state(CameraState::Reconnecting {
            reason: reason.clone(),
        });
        // Retries that fail the same way do not redraw the picture.
        if news {
            let (w, h) = self
                .link
                .format
                .map_or(NO_SIGNAL_SIZE, |f| (f.width, f.height));
            let picture = jpeg::placeholder(w, h, &self.settings.name, &reason);
            self.slot.publish_no_signal(picture, reason);
        }
    }
}
