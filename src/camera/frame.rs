//! The latest frame of a camera, shared with every viewer without copying.
//!
//! A camera publishes each JPEG into a `watch` channel: one slot that always holds the
//! newest frame. Viewers clone the `Bytes` handle (a reference count, not the picture) and
//! a viewer that falls behind simply sees a newer frame next time; the gap in `seq` is what
//! it skipped. Frames never pass through an actor mailbox.

use std::sync::atomic::{AtomicU64, Ordering};
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
    /// `None` for a captured picture; for the NO SIGNAL picture of a failed camera, why
    /// it failed.
    pub no_signal: Option<String>,
    /// The frame as a WebSocket message, encoded by the first session that sends it and
    /// reused by the others, so a frame is framed once however many clients get it.
    pub encoded: Arc<std::sync::OnceLock<Bytes>>,
    /// The frame as one part of an MJPEG stream, built by the first viewer that sends it
    /// and written as it is to every other.
    pub mjpeg_part: Arc<std::sync::OnceLock<Bytes>>,
    /// Its previews, each made by the first viewer that asks for that width.
    pub previews: Arc<Previews>,
}

/// The widths a preview may have, in pixels.
pub const PREVIEW_WIDTHS: [u32; 6] = [160, 240, 320, 480, 640, 960];

/// The position of `width` in [`PREVIEW_WIDTHS`], or what to ask for instead.
///
/// # Errors
/// When `width` is not one of them; the text lists them.
pub fn preview_index(width: u32) -> Result<usize, String> {
    PREVIEW_WIDTHS
        .iter()
        .position(|w| *w == width)
        .ok_or_else(|| {
            let widths: Vec<String> = PREVIEW_WIDTHS.iter().map(u32::to_string).collect();
            format!(
                "{width} is not a preview width; give one of {} pixels",
                widths.join(", ")
            )
        })
}

/// A frame's previews, one per width of [`PREVIEW_WIDTHS`], made on demand.
#[derive(Debug, Default)]
pub struct Previews {
    made: Arc<AtomicU64>,
    widths: [Preview; PREVIEW_WIDTHS.len()],
}

/// One width's preview: the JPEG, its MJPEG part and its WebSocket message.
#[derive(Debug, Default)]
pub struct Preview {
    jpeg: std::sync::OnceLock<Bytes>,
    part: std::sync::OnceLock<Bytes>,
    message: std::sync::OnceLock<Bytes>,
}

impl Previews {
    /// The preview at `PREVIEW_WIDTHS[index]`, made with `make` if this is the first ask.
    fn jpeg(&self, index: usize, make: impl FnOnce() -> Bytes) -> Bytes {
        self.widths[index]
            .jpeg
            .get_or_init(|| {
                self.made.fetch_add(1, Ordering::Relaxed);
                make()
            })
            .clone()
    }

    /// The MJPEG part of the preview at `PREVIEW_WIDTHS[index]`, built with `make` if
    /// this is the first ask.
    pub fn part(&self, index: usize, make: impl FnOnce() -> Bytes) -> Bytes {
        self.widths[index].part.get_or_init(make).clone()
    }

    /// The WebSocket message of the preview at `PREVIEW_WIDTHS[index]`, encoded with
    /// `make` if this is the first ask.
    pub fn message(&self, index: usize, make: impl FnOnce() -> Bytes) -> Bytes {
        self.widths[index].message.get_or_init(make).clone()
    }
}

/// JPEG quality of previews.
pub const PREVIEW_QUALITY: u8 = 75;

impl Frame {
    /// The frame's JPEG scaled to `PREVIEW_WIDTHS[index]`, made once for all who watch at
    /// that width. A frame no wider is served as it is; one that does not decode (which a
    /// camera's checked frames do) as it is too.
    pub fn preview(&self, index: usize) -> Bytes {
        self.previews.jpeg(index, || {
            super::jpeg::thumbnail(&self.jpeg, PREVIEW_WIDTHS[index], PREVIEW_QUALITY)
                .unwrap_or_else(|_| self.jpeg.clone())
        })
    }

    /// Capture time in microseconds since the Unix epoch.
    pub fn timestamp_micros(&self) -> u64 {
        self.captured_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }
}

/// A camera's frame slot: the newest frame, and the numbering of frames.
///
/// The hub keeps a slot across restarts of its camera (a reload that changes the camera's
/// settings), so viewers stay attached; the numbering lives here, not in the camera, so
/// frames keep counting up across the restart and viewers never mistake new frames for
/// old ones.
pub struct FrameSlot {
    latest: watch::Sender<Option<Frame>>,
    last_seq: AtomicU64,
    previews_made: Arc<AtomicU64>,
}

impl FrameSlot {
    /// Publishes a captured frame as the newest and returns its sequence number.
    pub fn publish(&self, captured_at: SystemTime, jpeg: Bytes) -> u64 {
        self.put(captured_at, jpeg, None)
    }

    /// Publishes the NO SIGNAL picture of a failed camera, with the reason, so every
    /// viewer sees why the picture stopped instead of a frozen last frame.
    pub fn publish_no_signal(&self, jpeg: Bytes, reason: String) -> u64 {
        self.put(SystemTime::now(), jpeg, Some(reason))
    }

    fn put(&self, captured_at: SystemTime, jpeg: Bytes, no_signal: Option<String>) -> u64 {
        let seq = self.last_seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.latest.send_replace(Some(Frame {
            seq,
            captured_at,
            jpeg,
            no_signal,
            encoded: Arc::default(),
            mjpeg_part: Arc::default(),
            previews: Arc::new(Previews {
                made: Arc::clone(&self.previews_made),
                widths: Default::default(),
            }),
        }));
        seq
    }

    /// The sequence number of the newest frame published.
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Relaxed)
    }

    /// How many previews were made from this slot's frames.
    pub fn previews_encoded(&self) -> u64 {
        self.previews_made.load(Ordering::Relaxed)
    }

    /// Empties the slot: the camera is closed on purpose (idle or stopped).
    pub fn clear(&self) {
        self.latest.send_replace(None);
    }
}

/// The camera's end of its frame slot.
pub type FramePublisher = Arc<FrameSlot>;
/// A viewer's end of a camera's frame slot.
pub type FrameWatch = watch::Receiver<Option<Frame>>;

/// A new, empty frame slot.
pub fn frame_slot() -> (FramePublisher, FrameWatch) {
    let (latest, watch) = watch::channel(None);
    let slot = FrameSlot {
        latest,
        last_seq: AtomicU64::new(0),
        previews_made: Arc::default(),
    };
    (Arc::new(slot), watch)
}
