//! A synthetic camera: a moving test picture with the camera's name, a frame counter and
//! the time drawn in, delivered as JPEG. It needs no hardware, so the default fleet runs
//! anywhere, and its test controls make it stall, vanish or panic like a real device.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Captured, Device, FourCc, FrameData, Opener, SourceError, StreamFormat};
use crate::camera::control::{ControlError, ControlFlags, ControlInfo, ControlType, MenuItem};
use crate::config::{Pattern, SyntheticConfig};

/// JPEG quality of synthetic frames.
const JPEG_QUALITY: u8 = 80;
/// How long the source stays away after its `disconnect` button, unless set otherwise.
const DEFAULT_RECONNECT_DELAY_MS: i64 = 1000;

const ID_BRIGHTNESS: u32 = 1;
const ID_CONTRAST: u32 = 2;
const ID_FLIP: u32 = 3;
const ID_PATTERN: u32 = 4;
const ID_STALL: u32 = 0x100;
const ID_DISCONNECT: u32 = 0x101;
const ID_RECONNECT_DELAY: u32 = 0x102;
const ID_PANIC: u32 = 0x103;
const ID_CORRUPT: u32 = 0x104;

/// Opens synthetic devices. Remembers, across reopens, until when the "device" is unplugged.
pub struct SyntheticOpener {
    cfg: SyntheticConfig,
    label: String,
    plug: Arc<Plug>,
}

/// Shared by an opener and the device it opened: the `disconnect` button sets it.
struct Plug {
    epoch: Instant,
    absent_until_ms: AtomicU64,
}

impl SyntheticOpener {
    /// A source drawing `label` (the camera's name) into every frame.
    pub fn new(cfg: SyntheticConfig, label: &str) -> Self {
        SyntheticOpener {
            cfg,
            label: label.to_string(),
            plug: Arc::new(Plug {
                epoch: Instant::now(),
                absent_until_ms: AtomicU64::new(0),
            }),
        }
    }
}

impl Opener for SyntheticOpener {
    fn open(&mut self) -> Result<Box<dyn Device>, SourceError> {
        let now_ms = self.plug.epoch.elapsed().as_millis() as u64;
        let until = self.plug.absent_until_ms.load(Ordering::Relaxed);
        if now_ms < until {
            return Err(SourceError::NotFound(format!(
                "synthetic camera unplugged for another {} ms",
                until - now_ms
            )));
        }
        let mut device = SyntheticDevice {
            settings: Settings {
                brightness: 128,
                contrast: 128,
                flip: false,
                pattern: self.cfg.pattern,
                stall: false,
                reconnect_delay_ms: DEFAULT_RECONNECT_DELAY_MS,
            },
            cfg: self.cfg.clone(),
            label: self.label.clone(),
            plug: Arc::clone(&self.plug),
            started: Instant::now(),
            next_index: 0,
            vanished: false,
            panic_next: false,
            corrupt_pending: 0,
            scratch: Vec::new(),
            current: Bytes::new(),
            ring: Vec::new(),
            rgb: vec![0; (self.cfg.width * self.cfg.height * 3) as usize],
        };
        device.render_ring();
        Ok(Box::new(device))
    }
}

#[derive(Debug, Clone)]
struct Settings {
    brightness: i64,
    contrast: i64,
    flip: bool,
    pattern: Pattern,
    stall: bool,
    reconnect_delay_ms: i64,
}

struct SyntheticDevice {
    cfg: SyntheticConfig,
    label: String,
    plug: Arc<Plug>,
    settings: Settings,
    started: Instant,
    next_index: u64,
    vanished: bool,
    panic_next: bool,
    /// Frames still to damage, one per press of corrupt_frame.
    corrupt_pending: u32,
    /// A damaged copy of a frame, for the corrupt_frame control.
    scratch: Vec<u8>,
    /// The raw frame handed out last.
    current: Bytes,
    /// Pre-made frames (JPEG or YUYV), when `prerender` is set.
    ring: Vec<Bytes>,
    /// Scratch picture, reused for every render.
    rgb: Vec<u8>,
}

impl SyntheticDevice {
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.cfg.fps))
    }

    fn render_ring(&mut self) {
        self.ring = (0..u64::from(self.cfg.prerender))
            .map(|i| {
                let text = format!("ring frame {}/{}", i + 1, self.cfg.prerender);
                self.render(i, &text)
            })
            .collect();
    }

    /// Draws frame `index` with `counter` as its second text line, as JPEG or YUYV.
    fn render(&mut self, index: u64, counter: &str) -> Bytes {
        let s = &self.settings;
        let (w, h) = (self.cfg.width as usize, self.cfg.height as usize);
        draw_pattern(&mut self.rgb, w, h, s.pattern, index, self.cfg.fps, s.flip);
        adjust(&mut self.rgb, s.brightness, s.contrast);
        let lines = [
            self.label.clone(),
            counter.to_string(),
            utc_text(SystemTime::now()),
            format!("brightness {} contrast {}", s.brightness, s.contrast),
        ];
        crate::camera::draw::text(&mut self.rgb, w, h, &lines);
        if self.cfg.raw {
            return Bytes::from(rgb_to_yuyv(&self.rgb));
        }
        let mut out = Vec::with_capacity(w * h / 4);
        jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY)
            .encode(&self.rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .expect("the scratch picture matches the frame size");
        Bytes::from(out)
    }

    fn controls_now(&self) -> Vec<ControlInfo> {
        let s = &self.settings;
        let int = |id, name: &str, min, max, default, value| ControlInfo {
            id,
            name: name.to_string(),
            kind: ControlType::Integer,
            min,
            max,
            step: 1,
            default,
            value: Some(value),
            menu: vec![],
            flags: ControlFlags::default(),
        };
        let with_kind = |mut c: ControlInfo, kind| {
            c.kind = kind;
            c
        };
        let mut list = vec![
            int(ID_BRIGHTNESS, "brightness", 0, 255, 128, s.brightness),
            int(ID_CONTRAST, "contrast", 0, 255, 128, s.contrast),
            with_kind(
                int(ID_FLIP, "horizontal_flip", 0, 1, 0, i64::from(s.flip)),
                ControlType::Boolean,
            ),
            ControlInfo {
                menu: Pattern::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, p)| MenuItem {
                        index: i as i64,
                        name: p.name().to_string(),
                    })
                    .collect(),
                ..with_kind(
                    int(
                        ID_PATTERN,
                        "test_pattern",
                        0,
                        2,
                        pattern_index(self.cfg.pattern),
                        pattern_index(s.pattern),
                    ),
                    ControlType::Menu,
                )
            },
        ];
        if self.cfg.test_controls {
            list.extend([
                with_kind(
                    int(ID_STALL, "stall", 0, 1, 0, i64::from(s.stall)),
                    ControlType::Boolean,
                ),
                with_kind(
                    int(ID_DISCONNECT, "disconnect", 0, 0, 0, 0),
                    ControlType::Button,
                ),
                int(
                    ID_RECONNECT_DELAY,
                    "reconnect_delay_ms",
                    0,
                    60_000,
                    DEFAULT_RECONNECT_DELAY_MS,
                    s.reconnect_delay_ms,
                ),
                with_kind(int(ID_PANIC, "panic", 0, 0, 0, 0), ControlType::Button),
                with_kind(
                    int(ID_CORRUPT, "corrupt_frame", 0, 0, 0, 0),
                    ControlType::Button,
                ),
            ]);
        }
        list
    }
}

fn pattern_index(p: Pattern) -> i64 {
    Pattern::ALL.iter().position(|x| *x == p).unwrap_or(0) as i64
}

impl Device for SyntheticDevice {
    fn format(&self) -> StreamFormat {
        StreamFormat {
            fourcc: if self.cfg.raw {
                FourCc(*b"YUYV")
            } else {
                FourCc::MJPG
            },
            width: self.cfg.width,
            height: self.cfg.height,
            fps: f64::from(self.cfg.fps),
        }
    }

    fn next_frame(&mut self, wait: Duration) -> Result<Option<Captured<'_>>, SourceError> {
        if self.vanished {
            return Err(SourceError::Unplugged(
                "synthetic camera's disconnect control was pressed".into(),
            ));
        }
        if self.panic_next {
            self.panic_next = false;
            panic!("synthetic camera's panic control was pressed");
        }
        let interval = self.interval();
        let due = self.started + interval * self.next_index as u32;
        let now = Instant::now();
        if self.settings.stall || due.saturating_duration_since(now) > wait {
            std::thread::sleep(wait);
            return Ok(None);
        }
        std::thread::sleep(due.saturating_duration_since(now));
        // A caller that came late skips the frames it missed, as a real device would.
        let late = Instant::now().saturating_duration_since(due);
        let lost = (late.as_secs_f64() / interval.as_secs_f64()) as u64;
        self.next_index += lost;
        let index = self.next_index;
        self.next_index += 1;
        let bytes = if self.ring.is_empty() {
            self.render(index, &format!("frame {index}"))
        } else {
            self.ring[(index % self.ring.len() as u64) as usize].clone()
        };
        let data = if self.corrupt_pending > 0 {
            self.corrupt_pending -= 1;
            self.scratch = bytes[..bytes.len() / 2].to_vec();
            if self.cfg.raw {
                FrameData::Raw(&self.scratch)
            } else {
                FrameData::JpegBorrowed(&self.scratch)
            }
        } else if self.cfg.raw {
            self.current = bytes;
            FrameData::Raw(&self.current)
        } else {
            FrameData::Jpeg(bytes)
        };
        Ok(Some(Captured {
            data,
            captured_at: SystemTime::now(),
            lost_before: lost,
        }))
    }

    fn controls(&mut self) -> Result<Vec<ControlInfo>, SourceError> {
        Ok(self.controls_now())
    }

    fn set_control(&mut self, info: &ControlInfo, value: i64) -> Result<i64, ControlError> {
        let s = &mut self.settings;
        match info.id {
            ID_BRIGHTNESS => s.brightness = value,
            ID_CONTRAST => s.contrast = value,
            ID_FLIP => s.flip = value != 0,
            ID_PATTERN => s.pattern = Pattern::ALL[value as usize],
            ID_STALL => s.stall = value != 0,
            ID_RECONNECT_DELAY => s.reconnect_delay_ms = value,
            ID_DISCONNECT => {
                let until =
                    self.plug.epoch.elapsed().as_millis() as u64 + s.reconnect_delay_ms as u64;
                self.plug.absent_until_ms.store(until, Ordering::Relaxed);
                self.vanished = true;
            }
            ID_PANIC => self.panic_next = true,
            ID_CORRUPT => self.corrupt_pending += 1,
            _ => {
                return Err(ControlError::Refused {
                    name: info.name.clone(),
                    value,
                    why: "unknown control id".into(),
                })
            }
        }
        if !self.ring.is_empty() && info.id < ID_STALL {
            self.render_ring();
        }
        let now = self.controls_now();
        Ok(now
            .iter()
            .find(|c| c.id == info.id)
            .and_then(|c| c.value)
            .unwrap_or(value))
    }
}

/// Fills `rgb` with `pattern` moved to frame `index`; the picture crosses in 4 seconds.
fn draw_pattern(
    rgb: &mut [u8],
    w: usize,
    h: usize,
    pattern: Pattern,
    index: u64,
    fps: u32,
    flip: bool,
) {
    const BARS: [[u8; 3]; 8] = [
        [235, 235, 235],
        [235, 235, 16],
        [16, 235, 235],
        [16, 235, 16],
        [235, 16, 235],
        [235, 16, 16],
        [16, 16, 235],
        [16, 16, 16],
    ];
    let shift = (index as usize * w / (fps as usize * 4).max(1)) % w;
    for y in 0..h {
        let row = &mut rgb[y * w * 3..(y + 1) * w * 3];
        for x in 0..w {
            let sx = if flip { w - 1 - x } else { x };
            let px = (sx + shift) % w;
            let c = match pattern {
                Pattern::Bars => BARS[px * 8 / w],
                Pattern::Gradient => [(px * 255 / w) as u8, (y * 255 / h) as u8, 128],
                Pattern::Noise => {
                    // Bars under noise that changes every frame, so frames compress
                    // about as badly as a real scene.
                    let mut n = (x as u64 ^ (y as u64) << 20 ^ index << 40)
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    n ^= n >> 29;
                    let bar = BARS[px * 8 / w];
                    let jitter = (n & 0x0F) as u8;
                    [
                        bar[0].saturating_sub(jitter),
                        bar[1].saturating_sub(jitter >> 1),
                        bar[2].saturating_sub(jitter),
                    ]
                }
                Pattern::Checkers => {
                    let on = ((px / 40) + ((y + shift) / 40)) % 2 == 0;
                    if on {
                        [220, 220, 220]
                    } else {
                        [30, 30, 90]
                    }
                }
            };
            row[x * 3..x * 3 + 3].copy_from_slice(&c);
        }
    }
}

/// Converts RGB to packed YUYV (BT.601, studio range), as a webcam delivers it.
fn rgb_to_yuyv(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len() / 3 * 2);
    for pair in rgb.chunks_exact(6) {
        let px = |i: usize| {
            (
                i32::from(pair[i]),
                i32::from(pair[i + 1]),
                i32::from(pair[i + 2]),
            )
        };
        let (r0, g0, b0) = px(0);
        let (r1, g1, b1) = px(3);
        let y = |r: i32, g: i32, b: i32| (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
        let (r, g, b) = ((r0 + r1) / 2, (g0 + g1) / 2, (b0 + b1) / 2);
        let u = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
        let v = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
        out.extend_from_slice(&[y(r0, g0, b0), u, y(r1, g1, b1), v]);
    }
    out
}

/// Applies brightness and contrast (128 is neutral for both) through a lookup table.
fn adjust(rgb: &mut [u8], brightness: i64, contrast: i64) {
    if brightness == 128 && contrast == 128 {
        return;
    }
    let lut: Vec<u8> = (0..256i64)
        .map(|v| ((v - 128) * contrast / 128 + 128 + (brightness - 128)).clamp(0, 255) as u8)
        .collect();
    for v in rgb.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// `2026-11-23 07:40:12.345 UTC`
fn utc_text(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(prerender: u32) -> SyntheticConfig {
        SyntheticConfig {
            width: 320,
            height: 240,
            fps: 30,
            pattern: Pattern::Bars,
            prerender,
            test_controls: true,
            raw: false,
        }
    }

    fn jpeg_of(device: &mut dyn Device) -> Bytes {
        loop {
            if let Some(f) = device.next_frame(Duration::from_millis(100)).unwrap() {
                match f.data {
                    FrameData::Jpeg(b) => return b,
                    _ => panic!("synthetic frames are JPEG"),
                }
            }
        }
    }

    #[test]
    fn utc_text_formats_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_419_612_345);
        assert_eq!(utc_text(t), "2026-11-23 07:40:12.345 UTC");
    }

    #[test]
    fn frames_are_jpeg_and_brightness_changes_them() {
        let mut opener = SyntheticOpener::new(config(0), "test");
        let mut dev = opener.open().unwrap();
        let a = jpeg_of(dev.as_mut());
        assert_eq!(&a[..2], &[0xFF, 0xD8]);
        assert_eq!(&a[a.len() - 2..], &[0xFF, 0xD9]);
        let controls = dev.controls().unwrap();
        let b = controls.iter().find(|c| c.name == "brightness").unwrap();
        assert_eq!(dev.set_control(b, 200).unwrap(), 200);
        let mean = |jpeg: &Bytes| {
            let px = zune_jpeg::JpegDecoder::new(jpeg.as_ref()).decode().unwrap();
            px.iter().map(|v| u64::from(*v)).sum::<u64>() / px.len() as u64
        };
        assert!(mean(&jpeg_of(dev.as_mut())) > mean(&a) + 30);
    }

    #[test]
    fn disconnect_vanishes_then_comes_back() {
        let mut opener = SyntheticOpener::new(config(2), "test");
        let mut dev = opener.open().unwrap();
        let controls = dev.controls().unwrap();
        let find = |n: &str| controls.iter().find(|c| c.name == n).unwrap().clone();
        dev.set_control(&find("reconnect_delay_ms"), 200).unwrap();
        dev.set_control(&find("disconnect"), 1).unwrap();
        assert!(matches!(
            dev.next_frame(Duration::from_millis(10)),
            Err(SourceError::Unplugged(_))
        ));
        drop(dev);
        assert!(matches!(opener.open(), Err(SourceError::NotFound(_))));
        std::thread::sleep(Duration::from_millis(250));
        let mut dev = opener.open().unwrap();
        jpeg_of(dev.as_mut());
    }

    #[test]
    fn stall_delivers_nothing() {
        let mut opener = SyntheticOpener::new(config(0), "test");
        let mut dev = opener.open().unwrap();
        let stall = dev
            .controls()
            .unwrap()
            .into_iter()
            .find(|c| c.name == "stall")
            .unwrap();
        dev.set_control(&stall, 1).unwrap();
        for _ in 0..5 {
            assert!(dev.next_frame(Duration::from_millis(40)).unwrap().is_none());
        }
    }
}
