//! The latest frame of a camera, shared with every viewer without copying.
//!
//! A camera publishes each JPEG into a `watch` channel: one slot that always holds the
//! newest frame. Viewers clone the `Bytes` handle (a reference count, not the picture) and
//! a viewer that falls behind simply sees a newer frame next time; the gap in `seq` is what
//! it skipped. Frames never pass through an actor mailbox.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::watch;

/// One encoded picture.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The camera's frame number, counting from 1; a gap means frames were skipped.
    pub seq: u64,
    /// When the device captured it.
    pub captured_at: SystemTime,
    /// A complete JPEG file.
    pub jpeg: Bytes,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The frame as a WebSocket message, encoded by the first session that sends it and
    /// reused by the others, so a frame is framed once however many clients get it.
    pub encoded: Arc<std::sync::OnceLock<Bytes>>,
}

impl Frame {
    /// Capture time in microseconds since the Unix epoch.
    pub fn timestamp_micros(&self) -> u64 {
        self.captured_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    }
}

/// The camera's end of its frame slot.
pub type FramePublisher = Arc<watch::Sender<Option<Frame>>>;
/// A viewer's end of a camera's frame slot.
pub type FrameWatch = watch::Receiver<Option<Frame>>;

/// A new, empty frame slot.
pub fn frame_slot() -> (FramePublisher, FrameWatch) {
    let (tx, rx) = watch::channel(None);
    (Arc::new(tx), rx)
}
