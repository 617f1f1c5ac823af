//! camfleet supervises a fleet of USB cameras on one Linux host and serves them live.
//!
//! # The map
//!
//! ```text
//!             cameras.yaml ──config──▶ Config (validated once, at the edge)
//!                                         │
//!   ┌──────────── SyncArbiter threads ────▼─────────────┐      ┌──── HTTP workers ──────────┐
//!   │ CameraActor ── owns ──▶ Box<dyn Device>            │      │ WsSession (one per client, │
//!   │   │ Capture (to itself, after every step)          │      │  /ws, protobuf)            │
//!   │   │ frames, or NO SIGNAL ──▶ frame slot ───────────┼──────┼──▶ FrameFeed per viewer:   │
//!   │   │   (watch<Option<Frame>>, kept by the hub)      │      │    WebSocket, MJPEG stream,│
//!   │   └ StatusUpdate ─────────────┐                    │      │    snapshot, stream.mp4,   │
//!   │                               │                    │      │    RTSP (own listener)     │
//!   └───────────────────────────────┼────────────────────┘      └──▲──────────┬─────────────┘
//!                                   ▼                              │          │
//!    OverrideStore ◀── owns ─────  Hub ── SessionEvent (try_send) ─┘          │
//!    (writer thread: controls.json) ▲ ◀── Connect/Subscribe/SetControl/... ───┤
//!                                   ▲ ◀── Watch ─▶ Viewer (MJPEG, snapshot) ──┘
//!                                   └──── SetControl/GetControls/ViewerCount ──▶ CameraActor
//! ```
//!
//! ## Who owns what
//! - **[`camera::actor::CameraActor`]** runs on its own `SyncArbiter` thread and alone owns
//!   its device. It captures with a bounded wait ([`camera::actor::CAPTURE_WAIT`]) and sends
//!   itself the next `Capture`, so commands queued meanwhile are served between frames.
//!   Failures, panics included, become the Reconnecting state with a reason and a backoff,
//!   and its frame slot gets the NO SIGNAL picture with that reason.
//! - **[`hub::Hub`]** alone owns the registry: each camera's address, latest status and frame
//!   slot, each session's subscriptions, each viewer, and the control overrides
//!   ([`overrides::OverrideStore`], `controls.json`). It routes commands to cameras and
//!   answers the asking session only. It never waits on a session: events go with
//!   `try_send` into each session's bounded mailbox, and what does not fit is dropped and
//!   counted. A session hears each camera's status at most once per [`STATUS_GAP`] (newer
//!   ones replace a held one; a change of state goes at once), so a burst of changes costs
//!   it one message.
//! - **[`http::ws::WsSession`]** is one client's WebSocket. It registers with the hub when it
//!   starts (`Connect`) and unregisters when it stops (`Disconnect`). It owns its client's
//!   rights ([`auth::Access`]): it refuses commands its role does not allow, and hides the
//!   cameras its account may not see.
//!
//! ## Who may do what
//! Every request passes [`http::check_host`] first (the `Host` must name this server, which
//! stops DNS rebinding). [`http::caller`] reads who is asking (a Bearer token, HTTP Basic,
//! or the dashboard's signed cookie) and checks it against [`auth::Auth`], which the hub
//! publishes on a `watch` channel and replaces on reload. Wrong passwords are slowed per
//! address by one small actor, the [`http::caller::Gate`]; argon2 runs on the blocking pool.
//! HTTPS ([`tls`]) serves whichever certificate the daemon last read, also through a
//! `watch` channel, so a reload swaps it without touching a camera. The socket is served by
//! [`http::listener`], HTTP/1.1 only; on an HTTPS port it answers plain HTTP with a
//! redirect to `https://`.
//!
//! ## Many hosts
//! [`mqtt::MqttLink`] joins an MQTT broker. To the hub it is one more session: it sees
//! every camera's status and sends `SetControl`/`ResetControls` as the account
//! `mqtt.account` names. It alone owns what it knows of the other hosts on the broker
//! (their status, camera states and thumbnails), which `/api/fleet` asks it for. A task
//! beside it drives the connection; the link's state is published on a `watch` channel
//! for `/api/host` and `/metrics`. Video never goes through the broker.
//!
//! ## How frames reach viewers
//! Frames never pass through a mailbox. Each camera publishes its newest JPEG into its
//! frame slot ([`camera::frame`]); every viewer reads the slot through its own
//! [`http::feed::FrameFeed`], which always takes the newest frame, at most at the viewer's
//! rate, and counts what it skipped. A viewer is registered with the hub first:
//! - **MJPEG and snapshots:** the handler sends the hub `Watch { camera, kind }`; the hub
//!   checks the stream limits, counts the viewer and answers with a [`hub::Viewer`] (the
//!   slot's reading end and the viewer's counters). Dropping the `Viewer` sends `Unwatch`.
//! - **WebSocket:** `Subscribe { send_frames: true }` registers one `Viewer` per camera for
//!   the session, which feeds each into its connection.
//! - **On-demand cameras:** whenever a camera's count of viewers changes, the hub sends it
//!   `ViewerCount`. The first viewer moves an Idle camera to Opening; once it has been
//!   unwatched for its `idle_timeout`, it closes its device and goes Idle again.
//!
//! What is made from a frame for viewers is made once, by the first viewer that needs it,
//! and kept with the frame for the others ([`camera::frame::Frame`]): its WebSocket message
//! (as a whole WebSocket frame), its MJPEG part (with its chunk framing), and each preview
//! width's JPEG, part and message. On a plain TCP connection these shared bytes go
//! straight to the socket ([`http::direct`]): once actix-http has written the response
//! head, actix-http writes nothing more, and each part goes out with one `send` and no
//! copy per viewer. A viewer that takes every frame joins its camera's fan-out on its
//! worker thread ([`http::fanout`]): one task per camera and thread writes each frame to
//! all of them in turn, so no task runs per viewer and frame. A capped or preview viewer's
//! body pulls its own frames; a WebSocket session hands its messages, in order, to its
//! body to write. Bytes a socket does not take at once wait in its writer, and the viewer
//! skips frames until they are written. Over HTTPS everything goes through actix-http. A
//! raw frame is encoded on the camera's thread, or, once that is slower than
//! the camera's rate, by the camera's [`camera::encode_pool::EncodePool`]: encoder threads
//! whose JPEGs one publisher thread puts in the slot in capture order.
//!
//! An H.264 camera's frames are access units, passed through untouched. Each frame holds
//! the one before it back to its GOP's keyframe ([`camera::frame::H264Frame`]), so a feed
//! gives an H.264 viewer every frame of the newest GOP in order and starts a new or slow
//! one at its keyframe ([`camera::frame::Frame::following`]); nothing older is kept. Its
//! viewers are the WebSocket, `stream.mp4` (`http::fmp4`) and the RTSP server
//! ([`rtsp`], its own listener), which registers each client with the hub by `Watch`, as
//! MJPEG does, and so shares the accounts and the stream limits. MJPEG viewers and
//! snapshots of an H.264 camera get each keyframe's picture, decoded once per keyframe.
//!
//! ## Control overrides
//! A control value set while running is an *override*: the camera applies it after the
//! configured value on every open. The camera keeps its list; the hub owns the saved copy,
//! the [`overrides::OverrideStore`]. Once the camera has applied a change (numbered in the
//! order it applied them, so a late answer never undoes a later change), the hub updates
//! the store, whose writer thread writes `controls.json` (a burst of changes in one write)
//! and answers; only then does the client hear `ok`, or `NOT_SAVED` if the write failed.
//! `ResetControls` drops a camera's overrides once the camera has gone back.
//!
//! ## Stopping
//! [`app::Stopper::stop`] stops in ownership order: stop accepting connections; close every
//! WebSocket (1001); end every MJPEG stream; stop every camera, releasing its device; then
//! close what connections remain.
//!
//! ## Edges
//! - **Hardware code knows nothing of actix**: [`camera::source`] defines the `Opener` and
//!   `Device` traits, the V4L2 source and the synthetic source; [`camera::control`] checks
//!   control values.
//! - **Parsing happens at the edges, once**: YAML in [`config`], protobuf in [`http::wire`].
//! - **Media formats are plain code**: [`camera::h264`] reads H.264 access units (keyframes,
//!   parameter sets, the GOP a viewer starts from) without decoding them; [`mp4`] wraps them
//!   in fragmented MP4 and [`rtp`] in RTP packets, untouched.
//! - **Errors carry a code** ([`hub::ErrorCode`], mapped from [`hub::CommandError`] in one
//!   place); the wire sends it in `CommandResult` and `Error`, HTTP turns it into a status
//!   ([`http::error::ApiError`]).

pub mod app;
pub mod auth;
pub mod camera;
pub mod client;
pub mod config;
pub mod daemon;
pub mod devices;
pub(crate) mod http;
pub(crate) mod hub;
pub mod mp4;
pub mod mqtt;
pub mod overrides;
pub mod rtp;
pub(crate) mod rtsp;
pub(crate) mod shutdown;
pub(crate) mod stats;
pub mod tls;

/// The parsers that take bytes from clients, for the fuzz targets in `fuzz/` (built with
/// `--cfg fuzzing`).
#[cfg(fuzzing)]
pub mod fuzzing {
    use crate::http::frame_guard::FrameGuard;

    /// Decodes `bytes` as the WebSocket session decodes a client's message.
    pub fn client_message(bytes: &[u8]) {
        let _ = crate::http::wire::decode(bytes);
    }

    /// Follows WebSocket frames through `chunks` as the frame guard does ahead of actix,
    /// with a largest message of `max` bytes.
    pub fn frames<'a>(max: u32, chunks: impl IntoIterator<Item = &'a [u8]>) {
        let mut guard = FrameGuard::new((), max, std::rc::Rc::default());
        let _ = guard.check_chunks(chunks);
    }

    /// Reads the messages at the start of `bytes` as the RTSP server reads a client's
    /// connection, with each request's camera and transport; panics if a message claims
    /// more bytes than there are.
    pub fn rtsp(bytes: &[u8]) {
        use crate::rtsp::request::{parse, transport, Message};
        let mut rest = bytes;
        while let Ok(Some(message)) = parse(rest) {
            let len = match message {
                Message::Request { request, len } => {
                    let _ = request.camera();
                    if let Some(t) = request.header("Transport") {
                        let _ = transport(t);
                    }
                    len
                }
                Message::Interleaved { len } => len,
            };
            assert!(
                len > 0 && len <= rest.len(),
                "a message of {len} bytes in {}",
                rest.len()
            );
            rest = &rest[len..];
        }
    }
}

/// Limits and timeouts of the design that clients and tests derive their bounds from.
pub use http::ws::{
    CLIENT_TIMEOUT, COMMANDS_PER_SECOND, COMMAND_BURST, HEARTBEAT_INTERVAL, MAX_IN_FLIGHT,
};
pub use hub::{CAMERA_STOP_TIMEOUT, COMMAND_TIMEOUT, HEALTH_TIMEOUT, STATUS_GAP};

/// The wire contract, generated from `proto/camfleet/v1/camfleet.proto`.
#[allow(missing_docs, clippy::large_enum_variant, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/camfleet.v1.rs"));
}
