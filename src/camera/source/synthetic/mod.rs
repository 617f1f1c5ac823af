//! A synthetic camera: a moving test picture with the camera's name, a frame counter and
//! the time drawn in, delivered as JPEG, YUYV or H.264. It needs no hardware, so the default
//! fleet runs anywhere, and its test controls make it stall, vanish, panic, refuse or hang
//! like a real device.

mod clock;
mod controls;
mod picture;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::{Captured, Device, FourCc, FrameData, Opener, SourceError, StreamFormat};
use crate::camera::control::{ControlError, ControlInfo};
use crate::config::{Pattern, SyntheticConfig, SyntheticOutput};
use controls::{Action, Settings};

/// The names of the synthetic camera's controls, the test controls only when asked for;
/// `camfleet check` holds a configuration's control names against them.
#[must_use]
pub fn control_names(test_controls: bool) -> Vec<String> {
    controls::list(&Settings::new(Pattern::Bars), Pattern::Bars, test_controls)
        .into_iter()
        .map(|c| c.name)
        .collect()
}

/// JPEG quality of synthetic frames.
const JPEG_QUALITY: u8 = 80;

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

impl Plug {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl SyntheticOpener {
    /// A source drawing `label` (the camera's name) into every frame.
    #[must_use]
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
        let now_ms = self.plug.now_ms();
        let until = self.plug.absent_until_ms.load(Ordering::Relaxed);
        if now_ms < until {
            // The same words every time, as a real absent device gives.
            return Err(SourceError::NotFound(
                "synthetic camera unplugged (its disconnect control was pressed)".into(),
            ));
        }
        let (w, h) = (self.cfg.width as usize, self.cfg.height as usize);
        let mut device = SyntheticDevice {
            settings: Settings::new(self.cfg.pattern),
            cfg: self.cfg.clone(),
            label: self.label.clone(),
            plug: Arc::clone(&self.plug),
            started: Instant::now(),
            next_index: 0,
            vanished: false,
            panic_next: false,
            hang_next: None,
            corrupt_pending: 0,
            scratch: Vec::new(),
            current: Bytes::new(),
            ring: Vec::new(),
            rgb: vec![0; w * h * 3],
            h264: match self.cfg.output {
                SyntheticOutput::H264 => Some(H264Encoder::new(&self.cfg)?),
                _ => None,
            },
        };
        device.render_ring();
        // The first frame is due once the ring is drawn, not before: drawing it is not a
        // device losing frames.
        device.started = Instant::now();
        Ok(Box::new(device))
    }
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
    /// How long the next frame blocks, for the `hang_ms` control.
    hang_next: Option<Duration>,
    /// Frames still to damage, one per press of `corrupt_frame`.
    corrupt_pending: u32,
    /// A damaged copy of a frame, for the `corrupt_frame` control.
    scratch: Vec<u8>,
    /// The raw frame handed out last.
    current: Bytes,
    /// Pre-made frames (JPEG or YUYV), when `prerender` is set. A control change empties
    /// the entries, and each is drawn again when its turn comes, so a change costs one
    /// frame's drawing, not the whole ring's at once.
    ring: Vec<Option<Bytes>>,
    /// Scratch picture, reused for every render.
    rgb: Vec<u8>,
    /// The H.264 encoder, when the camera sends H.264.
    h264: Option<H264Encoder>,
}

/// Seconds between two keyframes of the synthetic H.264 camera.
const H264_GOP_SECONDS: u32 = 1;

/// The synthetic camera's H.264 encoder: `OpenH264`, every frame encoded (none skipped
/// to hold the bitrate), a keyframe every [`H264_GOP_SECONDS`].
struct H264Encoder {
    encoder: openh264::encoder::Encoder,
    /// Frames from one keyframe to the next.
    gop: u64,
    /// The next frame must be a keyframe: the stream starts or restarts there.
    restart: bool,
}

impl H264Encoder {
    fn new(cfg: &SyntheticConfig) -> Result<Self, SourceError> {
        use openh264::encoder::{BitRate, EncoderConfig, FrameRate, IntraFramePeriod};
        let gop = cfg.fps * H264_GOP_SECONDS;
        // About a tenth of a bit per pixel: a clear moving picture at a tenth of MJPEG's size.
        let bits = u64::from(cfg.width) * u64::from(cfg.height) * u64::from(cfg.fps) / 10;
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(u32::try_from(bits).unwrap_or(u32::MAX)))
            .max_frame_rate(FrameRate::from_hz(cfg.fps as f32))
            .intra_frame_period(IntraFramePeriod::from_num_frames(gop))
            .skip_frames(false);
        let encoder = openh264::encoder::Encoder::with_api_config(
            openh264::OpenH264API::from_source(),
            config,
        )
        .map_err(|e| SourceError::Failed(format!("starting the H.264 encoder: {e}")))?;
        Ok(H264Encoder {
            encoder,
            gop: u64::from(gop),
            restart: true,
        })
    }

    /// Encodes frame `index` of the picture `rgb` into one access unit.
    fn encode(&mut self, rgb: &[u8], width: usize, height: usize, index: u64) -> Bytes {
        use openh264::formats::{RgbSliceU8, YUVBuffer};
        if self.restart || index % self.gop == 0 {
            self.encoder.force_intra_frame();
            self.restart = false;
        }
        let yuv = YUVBuffer::from_rgb8_source(RgbSliceU8::new(rgb, (width, height)));
        if let Ok(stream) = self.encoder.encode(&yuv) {
            return Bytes::from(stream.to_vec());
        }
        // The encoder refused a frame of the size it was made for: an empty access unit,
        // which holds no picture and is skipped, and a keyframe next.
        self.restart = true;
        Bytes::new()
    }
}

impl SyntheticDevice {
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.cfg.fps))
    }

    /// Frames in the ring. An H.264 ring holds whole GOPs, so it loops from a keyframe.
    fn ring_frames(&self) -> u64 {
        let asked = u64::from(self.cfg.prerender);
        self.h264
            .as_ref()
            .map_or(asked, |h| asked.div_ceil(h.gop) * h.gop)
    }

    fn render_ring(&mut self) {
        self.ring = (0..self.ring_frames())
            .map(|i| Some(self.render_ring_frame(i)))
            .collect();
    }

    fn render_ring_frame(&mut self, i: u64) -> Bytes {
        let text = format!("ring frame {}/{}", i + 1, self.ring_frames());
        self.render(i, &text)
    }

    /// Draws frame `index` with `counter` as its second text line, as JPEG, YUYV or an
    /// H.264 access unit.
    fn render(&mut self, index: u64, counter: &str) -> Bytes {
        let s = &self.settings;
        let (w, h) = (self.cfg.width as usize, self.cfg.height as usize);
        picture::draw_pattern(&mut self.rgb, w, h, s.pattern, index, self.cfg.fps, s.flip);
        picture::adjust(&mut self.rgb, s.brightness, s.contrast);
        let lines = [
            self.label.clone(),
            counter.to_string(),
            clock::utc_text(SystemTime::now()),
            format!("brightness {} contrast {}", s.brightness, s.contrast),
        ];
        crate::camera::draw::text(&mut self.rgb, w, h, &lines);
        if let Some(encoder) = &mut self.h264 {
            return encoder.encode(&self.rgb, w, h, index);
        }
        if self.cfg.output == SyntheticOutput::Yuyv {
            return Bytes::from(picture::rgb_to_yuyv(&self.rgb));
        }
        let mut out = Vec::with_capacity(w * h / 4);
        jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY)
            .encode(
                &self.rgb,
                self.cfg.width as u16,
                self.cfg.height as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .expect("the scratch picture matches the frame size");
        Bytes::from(out)
    }
}

impl Device for SyntheticDevice {
    fn format(&self) -> StreamFormat {
        StreamFormat {
            fourcc: match self.cfg.output {
                SyntheticOutput::Jpeg => FourCc::MJPG,
                SyntheticOutput::Yuyv => FourCc(*b"YUYV"),
                SyntheticOutput::H264 => FourCc::H264,
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
        if let Some(hang) = self.hang_next.take() {
            // A driver stuck in a call: the camera's thread blocks past any bound.
            std::thread::sleep(hang);
        }
        let interval = self.interval();
        let due = self.started + interval * self.next_index as u32;
        let now = Instant::now();
        if self.settings.stall || due.saturating_duration_since(now) > wait {
            std::thread::sleep(wait);
            return Ok(None);
        }
        std::thread::sleep(due.saturating_duration_since(now));
        // A caller that came late skips the frames it missed, as a real device would;
        // an H.264 stream skips none, since each frame is decoded against the one before.
        let late = Instant::now().saturating_duration_since(due);
        let lost = if self.h264.is_some() {
            0
        } else {
            (late.as_secs_f64() / interval.as_secs_f64()) as u64
        };
        self.next_index += lost;
        let index = self.next_index;
        self.next_index += 1;
        let bytes = if self.ring.is_empty() {
            self.render(index, &format!("frame {index}"))
        } else {
            let i = index % self.ring.len() as u64;
            if let Some(bytes) = &self.ring[i as usize] {
                bytes.clone()
            } else {
                let bytes = self.render_ring_frame(i);
                self.ring[i as usize] = Some(bytes.clone());
                bytes
            }
        };
        let data = if self.corrupt_pending > 0 {
            self.corrupt_pending -= 1;
            self.scratch = bytes[..bytes.len() / 2].to_vec();
            match self.cfg.output {
                SyntheticOutput::Yuyv => FrameData::Raw(&self.scratch),
                SyntheticOutput::Jpeg => FrameData::JpegBorrowed(&self.scratch),
                SyntheticOutput::H264 => FrameData::H264(bytes.slice(..bytes.len() / 2)),
            }
        } else {
            match self.cfg.output {
                SyntheticOutput::Yuyv => {
                    self.current = bytes;
                    FrameData::Raw(&self.current)
                }
                SyntheticOutput::Jpeg => FrameData::Jpeg(bytes),
                SyntheticOutput::H264 => FrameData::H264(bytes),
            }
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
        match controls::apply(&mut self.settings, info, value)? {
            Action::None => {}
            Action::Disconnect => {
                let away = u64::try_from(self.settings.reconnect_delay_ms).unwrap_or(0);
                self.plug
                    .absent_until_ms
                    .store(self.plug.now_ms() + away, Ordering::Relaxed);
                self.vanished = true;
            }
            Action::Panic => self.panic_next = true,
            Action::Corrupt => self.corrupt_pending += 1,
            Action::Hang(ms) => self.hang_next = Some(Duration::from_millis(ms)),
        }
        if info.id < controls::ID_FIRST_TEST {
            self.ring.iter_mut().for_each(|frame| *frame = None);
            // The ring's frames are encoded again in the order they are sent, from a
            // keyframe, so each still follows the one it was encoded after.
            if let Some(h264) = &mut self.h264 {
                h264.restart = true;
            }
        }
        Ok(self
            .controls_now()
            .iter()
            .find(|c| c.id == info.id)
            .and_then(|c| c.value)
            .unwrap_or(value))
    }
}

impl SyntheticDevice {
    fn controls_now(&self) -> Vec<ControlInfo> {
        controls::list(&self.settings, self.cfg.pattern, self.cfg.test_controls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pattern;

    fn config(prerender: u32) -> SyntheticConfig {
        SyntheticConfig {
            width: 320,
            height: 240,
            fps: 30,
            pattern: Pattern::Bars,
            prerender,
            test_controls: true,
            output: crate::config::SyntheticOutput::Jpeg,
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
    fn drawing_the_ring_loses_no_frames() {
        // A ring that takes several frame intervals to draw.
        let mut cfg = config(60);
        cfg.width = 640;
        cfg.height = 480;
        cfg.fps = 120;
        let interval = Duration::from_secs_f64(1.0 / 120.0);
        let mut opener = SyntheticOpener::new(cfg, "test");
        let mut dev = opener.open().unwrap();
        let opened = Instant::now();
        let first = dev.next_frame(Duration::from_secs(1)).unwrap().unwrap();
        // Only the time since the device was open can have cost frames.
        let since = opened.elapsed().as_secs_f64() / interval.as_secs_f64();
        assert!(
            first.lost_before as f64 <= since.ceil(),
            "{} frames lost {:.1} frame intervals after opening",
            first.lost_before,
            since
        );
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

#[cfg(test)]
mod misbehaviour {
    use super::*;
    use crate::config::Pattern;

    fn config() -> SyntheticConfig {
        SyntheticConfig {
            width: 160,
            height: 120,
            fps: 10,
            pattern: Pattern::Bars,
            prerender: 0,
            test_controls: true,
            output: crate::config::SyntheticOutput::Jpeg,
        }
    }

    fn control(dev: &mut dyn Device, name: &str) -> ControlInfo {
        dev.controls()
            .unwrap()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap()
    }

    #[test]
    fn busy_refuses_other_writes_until_turned_off() {
        let mut dev = SyntheticOpener::new(config(), "test").open().unwrap();
        let (busy, brightness) = (
            control(dev.as_mut(), "busy"),
            control(dev.as_mut(), "brightness"),
        );
        dev.set_control(&busy, 1).unwrap();
        assert!(matches!(
            dev.set_control(&brightness, 10),
            Err(ControlError::Refused { .. })
        ));
        dev.set_control(&busy, 0).unwrap();
        assert_eq!(dev.set_control(&brightness, 10).unwrap(), 10);
    }

    #[test]
    fn test_pattern_offers_every_pattern() {
        let mut dev = SyntheticOpener::new(config(), "test").open().unwrap();
        let pattern = control(dev.as_mut(), "test_pattern");
        assert_eq!(pattern.menu.len(), Pattern::ALL.len());
        assert_eq!(pattern.max, pattern.menu.last().unwrap().index);
        assert!(pattern.check(pattern.max + 1).is_err());
    }
}

#[cfg(test)]
mod h264 {
    use super::*;
    use crate::camera::h264::AccessUnit;
    use crate::config::Pattern;

    fn units(prerender: u32, count: usize) -> Vec<Bytes> {
        let cfg = SyntheticConfig {
            width: 160,
            height: 120,
            fps: 10,
            pattern: Pattern::Bars,
            prerender,
            test_controls: false,
            output: SyntheticOutput::H264,
        };
        let mut dev = SyntheticOpener::new(cfg, "test").open().unwrap();
        assert_eq!(dev.format().fourcc, FourCc::H264);
        let mut out = Vec::new();
        while out.len() < count {
            if let Some(f) = dev.next_frame(Duration::from_millis(200)).unwrap() {
                assert_eq!(f.lost_before, 0, "an H.264 camera loses no frame");
                match f.data {
                    FrameData::H264(b) => out.push(b),
                    _ => panic!("an H.264 camera sends access units"),
                }
            }
        }
        out
    }

    #[test]
    fn a_ring_of_whole_gops_starts_each_with_a_keyframe_and_decodes() {
        // 15 frames asked for, 10 to a GOP: a ring of 20.
        let sent = units(15, 25);
        let keyframes: Vec<usize> = (0..sent.len())
            .filter(|i| AccessUnit::of(&sent[*i]).starts_a_stream())
            .collect();
        assert_eq!(keyframes, [0, 10, 20]);
        assert_eq!(sent[20], sent[0], "the ring loops");
        let mut decoder = openh264::decoder::Decoder::new().unwrap();
        for (i, unit) in sent.iter().enumerate() {
            decoder
                .decode(unit)
                .unwrap_or_else(|e| panic!("frame {i} does not decode: {e}"));
        }
    }

    #[test]
    fn live_frames_have_a_keyframe_every_second() {
        let sent = units(0, 11);
        let keyframes: Vec<usize> = (0..sent.len())
            .filter(|i| AccessUnit::of(&sent[*i]).keyframe)
            .collect();
        assert_eq!(keyframes, [0, 10]);
    }
}
