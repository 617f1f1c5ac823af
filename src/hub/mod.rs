//! The hub actor: sole owner of the registry of cameras and client sessions.
//!
//! Cameras send it their status; it keeps the latest status of each and fans it out to
//! the sessions subscribed to that camera. Sessions send it commands; it routes each to
//! the camera and hands the answer back to the asking session only. The hub never waits
//! on a session: it offers each event with `try_send` into the session's bounded mailbox,
//! and an event that does not fit is dropped and counted for that session.

mod messages;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tracing::debug;

use crate::camera::actor::{self, CameraActor};
use crate::camera::frame::{frame_slot, FrameWatch};
use crate::camera::status::CameraStatus;
use crate::camera::CameraId;
use crate::config::{CameraConfig, ServerConfig};
use crate::stats::{LatencyHistogram, ViewerCounters};
pub use messages::*;

/// Longest the hub waits for a camera to answer a command. A camera answers between two
/// capture steps, so this is far more than it needs.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often sessions are told how many of their events were dropped, if any were.
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(1);

struct CameraEntry {
    id: CameraId,
    /// `None` for a disabled camera.
    addr: Option<Addr<CameraActor>>,
    status: Arc<CameraStatus>,
    frames: FrameWatch,
    latency: Arc<LatencyHistogram>,
    /// Viewers told to the camera last.
    viewers_told: usize,
}

struct ViewerEntry {
    camera: CameraId,
    kind: ViewerKind,
    counters: Arc<ViewerCounters>,
    since: std::time::SystemTime,
}

/// One viewer, as `/api/viewers` lists it.
#[derive(Debug, Clone)]
pub struct ViewerInfo {
    /// The viewer's id.
    pub id: ViewerId,
    /// The camera watched.
    pub camera: CameraId,
    /// How it is watched.
    pub kind: ViewerKind,
    /// When watching began.
    pub since: std::time::SystemTime,
    /// Frames sent.
    pub sent: u64,
    /// Frames skipped because the viewer was behind.
    pub skipped: u64,
    /// JPEG bytes sent.
    pub bytes: u64,
}

/// Asks for every viewer.
#[derive(Message)]
#[rtype(result = "Vec<ViewerInfo>")]
pub struct ListViewers;

struct SessionEntry {
    events: Recipient<SessionEvent>,
    all_cameras: bool,
    cameras: HashSet<CameraId>,
    dropped: u64,
    dropped_reported: u64,
}

impl SessionEntry {
    fn wants(&self, camera: &CameraId) -> bool {
        self.all_cameras || self.cameras.contains(camera)
    }

    /// Offers an event without waiting; a full mailbox drops it and counts the drop.
    fn offer(&mut self, event: SessionEvent) {
        if let Err(SendError::Full(_)) = self.events.try_send(event) {
            self.dropped += 1;
        }
    }
}

/// The registry of cameras, sessions and viewers.
pub struct Hub {
    limits: ServerConfig,
    configs: Vec<CameraConfig>,
    cameras: Vec<CameraEntry>,
    sessions: HashMap<SessionId, SessionEntry>,
    next_session: SessionId,
    viewers: HashMap<ViewerId, ViewerEntry>,
    next_viewer: ViewerId,
}

impl Hub {
    /// A hub that starts these cameras when it starts, with the server's limits.
    pub fn new(limits: ServerConfig, cameras: Vec<CameraConfig>) -> Self {
        Hub {
            limits,
            configs: cameras,
            cameras: Vec::new(),
            sessions: HashMap::new(),
            next_session: 1,
            viewers: HashMap::new(),
            next_viewer: 1,
        }
    }

    /// Registers a viewer of `camera`, within the stream limits for MJPEG.
    fn watch(
        &mut self,
        camera: &CameraId,
        kind: ViewerKind,
        ctx: &mut Context<Self>,
    ) -> Result<Viewer, CommandError> {
        let entry = self.camera(camera)?;
        if kind == ViewerKind::Mjpeg {
            let mjpeg = |v: &&ViewerEntry| v.kind == ViewerKind::Mjpeg;
            let all = self.viewers.values().filter(mjpeg).count();
            let here = self
                .viewers
                .values()
                .filter(mjpeg)
                .filter(|v| v.camera == *camera)
                .count();
            if here >= self.limits.max_streams_per_camera as usize {
                return Err(CommandError::TooMany(format!(
                    "camera `{camera}` already serves {here} MJPEG streams, its limit \
                     (server.max_streams_per_camera); close one or raise the limit"
                )));
            }
            if all >= self.limits.max_streams as usize {
                return Err(CommandError::TooMany(format!(
                    "the server already serves {all} MJPEG streams, its limit \
                     (server.max_streams); close one or raise the limit"
                )));
            }
        }
        let (frames, latency, status) = (
            entry.frames.clone(),
            Arc::clone(&entry.latency),
            Arc::clone(&entry.status),
        );
        let id = self.next_viewer;
        self.next_viewer += 1;
        let hub = ctx.address().recipient();
        let viewer = Viewer::new(id, hub, camera.clone(), frames, latency, status);
        self.viewers.insert(
            id,
            ViewerEntry {
                camera: camera.clone(),
                kind,
                counters: Arc::clone(&viewer.counters),
                since: std::time::SystemTime::now(),
            },
        );
        self.tell_viewer_count(camera);
        Ok(viewer)
    }

    /// Tells a camera its number of viewers when it changed.
    fn tell_viewer_count(&mut self, camera: &CameraId) {
        let n = self
            .viewers
            .values()
            .filter(|v| v.camera == *camera)
            .count();
        if let Some(entry) = self.cameras.iter_mut().find(|c| c.id == *camera) {
            if entry.viewers_told != n {
                entry.viewers_told = n;
                if let Some(addr) = &entry.addr {
                    addr.do_send(ViewerCount(n));
                }
            }
        }
    }

    fn camera(&self, id: &CameraId) -> Result<&CameraEntry, CommandError> {
        self.cameras
            .iter()
            .find(|c| c.id == *id)
            .ok_or_else(|| self.unknown(id.as_str()))
    }

    fn unknown(&self, id: &str) -> CommandError {
        CommandError::UnknownCamera {
            id: id.to_string(),
            known: self
                .cameras
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn check_known(&self, ids: &[CameraId]) -> Result<(), CommandError> {
        ids.iter().try_for_each(|id| self.camera(id).map(|_| ()))
    }

    /// Sends a command to a camera and hands back its answer, without blocking the hub.
    fn route<M, T>(&self, camera: &CameraId, msg: M) -> ResponseFuture<Result<T, CommandError>>
    where
        M: Message<Result = Result<T, CommandError>> + Send + 'static,
        T: Send + 'static,
        CameraActor: Handler<M>,
    {
        let addr = match self.camera(camera) {
            Ok(entry) => entry.addr.clone(),
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let camera = camera.clone();
        Box::pin(async move {
            let Some(addr) = addr else {
                return Err(CommandError::NotRunning(camera));
            };
            match addr.send(msg).timeout(COMMAND_TIMEOUT).await {
                Ok(answer) => answer,
                Err(MailboxError::Timeout) => {
                    Err(CommandError::Timeout(camera, COMMAND_TIMEOUT.as_secs()))
                }
                Err(MailboxError::Closed) => Err(CommandError::NotRunning(camera)),
            }
        })
    }
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The hub gets every camera's status; cameras report at most a few times a second.
        ctx.set_mailbox_capacity(1024);
        for cfg in std::mem::take(&mut self.configs) {
            let (publisher, frames) = frame_slot();
            let latency = Arc::new(LatencyHistogram::default());
            let status = CameraStatus::initial(&cfg);
            let addr = cfg.enabled.then(|| {
                let hub = ctx.address().recipient();
                actor::start(cfg.clone(), hub, publisher, Arc::clone(&latency))
            });
            self.cameras.push(CameraEntry {
                id: cfg.id,
                addr,
                status: Arc::new(status),
                frames,
                latency,
                viewers_told: 0,
            });
        }
        ctx.run_interval(DROP_REPORT_INTERVAL, |hub, _| {
            for session in hub.sessions.values_mut() {
                if session.dropped != session.dropped_reported {
                    session.dropped_reported = session.dropped;
                    session.offer(SessionEvent::Dropped(session.dropped));
                }
            }
        });
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        for camera in &self.cameras {
            if let Some(addr) = &camera.addr {
                addr.do_send(StopCamera);
            }
        }
        Running::Stop
    }
}

impl Handler<StatusUpdate> for Hub {
    type Result = ();

    fn handle(&mut self, StatusUpdate(status): StatusUpdate, _: &mut Context<Self>) {
        let Some(entry) = self.cameras.iter_mut().find(|c| c.id == status.id) else {
            return;
        };
        entry.status = Arc::clone(&status);
        for session in self.sessions.values_mut() {
            if session.wants(&status.id) {
                session.offer(SessionEvent::Status(Arc::clone(&status)));
            }
        }
    }
}

impl Handler<Connect> for Hub {
    type Result = Result<SessionId, CommandError>;

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) -> Self::Result {
        if self.sessions.len() >= self.limits.max_sessions as usize {
            return Err(CommandError::TooMany(format!(
                "the server already has {} WebSocket clients, its limit (server.max_sessions); \
                 close another client or raise the limit",
                self.sessions.len()
            )));
        }
        let id = self.next_session;
        self.next_session += 1;
        self.sessions.insert(
            id,
            SessionEntry {
                events: msg.events,
                all_cameras: false,
                cameras: HashSet::new(),
                dropped: 0,
                dropped_reported: 0,
            },
        );
        debug!(session = id, "session connected");
        Ok(id)
    }
}

impl Handler<Disconnect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        self.sessions.remove(&msg.session);
        debug!(session = msg.session, "session disconnected");
    }
}

impl Handler<Subscribe> for Hub {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_known(&msg.cameras) {
            return MessageResult(Err(e));
        }
        let targets: Vec<CameraId> = if msg.cameras.is_empty() {
            self.cameras.iter().map(|c| c.id.clone()).collect()
        } else {
            msg.cameras.clone()
        };
        let mut viewers = Vec::new();
        if msg.frames {
            for camera in &targets {
                match self.watch(camera, ViewerKind::WebSocket, ctx) {
                    Ok(v) => viewers.push(v),
                    Err(e) => return MessageResult(Err(e)),
                }
            }
        }
        let Some(session) = self.sessions.get_mut(&msg.session) else {
            return MessageResult(Ok(Vec::new()));
        };
        if msg.cameras.is_empty() {
            session.all_cameras = true;
        } else {
            session.cameras.extend(msg.cameras);
        }
        // A new subscriber hears every camera's current state at once.
        for camera in &self.cameras {
            if session.wants(&camera.id) {
                session.offer(SessionEvent::Status(Arc::clone(&camera.status)));
            }
        }
        MessageResult(Ok(viewers))
    }
}

impl Handler<Unsubscribe> for Hub {
    type Result = Result<(), CommandError>;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) -> Self::Result {
        self.check_known(&msg.cameras)?;
        let all: Vec<CameraId> = self.cameras.iter().map(|c| c.id.clone()).collect();
        let Some(session) = self.sessions.get_mut(&msg.session) else {
            return Ok(());
        };
        if msg.cameras.is_empty() {
            session.all_cameras = false;
            session.cameras.clear();
        } else {
            if session.all_cameras {
                // "All but these": turn the wildcard into the explicit rest.
                session.all_cameras = false;
                session.cameras = all.into_iter().collect();
            }
            for id in &msg.cameras {
                session.cameras.remove(id);
            }
        }
        Ok(())
    }
}

impl Handler<ListCameras> for Hub {
    type Result = MessageResult<ListCameras>;

    fn handle(&mut self, _: ListCameras, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.cameras.iter().map(|c| Arc::clone(&c.status)).collect())
    }
}

impl Handler<Watch> for Hub {
    type Result = MessageResult<Watch>;

    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.watch(&msg.camera, msg.kind, ctx))
    }
}

impl Handler<Unwatch> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Unwatch, _: &mut Context<Self>) {
        if let Some(v) = self.viewers.remove(&msg.viewer) {
            self.tell_viewer_count(&v.camera);
        }
    }
}

impl Handler<ListViewers> for Hub {
    type Result = MessageResult<ListViewers>;

    fn handle(&mut self, _: ListViewers, _: &mut Context<Self>) -> Self::Result {
        let mut list: Vec<ViewerInfo> = self
            .viewers
            .iter()
            .map(|(id, v)| ViewerInfo {
                id: *id,
                camera: v.camera.clone(),
                kind: v.kind,
                since: v.since,
                sent: ViewerCounters::get(&v.counters.sent),
                skipped: ViewerCounters::get(&v.counters.skipped),
                bytes: ViewerCounters::get(&v.counters.bytes),
            })
            .collect();
        list.sort_by_key(|v| v.id);
        MessageResult(list)
    }
}

impl Handler<SetControl> for Hub {
    type Result = ResponseFuture<Result<i64, CommandError>>;

    fn handle(&mut self, msg: SetControl, _: &mut Context<Self>) -> Self::Result {
        let camera = msg.camera.clone();
        self.route(&camera, msg)
    }
}

impl Handler<GetControls> for Hub {
    type Result = ResponseFuture<Result<Vec<crate::camera::control::ControlInfo>, CommandError>>;

    fn handle(&mut self, msg: GetControls, _: &mut Context<Self>) -> Self::Result {
        let camera = msg.camera.clone();
        self.route(&camera, msg)
    }
}
