//! Feeds known frames into the v4l2loopback device, as a camera delivering MJPEG, or H.264
//! (one access unit per buffer).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use v4l::video::Output;

use camfleet::camera::source::synthetic::SyntheticOpener;
use camfleet::camera::source::{FrameData, Opener};
use camfleet::config::{Pattern, SyntheticConfig, SyntheticOutput};

pub const DEVICE: &str = "/dev/video10";

/// The rate the frames are made for; an H.264 stream has a keyframe every `FPS` frames.
pub const FPS: u32 = 30;

/// A thread writing `frames` in turn at `fps` until dropped.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Distinct JPEG frames of the given size.
pub fn frames(width: u32, height: u32, count: u32) -> Vec<Bytes> {
    synthetic(width, height, count, SyntheticOutput::Jpeg)
}

/// `count` access units of an H.264 stream of the given size with a keyframe every
/// [`FPS`] frames (`count` a multiple of it, so that it loops from a keyframe), encoded by
/// `OpenH264`.
pub fn h264_units(width: u32, height: u32, count: u32) -> Vec<Bytes> {
    synthetic(width, height, count, SyntheticOutput::H264)
}

fn synthetic(width: u32, height: u32, count: u32, output: SyntheticOutput) -> Vec<Bytes> {
    let cfg = SyntheticConfig {
        width,
        height,
        fps: FPS,
        pattern: Pattern::Noise,
        prerender: count,
        test_controls: false,
        output,
    };
    let mut device = SyntheticOpener::new(cfg, "loopback").open().unwrap();
    let mut out = Vec::new();
    while out.len() < count as usize {
        if let Some(f) = device.next_frame(Duration::from_millis(100)).unwrap() {
            if let FrameData::Jpeg(b) | FrameData::H264(b) = f.data {
                out.push(b);
            }
        }
    }
    out
}

impl Feeder {
    /// Writes `frames` of format `fourcc` (`MJPG` or `H264`).
    pub fn start(frames: Vec<Bytes>, fourcc: [u8; 4], width: u32, height: u32, fps: u32) -> Feeder {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(DEVICE)
            .expect("the loopback device opens");
        let dev = v4l::Device::with_path(DEVICE).unwrap();
        let mut fmt = v4l::Format::new(width, height, v4l::FourCC::new(&fourcc));
        fmt.size = width * height * 2;
        // The format is set on the writer's own file descriptor through a second handle
        // to the same device; v4l2loopback keeps it per device.
        Output::set_format(&dev, &fmt).expect("the loopback takes the format");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let _keep = dev;
            let interval = Duration::from_secs_f64(1.0 / f64::from(fps));
            let start = Instant::now();
            let mut n = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let jpeg = &frames[n as usize % frames.len()];
                if file.write_all(jpeg).is_err() {
                    break;
                }
                n += 1;
                let due = start + interval * n;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        });
        Feeder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
