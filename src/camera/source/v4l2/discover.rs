//! Finding V4L2 capture devices: by path (stable `/dev/v4l/by-*` links included), card
//! name, bus info or USB serial, and describing them for `camfleet devices`.

use std::fs;
use std::path::{Path, PathBuf};

use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;

use super::ioctl;
use crate::camera::control::ControlInfo;
use crate::camera::source::{FourCc, SourceError};
use crate::config::DeviceMatch;

/// A capture device node.
#[derive(Debug, Clone)]
pub struct DeviceSummary {
    /// `/dev/videoN`.
    pub path: PathBuf,
    /// Driver name, e.g. `uvcvideo`.
    pub driver: String,
    /// Card name, e.g. `HD Pro Webcam C920`.
    pub card: String,
    /// Bus info, e.g. `usb-0000:00:14.0-2`.
    pub bus_info: String,
    /// USB serial number, when the device has one.
    pub serial: Option<String>,
    /// `/dev/v4l/by-id/...` and `/dev/v4l/by-path/...` links to this node.
    pub stable_paths: Vec<PathBuf>,
}

/// A pixel format with its sizes and rates.
#[derive(Debug, Clone)]
pub struct FormatSummary {
    /// The format.
    pub fourcc: FourCc,
    /// The driver's description.
    pub description: String,
    /// Sizes, each with its frame rates (empty if the driver does not list them).
    pub sizes: Vec<(u32, u32, Vec<f64>)>,
}

/// Every video capture node, in `/dev/videoN` order.
#[must_use]
pub fn capture_devices() -> Vec<DeviceSummary> {
    let mut nodes: Vec<(u32, PathBuf)> = fs::read_dir("/dev")
        .map(|dir| {
            dir.filter_map(std::result::Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let n = name.strip_prefix("video")?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes
        .into_iter()
        .filter_map(|(n, path)| summarize(n, &path))
        .collect()
}

fn summarize(n: u32, path: &Path) -> Option<DeviceSummary> {
    let dev = v4l::Device::with_path(path).ok()?;
    let caps = ioctl::querycap(dev.handle().fd()).ok()?;
    if !ioctl::is_capture(&caps) {
        return None;
    }
    Some(DeviceSummary {
        path: path.to_path_buf(),
        driver: caps.driver,
        card: caps.card,
        bus_info: caps.bus_info,
        serial: usb_serial(n),
        stable_paths: stable_paths(path),
    })
}

/// The USB serial of `/dev/videoN`, from sysfs.
fn usb_serial(n: u32) -> Option<String> {
    let mut dir = fs::canonicalize(format!("/sys/class/video4linux/video{n}/device")).ok()?;
    while dir.starts_with("/sys/devices") {
        if let Ok(serial) = fs::read_to_string(dir.join("serial")) {
            let serial = serial.trim().to_string();
            return (!serial.is_empty()).then_some(serial);
        }
        dir = dir.parent()?.to_path_buf();
    }
    None
}

fn stable_paths(node: &Path) -> Vec<PathBuf> {
    let Ok(target) = fs::canonicalize(node) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dir in ["/dev/v4l/by-id", "/dev/v4l/by-path"] {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut links: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| fs::canonicalize(p).ok().as_ref() == Some(&target))
            .collect();
        links.sort();
        out.extend(links);
    }
    out
}

/// The node a camera's configuration names.
///
/// # Errors
/// [`SourceError::NotFound`], saying what was looked for, when no device matches.
pub fn find(m: &DeviceMatch) -> Result<PathBuf, SourceError> {
    type Pick<'a> = Box<dyn Fn(&DeviceSummary) -> bool + 'a>;
    let (what, pick): (String, Pick) = match m {
        DeviceMatch::Path(p) => {
            return if p.exists() {
                Ok(p.clone())
            } else {
                Err(SourceError::NotFound(format!(
                    "{} does not exist; is the camera plugged in? (`camfleet devices` lists \
                     the cameras attached)",
                    p.display()
                )))
            };
        }
        DeviceMatch::Card(c) => (format!("card \"{c}\""), Box::new(move |d| d.card == *c)),
        DeviceMatch::BusInfo(b) => (
            format!("bus info \"{b}\""),
            Box::new(move |d| d.bus_info == *b),
        ),
        DeviceMatch::Serial(s) => (
            format!("USB serial \"{s}\""),
            Box::new(move |d| d.serial.as_deref() == Some(s.as_str())),
        ),
    };
    capture_devices()
        .into_iter()
        .find(|d| pick(d))
        .map(|d| d.path)
        .ok_or_else(|| {
            SourceError::NotFound(format!(
                "no V4L2 capture device with {what} is attached; `camfleet devices` lists \
                 the ones that are"
            ))
        })
}

/// The frame rates a device lists for a format and size (stepwise ranges are left out).
#[must_use]
pub fn frame_rates(dev: &v4l::Device, fourcc: v4l::FourCC, width: u32, height: u32) -> Vec<f64> {
    dev.enum_frameintervals(fourcc, width, height)
        .unwrap_or_default()
        .iter()
        .filter_map(|i| match &i.interval {
            v4l::frameinterval::FrameIntervalEnum::Discrete(f) if f.numerator > 0 => {
                Some(f64::from(f.denominator) / f64::from(f.numerator))
            }
            _ => None,
        })
        .collect()
}

/// The formats, sizes and rates a device offers, and its controls.
///
/// # Errors
/// When the device cannot be opened or does not answer its queries.
pub fn details(path: &Path) -> std::io::Result<(Vec<FormatSummary>, Vec<ControlInfo>)> {
    let dev = v4l::Device::with_path(path)?;
    let mut formats = Vec::new();
    for desc in dev.enum_formats()? {
        let mut sizes = Vec::new();
        for size in dev.enum_framesizes(desc.fourcc).unwrap_or_default() {
            // A stepwise range is listed by its two ends (listing every step could mean
            // millions of sizes).
            let ends = match size.size {
                FrameSizeEnum::Discrete(d) => vec![(d.width, d.height)],
                FrameSizeEnum::Stepwise(s) => {
                    vec![(s.min_width, s.min_height), (s.max_width, s.max_height)]
                }
            };
            for (width, height) in ends {
                let d = v4l::framesize::Discrete { width, height };
                let fps = frame_rates(&dev, desc.fourcc, d.width, d.height);
                sizes.push((d.width, d.height, fps));
            }
        }
        formats.push(FormatSummary {
            fourcc: FourCc(desc.fourcc.repr),
            description: desc.description,
            sizes,
        });
    }
    let controls = super::controls::list(dev.handle().fd())?;
    Ok((formats, controls))
}
