//! How a session's messages reach its client.
//!
//! Over HTTPS they go through actix-web-actors' context, which frames each message into
//! the connection's buffer. On a plain connection the session hands its response body
//! ([`direct_body`]) what it sends, framed, and the camera feeds it subscribes to; the body
//! writes straight to the socket ([`DirectWriter`]). A camera frame's message, framed once
//! and shared by every session ([`wire::frame`]), goes out as it is, never copied per
//! client, and the session itself runs only when something of its own wakes it, not for
//! every frame.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_http::ws::{OpCode, Parser};
use actix_web_actors::ws;
use bytes::{Bytes, BytesMut};
use futures_util::stream::LocalBoxStream;
use futures_util::task::{ArcWake, AtomicWaker};
use futures_util::{Stream, StreamExt as _};
use tokio::sync::mpsc;

use super::WsSession;
use crate::camera::CameraId;
use crate::http::direct::DirectWriter;
use crate::http::fanout::{self, Subscription};
use crate::http::feed::FrameFeed;
use crate::http::wire;
use crate::proto::server_message::Kind as ServerKind;

/// Where a session's messages go.
pub(super) enum Output {
    /// Into actix-web-actors' context.
    Context,
    /// To the response body made by [`direct_body`], in the order sent.
    Direct(mpsc::UnboundedSender<ToBody>),
}

/// What a session on a plain connection hands its response body.
pub(super) enum ToBody {
    /// Bytes to write: a framed message.
    Write(Bytes),
    /// A camera's frames, each a framed message, to write as they come; replaces the
    /// camera's earlier feed.
    Feed(CameraId, LocalBoxStream<'static, Bytes>),
    /// A camera's every frame, for the camera's fan-out to write; replaces the camera's
    /// earlier feed.
    Join(CameraId, FrameFeed),
    /// The end of a camera's feed.
    Unfeed(CameraId),
    /// The close frame: the last bytes written.
    Close(Bytes),
}

impl WsSession {
    /// Sends one server message.
    pub(super) fn send(&self, ctx: &mut ws::WebsocketContext<Self>, kind: ServerKind) {
        let message = wire::encode(kind);
        match &self.output {
            Output::Context => ctx.binary(message),
            Output::Direct(_) => self.hand_over(ToBody::Write(wire::framed(&message))),
        }
    }

    /// Pings the client.
    pub(super) fn ping(&self, ctx: &mut ws::WebsocketContext<Self>) {
        match &self.output {
            Output::Context => ctx.ping(b""),
            Output::Direct(_) => self.hand_over(ToBody::Write(control(b"", OpCode::Ping))),
        }
    }

    /// Answers the client's ping.
    pub(super) fn pong(&self, ctx: &mut ws::WebsocketContext<Self>, payload: &[u8]) {
        match &self.output {
            Output::Context => ctx.pong(payload),
            Output::Direct(_) => self.hand_over(ToBody::Write(control(payload, OpCode::Pong))),
        }
    }

    /// Sends the close frame and stops the session; nothing is sent after it.
    pub(super) fn close(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reason: Option<ws::CloseReason>,
    ) {
        match &self.output {
            Output::Context => ctx.close(reason),
            Output::Direct(_) => {
                let mut frame = BytesMut::new();
                Parser::write_close(&mut frame, reason, false);
                self.hand_over(ToBody::Close(frame.freeze()));
            }
        }
        self.output = Output::Context;
        actix::ActorContext::stop(ctx);
    }

    /// Hands `item` to the response body, on a plain connection.
    pub(super) fn hand_over(&self, item: ToBody) {
        if let Output::Direct(body) = &self.output {
            // The body is gone only with the connection, and then nothing is to be sent.
            let _ = body.send(item);
        }
    }
}

/// A control frame from the server.
fn control(payload: &[u8], op: OpCode) -> Bytes {
    let mut frame = BytesMut::with_capacity(payload.len() + 2);
    Parser::write_message(&mut frame, payload, op, true, false);
    frame.freeze()
}

/// Raised when something the session waits on (its mailbox, its client's messages, its
/// timers) wakes it, so the body runs the session only then.
#[derive(Default)]
struct SessionWoken {
    raised: AtomicBool,
    body: AtomicWaker,
}

impl ArcWake for SessionWoken {
    fn wake_by_ref(this: &Arc<Self>) {
        this.raised.store(true, Ordering::Release);
        this.body.wake();
    }
}

/// What one pass of the body found.
enum Pass {
    /// Bytes to write, in order.
    Write,
    /// The session has stopped: write what is gathered, then end.
    End,
}

/// How a camera's frames reach the client.
enum Feed {
    /// Pulled by the body, at the session's pace.
    Own(LocalBoxStream<'static, Bytes>),
    /// Written by the camera's fan-out.
    Joined(Subscription),
}

/// The response body of a session on a plain connection. Each pass runs the session if
/// something woke it, takes what it handed over, and polls its own camera feeds; then it
/// writes what it gathered and what the fan-outs left queued, all of it before the next
/// pass, so a client that does not read holds back the session and its feeds instead of a
/// queue growing (a feed always has only its newest frame for the next pass). Ends once
/// the session has stopped and all it sent is written, or the client is gone.
pub(super) fn direct_body(
    writer: DirectWriter,
    context: impl Stream<Item = Result<Bytes, actix_web::Error>> + 'static,
    mut from_session: mpsc::UnboundedReceiver<ToBody>,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    futures_util::stream::once(async move {
        writer.take_over().await;
        let mut context = std::pin::pin!(context);
        let woken = Arc::new(SessionWoken::default());
        woken.raised.store(true, Ordering::Release);
        let session_waker = futures_util::task::waker(Arc::clone(&woken));
        let mut feeds: HashMap<CameraId, Feed> = HashMap::new();
        let mut gathered: Vec<Bytes> = Vec::new();
        // Joined after what the session sent with them is written: its answer comes first.
        let mut joining: Vec<(CameraId, FrameFeed)> = Vec::new();
        loop {
            let pass = std::future::poll_fn(|cx| {
                let mut stopped = false;
                // Only the session hands things over, and only while it runs.
                let ran = woken.raised.swap(false, Ordering::AcqRel);
                if ran {
                    let mut session_cx = Context::from_waker(&session_waker);
                    match context.as_mut().poll_next(&mut session_cx) {
                        // The context writes nothing but what follows a close: dropped.
                        Poll::Ready(Some(Ok(_))) => woken.raised.store(true, Ordering::Release),
                        Poll::Ready(_) => stopped = true,
                        Poll::Pending => {}
                    }
                }
                while let Some(item) = ran.then(|| from_session.try_recv().ok()).flatten() {
                    match item {
                        ToBody::Write(bytes) => gathered.push(bytes),
                        ToBody::Feed(camera, feed) => {
                            joining.retain(|(c, _)| *c != camera);
                            feeds.insert(camera, Feed::Own(feed));
                        }
                        ToBody::Join(camera, feed) => {
                            feeds.remove(&camera);
                            joining.retain(|(c, _)| *c != camera);
                            joining.push((camera, feed));
                        }
                        ToBody::Unfeed(camera) => {
                            joining.retain(|(c, _)| *c != camera);
                            feeds.remove(&camera);
                        }
                        ToBody::Close(bytes) => {
                            gathered.push(bytes);
                            stopped = true;
                            break;
                        }
                    }
                }
                if stopped {
                    return Poll::Ready(Pass::End);
                }
                // A feed ends when its camera is gone for good.
                feeds.retain(|_, feed| match feed {
                    Feed::Own(feed) => match feed.poll_next_unpin(cx) {
                        Poll::Ready(Some(frame)) => {
                            gathered.push(frame);
                            true
                        }
                        Poll::Ready(None) => false,
                        Poll::Pending => true,
                    },
                    Feed::Joined(subscription) => !subscription.ended(),
                });
                if !gathered.is_empty()
                    || !joining.is_empty()
                    || writer.poll_queued(cx).is_ready()
                    || woken.raised.load(Ordering::Acquire)
                {
                    return Poll::Ready(Pass::Write);
                }
                // Registered before the last look, so a wake in between is not lost.
                woken.body.register(cx.waker());
                if woken.raised.load(Ordering::Acquire) {
                    Poll::Ready(Pass::Write)
                } else {
                    Poll::Pending
                }
            })
            .await;
            for bytes in gathered.drain(..) {
                if writer.send(&bytes).is_err() {
                    return Ok(Bytes::new());
                }
            }
            if writer.flushed().await.is_err() {
                return Ok(Bytes::new());
            }
            if matches!(pass, Pass::End) {
                return Ok(Bytes::new());
            }
            for feed in feeds.values() {
                if let Feed::Joined(subscription) = feed {
                    subscription.catch_up();
                }
            }
            for (camera, feed) in joining.drain(..) {
                let shape: fanout::Shape = wire::frame;
                let subscription = fanout::join(feed, writer.clone(), shape);
                feeds.insert(camera, Feed::Joined(subscription));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use prost::Message as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::camera::CameraId;
    use crate::config::Config;
    use crate::http::wire;
    use crate::hub::{ViewerKind, Watch};
    use crate::proto::{self, client_message, server_message};

    /// Far longer than a few frame intervals of the 20 fps camera below; only a server that
    /// stopped sending runs into it.
    const WAIT: Duration = Duration::from_secs(20);

    /// A WebSocket client on a bare socket, keeping each server frame's bytes as they came.
    struct RawClient {
        socket: tokio::net::TcpStream,
        bytes: Vec<u8>,
    }

    impl RawClient {
        async fn open(addr: std::net::SocketAddr) -> RawClient {
            RawClient::open_with(addr, None).await
        }

        /// A client whose socket takes at most `receive_buffer` bytes unread.
        async fn open_with(addr: std::net::SocketAddr, receive_buffer: Option<u32>) -> RawClient {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            if let Some(size) = receive_buffer {
                socket.set_recv_buffer_size(size).unwrap();
            }
            let mut socket = socket.connect(addr).await.unwrap();
            socket
                .write_all(
                    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
                      Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                      Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                )
                .await
                .unwrap();
            let mut client = RawClient {
                socket,
                bytes: Vec::new(),
            };
            let end = loop {
                if let Some(i) = client.bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                client.read().await;
            };
            let head = String::from_utf8_lossy(&client.bytes[..end]).to_string();
            assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
            client.bytes.drain(..end);
            client
        }

        async fn read(&mut self) {
            let read = tokio::time::timeout(WAIT, self.socket.read_buf(&mut self.bytes));
            assert!(read.await.expect("bytes in time").unwrap() > 0, "closed");
        }

        /// The next frame from the server, header and payload, exactly as it came.
        async fn frame(&mut self) -> Vec<u8> {
            loop {
                if self.bytes.len() >= 2 {
                    assert_eq!(self.bytes[1] & 0x80, 0, "server frames are not masked");
                    let (header, len) = match self.bytes[1] & 0x7f {
                        126 if self.bytes.len() >= 4 => {
                            (4, u16::from_be_bytes([self.bytes[2], self.bytes[3]]).into())
                        }
                        127 if self.bytes.len() >= 10 => {
                            let len = u64::from_be_bytes(self.bytes[2..10].try_into().unwrap());
                            (10, usize::try_from(len).unwrap())
                        }
                        126 | 127 => (usize::MAX, 0),
                        short => (2, usize::from(short)),
                    };
                    if header != usize::MAX && self.bytes.len() >= header + len {
                        return self.bytes.drain(..header + len).collect();
                    }
                }
                self.read().await;
            }
        }

        async fn send(&mut self, kind: client_message::Kind) {
            let message = proto::ClientMessage { kind: Some(kind) }.encode_to_vec();
            let len = u8::try_from(message.len()).expect("a short message");
            let mask = [1u8, 2, 3, 4];
            let mut frame = vec![0x82, 0x80 | len];
            frame.extend_from_slice(&mask);
            frame.extend(message.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
            self.socket.write_all(&frame).await.unwrap();
        }
    }

    /// A server on loopback with one synthetic camera, `cam`, of `source`.
    fn start(source: &str) -> (crate::app::Server, std::net::SocketAddr) {
        let yaml = format!("cameras:\n  - id: cam\n    source: {source}\n");
        let config = Config::parse(&yaml, std::path::Path::new("test.yaml")).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let store = crate::overrides::OverrideStore::in_memory();
        let server = crate::app::start(config, listener, store).unwrap();
        (server, addr)
    }

    fn server_message(frame: &[u8]) -> server_message::Kind {
        let payload = wire::payload(&bytes::Bytes::copy_from_slice(frame));
        proto::ServerMessage::decode(payload).unwrap().kind.unwrap()
    }

    #[actix_rt::test]
    async fn a_client_receives_each_frames_shared_websocket_frame_byte_for_byte_after_the_answer() {
        let (server, addr) = start("{kind: synthetic, width: 320, height: 240, fps: 20}");
        let hub = server.stopper.hub.clone();
        actix_rt::spawn(server.http);
        let camera = CameraId::parse("cam").unwrap();

        let mut client = RawClient::open(addr).await;
        let hello = client.frame().await;
        assert!(matches!(
            server_message(&hello),
            server_message::Kind::Hello(_)
        ));
        client
            .send(client_message::Kind::Subscribe(proto::Subscribe {
                camera_ids: vec!["cam".into()],
                request_id: 7,
                send_frames: true,
                ..Default::default()
            }))
            .await;
        // The answer comes before the first frame; status may come between.
        let mut answered = false;
        let mut own = hub
            .send(Watch {
                camera: camera.clone(),
                kind: ViewerKind::Snapshot,
                client: None,
            })
            .await
            .unwrap()
            .unwrap();
        let (mut compared, mut frames) = (0, 0);
        while compared < 3 {
            assert!(
                frames < 200,
                "only {compared} of {frames} frames were still the newest"
            );
            let got = client.frame().await;
            match server_message(&got) {
                server_message::Kind::CommandResult(r) if r.request_id == 7 => {
                    assert!(r.ok, "{}", r.error);
                    answered = true;
                }
                server_message::Kind::Frame(f) => {
                    frames += 1;
                    assert!(answered, "frame {} came before the answer", f.seq);
                    // The newest frame in the slot is the one just sent, or newer.
                    let newest = own.watch.borrow_and_update().clone().unwrap();
                    if newest.seq == f.seq {
                        let shared = wire::frame(&camera, &newest);
                        assert!(got == shared, "frame {} differs from the shared one", f.seq);
                        compared += 1;
                    }
                }
                _ => {}
            }
        }
        server.stopper.handle.stop(false).await;
    }

    #[actix_rt::test]
    async fn a_client_that_reads_slowly_gets_whole_frames_the_newest_after_each_pause_and_its_answers(
    ) {
        const FPS: u64 = 20;
        let (server, addr) = start(&format!(
            "{{kind: synthetic, width: 640, height: 480, fps: {FPS}, pattern: noise, prerender: {FPS}}}"
        ));
        actix_rt::spawn(server.http);
        // A tiny receive buffer: no frame fits, so every one is written in pieces as the
        // client reads, and the camera's next frames find the socket busy.
        let mut client = RawClient::open_with(addr, Some(4096)).await;
        client
            .send(client_message::Kind::Subscribe(proto::Subscribe {
                camera_ids: vec!["cam".into()],
                request_id: 1,
                send_frames: true,
                ..Default::default()
            }))
            .await;
        let mut seqs = Vec::new();
        let (mut asked, mut answered) = (0, 0);
        while seqs.len() < 4 || answered < asked {
            // Whole messages, each decoded: nothing else was written inside a frame.
            match server_message(&client.frame().await) {
                server_message::Kind::Frame(f) if seqs.len() < 4 => {
                    assert!(f.jpeg.starts_with(&[0xff, 0xd8]) && f.jpeg.ends_with(&[0xff, 0xd9]));
                    seqs.push(f.seq);
                    // The reader pauses for a second, then asks for the cameras.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    client
                        .send(client_message::Kind::ListCameras(proto::ListCameras {}))
                        .await;
                    asked += 1;
                }
                server_message::Kind::CameraList(list) => {
                    assert_eq!(list.cameras.len(), 1);
                    answered += 1;
                }
                _ => {}
            }
        }
        // The frame after a pause is the newest one then, or the one that was being
        // written when the pause began: never one from a backlog.
        let late_gap = seqs[3] - seqs[2];
        assert!(late_gap >= FPS / 2, "frames came from a backlog: {seqs:?}");
        server.stopper.handle.stop(false).await;
    }
}
