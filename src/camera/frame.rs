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
    /// A complete JPEG file; empty for an H.264 frame, whose picture is [`Frame::picture`].
    pub jpeg: Bytes,
    /// For a frame of a camera that sends H.264: the access unit and its place in its GOP.
    pub h264: Option<Arc<H264Frame>>,
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

/// One H.264 access unit as the camera sent it, with the frames it is decoded against.
#[derive(Debug)]
pub struct H264Frame {
    /// The access unit in Annex B form, untouched.
    pub access_unit: Bytes,
    /// It holds an IDR picture with its parameter sets: a decoder can start here.
    pub keyframe: bool,
    /// The frame before it in its GOP; `None` at a keyframe. The newest frame thus holds
    /// its GOP back to the keyframe, which is where a new viewer starts.
    pub previous: Option<Frame>,
    /// Its place in its GOP: 0 at the keyframe.
    pub gop_index: u32,
    /// The stream's codec string for players and `WebCodecs`, e.g. `avc1.42c01e`.
    pub codec: Arc<str>,
    /// The camera's frame rate, which players' clocks count in.
    pub fps: f64,
    /// A keyframe's picture as JPEG, decoded on the first ask (a snapshot, a preview).
    picture: std::sync::OnceLock<Bytes>,
}

impl H264Frame {
    /// The keyframe this frame is decoded from.
    fn keyframe(&self) -> &H264Frame {
        let mut frame = self;
        while let Some(previous) = frame.previous.as_ref().and_then(|p| p.h264.as_deref()) {
            frame = previous;
        }
        frame
    }
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

/// JPEG quality of the pictures decoded from H.264 keyframes.
const SNAPSHOT_QUALITY: u8 = 85;

/// JPEG quality of previews.
pub const PREVIEW_QUALITY: u8 = 75;

impl Frame {
    /// The frame's picture as JPEG: the frame itself, or for an H.264 frame its GOP's
    /// keyframe, decoded once on the first ask and kept with it.
    pub fn picture(&self) -> Bytes {
        let Some(h264) = &self.h264 else {
            return self.jpeg.clone();
        };
        let keyframe = h264.keyframe();
        keyframe
            .picture
            .get_or_init(|| {
                super::jpeg::from_h264_keyframe(&keyframe.access_unit, SNAPSHOT_QUALITY)
                    .unwrap_or_else(|e| super::jpeg::placeholder(640, 480, "H.264", &e))
            })
            .clone()
    }

    /// The keyframe an H.264 frame is decoded from; any other frame itself.
    #[must_use]
    pub fn keyframe(self) -> Frame {
        let mut frame = self;
        while let Some(previous) = frame.h264.as_ref().and_then(|h| h.previous.clone()) {
            frame = previous;
        }
        frame
    }

    /// The frame an H.264 viewer that last sent frame `sent` (0: none yet) sends next,
    /// and how many frames it skipped to get there. The frame after `sent` while it is
    /// still in the newest GOP; otherwise the newest GOP's keyframe, so a new or slow
    /// viewer starts where a decoder can, never further back than one GOP. `None` when
    /// this is not an H.264 frame or the viewer has sent it already.
    pub fn following(&self, sent: u64) -> Option<(Frame, u64)> {
        self.h264.as_ref()?;
        if self.seq <= sent {
            return None;
        }
        let mut next = self;
        while let Some(previous) = next.h264.as_ref().and_then(|h| h.previous.as_ref()) {
            if previous.seq <= sent {
                return Some((next.clone(), 0));
            }
            next = previous;
        }
        // `next` is the keyframe; the viewer's last frame is older than it.
        let skipped = if sent == 0 { 0 } else { next.seq - sent - 1 };
        Some((next.clone(), skipped))
    }

    /// The frame's JPEG scaled to `PREVIEW_WIDTHS[index]`, made once for all who watch at
    /// that width. A frame no wider is served as it is; one that does not decode (which a
    /// camera's checked frames do) as it is too.
    pub fn preview(&self, index: usize) -> Bytes {
        self.previews.jpeg(index, || {
            let picture = self.picture();
            super::jpeg::thumbnail(&picture, PREVIEW_WIDTHS[index], PREVIEW_QUALITY)
                .unwrap_or(picture)
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

    /// Publishes an H.264 access unit of the stream `codec` as the newest frame, linked
    /// to the frames of its GOP. Returns its sequence number, or `None` when it cannot be
    /// decoded by anyone: no keyframe came before it, or its GOP ran past
    /// [`MAX_GOP_FRAMES`](super::h264::MAX_GOP_FRAMES).
    pub fn publish_h264(
        &self,
        captured_at: SystemTime,
        access_unit: Bytes,
        keyframe: bool,
        codec: &Arc<str>,
        fps: f64,
    ) -> Option<u64> {
        let (previous, gop_index) = if keyframe {
            (None, 0)
        } else {
            let latest = self.latest.borrow();
            let previous = latest.as_ref().filter(|f| f.h264.is_some())?;
            let index = previous.h264.as_ref()?.gop_index + 1;
            if index as usize >= super::h264::MAX_GOP_FRAMES {
                return None;
            }
            (Some(previous.clone()), index)
        };
        let h264 = H264Frame {
            access_unit,
            keyframe,
            previous,
            gop_index,
            codec: Arc::clone(codec),
            fps,
            picture: std::sync::OnceLock::new(),
        };
        Some(self.put_frame(captured_at, Bytes::new(), None, Some(Arc::new(h264))))
    }

    fn put(&self, captured_at: SystemTime, jpeg: Bytes, no_signal: Option<String>) -> u64 {
        self.put_frame(captured_at, jpeg, no_signal, None)
    }

    fn put_frame(
        &self,
        captured_at: SystemTime,
        jpeg: Bytes,
        no_signal: Option<String>,
        h264: Option<Arc<H264Frame>>,
    ) -> u64 {
        let seq = self.last_seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.latest.send_replace(Some(Frame {
            seq,
            captured_at,
            jpeg,
            h264,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(slot: &FrameSlot, keyframe: bool) -> Option<u64> {
        let codec: Arc<str> = "avc1.42c01e".into();
        slot.publish_h264(SystemTime::now(), Bytes::new(), keyframe, &codec, 30.0)
    }

    fn newest(watch: &FrameWatch) -> Frame {
        watch.borrow().clone().unwrap()
    }

    #[test]
    fn a_new_viewer_starts_at_the_keyframe_and_a_slow_one_skips_to_the_next() {
        let (slot, watch) = frame_slot();
        // Frames before the first keyframe cannot be decoded and are not published.
        assert_eq!(publish(&slot, false), None);
        assert_eq!(publish(&slot, true), Some(1));
        publish(&slot, false);
        publish(&slot, false);
        let now = newest(&watch);
        // A new viewer gets the keyframe first; one that sent 2 gets 3.
        assert_eq!(now.following(0).map(|(f, s)| (f.seq, s)), Some((1, 0)));
        assert_eq!(now.following(2).map(|(f, s)| (f.seq, s)), Some((3, 0)));
        assert!(now.following(3).is_none());
        publish(&slot, true);
        publish(&slot, false);
        let now = newest(&watch);
        // One that sent 3 goes on with the keyframe after it, having lost nothing.
        assert_eq!(now.following(3).map(|(f, s)| (f.seq, s)), Some((4, 0)));
        // One that sent only 1 lost 2 and 3, and starts again at the keyframe.
        assert_eq!(now.following(1).map(|(f, s)| (f.seq, s)), Some((4, 2)));
        assert_eq!(now.keyframe().seq, 4);
    }

    #[test]
    fn a_gop_that_never_ends_is_not_published_past_its_limit() {
        let (slot, watch) = frame_slot();
        publish(&slot, true);
        for _ in 1..crate::camera::h264::MAX_GOP_FRAMES {
            assert!(publish(&slot, false).is_some());
        }
        assert_eq!(publish(&slot, false), None);
        assert_eq!(publish(&slot, true), Some(601));
        assert_eq!(newest(&watch).following(0).unwrap().0.seq, 601);
    }
}
