//! The servers measured: camfleet as its own process, and the baseline it is compared with.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use camfleet::camera::source::synthetic::SyntheticOpener;
use camfleet::camera::source::{FrameData, Opener};

use super::*;

pub(crate) fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------
// Processes

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn camfleet(yaml: &str) -> Server {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("camfleet-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("fleet-{port}.yaml"));
        std::fs::write(&path, yaml.replace("PORT", &port.to_string())).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_camfleet"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("camfleet starts");
        Server::ready(child, port)
    }

    pub(crate) fn ready(child: Child, port: u16) -> Server {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "server on {addr} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the cameras start and render their rings.
        std::thread::sleep(Duration::from_secs(2));
        Server { child, addr }
    }

    /// Waits until `/api/cameras` lists `count` cameras, each streaming with a frame
    /// captured (a synthetic camera has drawn its ring by then).
    pub(crate) fn wait_all_streaming(&self, count: usize) {
        use std::io::{Read as _, Write as _};
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut conn = std::net::TcpStream::connect(self.addr).unwrap();
            write!(
                conn,
                "GET /api/cameras HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            )
            .unwrap();
            let mut answer = String::new();
            let _ = conn.read_to_string(&mut answer);
            let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let ready = serde_json::from_str::<Vec<serde_json::Value>>(body).is_ok_and(|list| {
                list.len() == count
                    && list.iter().all(|c| {
                        c["state"] == "Streaming" && c["frames_captured"].as_u64() > Some(0)
                    })
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cameras did not all stream in 120 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// User plus system CPU seconds so far.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        // SAFETY: sysconf only reads a system constant.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    /// Resident memory, in MiB.
    pub(crate) fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The baseline: a single-threaded epoll server in C (epoll_server.c), built here with the
// system's C compiler, serving the same synthetic frames.

/// The frames of the bench camera's ring, as the baseline serves them.
pub(crate) fn ring_frames() -> Vec<Bytes> {
    let mut opener = SyntheticOpener::new(synthetic(WIDTH, HEIGHT), "bench");
    let mut device = opener.open().unwrap();
    let mut ring = Vec::new();
    while ring.len() < FPS as usize {
        if let Some(f) = device.next_frame(Duration::from_millis(100)).unwrap() {
            if let FrameData::Jpeg(b) = f.data {
                ring.push(b);
            }
        }
    }
    ring
}

/// Builds `epoll_server.c` with `cc -O2` into the target directory.
fn build_baseline() -> std::path::PathBuf {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/fanout/epoll_server.c");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("epoll_server");
    let built = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(source)
        .status()
        .expect("the C compiler runs");
    assert!(built.success(), "epoll_server.c did not build");
    out
}

impl Server {
    pub(crate) fn baseline() -> Server {
        let program = build_baseline();
        let dir = std::env::temp_dir().join(format!("camfleet-bench-ring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files: Vec<std::path::PathBuf> = ring_frames()
            .iter()
            .enumerate()
            .map(|(i, jpeg)| {
                let path = dir.join(format!("{i:02}.jpg"));
                std::fs::write(&path, jpeg).unwrap();
                path
            })
            .collect();
        let port = free_port();
        let child = Command::new(program)
            .arg(port.to_string())
            .arg(FPS.to_string())
            .args(&files)
            .spawn()
            .expect("the baseline starts");
        Server::ready(child, port)
    }
}
