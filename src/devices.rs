//! `camfleet devices`: what V4L2 capture devices are attached, as a report or as a
//! `cameras:` section that `camfleet serve` accepts as it is.

use std::fmt::Write as _;

use crate::camera::control::ControlType;
use crate::camera::source::v4l2::discover::{self, DeviceSummary, FormatSummary};
use crate::camera::source::FourCc;

/// A human-readable list of capture devices with formats, sizes, rates and controls.
#[must_use]
pub fn report() -> String {
    let devices = discover::capture_devices();
    if devices.is_empty() {
        return "no V4L2 capture devices found (is a camera plugged in, and may this user \
                open /dev/video*?)\n"
            .into();
    }
    let mut out = String::new();
    for d in &devices {
        let _ = writeln!(
            out,
            "{}: {} (driver {}, bus {})",
            d.path.display(),
            d.card,
            d.driver,
            d.bus_info
        );
        if let Some(serial) = &d.serial {
            let _ = writeln!(out, "  serial: {serial}");
        }
        for p in &d.stable_paths {
            let _ = writeln!(out, "  stable path: {}", p.display());
        }
        match discover::details(&d.path) {
            Ok((formats, controls)) => {
                for f in &formats {
                    let passes = if f.fourcc == FourCc::H264 {
                        ": passed through untouched with `pixel_format: H264`"
                    } else {
                        ""
                    };
                    let _ = writeln!(out, "  format {} ({}){passes}", f.fourcc, f.description);
                    for (w, h, fps) in &f.sizes {
                        let rates: Vec<String> = fps.iter().map(|r| format!("{r:.1}")).collect();
                        let _ = writeln!(out, "    {w}x{h} @ {} fps", rates.join(", "));
                    }
                }
                for c in &controls {
                    let range = match &c.kind {
                        ControlType::Button | ControlType::Unsupported(_) => c.allowed(),
                        _ => format!("{}, default {}", c.allowed(), c.default),
                    };
                    let value = c.value.map(|v| format!(" = {v}")).unwrap_or_default();
                    let _ = writeln!(out, "  control {}: {range}{value}", c.name);
                }
            }
            Err(e) => {
                let _ = writeln!(out, "  (could not read its formats: {e})");
            }
        }
    }
    out
}

/// A `cameras:` section for every capture device, each at its best format.
#[must_use]
pub fn yaml() -> String {
    let devices = discover::capture_devices();
    let mut out = String::from("cameras:\n");
    if devices.is_empty() {
        out.push_str("  []  # no V4L2 capture devices found\n");
        return out;
    }
    let mut used = std::collections::HashSet::new();
    for d in &devices {
        let id = unique_id(d, &mut used);
        let device = d.stable_paths.first().unwrap_or(&d.path);
        let _ = writeln!(out, "  - id: {id}");
        let _ = writeln!(out, "    name: {}", quote(&d.card));
        out.push_str("    source:\n      kind: v4l2\n");
        let _ = writeln!(
            out,
            "      device: {}",
            quote(&device.display().to_string())
        );
        if let Ok((formats, _)) = discover::details(&d.path) {
            if let Some((fourcc, w, h, fps)) = best_mode(&formats) {
                if fourcc != "H264" && formats.iter().any(|f| f.fourcc == FourCc::H264) {
                    out.push_str(
                        "      # it also sends H.264: `pixel_format: H264` passes that through\n",
                    );
                }
                let _ = writeln!(out, "      pixel_format: {fourcc}");
                let _ = writeln!(out, "      width: {w}\n      height: {h}");
                if let Some(fps) = fps {
                    let _ = writeln!(out, "      fps: {fps}");
                }
            }
        }
    }
    out
}

/// Lowest frame rate `devices --yaml` picks a size for, when the device has one that fast.
const USEFUL_FPS: f64 = 15.0;

/// MJPEG if offered, else the first format camfleet can encode, else H.264; its largest
/// size that reaches 15 fps (or its fastest size); that size's highest whole frame rate.
fn best_mode(formats: &[FormatSummary]) -> Option<(String, u32, u32, Option<u32>)> {
    let usable =
        |f: &&FormatSummary| &f.fourcc.0 == b"MJPG" || crate::camera::jpeg::can_encode(f.fourcc);
    let f = formats
        .iter()
        .find(|f| &f.fourcc.0 == b"MJPG")
        .or_else(|| formats.iter().find(usable))
        .or_else(|| formats.iter().find(|f| f.fourcc == FourCc::H264))?;
    let top = |fps: &Vec<f64>| fps.iter().copied().fold(0.0, f64::max);
    let (w, h, fps) = f
        .sizes
        .iter()
        .filter(|(_, _, fps)| top(fps) >= USEFUL_FPS)
        .max_by_key(|(w, h, _)| w * h)
        .or_else(|| {
            f.sizes
                .iter()
                .max_by(|a, b| top(&a.2).total_cmp(&top(&b.2)))
        })?;
    let best = Some(top(fps).floor() as u32).filter(|r| *r >= 1);
    Some((f.fourcc.to_string(), *w, *h, best))
}

fn unique_id(d: &DeviceSummary, used: &mut std::collections::HashSet<String>) -> String {
    let base: String = d
        .card
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let base = if base.is_empty() {
        "camera".to_string()
    } else {
        base[..base.len().min(48)].to_string()
    };
    let mut id = base.clone();
    let mut n = 2;
    while !used.insert(id.clone()) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(fourcc: [u8; 4]) -> FormatSummary {
        FormatSummary {
            fourcc: FourCc(fourcc),
            description: String::new(),
            sizes: vec![(1920, 1080, vec![30.0]), (640, 480, vec![30.0])],
        }
    }

    #[test]
    fn mjpeg_is_preferred_and_a_camera_with_only_h264_gets_h264() {
        let both = [format(*b"H264"), format(*b"MJPG")];
        assert_eq!(
            best_mode(&both),
            Some(("MJPG".into(), 1920, 1080, Some(30)))
        );
        assert_eq!(
            best_mode(&[format(*b"H264")]),
            Some(("H264".into(), 1920, 1080, Some(30)))
        );
    }
}
