//! A viewer's feed of frames: always the newest, at most at the viewer's rate, with the
//! frames it skipped counted.
//!
//! The feed is pulled by its consumer (an HTTP body or a WebSocket session), and only when
//! that consumer's connection has room. A viewer that falls behind therefore never builds
//! a backlog: the next pull simply gets the newest frame, and the gap in sequence numbers
//! is what it missed.
//!
//! H.264 frames depend on the ones before them, so an H.264 viewer gets every frame of the
//! newest GOP in order ([`Frame::following`]); one that falls a GOP behind skips to the
//! newest keyframe instead of building a backlog. The rate cap does not apply to them.

use std::time::{Duration, Instant, SystemTime};

use crate::camera::Frame;
use crate::hub::Viewer;
use crate::stats::ViewerCounters;

/// The frames of one camera for one viewer.
pub struct FrameFeed {
    viewer: Viewer,
    min_interval: Option<Duration>,
    next_allowed: Instant,
    last_seq: u64,
    started: bool,
    /// Sends pictures (JPEG), not H.264: of an H.264 camera, each GOP's keyframe once.
    pictures: bool,
    created: Instant,
}

impl FrameFeed {
    /// A feed for `viewer`, at most `max_fps` frames a second (0 or `None`: every frame).
    pub fn new(viewer: Viewer, max_fps: Option<u32>) -> Self {
        FrameFeed {
            viewer,
            min_interval: max_fps
                .filter(|f| *f > 0)
                .map(|f| Duration::from_secs_f64(1.0 / f64::from(f))),
            next_allowed: Instant::now(),
            last_seq: 0,
            started: false,
            pictures: false,
            created: Instant::now(),
        }
    }

    /// The same feed for a viewer that shows pictures one by one (MJPEG): of an H.264
    /// camera it gets each keyframe, as [`Frame::picture`] decodes it.
    #[must_use]
    pub fn pictures_only(mut self) -> Self {
        self.pictures = true;
        self
    }

    /// The viewer this feed serves.
    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    /// Whether the feed is capped below the camera's rate.
    pub fn is_paced(&self) -> bool {
        self.min_interval.is_some()
    }

    /// The frame the camera holds now, if any.
    pub fn newest(&self) -> Option<Frame> {
        self.viewer.watch.borrow().clone()
    }

    /// The next frame to send; `None` once the camera is gone for good.
    ///
    /// The first call returns the frame the camera holds now, if any, so a new viewer
    /// sees a picture at once.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if self.started && (self.pictures || !self.h264_pending()) {
                self.viewer.watch.changed().await.ok()?;
            }
            self.started = true;
            let newest = self.viewer.watch.borrow_and_update().clone();
            if let Some(frame) = newest.as_ref().and_then(|f| self.following(f)) {
                return Some(frame);
            }
            // Frames published while waiting out the rate cap are skipped on purpose, so
            // they are not counted as missed.
            let mut capped = false;
            if self.min_interval.is_some() && Instant::now() < self.next_allowed {
                tokio::time::sleep_until(self.next_allowed.into()).await;
                capped = true;
            }
            let newest = self.viewer.watch.borrow_and_update().clone();
            let Some(frame) = newest.and_then(|f| self.picture_after(f, capped)) else {
                continue;
            };
            if let Some(min) = self.min_interval {
                self.next_allowed = (self.next_allowed + min).max(Instant::now());
            }
            return Some(frame);
        }
    }

    /// The next frame to send, now that `newest` is the camera's newest frame; `None` when
    /// this viewer has sent it already. For a feed with no rate cap, whose frames something
    /// else waits for ([`fanout`](super::fanout)).
    pub fn take(&mut self, newest: &Frame) -> Option<Frame> {
        self.following(newest)
            .or_else(|| self.picture_after(newest.clone(), false))
    }

    /// Of an H.264 camera, for a viewer of H.264 frames: the frame after the last one sent
    /// in the newest GOP, or its keyframe.
    fn following(&mut self, newest: &Frame) -> Option<Frame> {
        if self.pictures {
            return None;
        }
        let (frame, skipped) = newest.following(self.last_seq)?;
        ViewerCounters::add(&self.viewer.counters.skipped, skipped);
        self.last_seq = frame.seq;
        Some(frame)
    }

    /// `newest` as a picture (of an H.264 camera, its GOP's keyframe) when this viewer has
    /// not sent it, counting the frames missed since the last one; frames passed over under
    /// the rate cap (`capped`) are not missed.
    fn picture_after(&mut self, newest: Frame, capped: bool) -> Option<Frame> {
        let frame = newest.keyframe();
        if frame.seq <= self.last_seq {
            return None;
        }
        if self.last_seq > 0 && !capped {
            let missed = frame.seq - self.last_seq - 1;
            ViewerCounters::add(&self.viewer.counters.skipped, missed);
        }
        self.last_seq = frame.seq;
        Some(frame)
    }

    /// Whether the slot holds H.264 frames this viewer has not sent yet.
    fn h264_pending(&self) -> bool {
        let newest = self.viewer.watch.borrow();
        newest
            .as_ref()
            .is_some_and(|f| f.h264.is_some() && f.seq > self.last_seq)
    }

    /// Records that `frame` was handed to the connection as `bytes` bytes.
    pub fn sent(&self, frame: &Frame, bytes: usize) {
        let c = &self.viewer.counters;
        if ViewerCounters::get(&c.sent) == 0 {
            let waited = u64::try_from(self.created.elapsed().as_micros()).unwrap_or(u64::MAX);
            c.first_frame_wait_us.store(
                waited.saturating_add(1),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        ViewerCounters::add(&c.sent, 1);
        ViewerCounters::add(&c.bytes, bytes as u64);
        let delay = SystemTime::now()
            .duration_since(frame.captured_at)
            .unwrap_or_default();
        self.viewer.latency.observe(delay);
    }
}
