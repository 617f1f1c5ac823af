//! The hub actor: sole owner of the registry of cameras, client sessions and viewers, and
//! of the control overrides saved for restarts.
//!
//! Cameras send it their status; it keeps the latest status of each and fans it out to the
//! sessions subscribed to that camera. Sessions send it commands; it routes each to the
//! camera and hands the answer back to the asking session only. The hub never waits on a
//! session: it offers each status with `try_send` into the session's bounded mailbox, and
//! what does not fit is dropped and counted for that session.
//!
//! It also starts and stops the cameras: at start, on a configuration reload (only the
//! cameras whose settings changed) and at shutdown.

mod error;
mod messages;
mod routing;
mod sessions;
pub use sessions::STATUS_GAP;
mod viewers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tracing::{info, warn};

use crate::camera::actor::{self, CameraActor, Timing};
use crate::camera::frame::{frame_slot, FramePublisher, FrameWatch};
use crate::camera::status::CameraStatus;
use crate::camera::CameraId;
use crate::config::{CameraConfig, ServerConfig};
use crate::overrides::OverrideStore;
use crate::stats::LatencyHistogram;
pub use error::{CommandError, ErrorCode};
pub use messages::*;
use sessions::SessionEntry;
pub use viewers::ListViewers;
use viewers::ViewerEntry;

/// Longest the hub waits for a camera to answer a command. A camera answers between two
/// capture steps, so this is far more than it needs.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often sessions are told how many of their events were dropped, if any were.
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `/healthz` waits for a camera to answer. A camera answers between two capture
/// steps, each at most [`crate::camera::actor::CAPTURE_WAIT`], so this is far more.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest shutdown waits for a camera to release its device.
pub const CAMERA_STOP_TIMEOUT: Duration = Duration::from_secs(1);

struct CameraEntry {
    config: CameraConfig,
    /// `None` for a disabled camera.
    addr: Option<Addr<CameraActor>>,
    /// Which start of this camera is current; statuses of earlier ones are ignored.
    generation: u64,
    status: Arc<CameraStatus>,
    /// The camera's frame slot, kept across restarts so viewers keep watching a
    /// restarted camera.
    slot: FramePublisher,
    /// A reading end of the slot, cloned for each viewer.
    watch: FrameWatch,
    latency: Arc<LatencyHistogram>,
    /// Viewers told to the camera last.
    viewers_told: usize,
}

impl CameraEntry {
    fn id(&self) -> &CameraId {
        &self.config.id
    }
}

/// The registry of cameras, sessions and viewers.
pub struct Hub {
    /// The server's settings; limits are updated on reload, the rest on restart.
    server: ServerConfig,
    configs: Vec<CameraConfig>,
    cameras: Vec<CameraEntry>,
    sessions: HashMap<SessionId, SessionEntry>,
    /// What the sessions that have left dropped and had replaced, for `/metrics`.
    ended_sessions: SessionMetrics,
    next_session: SessionId,
    viewers: HashMap<ViewerId, ViewerEntry>,
    next_viewer: ViewerId,
    next_generation: u64,
    /// Control overrides, saved across restarts.
    overrides: OverrideStore,
    /// The cameras' clock.
    timing: Timing,
    /// Where reloaded accounts go; HTTP handlers and sessions read them.
    auth: Option<tokio::sync::watch::Sender<Arc<crate::auth::Auth>>>,
}

impl Hub {
    /// A hub that starts these cameras when it starts, with the server's settings and the
    /// overrides saved by earlier runs.
    pub fn new(server: ServerConfig, cameras: Vec<CameraConfig>, overrides: OverrideStore) -> Self {
        Hub {
            server,
            configs: cameras,
            cameras: Vec::new(),
            sessions: HashMap::new(),
            ended_sessions: SessionMetrics::default(),
            next_session: 1,
            viewers: HashMap::new(),
            next_viewer: 1,
            next_generation: 1,
            overrides,
            timing: Timing::default(),
            auth: None,
        }
    }

    /// The same hub with its cameras on another clock (tests make recovery fast).
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Hands reloaded accounts to those who read `auth`.
    #[must_use]
    pub fn with_auth(mut self, auth: tokio::sync::watch::Sender<Arc<crate::auth::Auth>>) -> Self {
        self.auth = Some(auth);
        self
    }

    fn camera(&self, id: &CameraId) -> Result<&CameraEntry, CommandError> {
        self.cameras
            .iter()
            .find(|c| c.id() == id)
            .ok_or_else(|| self.unknown(id.as_str()))
    }

    fn unknown(&self, id: &str) -> CommandError {
        CommandError::UnknownCamera {
            id: id.to_string(),
            known: self
                .cameras
                .iter()
                .map(|c| c.id().as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Starts a camera's actor (if enabled) and returns its address and generation.
    fn launch(
        &mut self,
        cfg: &CameraConfig,
        slot: &FramePublisher,
        latency: &Arc<LatencyHistogram>,
        ctx: &mut Context<Self>,
    ) -> (Option<Addr<CameraActor>>, u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let addr = cfg.enabled.then(|| {
            actor::start(actor::CameraStart {
                config: cfg.clone(),
                hub: ctx.address().recipient(),
                slot: Arc::clone(slot),
                timing: self.timing,
                latency: Arc::clone(latency),
                overrides: self.overrides.for_camera(cfg.id.as_str()),
                generation,
            })
        });
        (addr, generation)
    }

    fn add_camera(&mut self, cfg: CameraConfig, ctx: &mut Context<Self>) {
        let (slot, watch) = frame_slot();
        let latency = Arc::new(LatencyHistogram::default());
        let (addr, generation) = self.launch(&cfg, &slot, &latency, ctx);
        self.cameras.push(CameraEntry {
            status: Arc::new(CameraStatus::initial(&cfg)),
            config: cfg,
            addr,
            generation,
            slot,
            watch,
            latency,
            viewers_told: 0,
        });
    }

    /// Every camera's latest status, in configuration order.
    fn fleet(&self) -> Vec<Arc<CameraStatus>> {
        self.cameras.iter().map(|c| Arc::clone(&c.status)).collect()
    }

    /// Tells every session something it must not miss (bypassing the queue limit: these
    /// are rare).
    fn tell_all(&self, event: &SessionEvent) {
        for session in self.sessions.values() {
            session.events.do_send(event.clone());
        }
    }
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The hub gets every camera's status; cameras report at most a few times a second.
        ctx.set_mailbox_capacity(1024);
        for cfg in std::mem::take(&mut self.configs) {
            self.add_camera(cfg, ctx);
        }
        // Statuses held back by STATUS_GAP go out within a fifth of it after their time.
        ctx.run_interval(STATUS_GAP / 5, |hub, _| {
            let now = std::time::Instant::now();
            for session in hub.sessions.values_mut() {
                session.release_held(now);
            }
        });
        ctx.run_interval(DROP_REPORT_INTERVAL, |hub, _| {
            for session in hub.sessions.values_mut() {
                if session.dropped != session.dropped_reported {
                    session.dropped_reported = session.dropped;
                    session.offer(SessionEvent::Dropped(session.dropped));
                }
            }
        });
    }
}

impl Handler<StatusUpdate> for Hub {
    type Result = ();

    fn handle(&mut self, update: StatusUpdate, _: &mut Context<Self>) {
        let status = update.status;
        let Some(entry) = self
            .cameras
            .iter_mut()
            .find(|c| c.config.id == status.id && c.generation == update.generation)
        else {
            return;
        };
        entry.status = Arc::clone(&status);
        let now = std::time::Instant::now();
        for session in self.sessions.values_mut() {
            if session.wants(&status.id) {
                session.offer_status(&status, now);
            }
        }
    }
}

impl Handler<ListCameras> for Hub {
    type Result = MessageResult<ListCameras>;

    fn handle(&mut self, _: ListCameras, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.fleet())
    }
}

impl Handler<DefaultCamera> for Hub {
    type Result = MessageResult<DefaultCamera>;

    fn handle(&mut self, _: DefaultCamera, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.server.default_camera.clone())
    }
}

impl Handler<KnownCamera> for Hub {
    type Result = Result<(), CommandError>;

    fn handle(&mut self, KnownCamera(id): KnownCamera, _: &mut Context<Self>) -> Self::Result {
        if self.cameras.iter().any(|c| *c.id() == id) {
            Ok(())
        } else {
            Err(self.unknown(id.as_str()))
        }
    }
}

impl Handler<Reload> for Hub {
    type Result = ();

    fn handle(&mut self, Reload(config): Reload, ctx: &mut Context<Self>) {
        let mut summary = ReloadSummary::default();
        let mut config = config;
        // The address may come from --listen; either way it is fixed while running.
        config.server.listen = self.server.listen;
        if config.server != self.server {
            warn!("server settings changed; they take effect when camfleet restarts");
        }
        // Removed cameras stop; their viewers see the frame slot close.
        let keep: Vec<&CameraId> = config.cameras.iter().map(|c| &c.id).collect();
        let (kept, removed): (Vec<_>, Vec<_>) = std::mem::take(&mut self.cameras)
            .into_iter()
            .partition(|c| keep.contains(&c.id()));
        self.cameras = kept;
        for entry in removed {
            if let Some(addr) = &entry.addr {
                addr.do_send(StopCamera);
            }
            summary.removed.push(entry.id().to_string());
        }
        let mut order = Vec::new();
        for cfg in config.cameras {
            order.push(cfg.id.clone());
            match self.cameras.iter().position(|c| c.config.id == cfg.id) {
                None => {
                    summary.added.push(cfg.id.to_string());
                    self.add_camera(cfg, ctx);
                }
                Some(i) if self.cameras[i].config == cfg => summary.unchanged += 1,
                Some(i) => {
                    summary.restarted.push(cfg.id.to_string());
                    if let Some(addr) = self.cameras[i].addr.take() {
                        addr.do_send(StopCamera);
                    }
                    let slot = Arc::clone(&self.cameras[i].slot);
                    let latency = Arc::clone(&self.cameras[i].latency);
                    let (addr, generation) = self.launch(&cfg, &slot, &latency, ctx);
                    let entry = &mut self.cameras[i];
                    entry.status = Arc::new(CameraStatus::initial(&cfg));
                    entry.config = cfg;
                    entry.addr = addr;
                    entry.generation = generation;
                    entry.viewers_told = 0;
                    let id = entry.config.id.clone();
                    self.tell_viewer_count(&id);
                }
            }
        }
        self.cameras
            .sort_by_key(|c| order.iter().position(|id| id == c.id()));
        self.viewers.retain(|_, v| order.contains(&v.camera));
        self.server.max_streams = config.server.max_streams;
        self.server.max_streams_per_camera = config.server.max_streams_per_camera;
        self.server.max_sessions = config.server.max_sessions;
        self.server.max_streams_per_client = config.server.max_streams_per_client;
        self.server.max_sessions_per_account = config.server.max_sessions_per_account;
        self.server
            .default_camera
            .clone_from(&config.server.default_camera);
        if let Some(auth) = &self.auth {
            auth.send_if_modified(|current| {
                let changed = **current != config.auth;
                if changed {
                    info!("accounts reloaded; they apply to new connections");
                    *current = Arc::new(config.auth.clone());
                }
                changed
            });
        }
        info!(
            added = ?summary.added,
            restarted = ?summary.restarted,
            removed = ?summary.removed,
            unchanged = summary.unchanged,
            "configuration reloaded"
        );
        if !(summary.added.is_empty() && summary.removed.is_empty() && summary.restarted.is_empty())
        {
            self.tell_all(&SessionEvent::Fleet(self.fleet()));
        }
    }
}

impl Handler<Broadcast> for Hub {
    type Result = ();

    fn handle(&mut self, Broadcast(text): Broadcast, _: &mut Context<Self>) {
        self.tell_all(&SessionEvent::AdminNotice(text));
    }
}

impl Handler<CloseSessions> for Hub {
    type Result = ();

    fn handle(&mut self, _: CloseSessions, _: &mut Context<Self>) {
        self.tell_all(&SessionEvent::Close);
    }
}

impl Handler<StopCameras> for Hub {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopCameras, _: &mut Context<Self>) -> Self::Result {
        let stops: Vec<_> = self
            .cameras
            .iter()
            .filter_map(|c| c.addr.clone())
            .map(|addr| addr.send(StopCamera).timeout(CAMERA_STOP_TIMEOUT))
            .collect();
        Box::pin(async move {
            futures_util::future::join_all(stops).await;
        })
    }
}

impl Handler<Metrics> for Hub {
    type Result = MessageResult<Metrics>;

    fn handle(&mut self, _: Metrics, _: &mut Context<Self>) -> Self::Result {
        let cameras = self
            .cameras
            .iter()
            .map(|c| CameraMetrics {
                status: Arc::clone(&c.status),
                latency: c.latency.snapshot(),
                viewers: ViewerKind::ALL
                    .into_iter()
                    .map(|kind| {
                        let n = self
                            .viewers
                            .values()
                            .filter(|v| v.camera == c.config.id && v.kind == kind)
                            .count();
                        (kind, n)
                    })
                    .collect(),
            })
            .collect();
        let mut sessions = self.ended_sessions;
        for s in self.sessions.values() {
            s.add_to(&mut sessions);
        }
        MessageResult(MetricsSnapshot {
            cameras,
            sessions,
            overrides_moved_aside: self.overrides.moved_aside().is_some(),
            overrides_write_failures: self.overrides.write_health().0,
            overrides_saving: self.overrides.write_health().1,
        })
    }
}

impl Handler<CheckHealth> for Hub {
    type Result = ResponseFuture<Vec<CameraId>>;

    fn handle(&mut self, _: CheckHealth, _: &mut Context<Self>) -> Self::Result {
        let pings: Vec<_> = self
            .cameras
            .iter()
            .filter_map(|c| c.addr.clone().map(|addr| (c.id().clone(), addr)))
            .map(|(id, addr)| async move {
                let answered = addr.send(Ping).timeout(HEALTH_TIMEOUT).await.is_ok();
                (id, answered)
            })
            .collect();
        Box::pin(async move {
            futures_util::future::join_all(pings)
                .await
                .into_iter()
                .filter(|(_, answered)| !answered)
                .map(|(id, _)| id)
                .collect()
        })
    }
}
