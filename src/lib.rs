//! camfleet supervises a fleet of USB cameras on one Linux host and serves them live.
//!
//! # The map
//!
//! ```text
//!             cameras.yaml ──config──▶ Config (validated once, at the edge)
//!                                         │
//!   ┌──────────── SyncArbiter threads ────▼─────────────┐      ┌──── HTTP workers ─────┐
//!   │ CameraActor ── owns ──▶ Box<dyn Device>            │      │ WsSession (one per    │
//!   │   │ Capture (to itself, after every step)          │      │  client, /ws, protobuf)│
//!   │   │ frames ──▶ frame slot (watch<Option<Frame>>) ──┼──────┼──▶ read by viewers    │
//!   │   └ StatusUpdate ─────────────┐                    │      │                       │
//!   └───────────────────────────────┼────────────────────┘      └──▲──────────┬─────────┘
//!                                   ▼                              │          │
//!                                  Hub ── SessionEvent (try_send) ─┘          │
//!                                   ▲ ◀── Connect/Subscribe/SetControl/... ───┘
//!                                   └──── SetControl/GetControls ──▶ CameraActor
//! ```
//!
//! - **[`camera::actor::CameraActor`]** runs on its own `SyncArbiter` thread and alone owns
//!   its device. It captures with a bounded wait ([`camera::actor::CAPTURE_WAIT`]) and sends
//!   itself the next `Capture`, so commands queued meanwhile are served between frames.
//!   Failures, panics included, become the Reconnecting state with a reason and a backoff.
//! - **[`hub::Hub`]** alone owns the registry: each camera's address, latest status and frame
//!   slot, and each session's subscriptions. It routes commands to cameras and answers the
//!   asking session only. It never waits on a session: events go with `try_send` into each
//!   session's bounded mailbox, and what does not fit is dropped and counted.
//! - **[`http::ws::WsSession`]** is one client's WebSocket. It registers with the hub when it
//!   starts and unregisters when it stops.
//! - **Frames never pass through a mailbox.** Each camera publishes its newest JPEG into a
//!   frame slot ([`camera::frame`]); viewers clone the shared `Bytes` and skip what they miss.
//! - **Hardware code knows nothing of actix**: [`camera::source`] defines the `Opener` and
//!   `Device` traits and the synthetic source; [`camera::control`] checks control values.
//! - **Parsing happens at the edges, once**: YAML in [`config`], protobuf in [`http::wire`].

pub mod camera;
pub mod config;
pub mod devices;
pub mod http;
pub mod hub;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod state;
pub mod stats;

/// The wire contract, generated from `proto/camfleet/v1/camfleet.proto`.
#[allow(missing_docs, clippy::large_enum_variant)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/camfleet.v1.rs"));
}
