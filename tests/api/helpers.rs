//! A real camfleet on port 0 and a real WebSocket client speaking its protocol.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use awc::ws;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;

use camfleet::camera::actor::Timing;
use camfleet::config::Config;
use camfleet::proto::{self, client_message::Kind as C, server_message::Kind as S};

/// How long a test waits for any one expected message: far more than any of the design's
/// bounds (a status interval, a backoff, a command timeout), so only a real fault runs
/// into it.
pub const WAIT: Duration = Duration::from_secs(10);
/// Scheduling slack added to a bound from the design's constants: on a loaded 2-core
/// machine a thread may wait that long for a core.
pub const MARGIN: Duration = Duration::from_secs(3);

/// The camera actor's clock for recovery tests: stalls are noticed, and failed devices
/// retried, in milliseconds instead of seconds.
pub fn fast_timing() -> Timing {
    Timing {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        stall_timeout: Duration::from_millis(300),
        command_timeout: Duration::from_millis(500),
        ..Timing::default()
    }
}

/// A camfleet server running on its own thread and actix system.
pub struct TestServer {
    pub addr: SocketAddr,
    stopper: camfleet::app::Stopper,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts camfleet with this fleet (YAML text) on a free port.
pub fn spawn(yaml: &str) -> TestServer {
    spawn_with_timing(yaml, Timing::default())
}

/// [`spawn`], with the cameras on the clock given.
pub fn spawn_with_timing(yaml: &str, timing: Timing) -> TestServer {
    let config = Config::parse(yaml, Path::new("test.yaml")).expect("test fleet is valid");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let store = camfleet::overrides::OverrideStore::in_memory();
            let server = camfleet::app::start_with_timing(config, listener, store, timing).unwrap();
            tx.send(server.stopper.clone()).unwrap();
            server.http.await.unwrap();
        });
    });
    let stopper = rx.recv().unwrap();
    TestServer {
        addr,
        stopper,
        thread: Some(thread),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let mut resp = awc::Client::new().get(self.url(path)).send().await.unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().limit(1 << 20).await.unwrap()
    }

    pub async fn client(&self) -> Client {
        Client::connect(self).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // The real, ordered stop; it needs a runtime, and the server's thread has its own.
        let stopper = self.stopper.clone();
        std::thread::spawn(move || actix_rt::System::new().block_on(stopper.stop()))
            .join()
            .ok();
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// A WebSocket client.
pub struct Client {
    framed: actix_codec::Framed<awc::BoxedSocket, ws::Codec>,
    pub hello: proto::Hello,
    next_request: u64,
    /// Messages read while looking for a command's answer, in arrival order.
    backlog: std::collections::VecDeque<S>,
}

impl Client {
    async fn connect(server: &TestServer) -> Client {
        Client::connect_to(server.addr).await
    }

    /// Connects to a camfleet at `addr`.
    pub async fn connect_to(addr: SocketAddr) -> Client {
        Client::connect_with(addr, None).await
    }

    /// Connects presenting `authorization` (`Bearer TOKEN`, `Basic ...`) or a `Cookie`
    /// header line at the handshake.
    pub async fn connect_with(addr: SocketAddr, header: Option<(&str, &str)>) -> Client {
        let mut request = awc::Client::new()
            .ws(format!("ws://{addr}/ws"))
            .max_frame_size(16 << 20);
        if let Some(header) = header {
            request = request.set_header(header.0, header.1);
        }
        let (_, framed) = request.connect().await.expect("WebSocket connects");
        let mut client = Client {
            framed,
            hello: proto::Hello::default(),
            next_request: 1,
            backlog: std::collections::VecDeque::new(),
        };
        client.hello = client
            .take_where(|k| match k {
                S::Hello(h) => Some(h.clone()),
                _ => None,
            })
            .await;
        client
    }

    pub fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    pub async fn send(&mut self, kind: C) {
        let bytes = proto::ClientMessage { kind: Some(kind) }.encode_to_vec();
        self.send_raw(bytes).await;
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        let _ = self.framed.send(ws::Message::Binary(bytes.into())).await;
    }

    /// Sends a text message, which the protocol does not use.
    pub async fn framed_send_text(&mut self, text: &str) {
        let _ = self.framed.send(ws::Message::Text(text.into())).await;
    }

    /// The next server message, or `None` if the connection closed; panics after `WAIT`.
    pub async fn next(&mut self) -> Option<Result<S, ws::Frame>> {
        if let Some(kind) = self.backlog.pop_front() {
            return Some(Ok(kind));
        }
        self.next_from_socket().await
    }

    async fn next_from_socket(&mut self) -> Option<Result<S, ws::Frame>> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.framed.next())
                .await
                .expect("server said something in time")?
                .ok()?;
            match frame {
                ws::Frame::Binary(b) => {
                    let msg = proto::ServerMessage::decode(b).expect("server message decodes");
                    return Some(Ok(msg.kind.expect("server message has a kind")));
                }
                ws::Frame::Ping(p) => {
                    self.framed.send(ws::Message::Pong(p)).await.unwrap();
                }
                other => return Some(Err(other)),
            }
        }
    }

    /// Forgets messages kept back while waiting for answers.
    pub fn forget_backlog(&mut self) {
        self.backlog.clear();
    }

    /// Reads messages in order, skipping them, until `pick` returns something.
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(&S) -> Option<T>) -> T {
        while let Some(kind) = self.backlog.pop_front() {
            if let Some(t) = pick(&kind) {
                return t;
            }
        }
        self.read_until(pick, false).await
    }

    /// Takes the first message `pick` wants, leaving every other one to be read later.
    pub async fn take_where<T>(&mut self, mut pick: impl FnMut(&S) -> Option<T>) -> T {
        for i in 0..self.backlog.len() {
            if let Some(t) = pick(&self.backlog[i]) {
                self.backlog.remove(i);
                return t;
            }
        }
        self.read_until(pick, true).await
    }

    async fn read_until<T>(&mut self, mut pick: impl FnMut(&S) -> Option<T>, keep: bool) -> T {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            match self.next_from_socket().await {
                Some(Ok(kind)) => {
                    if let Some(t) = pick(&kind) {
                        return t;
                    }
                    if keep {
                        self.backlog.push_back(kind);
                    }
                }
                Some(Err(frame)) => panic!("unexpected frame {frame:?}"),
                None => panic!("connection closed"),
            }
        }
        panic!("expected message did not arrive within {WAIT:?}");
    }

    /// The answer to a command, or `None` if the connection closed first.
    pub async fn try_result(&mut self, request_id: u64) -> Option<proto::CommandResult> {
        if let Some(i) = self
            .backlog
            .iter()
            .position(|k| matches!(k, S::CommandResult(r) if r.request_id == request_id))
        {
            if let Some(S::CommandResult(r)) = self.backlog.remove(i) {
                return Some(r);
            }
        }
        loop {
            match self.next_from_socket().await {
                Some(Ok(S::CommandResult(r))) if r.request_id == request_id => return Some(r),
                Some(Ok(kind)) => self.backlog.push_back(kind),
                _ => return None,
            }
        }
    }

    /// The answer to the command with this request id.
    pub async fn result(&mut self, request_id: u64) -> proto::CommandResult {
        self.take_where(|k| match k {
            S::CommandResult(r) if r.request_id == request_id => Some(r.clone()),
            _ => None,
        })
        .await
    }

    pub async fn subscribe(&mut self, cameras: &[&str]) {
        let request_id = self.request_id();
        self.send(C::Subscribe(proto::Subscribe {
            camera_ids: cameras.iter().map(ToString::to_string).collect(),
            request_id,
            ..Default::default()
        }))
        .await;
        let r = self.result(request_id).await;
        assert!(r.ok, "subscribe failed: {}", r.error);
    }

    /// Asks for the frames (and status) of `cameras`, at most `max_fps` a second (0: the
    /// camera's rate); returns the request id without waiting for the answer.
    pub async fn send_watch(&mut self, cameras: &[&str], max_fps: u32) -> u64 {
        let request_id = self.request_id();
        self.send(C::Subscribe(proto::Subscribe {
            camera_ids: cameras.iter().map(ToString::to_string).collect(),
            request_id,
            send_frames: true,
            max_fps,
            preview_width: 0,
        }))
        .await;
        request_id
    }

    /// Asks for the frames of `cameras` and checks that the server agreed.
    pub async fn watch(&mut self, cameras: &[&str], max_fps: u32) {
        let request_id = self.send_watch(cameras, max_fps).await;
        let r = self.result(request_id).await;
        assert!(r.ok, "subscribing to frames failed: {}", r.error);
    }

    pub async fn set_control(
        &mut self,
        camera: &str,
        control: &str,
        value: i64,
    ) -> proto::CommandResult {
        let request_id = self.send_set_control(camera, control, value).await;
        self.result(request_id).await
    }

    /// Sends a `SetControl` without waiting for its answer; returns its request id.
    pub async fn send_set_control(&mut self, camera: &str, control: &str, value: i64) -> u64 {
        let request_id = self.request_id();
        self.send(C::SetControl(proto::SetControl {
            request_id,
            camera_id: camera.into(),
            control: control.into(),
            value,
        }))
        .await;
        request_id
    }

    pub async fn authenticate(&mut self, token: &str) -> proto::CommandResult {
        let request_id = self.request_id();
        self.send(C::Authenticate(proto::Authenticate {
            request_id,
            token: token.into(),
        }))
        .await;
        self.result(request_id).await
    }

    pub async fn controls(&mut self, camera: &str) -> Vec<proto::ControlInfo> {
        let request_id = self.request_id();
        self.send(C::GetControls(proto::GetControls {
            request_id,
            camera_id: camera.into(),
        }))
        .await;
        self.take_where(|k| match k {
            S::ControlList(l) if l.request_id == request_id => Some(l.controls.clone()),
            S::CommandResult(r) if r.request_id == request_id => {
                panic!("GetControls failed: {}", r.error)
            }
            _ => None,
        })
        .await
    }

    /// Resets a camera's controls and returns the answer.
    pub async fn reset_controls(&mut self, camera: &str) -> proto::CommandResult {
        let request_id = self.request_id();
        self.send(C::ResetControls(proto::ResetControls {
            request_id,
            camera_id: camera.into(),
        }))
        .await;
        self.result(request_id).await
    }

    /// Unplugs a synthetic camera with test controls for a minute (longer than any test),
    /// and waits until it reports Reconnecting. The client must be subscribed to it.
    pub async fn unplug(&mut self, camera: &str) {
        let r = self.set_control(camera, "reconnect_delay_ms", 60_000).await;
        assert!(r.ok, "{}", r.error);
        let r = self.set_control(camera, "disconnect", 1).await;
        assert!(r.ok, "{}", r.error);
        self.status_where(camera, |s| state(s) == proto::CameraState::Reconnecting)
            .await;
    }

    /// Makes a synthetic camera's thread hang for `how_long` in its next capture, as a
    /// driver stuck in a call would.
    pub async fn hang(&mut self, camera: &str, how_long: Duration) {
        let ms = i64::try_from(how_long.as_millis()).unwrap();
        let r = self.set_control(camera, "hang_ms", ms).await;
        assert!(r.ok, "{}", r.error);
    }

    /// The next `Error` message.
    pub async fn error(&mut self) -> proto::Error {
        self.recv_until(|k| match k {
            S::Error(e) => Some(e.clone()),
            _ => None,
        })
        .await
    }

    /// The first status of `camera` streaming with frames captured.
    pub async fn streaming(&mut self, camera: &str) -> proto::CameraStatus {
        self.status_where(camera, |s| {
            state(s) == proto::CameraState::Streaming && s.frames_captured > 0
        })
        .await
    }

    /// The next status of `camera` for which `pick` says yes.
    pub async fn status_where(
        &mut self,
        camera: &str,
        mut pick: impl FnMut(&proto::CameraStatus) -> bool,
    ) -> proto::CameraStatus {
        self.recv_until(|k| match k {
            S::CameraStatus(s) if s.camera_id == camera && pick(s) => Some(s.clone()),
            _ => None,
        })
        .await
    }
}

pub fn control_value(status: &proto::CameraStatus, name: &str) -> Option<i64> {
    status
        .controls
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.value)
}

pub fn state(s: &proto::CameraStatus) -> proto::CameraState {
    proto::CameraState::try_from(s.state).unwrap()
}

/// A fleet of synthetic cameras with test controls, `ids` in order.
pub fn fleet(ids: &[&str]) -> String {
    ids.iter().fold(String::from("cameras:\n"), |mut yaml, id| {
        let _ = writeln!(
            yaml,
            "  - id: {id}\n    source: {{kind: synthetic, width: 160, height: 120, fps: 20, test_controls: true}}"
        );
        yaml
    })
}

/// The error code of a failed command's answer or of an `Error`.
pub fn code(code: i32) -> proto::ErrorCode {
    proto::ErrorCode::try_from(code).expect("a known error code")
}

/// A WebSocket opened by hand on a plain socket, for frames no client library would send.
pub async fn raw_websocket(addr: SocketAddr) -> tokio::net::TcpStream {
    raw_websocket_on(tokio::net::TcpStream::connect(addr).await.unwrap()).await
}

/// Opens a WebSocket by hand on a connected socket.
pub async fn raw_websocket_on(mut socket: tokio::net::TcpStream) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    socket
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(socket.read_u8().await.unwrap());
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    socket
}

/// Reads the server's WebSocket frames until a close frame, and returns its code.
pub async fn close_code(rd: &mut (impl tokio::io::AsyncRead + Unpin)) -> u16 {
    use tokio::io::AsyncReadExt;
    loop {
        let mut head = [0u8; 2];
        rd.read_exact(&mut head)
            .await
            .expect("a frame from the server");
        let len = match head[1] & 0x7f {
            126 => u64::from(rd.read_u16().await.unwrap()),
            127 => rd.read_u64().await.unwrap(),
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        rd.read_exact(&mut payload).await.unwrap();
        if head[0] & 0x0f == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

/// A client message as one masked binary WebSocket frame, as a client sends it.
pub fn masked_frame(kind: C) -> Vec<u8> {
    let payload = proto::ClientMessage { kind: Some(kind) }.encode_to_vec();
    let mask = [9u8, 8, 7, 6];
    let mut frame = vec![0x82];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | u8::try_from(n).unwrap()),
        n => {
            frame.push(0x80 | 0x7e);
            frame.extend(u16::try_from(n).unwrap().to_be_bytes());
        }
    }
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Sends `METHOD path` from `source` (an address of this machine; any when `None`) with
/// these extra header lines and body, on a plain socket, and returns the status and the
/// reply's start. `/ws` is asked as a WebSocket handshake.
pub async fn http_request(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::fmt::Write as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !body.is_empty() {
        let _ = write!(request, "Content-Length: {}\r\n", body.len());
    }
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        let _ = write!(request, "Host: {addr}\r\n");
    }
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    if path == "/ws" {
        request.push_str(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
    } else {
        request.push_str("Connection: close\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
    }
    let mut socket = socket.connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    // A stream or a WebSocket that opened goes on for ever: only its head is read. Anything
    // else is read to its end (the request asked to close the connection).
    let endless = path == "/ws" || path.contains("stream.mjpg");
    loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(WAIT, socket.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => reply.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => panic!("{e}"),
        }
        let text = String::from_utf8_lossy(&reply);
        let ok = text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.1 101");
        if endless && ok && text.contains("\r\n\r\n") {
            break;
        }
    }
    let got = reply.len();
    let text = String::from_utf8_lossy(&reply[..got]).to_string();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (code, text)
}
