//! The clients: MJPEG and WebSocket readers that record what they got and how late.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_http::ws::{OpCode, Parser};
use bytes::{Buf, BytesMut};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use camfleet::proto::{self, client_message::Kind as C, server_message::Kind as S};

use super::*;

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

// ---------------------------------------------------------------------------------------
// Clients

#[derive(Default)]
pub(crate) struct ClientStats {
    pub(crate) frames: u64,
    pub(crate) bytes: u64,
    pub(crate) latencies_ms: Vec<f64>,
}

pub(crate) type Shared = Rc<RefCell<ClientStats>>;

pub(crate) fn record(
    stats: &Shared,
    window: (Instant, Instant),
    bytes: usize,
    captured_micros: u64,
) {
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
pub(crate) async fn mjpeg_client(
    addr: SocketAddr,
    path: String,
    stats: Shared,
    window: (Instant, Instant),
) {
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

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Subscribes to every camera's frames over the WebSocket, recording frames per camera
/// inside the window.
///
/// A bare-socket client that reads as the MJPEG client does, up to 1 MiB at a time, so both
/// kinds of viewer drain their sockets alike and the servers' figures compare.
pub(crate) async fn ws_client(
    addr: SocketAddr,
    per_camera: Rc<RefCell<std::collections::HashMap<String, ClientStats>>>,
    window: (Instant, Instant),
) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = BytesMut::with_capacity(1 << 20);
    loop {
        assert!(conn.read_buf(&mut raw).await.unwrap() > 0, "no upgrade");
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            assert!(raw.starts_with(b"HTTP/1.1 101"), "no upgrade");
            raw.advance(end + 4);
            break;
        }
    }
    let subscribe = proto::ClientMessage {
        kind: Some(C::Subscribe(proto::Subscribe {
            camera_ids: vec![],
            request_id: 1,
            send_frames: true,
            max_fps: 0,
            preview_width: 0,
        })),
    };
    conn.write_all(&masked(OpCode::Binary, &subscribe.encode_to_vec()))
        .await
        .unwrap();
    while Instant::now() < window.1 {
        while let Some((_, op, payload)) = Parser::parse(&mut raw, false, 16 << 20).unwrap() {
            let payload = payload.unwrap_or_default().freeze();
            match op {
                OpCode::Binary => {
                    if let Ok(proto::ServerMessage {
                        kind: Some(S::Frame(f)),
                    }) = proto::ServerMessage::decode(payload)
                    {
                        let now = Instant::now();
                        if now >= window.0 && now <= window.1 {
                            let mut map = per_camera.borrow_mut();
                            let s = map.entry(f.camera_id.clone()).or_default();
                            s.frames += 1;
                            s.bytes += f.jpeg.len() as u64;
                            s.latencies_ms.push(
                                now_micros().saturating_sub(f.capture_timestamp) as f64 / 1000.0,
                            );
                        }
                    }
                }
                OpCode::Ping => conn
                    .write_all(&masked(OpCode::Pong, &payload))
                    .await
                    .unwrap(),
                OpCode::Close => return,
                _ => {}
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(1), conn.read_buf(&mut raw)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            return;
        }
    }
}

/// A client frame (final, masked as clients must) of `op` carrying `payload`.
fn masked(op: OpCode, payload: &[u8]) -> BytesMut {
    let mut frame = BytesMut::new();
    Parser::write_message(&mut frame, payload, op, true, true);
    frame
}

// ---------------------------------------------------------------------------------------
// Cases

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Via {
    Mjpeg,
    WebSocket,
}

pub(crate) struct CaseResult {
    pub(crate) fps_min: f64,
    pub(crate) fps_median: f64,
    pub(crate) gbytes: f64,
    pub(crate) cpu_per_gb: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) rss_mib: f64,
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub(crate) fn run_case(server: &Server, via: Via, clients: usize) -> CaseResult {
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
