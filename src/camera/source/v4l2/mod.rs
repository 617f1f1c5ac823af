//! USB cameras and other V4L2 capture devices, through the `v4l` crate.
//!
//! Opening negotiates the format (the configured one if offered, else MJPEG, else a raw
//! format camfleet can encode), sets the size and frame rate explicitly, and starts
//! memory-mapped streaming. Everything the device refuses or changes is said in the
//! format note that status shows.

mod controls;
pub mod discover;
mod ioctl;
mod stream;

use std::path::Path;
use std::time::Duration;

use v4l::video::Capture;

use super::{Captured, Device, FourCc, FrameData, Opener, SourceError, StreamFormat};
use crate::camera::control::{ControlError, ControlInfo};
use crate::camera::jpeg;
use crate::config::V4l2Config;
use stream::{device_error, MmapStream};

/// Opens the device a camera's configuration names.
pub struct V4l2Opener {
    cfg: V4l2Config,
}

impl V4l2Opener {
    /// An opener for this configuration.
    #[must_use]
    pub fn new(cfg: V4l2Config) -> Self {
        V4l2Opener { cfg }
    }
}

/// Whether frames in this format are JPEG files.
fn is_jpeg(f: FourCc) -> bool {
    matches!(&f.0, b"MJPG" | b"JPEG")
}

fn open_error(path: &Path, e: &std::io::Error) -> SourceError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => SourceError::NotFound(format!("{} does not exist", path.display())),
        Some(libc::EACCES | libc::EPERM) => SourceError::Failed(format!(
            "no permission to open {}; run camfleet as a member of the `video` group",
            path.display()
        )),
        _ => device_error(&format!("opening {}", path.display()), e),
    }
}

impl Opener for V4l2Opener {
    fn open(&mut self) -> Result<Box<dyn Device>, SourceError> {
        let path = discover::find(&self.cfg.device)?;
        let dev = v4l::Device::with_path(&path).map_err(|e| open_error(&path, &e))?;
        let fd = dev.handle().fd();
        let caps = ioctl::querycap(fd).map_err(|e| device_error("querying the device", &e))?;
        if !ioctl::is_capture(&caps) {
            return Err(SourceError::NotFound(format!(
                "{} ({}, driver {}) does not offer video capture now; if it is a camera's \
                 second node, use the other one (`camfleet devices` lists capture nodes)",
                path.display(),
                caps.card,
                caps.driver
            )));
        }
        let (format, note) = negotiate(&dev, &self.cfg)?;
        let stream = MmapStream::start(fd)?;
        Ok(Box::new(V4l2Device {
            stream,
            dev,
            format,
            note,
        }))
    }
}

/// Tells an H.264 camera to send a keyframe every second, where it has the controls for
/// it (many UVC cameras do not, and choose their own GOP, which status reports). Set
/// before streaming starts, as drivers lock them while streaming; a `controls:` entry in
/// the configuration, applied after opening, still wins. Returns what the camera refused.
fn ask_for_keyframes(fd: std::os::raw::c_int, fps: f64) -> Vec<String> {
    let all = controls::list(fd).unwrap_or_default();
    controls::keyframe_interval(&all, fps)
        .into_iter()
        .filter_map(|(control, frames)| match controls::set(fd, control, frames) {
            Ok(_) => {
                tracing::info!(control = %control.name, frames, "asked for a keyframe every {frames} frames");
                None
            }
            Err(e) => Some(format!(
                "asked for a keyframe every {frames} frames: {e}; the camera keeps its own \
                 keyframe interval (`gop_frames` in status), which viewers who join wait for"
            )),
        })
        .collect()
}

/// Picks and sets the pixel format, size and frame rate (and, for H.264, the keyframe
/// interval); returns what the device took and what differs from what was asked.
fn negotiate(
    dev: &v4l::Device,
    cfg: &V4l2Config,
) -> Result<(StreamFormat, Option<String>), SourceError> {
    fn failed(what: &'static str) -> impl Fn(std::io::Error) -> SourceError {
        move |e| match device_error(what, &e) {
            SourceError::Failed(_) => SourceError::Failed(format!(
                "{what}: {e}; check pixel_format, width, height and fps against what \
                 `camfleet devices` lists for this camera"
            )),
            other => other,
        }
    }
    let offered: Vec<FourCc> = dev
        .enum_formats()
        .map_err(failed("listing formats"))?
        .iter()
        .map(|d| FourCc(d.fourcc.repr))
        .collect();
    // H.264 is passed through as the camera encodes it, when the configuration asks.
    let usable = |f: &FourCc| is_jpeg(*f) || jpeg::can_encode(*f) || *f == FourCc::H264;
    let wanted = cfg.pixel_format.map(FourCc);
    let mut notes = Vec::new();
    let choice = match wanted {
        Some(w) if offered.contains(&w) && usable(&w) => w,
        _ => {
            let best = offered
                .iter()
                .find(|f| is_jpeg(**f))
                .or_else(|| offered.iter().find(|f| jpeg::can_encode(**f)))
                .copied()
                .ok_or_else(|| {
                    let list: Vec<String> = offered
                        .iter()
                        .map(std::string::ToString::to_string)
                        .collect();
                    SourceError::Failed(format!(
                        "the device offers only {}, none of which camfleet can use \
                         (MJPG, YUYV, UYVY, NV12, RGB3, BGR3, GREY; H264 when asked for)",
                        list.join(", ")
                    ))
                })?;
            if let Some(w) = wanted {
                notes.push(format!(
                    "asked for {w}, which the device does not offer; using {best}"
                ));
            }
            best
        }
    };
    let current = dev.format().map_err(failed("reading the format"))?;
    let (width, height) = cfg.size.unwrap_or((current.width, current.height));
    let set = dev
        .set_format(&v4l::Format::new(
            width,
            height,
            v4l::FourCC::new(&choice.0),
        ))
        .map_err(failed("setting the format"))?;
    let got = FourCc(set.fourcc.repr);
    if got != choice && !usable(&got) {
        return Err(SourceError::Failed(format!(
            "asked the device for {choice}, it switched to {got}, which camfleet cannot use"
        )));
    }
    if cfg.size.is_some() && (set.width, set.height) != (width, height) {
        notes.push(format!(
            "asked for {width}x{height}, the device gives {}x{}",
            set.width, set.height
        ));
    }
    // Drivers may reset the rate when the format changes, so it is always set: to the
    // configured rate, or else the highest the device lists for this size.
    let want_fps = cfg.fps.or_else(|| {
        discover::frame_rates(dev, set.fourcc, set.width, set.height)
            .into_iter()
            .map(|r| r.floor() as u32)
            .max()
    });
    if let Some(fps) = want_fps {
        if dev
            .set_params(&v4l::video::capture::Parameters::with_fps(fps))
            .is_err()
        {
            notes.push("the device does not let its frame rate be set; it decides".into());
        }
    }
    let fps = dev
        .params()
        .ok()
        .filter(|p| p.interval.numerator > 0)
        .map_or(0.0, |p| {
            f64::from(p.interval.denominator) / f64::from(p.interval.numerator)
        });
    if let Some(asked) = cfg.fps {
        if fps > 0.0 && (fps - f64::from(asked)).abs() > 0.5 {
            notes.push(format!(
                "asked for {asked} fps, the device runs at {fps:.1}"
            ));
        }
    }
    if got == FourCc::H264 {
        notes.extend(ask_for_keyframes(dev.handle().fd(), fps));
    }
    let format = StreamFormat {
        fourcc: got,
        width: set.width,
        height: set.height,
        fps,
    };
    Ok((format, (!notes.is_empty()).then(|| notes.join("; "))))
}

/// An open, streaming V4L2 device.
struct V4l2Device {
    // Declared before `dev` so it is dropped first: buffers are released before the file
    // descriptor closes.
    stream: MmapStream,
    dev: v4l::Device,
    format: StreamFormat,
    note: Option<String>,
}

impl Device for V4l2Device {
    fn format(&self) -> StreamFormat {
        self.format
    }

    fn note(&self) -> Option<String> {
        self.note.clone()
    }

    fn next_frame(&mut self, wait: Duration) -> Result<Option<Captured<'_>>, SourceError> {
        let fourcc = self.format.fourcc;
        Ok(self.stream.next(wait)?.map(|f| Captured {
            data: if is_jpeg(fourcc) {
                FrameData::JpegBorrowed(f.data)
            } else if fourcc == FourCc::H264 {
                // Access units are small; a copy frees the driver's buffer at once.
                FrameData::H264(bytes::Bytes::copy_from_slice(f.data))
            } else {
                FrameData::Raw(f.data)
            },
            captured_at: f.captured_at,
            lost_before: f.lost_before,
        }))
    }

    fn controls(&mut self) -> Result<Vec<ControlInfo>, SourceError> {
        controls::list(self.dev.handle().fd()).map_err(|e| device_error("listing controls", &e))
    }

    fn set_control(&mut self, info: &ControlInfo, value: i64) -> Result<i64, ControlError> {
        controls::set(self.dev.handle().fd(), info, value)
    }
}
