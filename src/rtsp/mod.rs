//! The RTSP server of cameras that send H.264: `rtsp://HOST:8554/ID`, as NVRs (Frigate),
//! VLC and ffmpeg record an IP camera.
//!
//! Each connection is one task on the HTTP server's runtime. It answers `OPTIONS`,
//! `DESCRIBE` (an SDP with the camera's parameter sets), `SETUP` (RTP over the RTSP
//! connection, interleaved, or over UDP to the client's ports), `PLAY`, `GET_PARAMETER`
//! (a keep-alive) and `TEARDOWN`. Once playing, it reads the camera's frames through its
//! own [`FrameFeed`] like any other viewer, and sends each access unit untouched in RTP
//! packets ([`crate::rtp`]); a client that falls a GOP behind skips to the next keyframe.
//!
//! Access is the HTTP server's: the same accounts (HTTP Basic, as in
//! `rtsp://NAME:PASSWORD@HOST:8554/ID`), the same wait after wrong passwords, the same
//! cameras per account, and the same stream limits (an RTSP session counts as a stream).

pub mod request;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use base64::Engine as _;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpStream, UdpSocket};
use tracing::{info, warn};

use crate::auth::{Access, Auth, Role};
use crate::camera::h264::{nal, nal_type, nal_units, Clock};
use crate::camera::{CameraId, Frame};
use crate::http::error::ApiError;
use crate::http::feed::FrameFeed;
use crate::http::AppState;
use crate::hub::{CommandError, ErrorCode, Viewer, ViewerKind, Watch};
use crate::rtp::{sdp_media, Packetizer};
use request::{Message, Request, Transport};

/// How long `DESCRIBE` waits for a keyframe of a camera that is opening.
pub const DESCRIBE_WAIT: Duration = Duration::from_secs(5);
/// A client that takes longer than this to take one frame's packets is disconnected.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The session timeout the server announces; clients send a keep-alive within it.
pub const SESSION_TIMEOUT_SECS: u32 = 60;

/// Serves RTSP on `listener` until the server stops.
///
/// # Errors
/// When the listener cannot be handed to the runtime.
pub fn serve(listener: std::net::TcpListener, state: web::Data<AppState>) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    actix_web::rt::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        actix_web::rt::spawn(Connection::new(peer, state.clone()).run(socket));
                    }
                    Err(e) => {
                        // Out of file descriptors, most likely: wait rather than spin.
                        warn!("accepting an RTSP connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = shutdown.wait() => return,
            }
        }
    });
    Ok(())
}

/// What one RTSP connection has set up.
struct Connection {
    peer: SocketAddr,
    state: web::Data<AppState>,
    access: Option<Access>,
    session: String,
    /// The camera watched since `DESCRIBE` (or `SETUP`).
    viewer: Option<Viewer>,
    transport: Option<Delivery>,
    /// The RTP stream's source id, chosen at `SETUP`.
    ssrc: u32,
    playing: Option<Playing>,
}

/// Where the packets go.
enum Delivery {
    Tcp { channel: u8 },
    Udp { socket: UdpSocket, to: SocketAddr },
}

/// A session that plays.
struct Playing {
    feed: FrameFeed,
    packetizer: Packetizer,
    clock: Option<Clock>,
    /// Added to every timestamp, as RFC 3550 asks (a random start).
    offset: u32,
}

/// What a request is answered with.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn ok() -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    fn error(status: u16, why: impl Into<String>) -> Reply {
        let why = why.into();
        Reply {
            status,
            headers: vec![("Content-Type", "text/plain".into())],
            body: format!("{why}\r\n"),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        let status = match e.code {
            ErrorCode::UnknownCamera => 404,
            ErrorCode::NotSignedIn => 401,
            ErrorCode::NotPermitted => 403,
            // RTSP's own word for a server out of streams.
            ErrorCode::LimitReached => 453,
            ErrorCode::DeviceRefused => 415,
            ErrorCode::OutOfRange | ErrorCode::InvalidMessage => 400,
            _ => 503,
        };
        let reply = Reply::error(status, e.message);
        if status == 401 {
            reply.header("WWW-Authenticate", "Basic realm=\"camfleet\"")
        } else {
            reply
        }
    }
}

impl From<CommandError> for Reply {
    fn from(e: CommandError) -> Reply {
        ApiError::from(e).into()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        415 => "Unsupported Media Type",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        461 => "Unsupported Transport",
        501 => "Not Implemented",
        _ => "Service Unavailable",
    }
}

/// Random bits for session ids, SSRCs and first sequence numbers and timestamps.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Without randomness the ids are still unique per connection; they need not be secret.
    let _ = getrandom::getrandom(&mut bytes);
    u64::from_ne_bytes(bytes)
}

impl Connection {
    fn new(peer: SocketAddr, state: web::Data<AppState>) -> Connection {
        Connection {
            peer,
            state,
            access: None,
            session: format!("{:016X}", random_u64()),
            viewer: None,
            transport: None,
            ssrc: 0,
            playing: None,
        }
    }

    async fn run(mut self, socket: TcpStream) {
        let _ = socket.set_nodelay(true);
        let (mut rd, mut wr) = socket.into_split();
        let mut buf = BytesMut::with_capacity(4096);
        let mut shutdown = self.state.shutdown.clone();
        loop {
            let frame = if let Some(playing) = self.playing.as_mut() {
                tokio::select! {
                    read = rd.read_buf(&mut buf) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(_) => None,
                    },
                    frame = playing.feed.next() => match frame {
                        Some(frame) => Some(frame),
                        // The camera is gone for good.
                        None => return,
                    },
                    () = shutdown.wait() => return,
                }
            } else {
                tokio::select! {
                    read = rd.read_buf(&mut buf) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(_) => None,
                    },
                    () = shutdown.wait() => return,
                }
            };
            if let Some(frame) = frame {
                if self.send(&frame, &mut wr).await.is_err() {
                    return;
                }
                continue;
            }
            loop {
                let (request, len) = match request::parse(&buf) {
                    Ok(None) => break,
                    Ok(Some(Message::Interleaved { len })) => {
                        // The client's RTCP reports: nothing here needs them.
                        let _ = buf.split_to(len);
                        continue;
                    }
                    Ok(Some(Message::Request { request, len })) => (request, len),
                    Err(why) => {
                        warn!(client = %self.peer, "RTSP: {why}");
                        let reply = Reply::error(400, why);
                        let _ = wr.write_all(&self.encode(None, &reply)).await;
                        return;
                    }
                };
                let _ = buf.split_to(len);
                let teardown = request.method == "TEARDOWN";
                let reply = self.answer(&request).await;
                let bytes = self.encode(request.header("CSeq"), &reply);
                if wr.write_all(&bytes).await.is_err() || teardown {
                    return;
                }
            }
        }
    }

    /// The reply's bytes, with its sequence number and the session.
    fn encode(&self, cseq: Option<&str>, reply: &Reply) -> Vec<u8> {
        let mut out = format!("RTSP/1.0 {} {}\r\n", reply.status, reason(reply.status));
        if let Some(cseq) = cseq {
            let _ = write!(out, "CSeq: {cseq}\r\n");
        }
        out.push_str("Server: camfleet\r\n");
        if self.transport.is_some() {
            let _ = write!(
                out,
                "Session: {};timeout={SESSION_TIMEOUT_SECS}\r\n",
                self.session
            );
        }
        for (name, value) in &reply.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        if !reply.body.is_empty() {
            let _ = write!(out, "Content-Length: {}\r\n", reply.body.len());
        }
        out.push_str("\r\n");
        out.push_str(&reply.body);
        out.into_bytes()
    }

    async fn answer(&mut self, request: &Request) -> Reply {
        if request.method == "OPTIONS" {
            return Reply::ok().header(
                "Public",
                "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN",
            );
        }
        if let Err(reply) = self.sign_in(request).await {
            return reply;
        }
        let result = match request.method.as_str() {
            "DESCRIBE" => self.describe(request).await,
            "SETUP" => self.setup(request).await,
            "PLAY" => self.play(request),
            "GET_PARAMETER" | "SET_PARAMETER" | "TEARDOWN" => Ok(Reply::ok()),
            other => Err(Reply::error(
                501,
                format!("{other} is not served; this server plays H.264 cameras to RTSP clients"),
            )),
        };
        result.unwrap_or_else(|reply| reply)
    }

    /// Reads the client's credentials, once: HTTP Basic, checked as the HTTP server does.
    async fn sign_in(&mut self, request: &Request) -> Result<(), Reply> {
        if self.access.is_some() {
            return Ok(());
        }
        let auth: Arc<Auth> = self.state.auth.borrow().clone();
        if !auth.required() {
            self.access = auth.anonymous();
            return Ok(());
        }
        let basic = request
            .header("Authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok());
        let Some((name, password)) = basic.as_deref().and_then(|t| t.split_once(':')) else {
            return Err(Reply::from(ApiError::new(
                ErrorCode::NotSignedIn,
                "this camera needs an account; give it in the URL, as \
                 rtsp://NAME:PASSWORD@HOST:8554/CAMERA",
            )));
        };
        let access = crate::http::caller::sign_in(
            &self.state,
            Some(self.peer.ip()),
            name,
            password.to_string(),
        )
        .await?;
        if !access.may(Role::Viewer) {
            return Err(Reply::error(403, "this account may not watch cameras"));
        }
        self.access = Some(access);
        Ok(())
    }

    /// Watches the camera the URL names (once per connection).
    async fn watch(&mut self, request: &Request) -> Result<&mut Viewer, Reply> {
        let Some(id) = request.camera() else {
            return Err(Reply::error(
                404,
                "the URL names no camera; use rtsp://HOST:8554/CAMERA with a camera's id",
            ));
        };
        if let Some(viewer) = &self.viewer {
            if viewer.camera.as_str() != id {
                return Err(Reply::error(
                    455,
                    format!(
                        "this connection plays camera `{}`; open another for `{id}`",
                        viewer.camera
                    ),
                ));
            }
        } else {
            let access = self
                .access
                .as_ref()
                .ok_or_else(|| Reply::error(401, "not signed in"))?;
            crate::http::caller::visible(access, id)?;
            let camera = CameraId::parse(id).map_err(|why| CommandError::BadCameraId {
                id: id.to_string(),
                why,
            })?;
            let watch = Watch {
                camera,
                kind: ViewerKind::Rtsp,
                client: Some(self.peer.ip()),
            };
            let viewer = match self.state.hub.send(watch).await {
                Ok(answer) => answer?,
                Err(_) => return Err(ApiError::stopping().into()),
            };
            self.viewer = Some(viewer);
        }
        Ok(self.viewer.as_mut().expect("set just above"))
    }

    async fn describe(&mut self, request: &Request) -> Result<Reply, Reply> {
        let base = request.url.trim_end_matches('/').to_string();
        let viewer = self.watch(request).await?;
        let keyframe = tokio::time::timeout(DESCRIBE_WAIT, async {
            loop {
                let newest = viewer.watch.borrow_and_update().clone();
                match newest {
                    Some(f) if f.h264.is_some() => return Ok(f.keyframe()),
                    Some(f) if f.no_signal.is_none() => return Err(()),
                    _ => {}
                }
                if viewer.watch.changed().await.is_err() {
                    return Err(());
                }
            }
        })
        .await;
        let camera = viewer.camera.clone();
        let keyframe = match keyframe {
            Ok(Ok(k)) => k,
            Ok(Err(())) => {
                return Err(Reply::error(
                    415,
                    format!(
                        "camera `{camera}` sends JPEG, not H.264, so it has no RTSP stream; watch \
                         it at /cameras/{camera}/stream.mjpg on the HTTP port"
                    ),
                ))
            }
            Err(_) => {
                return Err(Reply::error(
                    503,
                    format!(
                        "camera `{camera}` sent no keyframe within {} s; it is {}",
                        DESCRIBE_WAIT.as_secs(),
                        viewer.status.state
                    ),
                ))
            }
        };
        let h264 = keyframe.h264.as_ref().expect("an H.264 frame");
        let find = |kind| nal_units(&h264.access_unit).find(|u| nal_type(u) == Some(kind));
        let (Some(sps), Some(pps)) = (find(nal::SPS), find(nal::PPS)) else {
            return Err(Reply::error(
                503,
                "the camera's keyframe has no parameter sets",
            ));
        };
        let sdp = format!(
            "v=0\r\no=- {} 1 IN IP4 0.0.0.0\r\ns={camera}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
             a=control:*\r\n{}",
            random_u64() >> 1,
            sdp_media(sps, pps, 0, Some("trackID=0"))
        );
        Ok(Reply {
            status: 200,
            headers: vec![
                ("Content-Type", "application/sdp".into()),
                ("Content-Base", format!("{base}/")),
            ],
            body: sdp,
        })
    }

    async fn setup(&mut self, request: &Request) -> Result<Reply, Reply> {
        self.watch(request).await?;
        let asked = request.header("Transport").unwrap_or_default();
        let Some(transport) = request::transport(asked) else {
            return Err(Reply::error(
                461,
                format!(
                    "`{asked}` offers no transport this server serves: RTP/AVP/TCP (interleaved) \
                     or RTP/AVP over UDP with client_port"
                ),
            ));
        };
        let ssrc = random_u64() as u32;
        let (delivery, answer) = match transport {
            Transport::Tcp { channel } => (
                Delivery::Tcp { channel },
                format!(
                    "RTP/AVP/TCP;unicast;interleaved={channel}-{};ssrc={ssrc:08X}",
                    channel.wrapping_add(1)
                ),
            ),
            Transport::Udp { rtp, rtcp } => {
                let local = SocketAddr::new(
                    if self.peer.is_ipv4() {
                        std::net::Ipv4Addr::UNSPECIFIED.into()
                    } else {
                        std::net::Ipv6Addr::UNSPECIFIED.into()
                    },
                    0,
                );
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| Reply::error(503, format!("no UDP port for RTP: {e}")))?;
                let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
                (
                    Delivery::Udp {
                        socket,
                        to: SocketAddr::new(self.peer.ip(), rtp),
                    },
                    format!(
                        "RTP/AVP;unicast;client_port={rtp}-{rtcp};server_port={port}-{};ssrc={ssrc:08X}",
                        port.wrapping_add(1)
                    ),
                )
            }
        };
        self.transport = Some(delivery);
        self.playing = None;
        self.ssrc = ssrc;
        Ok(Reply::ok().header("Transport", answer))
    }

    fn play(&mut self, request: &Request) -> Result<Reply, Reply> {
        if self.transport.is_none() {
            return Err(Reply::error(455, "SETUP comes before PLAY"));
        }
        if self.playing.is_none() {
            let viewer = self
                .viewer
                .take()
                .ok_or_else(|| Reply::error(455, "SETUP comes before PLAY"))?;
            let sequence = random_u64() as u16;
            self.playing = Some(Playing {
                feed: FrameFeed::new(viewer, None),
                packetizer: Packetizer::new(self.ssrc, sequence),
                clock: None,
                offset: random_u64() as u32,
            });
            info!(client = %self.peer, "RTSP client plays");
        }
        let playing = self.playing.as_ref().expect("set just above");
        let base = request.url.trim_end_matches('/');
        Ok(Reply::ok().header("Range", "npt=0.000-").header(
            "RTP-Info",
            format!(
                "url={base}/trackID=0;seq={};rtptime={}",
                playing.packetizer.next_sequence(),
                playing.offset
            ),
        ))
    }

    /// Sends one frame's packets.
    async fn send(&mut self, frame: &Frame, wr: &mut OwnedWriteHalf) -> std::io::Result<()> {
        let (Some(playing), Some(delivery), Some(h264)) = (
            self.playing.as_mut(),
            self.transport.as_ref(),
            frame.h264.as_ref(),
        ) else {
            return Ok(());
        };
        let clock = playing.clock.get_or_insert_with(|| Clock::new(h264.fps));
        let ticks = clock.ticks(frame.captured_at) as u32;
        let timestamp = playing.offset.wrapping_add(ticks);
        let packets = playing.packetizer.packetize(&h264.access_unit, timestamp);
        let mut sent = 0;
        match delivery {
            Delivery::Tcp { channel } => {
                let mut out = Vec::with_capacity(h264.access_unit.len() + packets.len() * 16);
                for p in &packets {
                    out.extend_from_slice(&[b'$', *channel]);
                    out.extend_from_slice(
                        &u16::try_from(p.len()).unwrap_or(u16::MAX).to_be_bytes(),
                    );
                    out.extend_from_slice(p);
                }
                sent = out.len();
                tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&out))
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            }
            Delivery::Udp { socket, to } => {
                for p in &packets {
                    // A datagram the network drops is lost; RTP clients expect that.
                    if socket.send_to(p, *to).await.is_ok() {
                        sent += p.len();
                    }
                }
            }
        }
        playing.feed.sent(frame, sent);
        Ok(())
    }
}
