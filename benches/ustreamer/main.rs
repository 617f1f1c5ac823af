//! camfleet side by side with ustreamer, on the same V4L2 devices in the same VM boot.
//!
//! `cargo bench --bench ustreamer` installs Debian's `ustreamer` and what the VM needs
//! (`tests/deps.sh`), builds the viewer client (`viewers.c`, one epoll process for every
//! server), boots the VM of `tests/vm/run-in-vm.sh` and runs itself inside it. There, for
//! each case, camfleet and then ustreamer serve the same device, each as its own process,
//! to 1, 10 and 50 MJPEG viewers:
//! - vivid's webcam, YUYV 640x480 at 25 fps: both servers encode JPEG (quality 80, both
//!   servers' default);
//! - v4l2loopback fed MJPEG 1280x720 at 30 fps by this program: both pass the frames
//!   through (ustreamer with `--encoder HW`).
//!
//! The viewer client samples the server's CPU time over the measured window and reports
//! CPU-ms per delivered frame (all viewers' frames together), delivered fps per viewer,
//! the latency from the driver's capture timestamp to the part's last byte, and the
//! server's resident memory. The VM emulates its two CPUs (qemu TCG), so absolute figures
//! are slower than on hardware; the two servers are compared within one run.

#[path = "../../tests/vivid/loopback.rs"]
#[allow(dead_code)] // the H.264 units are the VM tests' alone
mod loopback;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{exit, Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIEWERS: [u32; 3] = [1, 10, 50];
const WARMUP_S: u32 = 4;
const MEASURE_S: u32 = 10;
/// How long a server may take to deliver its first frame.
const START_LIMIT: Duration = Duration::from_secs(60);

struct Case {
    name: &'static str,
    device: &'static str,
    /// The format as camfleet's configuration names it, and as ustreamer does.
    camfleet_format: &'static str,
    ustreamer_format: &'static str,
    ustreamer_encoder: &'static str,
    width: u32,
    height: u32,
    fps: u32,
    /// Whether this program feeds the device (v4l2loopback) while the case runs.
    fed: bool,
}

const CASES: [Case; 2] = [
    Case {
        name: "vivid YUYV 640x480 25 fps (both encode)",
        device: "/dev/video0",
        camfleet_format: "YUYV",
        ustreamer_format: "YUYV",
        ustreamer_encoder: "CPU",
        width: 640,
        height: 480,
        fps: 25,
        fed: false,
    },
    Case {
        name: "v4l2loopback MJPEG 1280x720 30 fps (both pass through)",
        device: loopback::DEVICE,
        camfleet_format: "MJPG",
        ustreamer_format: "MJPEG",
        ustreamer_encoder: "HW",
        width: 1280,
        height: 720,
        fps: 30,
        fed: true,
    },
];

fn main() {
    if std::env::var_os("CAMFLEET_IN_VM").is_none() {
        exit(boot_the_vm());
    }
    let viewers = PathBuf::from(std::env::var("CAMFLEET_BENCH_VIEWERS").expect("set by the host"));
    println!(
        "## camfleet and ustreamer {} side by side (VM: 2 emulated CPUs)\n",
        ustreamer_version()
    );
    println!(
        "Warm-up {WARMUP_S} s, then {MEASURE_S} s measured per cell; viewers: one epoll \
         process (benches/ustreamer/viewers.c).\n"
    );
    println!("| case | viewers | server | CPU-ms per delivered frame | fps/viewer min | fps/viewer median | latency p50 ms | latency p99 ms | RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for case in &CASES {
        let _feeder = case.fed.then(|| {
            let frames = loopback::frames(case.width, case.height, case.fps);
            loopback::Feeder::start(frames, *b"MJPG", case.width, case.height, case.fps)
        });
        for server in [Server::Camfleet, Server::Ustreamer] {
            let mut running = server.start(case);
            for n in VIEWERS {
                let figures = run_viewers(&viewers, &running, n);
                println!(
                    "| {} | {n} | {} | {} | {} | {} | {} | {} | {} |",
                    case.name,
                    server.name(),
                    figures.get("cpu_ms_per_frame"),
                    figures.get("fps_min"),
                    figures.get("fps_median"),
                    figures.get("latency_p50_ms"),
                    figures.get("latency_p99_ms"),
                    figures.get("rss_mib"),
                );
            }
            running.stop();
        }
    }
}

/// On the host: installs what the run needs, builds the viewers, and runs this program in
/// the VM. Returns the exit code.
fn boot_the_vm() -> i32 {
    let deps = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deps.sh");
    for group in ["vm", "ustreamer"] {
        let ok = Command::new("bash").args([deps, group]).status();
        assert!(
            ok.is_ok_and(|s| s.success()),
            "tests/deps.sh {group} failed"
        );
    }
    let viewers = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ustreamer-viewers");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/ustreamer/viewers.c");
    let built = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-Wall", "-o"])
        .arg(&viewers)
        .arg(source)
        .status()
        .expect("the C compiler runs");
    assert!(built.success(), "viewers.c did not build");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/run-in-vm.sh");
    let status = Command::new(script)
        .arg(std::env::current_exe().expect("own path"))
        .env("CAMFLEET_BENCH_VIEWERS", &viewers)
        .status()
        .expect("the VM harness runs");
    status.code().unwrap_or(1)
}

fn ustreamer_version() -> String {
    Command::new("ustreamer")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[derive(Clone, Copy)]
enum Server {
    Camfleet,
    Ustreamer,
}

struct Running {
    child: Child,
    addr: SocketAddr,
    /// The stream's path, asking for capture timestamps where the server needs asking.
    stream: &'static str,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Camfleet => "camfleet",
            Server::Ustreamer => "ustreamer",
        }
    }

    fn start(self, case: &Case) -> Running {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let running = match self {
            Server::Camfleet => {
                let dir = std::env::temp_dir().join(format!("camfleet-{port}"));
                std::fs::create_dir_all(&dir).expect("a state directory");
                let config = dir.join("cameras.yaml");
                std::fs::write(
                    &config,
                    format!(
                        "server:\n  listen: {addr}\n  max_streams: 1000\n  \
                         max_streams_per_camera: 1000\n  max_streams_per_client: 1000\n\
                         cameras:\n  - id: cam\n    source: {{kind: v4l2, device: {}, \
                         pixel_format: {}, width: {}, height: {}, fps: {}}}\n",
                        case.device, case.camfleet_format, case.width, case.height, case.fps
                    ),
                )
                .expect("the configuration is written");
                let child = Command::new(env!("CARGO_BIN_EXE_camfleet"))
                    .args(["serve", "--config"])
                    .arg(&config)
                    .arg("--state-dir")
                    .arg(&dir)
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("camfleet starts");
                Running {
                    child,
                    addr,
                    stream: "/cameras/cam/stream.mjpg",
                }
            }
            Server::Ustreamer => {
                let child = Command::new("ustreamer")
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--device", case.device])
                    .args(["--resolution", &format!("{}x{}", case.width, case.height)])
                    .args(["--format", case.ustreamer_format])
                    .args(["--encoder", case.ustreamer_encoder])
                    .args(["--desired-fps", &case.fps.to_string()])
                    .args(["--quality", "80", "--exit-on-parent-death"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("ustreamer starts");
                Running {
                    child,
                    addr,
                    stream: "/stream?extra_headers=1",
                }
            }
        };
        running.wait_for_a_frame();
        running
    }
}

impl Running {
    /// Waits until the server delivers a whole JPEG, as a snapshot.
    fn wait_for_a_frame(&self) {
        let path = if self.stream.starts_with("/cameras") {
            "/cameras/cam/snapshot.jpg"
        } else {
            "/snapshot"
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.child_exit() {
                panic!("the server exited before serving: {status}");
            }
            let answer = TcpStream::connect(self.addr).and_then(|mut c| {
                c.set_read_timeout(Some(Duration::from_secs(5)))?;
                write!(
                    c,
                    "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.addr
                )?;
                let mut answer = Vec::new();
                c.read_to_end(&mut answer)?;
                Ok(answer)
            });
            if answer
                .is_ok_and(|a| a.starts_with(b"HTTP/1.1 200") || a.starts_with(b"HTTP/1.0 200"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server on {} gave no frame in {START_LIMIT:?}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn child_exit(&self) -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        stat.contains(") Z").then(|| "exited".to_string())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Figures(Vec<(String, String)>);

impl Figures {
    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("?", |(_, v)| v.as_str())
    }
}

fn run_viewers(program: &Path, server: &Running, count: u32) -> Figures {
    let out = Command::new(program)
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .arg(server.stream)
        .arg(count.to_string())
        .arg(WARMUP_S.to_string())
        .arg(MEASURE_S.to_string())
        .arg(server.child.id().to_string())
        .output()
        .expect("the viewers run");
    assert!(
        out.status.success(),
        "the viewers failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    Figures(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}
