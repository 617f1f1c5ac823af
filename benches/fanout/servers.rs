//! The servers measured: camfleet as its own process, and the baseline it is compared with.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    pub(crate) fn baseline() -> Server {
        let port = free_port();
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--baseline-server", &port.to_string()])
            .spawn()
            .expect("baseline starts");
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
// The baseline: a plain tokio server writing the same frames to every connection.

pub(crate) fn baseline_server(port: u16) {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel((0u64, 0u64, Bytes::new()));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(FPS)));
            for seq in 1u64.. {
                tick.tick().await;
                let jpeg = ring[(seq % ring.len() as u64) as usize].clone();
                tx.send_replace((seq, now_micros(), jpeg));
            }
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = conn.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n\r\n"
                );
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                while rx.changed().await.is_ok() {
                    let (seq, ts, jpeg) = rx.borrow_and_update().clone();
                    let part = format!(
                        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nX-Frame-Seq: {seq}\r\nX-Capture-Timestamp: {ts}\r\n\r\n",
                        jpeg.len()
                    );
                    if conn.write_all(part.as_bytes()).await.is_err()
                        || conn.write_all(&jpeg).await.is_err()
                        || conn.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}
