//! Encoder benchmark: camfleet's JPEG encoder against libjpeg-turbo on the same YUYV frames.
//!
//! `cargo bench --bench encoder` takes one raw frame of a synthetic camera at 640x480 and
//! at 1280x720, for two pictures (`noise`: bars under fine noise, like a real scene, and
//! `bars`: flat colour), and encodes each at quality 80:
//! - by camfleet (`camera::jpeg::encode_raw`, as the camera actor calls it);
//! - by libjpeg-turbo, in `turbo.c`, built by this benchmark with the system's C compiler
//!   against Debian's libjpeg62-turbo (`tests/deps.sh bench` installs it), the two fastest
//!   ways its API offers (see the file).
//!
//! Both run in their own process, one after the other, and report the CPU time they spent
//! per frame; the ratio is camfleet's time over the faster libjpeg-turbo way.
//!
//! `cargo bench --bench encoder -- --vm` runs the same inside the VM where
//! `benches/ustreamer` compares camfleet with ustreamer, whose CPUs qemu emulates.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use camfleet::camera::source::synthetic::SyntheticOpener;
use camfleet::camera::source::{FourCc, FrameData, Opener};
use camfleet::config::{Pattern, SyntheticConfig};

const QUALITY: u8 = 80;
const RUNS: u32 = 100;

/// One raw YUYV frame of a synthetic camera with this picture.
fn yuyv_frame(width: u32, height: u32, pattern: Pattern) -> Vec<u8> {
    let config = SyntheticConfig {
        width,
        height,
        fps: 30,
        pattern,
        prerender: 0,
        test_controls: false,
        output: camfleet::config::SyntheticOutput::Yuyv,
    };
    let mut device = SyntheticOpener::new(config, "encoder").open().unwrap();
    loop {
        if let Some(frame) = device.next_frame(Duration::from_millis(100)).unwrap() {
            if let FrameData::Raw(bytes) = frame.data {
                return bytes.to_vec();
            }
        }
    }
}

/// CPU time (user + system) this process has used.
fn process_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &raw mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn build_turbo() -> PathBuf {
    let deps = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deps.sh");
    let installed = Command::new("bash").args([deps, "bench"]).status();
    assert!(
        installed.is_ok_and(|s| s.success()),
        "tests/deps.sh bench failed"
    );
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/encoder/turbo.c");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("turbo");
    let built = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(source)
        .arg("-ljpeg")
        .status()
        .expect("the C compiler runs");
    assert!(built.success(), "turbo.c did not build");
    out
}

/// Runs this benchmark inside the VM of `tests/vm/run-in-vm.sh`, where the side-by-side
/// benchmark with ustreamer runs, with libjpeg-turbo's program built here. Returns the exit
/// code.
fn run_in_vm(turbo: &Path) -> i32 {
    let deps = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deps.sh");
    let installed = Command::new("bash").args([deps, "vm"]).status();
    assert!(
        installed.is_ok_and(|s| s.success()),
        "tests/deps.sh vm failed"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/run-in-vm.sh");
    Command::new(script)
        .arg(std::env::current_exe().expect("own path"))
        .env("CAMFLEET_BENCH_TURBO", turbo)
        .status()
        .expect("the VM harness runs")
        .code()
        .unwrap_or(1)
}

/// libjpeg-turbo's ways: (name, CPU ms per frame, bytes out).
fn turbo(program: &Path, frame: &[u8], width: u32, height: u32) -> Vec<(String, f64, usize)> {
    let file = std::env::temp_dir().join(format!("camfleet-frame-{width}x{height}.yuyv"));
    std::fs::write(&file, frame).unwrap();
    let out = Command::new(program)
        .arg(&file)
        .args([width, height, u32::from(QUALITY), RUNS].map(|n| n.to_string()))
        .output()
        .expect("turbo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

/// camfleet's encoder: (CPU ms per frame, bytes out).
fn camfleet(frame: &[u8], width: u32, height: u32) -> (f64, usize) {
    let fourcc = FourCc(*b"YUYV");
    let encode = || camfleet::camera::jpeg::encode_raw(fourcc, width, height, frame, QUALITY);
    let size = encode().unwrap().len();
    let start = process_cpu();
    for _ in 0..RUNS {
        std::hint::black_box(encode().unwrap());
    }
    let ms = process_cpu().saturating_sub(start).as_secs_f64() * 1000.0 / f64::from(RUNS);
    (ms, size)
}

fn main() {
    let in_vm = std::env::var_os("CAMFLEET_IN_VM").is_some();
    if std::env::args().any(|a| a == "--vm") && !in_vm {
        std::process::exit(run_in_vm(&build_turbo()));
    }
    let program = match std::env::var_os("CAMFLEET_BENCH_TURBO") {
        Some(built) if in_vm => PathBuf::from(built),
        _ => build_turbo(),
    };
    let place = if in_vm {
        "in the VM (qemu TCG, 2 emulated CPUs)"
    } else {
        "on this machine"
    };
    println!(
        "\n## Encoder: YUYV to JPEG at quality {QUALITY}, CPU ms per frame over {RUNS} frames, {place}\n"
    );
    println!("| frame | picture | encoder | CPU ms per frame | KB out | / fastest libjpeg-turbo |");
    println!("|---|---|---|---|---|---|");
    for (width, height) in [(640, 480), (1280, 720)] {
        for (name, pattern) in [("noise", Pattern::Noise), ("bars", Pattern::Bars)] {
            let frame = yuyv_frame(width, height, pattern);
            let mut rows = turbo(&program, &frame, width, height);
            let fastest = rows.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
            let (ms, size) = camfleet(&frame, width, height);
            rows.push(("camfleet".into(), ms, size));
            for (way, ms, size) in rows {
                let who = if way == "camfleet" {
                    "camfleet".to_string()
                } else {
                    format!("libjpeg-turbo ({way})")
                };
                println!(
                    "| {width}x{height} | {name} | {who} | {ms:.2} | {:.1} | {:.2} |",
                    size as f64 / 1000.0,
                    ms / fastest
                );
            }
        }
    }
}
