//! Fan-out benchmark: camfleet against a plain tokio server sending the same bytes.
//!
//! `cargo bench --bench fanout` runs, in one go:
//! - the JPEG encoder's cost per 1280x720 YUYV frame;
//! - 1, 10 and 100 MJPEG clients, then 100 WebSocket clients, of one synthetic 1280x720
//!   30 fps camera, against camfleet and against the baseline, all on loopback;
//! - a fleet of 32 synthetic 640x480 30 fps cameras with one WebSocket client taking
//!   every camera's frames.
//!
//! Servers run as separate processes, so their CPU time and memory are their own; the
//! clients run on one thread of this process. Timings on a shared machine are noisy:
//! compare the ratios measured in one run.

use std::cell::RefCell;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use camfleet::camera::source::synthetic::SyntheticOpener;
use camfleet::camera::source::{FourCc, FrameData, Opener};
use camfleet::config::{Pattern, SyntheticConfig};
use camfleet::proto::{self, client_message::Kind as C, server_message::Kind as S};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const FPS: u32 = 30;
const WARMUP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(5);
const BOUNDARY: &str = "camfleetframe";

fn synthetic(width: u32, height: u32) -> SyntheticConfig {
    SyntheticConfig {
        width,
        height,
        fps: FPS,
        pattern: Pattern::Noise,
        prerender: FPS,
        test_controls: false,
        raw: false,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--baseline-server") {
        let port: u16 = args[i + 1].parse().unwrap();
        return baseline_server(port);
    }
    println!("camfleet fan-out benchmark ({} cores)", num_cores());
    encoder_cost();
    fanout();
    fleet();
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------
// Processes

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn camfleet(yaml: &str) -> Server {
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

    fn baseline() -> Server {
        let port = free_port();
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--baseline-server", &port.to_string()])
            .spawn()
            .expect("baseline starts");
        Server::ready(child, port)
    }

    fn ready(child: Child, port: u16) -> Server {
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
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        // SAFETY: sysconf only reads a system constant.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    /// Resident memory, in MiB.
    fn rss_mib(&self) -> f64 {
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

fn baseline_server(port: u16) {
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

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

// ---------------------------------------------------------------------------------------
// Clients

#[derive(Default)]
struct ClientStats {
    frames: u64,
    bytes: u64,
    latencies_ms: Vec<f64>,
}

type Shared = Rc<RefCell<ClientStats>>;

fn record(stats: &Shared, window: (Instant, Instant), bytes: usize, captured_micros: u64) {
    let now = Instant::now();
    if now < window.0 || now > window.1 {
        return;
    }
    let mut s = stats.borrow_mut();
    s.frames += 1;
    s.bytes += bytes as u64;
    s.latencies_ms
        .push((now_micros().saturating_sub(captured_micros)) as f64 / 1000.0);
}

/// Reads an MJPEG stream (chunked or not), recording every part inside the window.
async fn mjpeg_client(addr: SocketAddr, path: String, stats: Shared, window: (Instant, Instant)) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = BytesMut::with_capacity(1 << 20);
    let mut body = BytesMut::with_capacity(1 << 20);
    let mut chunked = None;
    while Instant::now() < window.1 {
        if conn.read_buf(&mut raw).await.unwrap_or(0) == 0 {
            return;
        }
        if chunked.is_none() {
            let Some(end) = find(&raw, b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            chunked = Some(head.contains("transfer-encoding: chunked"));
            raw.advance(end + 4);
        }
        if chunked == Some(true) {
            while let Some(line) = find(&raw[..raw.len().min(16)], b"\r\n") {
                let size =
                    usize::from_str_radix(std::str::from_utf8(&raw[..line]).unwrap(), 16).unwrap();
                if raw.len() < line + 2 + size + 2 {
                    break;
                }
                body.extend_from_slice(&raw[line + 2..line + 2 + size]);
                raw.advance(line + 2 + size + 2);
            }
        } else {
            body.extend_from_slice(&raw);
            raw.clear();
        }
        while let Some(head_end) = find(&body[..body.len().min(512)], b"\r\n\r\n") {
            let head = std::str::from_utf8(&body[..head_end]).unwrap();
            let field = |name: &str| -> u64 {
                head.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap()
            };
            let len = field("Content-Length:") as usize;
            let ts = field("X-Capture-Timestamp:");
            if body.len() < head_end + 4 + len + 2 {
                break;
            }
            record(&stats, window, len, ts);
            body.advance(head_end + 4 + len + 2);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Subscribes to frames of `cameras` (empty: all) over the WebSocket, recording frames
/// per camera inside the window.
async fn ws_client(
    addr: SocketAddr,
    per_camera: Rc<RefCell<std::collections::HashMap<String, ClientStats>>>,
    window: (Instant, Instant),
) {
    let (_, mut ws) = awc::Client::new()
        .ws(format!("ws://{addr}/ws"))
        .max_frame_size(16 << 20)
        .connect()
        .await
        .unwrap();
    let subscribe = proto::ClientMessage {
        kind: Some(C::Subscribe(proto::Subscribe {
            camera_ids: vec![],
            request_id: 1,
            send_frames: true,
            max_fps: 0,
        })),
    };
    ws.send(awc::ws::Message::Binary(subscribe.encode_to_vec().into()))
        .await
        .unwrap();
    while Instant::now() < window.1 {
        let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(1), ws.next()).await
        else {
            continue;
        };
        match frame {
            awc::ws::Frame::Binary(b) => {
                if let Ok(proto::ServerMessage {
                    kind: Some(S::Frame(f)),
                }) = proto::ServerMessage::decode(b)
                {
                    let now = Instant::now();
                    if now >= window.0 && now <= window.1 {
                        let mut map = per_camera.borrow_mut();
                        let s = map.entry(f.camera_id.clone()).or_default();
                        s.frames += 1;
                        s.bytes += f.jpeg.len() as u64;
                        s.latencies_ms
                            .push(now_micros().saturating_sub(f.capture_timestamp) as f64 / 1000.0);
                    }
                }
            }
            awc::ws::Frame::Ping(p) => {
                let _ = ws.send(awc::ws::Message::Pong(p)).await;
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cases

#[derive(Clone, Copy, PartialEq)]
enum Via {
    Mjpeg,
    WebSocket,
}

struct CaseResult {
    fps_min: f64,
    fps_median: f64,
    gbytes: f64,
    cpu_per_gb: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_mib: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn run_case(server: &Server, via: Via, clients: usize) -> CaseResult {
    let addr = server.addr;
    let start = Instant::now() + WARMUP;
    let window = (start, start + MEASURE);
    let system = actix_rt::System::new();
    let (stats, cpu) = system.block_on(async move {
        let mut all = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            match via {
                Via::Mjpeg => {
                    let s: Shared = Rc::default();
                    all.push(s.clone());
                    tasks.push(actix_rt::spawn(mjpeg_client(
                        addr,
                        "/cameras/bench/stream.mjpg".into(),
                        s,
                        window,
                    )));
                }
                Via::WebSocket => {
                    let map = Rc::new(RefCell::new(std::collections::HashMap::new()));
                    let s: Shared = Rc::default();
                    all.push(s.clone());
                    let map2 = map.clone();
                    tasks.push(actix_rt::spawn(async move {
                        ws_client(addr, map2.clone(), window).await;
                        let mut m = map2.borrow_mut();
                        if let Some(c) = m.remove("bench") {
                            *s.borrow_mut() = c;
                        }
                    }));
                }
            }
        }
        actix_rt::time::sleep_until(window.0.into()).await;
        let cpu0 = server.cpu_seconds();
        actix_rt::time::sleep_until(window.1.into()).await;
        let cpu1 = server.cpu_seconds();
        let rss = server.rss_mib();
        for t in tasks {
            let _ = t.await;
        }
        (all, (cpu1 - cpu0, rss))
    });
    let secs = MEASURE.as_secs_f64();
    let mut fps: Vec<f64> = stats
        .iter()
        .map(|s| s.borrow().frames as f64 / secs)
        .collect();
    fps.sort_by(f64::total_cmp);
    let bytes: u64 = stats.iter().map(|s| s.borrow().bytes).sum();
    let mut lat: Vec<f64> = stats
        .iter()
        .flat_map(|s| s.borrow().latencies_ms.clone())
        .collect();
    lat.sort_by(f64::total_cmp);
    let gbytes = bytes as f64 / 1e9;
    CaseResult {
        fps_min: fps[0],
        fps_median: percentile(&fps, 0.5),
        gbytes,
        cpu_per_gb: cpu.0 / gbytes,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        rss_mib: cpu.1,
    }
}

fn encoder_cost() {
    let mut opener = SyntheticOpener::new(
        SyntheticConfig {
            raw: true,
            ..synthetic(WIDTH, HEIGHT)
        },
        "encoder",
    );
    let mut device = opener.open().unwrap();
    let yuyv = loop {
        if let Some(f) = device.next_frame(Duration::from_millis(100)).unwrap() {
            if let FrameData::Raw(b) = f.data {
                break b.to_vec();
            }
        }
    };
    let fourcc = FourCc(*b"YUYV");
    let runs = 60;
    let start = Instant::now();
    let mut size = 0;
    for _ in 0..runs {
        size = camfleet::camera::jpeg::encode_raw(fourcc, WIDTH, HEIGHT, &yuyv, 80)
            .unwrap()
            .len();
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
    println!("\n## Encoder\n");
    println!("1280x720 YUYV -> JPEG at quality 80: {ms:.2} ms per frame ({} KB), one core, {runs} frames", size / 1000);
}

fn fanout() {
    let yaml = format!(
        "server:\n  listen: 127.0.0.1:PORT\n  max_streams: 500\n  max_streams_per_camera: 500\n  max_sessions: 500\ncameras:\n  - id: bench\n    source: {{kind: synthetic, width: {WIDTH}, height: {HEIGHT}, fps: {FPS}, pattern: noise, prerender: {FPS}}}\n"
    );
    let camfleet = Server::camfleet(&yaml);
    let idle_rss = camfleet.rss_mib();
    let frame_kb = {
        let mut opener = SyntheticOpener::new(synthetic(WIDTH, HEIGHT), "bench");
        let mut d = opener.open().unwrap();
        loop {
            if let Some(f) = d.next_frame(Duration::from_millis(100)).unwrap() {
                if let FrameData::Jpeg(b) = f.data {
                    break b.len() / 1000;
                }
            }
        }
    };
    let baseline = Server::baseline();
    println!(
        "\n## Fan-out of one {WIDTH}x{HEIGHT} {FPS} fps camera (frames of about {frame_kb} KB)\n"
    );
    println!(
        "camfleet idle RSS: {idle_rss:.1} MiB; warm-up {} s, measured {} s per case\n",
        WARMUP.as_secs(),
        MEASURE.as_secs()
    );
    println!("| case | server | fps/client min | fps/client median | GB delivered | CPU s per GB | p50 ms | p99 ms | RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for (via, clients) in [
        (Via::Mjpeg, 1),
        (Via::Mjpeg, 10),
        (Via::Mjpeg, 100),
        (Via::WebSocket, 100),
    ] {
        let name = match via {
            Via::Mjpeg => format!("{clients} MJPEG"),
            Via::WebSocket => format!("{clients} WebSocket"),
        };
        let ours = run_case(&camfleet, via, clients);
        print_row(&name, "camfleet", &ours);
        // The baseline speaks plain MJPEG; it is the reference for both kinds of client.
        let base = run_case(&baseline, Via::Mjpeg, clients);
        print_row(&name, "baseline", &base);
        std::io::stdout().flush().unwrap();
        ratios.push((name, ours.gbytes / base.gbytes, ours.rss_mib));
    }
    println!("\n| case | camfleet / baseline throughput | camfleet RSS growth per client |");
    println!("|---|---|---|");
    for (name, ratio, rss) in &ratios {
        let clients: f64 = name.split(' ').next().unwrap().parse().unwrap();
        println!(
            "| {name} | {ratio:.2} | {:.3} MiB |",
            (rss - idle_rss) / clients
        );
    }
}

fn print_row(case: &str, server: &str, r: &CaseResult) {
    println!(
        "| {case} | {server} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} |",
        r.fps_min, r.fps_median, r.gbytes, r.cpu_per_gb, r.p50_ms, r.p99_ms, r.rss_mib
    );
}

fn fleet() {
    let cameras = 32;
    let mut yaml = String::from("server:\n  listen: 127.0.0.1:PORT\ncameras:\n");
    for i in 0..cameras {
        yaml.push_str(&format!(
            "  - id: cam{i:02}\n    source: {{kind: synthetic, width: 640, height: 480, fps: {FPS}, pattern: noise, prerender: {FPS}}}\n"
        ));
    }
    let server = Server::camfleet(&yaml);
    let idle0 = server.cpu_seconds();
    std::thread::sleep(MEASURE);
    let idle_cpu = (server.cpu_seconds() - idle0) / MEASURE.as_secs_f64();

    let addr = server.addr;
    let start = Instant::now() + WARMUP;
    let window = (start, start + MEASURE);
    let per_camera = Rc::new(RefCell::new(std::collections::HashMap::new()));
    let map = per_camera.clone();
    let cpu = actix_rt::System::new().block_on(async move {
        let task = actix_rt::spawn(ws_client(addr, map, window));
        actix_rt::time::sleep_until(window.0.into()).await;
        let c0 = server.cpu_seconds();
        actix_rt::time::sleep_until(window.1.into()).await;
        let c1 = server.cpu_seconds();
        let _ = task.await;
        c1 - c0
    });
    let secs = MEASURE.as_secs_f64();
    let map = per_camera.borrow();
    let mut fps: Vec<f64> = (0..cameras)
        .map(|i| {
            map.get(&format!("cam{i:02}"))
                .map_or(0.0, |s| s.frames as f64 / secs)
        })
        .collect();
    fps.sort_by(f64::total_cmp);
    let delivered: f64 = fps.iter().sum::<f64>() / (f64::from(FPS) * f64::from(cameras));
    let mut lat: Vec<f64> = map.values().flat_map(|s| s.latencies_ms.clone()).collect();
    lat.sort_by(f64::total_cmp);
    let cpu_share = cpu / secs;
    println!("\n## Fleet: {cameras} synthetic 640x480 {FPS} fps cameras, one WebSocket client taking all frames\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| delivered fps per camera, min / median | {:.1} / {:.1} |",
        fps[0],
        percentile(&fps, 0.5)
    );
    println!("| frames delivered | {:.1} % |", delivered * 100.0);
    println!(
        "| server CPU, all cameras, no viewer | {:.1} % of one core |",
        idle_cpu * 100.0
    );
    println!(
        "| server CPU, all cameras, one client | {:.1} % of one core ({:.2} % per camera) |",
        cpu_share * 100.0,
        cpu_share * 100.0 / f64::from(cameras)
    );
    println!(
        "| capture-to-receive p50 / p99 | {:.1} / {:.1} ms |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
}
