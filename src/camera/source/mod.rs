//! The `Source` trait between a camera actor and the thing that makes frames.
//!
//! This is hardware code: it knows nothing of actors. An [`Opener`] opens a device; the
//! opened [`Device`] captures with a bounded wait and gets and sets controls. Dropping a
//! `Device` closes every file descriptor it holds, which is how a camera recovers from a
//! fault: drop, then open again.

pub mod synthetic;
pub mod v4l2;

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::control::{ControlError, ControlInfo};

/// A pixel format as its V4L2 four-character code, e.g. `*b"MJPG"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// Motion JPEG: every frame is a JPEG file.
    pub const MJPG: FourCc = FourCc(*b"MJPG");
    /// H.264: every frame is one access unit, Annex B.
    pub const H264: FourCc = FourCc(*b"H264");
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// What an opened device delivers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamFormat {
    /// The pixel format.
    pub fourcc: FourCc,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second the device was set to.
    pub fps: f64,
}

/// The bytes of one captured frame.
pub enum FrameData<'a> {
    /// A complete JPEG, already shared.
    Jpeg(Bytes),
    /// A complete JPEG in the device's buffer, valid until the next capture.
    JpegBorrowed(&'a [u8]),
    /// Raw pixels in the stream's format, valid until the next capture.
    Raw(&'a [u8]),
    /// One H.264 access unit (Annex B), as the camera encoded it.
    H264(Bytes),
}

impl FrameData<'_> {
    /// Its size in bytes.
    #[must_use]
    pub fn size(&self) -> usize {
        match self {
            FrameData::Jpeg(b) | FrameData::H264(b) => b.len(),
            FrameData::JpegBorrowed(d) | FrameData::Raw(d) => d.len(),
        }
    }
}

/// One captured frame.
pub struct Captured<'a> {
    /// The pixels or JPEG.
    pub data: FrameData<'a>,
    /// When the frame was captured.
    pub captured_at: SystemTime,
    /// Frames the device lost just before this one.
    pub lost_before: u64,
}

/// Why a device failed. Every variant moves the camera to Reconnecting with this text as
/// the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The device is not there (yet): not plugged in, or not found by its match.
    #[error("device not found: {0}")]
    NotFound(String),
    /// The device went away while in use.
    #[error("device unplugged: {0}")]
    Unplugged(String),
    /// Another program holds the device.
    #[error("device busy: {0}")]
    Busy(String),
    /// The USB bus has no bandwidth left for this stream.
    #[error("not enough USB bandwidth: {0}")]
    Bandwidth(String),
    /// Any other failure.
    #[error("{0}")]
    Failed(String),
}

/// Opens a device. Kept by the camera for its whole life, so it can reopen after faults.
pub trait Opener: Send {
    /// Opens the device, negotiates its format and starts streaming.
    ///
    /// # Errors
    /// A [`SourceError`] saying why the device cannot be opened now; the camera retries.
    fn open(&mut self) -> Result<Box<dyn Device>, SourceError>;
}

/// An opened, streaming device.
pub trait Device: Send {
    /// What the device delivers.
    fn format(&self) -> StreamFormat;

    /// How the format differs from what the configuration asked for, if it does.
    fn note(&self) -> Option<String> {
        None
    }

    /// Waits at most `wait` for the next frame. `Ok(None)` means none came in time.
    ///
    /// # Errors
    /// A [`SourceError`] when the device failed or went away; the camera reopens it.
    fn next_frame(&mut self, wait: Duration) -> Result<Option<Captured<'_>>, SourceError>;

    /// Every control with its range and current value.
    ///
    /// # Errors
    /// A [`SourceError`] when the device cannot be queried.
    fn controls(&mut self) -> Result<Vec<ControlInfo>, SourceError>;

    /// Sets a control already checked against `info`, and returns the value read back.
    ///
    /// # Errors
    /// A [`ControlError`] when the device refuses the value.
    fn set_control(&mut self, info: &ControlInfo, value: i64) -> Result<i64, ControlError>;
}
