//! The hub's sessions: who is connected and what each is subscribed to.

use std::collections::{HashMap, HashSet};
use std::mem::{discriminant, Discriminant};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tracing::debug;

use super::{
    CommandError, Connect, Disconnect, Hub, SessionCounters, SessionEvent, SessionId,
    SessionMetrics, Subscribe, Unsubscribe, ViewerKind,
};
use crate::camera::status::{CameraState, CameraStatus};
use crate::camera::CameraId;

/// Shortest time between two statuses of one camera to one session. Statuses that come
/// sooner wait, each replacing the one before, so a burst (300 viewers joining, each
/// changing the camera's viewer count) costs a session one status per gap, not one per
/// change. A change of state (Streaming to Reconnecting, ...) never waits.
pub const STATUS_GAP: Duration = Duration::from_millis(250);

pub(super) struct SessionEntry {
    pub(super) events: Recipient<SessionEvent>,
    /// The account it signed in as at the handshake.
    account: Option<String>,
    counters: Arc<SessionCounters>,
    all_cameras: bool,
    cameras: HashSet<CameraId>,
    /// Events put into the session's mailbox.
    offered: u64,
    pub(super) dropped: u64,
    pub(super) dropped_reported: u64,
    /// When each camera's status was last offered, and in which state.
    status_sent: HashMap<CameraId, (Instant, Discriminant<CameraState>)>,
    /// The newest status of each camera held back by [`STATUS_GAP`].
    status_held: HashMap<CameraId, Arc<CameraStatus>>,
}

impl SessionEntry {
    pub(super) fn wants(&self, camera: &CameraId) -> bool {
        self.all_cameras || self.cameras.contains(camera)
    }

    /// Offers an event without waiting; a full mailbox drops it and counts the drop.
    pub(super) fn offer(&mut self, event: SessionEvent) {
        match self.events.try_send(event) {
            Ok(()) => self.offered += 1,
            Err(SendError::Full(_)) => self.dropped += 1,
            Err(SendError::Closed(_)) => {}
        }
    }

    /// Offers a camera's status now, or holds it until [`STATUS_GAP`] has passed since the
    /// camera's last one (replacing any held before it). A change of state goes at once.
    pub(super) fn offer_status(&mut self, status: &Arc<CameraStatus>, now: Instant) {
        match self.status_sent.get(&status.id) {
            Some((at, state))
                if now.duration_since(*at) < STATUS_GAP
                    && *state == discriminant(&status.state) =>
            {
                self.status_held
                    .insert(status.id.clone(), Arc::clone(status));
            }
            _ => self.send_status(Arc::clone(status), now),
        }
    }

    /// Offers a status at once, dropping any older one held back.
    pub(super) fn send_status(&mut self, status: Arc<CameraStatus>, now: Instant) {
        self.status_held.remove(&status.id);
        self.status_sent
            .insert(status.id.clone(), (now, discriminant(&status.state)));
        self.offer(SessionEvent::Status(status));
    }

    /// Offers the held statuses whose gap has passed.
    pub(super) fn release_held(&mut self, now: Instant) {
        let due: Vec<CameraId> = self
            .status_held
            .keys()
            .filter(|id| {
                self.status_sent
                    .get(*id)
                    .is_none_or(|(at, _)| now.duration_since(*at) >= STATUS_GAP)
            })
            .cloned()
            .collect();
        for id in due {
            if let Some(status) = self.status_held.remove(&id) {
                self.send_status(status, now);
            }
        }
    }

    /// Adds this session's figures to `sum`.
    pub(super) fn add_to(&self, sum: &mut SessionMetrics) {
        let handled = self.counters.handled.load(Ordering::Relaxed);
        sum.connected += 1;
        sum.queue_depth_max = sum
            .queue_depth_max
            .max(self.offered.saturating_sub(handled));
        sum.dropped += self.dropped;
        sum.frames_replaced += self.counters.frames_replaced.load(Ordering::Relaxed);
    }
}

impl Handler<Connect> for Hub {
    type Result = Result<SessionId, CommandError>;

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) -> Self::Result {
        if self.sessions.len() >= self.server.max_sessions as usize {
            return Err(CommandError::LimitReached(format!(
                "the server already has {} WebSocket clients, its limit (server.max_sessions); \
                 close another client or raise the limit",
                self.sessions.len()
            )));
        }
        if let Some(account) = &msg.account {
            let theirs = self
                .sessions
                .values()
                .filter(|s| s.account.as_ref() == Some(account))
                .count();
            if theirs >= self.server.max_sessions_per_account as usize {
                return Err(CommandError::LimitReached(format!(
                    "`{account}` already has {theirs} WebSocket connections, the limit for \
                     one account (server.max_sessions_per_account); close one of them"
                )));
            }
        }
        let id = self.next_session;
        self.next_session += 1;
        self.sessions.insert(
            id,
            SessionEntry {
                events: msg.events,
                account: msg.account,
                counters: msg.counters,
                all_cameras: false,
                cameras: HashSet::new(),
                offered: 0,
                dropped: 0,
                dropped_reported: 0,
                status_sent: HashMap::new(),
                status_held: HashMap::new(),
            },
        );
        debug!(session = id, "session connected");
        if let Some(what) = self.overrides.moved_aside() {
            if let Some(session) = self.sessions.get(&id) {
                session
                    .events
                    .do_send(SessionEvent::Notice(what.to_string()));
            }
        }
        Ok(id)
    }
}

impl Handler<Disconnect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        if let Some(gone) = self.sessions.remove(&msg.session) {
            // Its counts stay in the totals since start.
            let mut sum = SessionMetrics::default();
            gone.add_to(&mut sum);
            self.ended_sessions.dropped += sum.dropped;
            self.ended_sessions.frames_replaced += sum.frames_replaced;
        }
        debug!(session = msg.session, "session disconnected");
    }
}

impl Handler<Subscribe> for Hub {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = msg
            .cameras
            .iter()
            .try_for_each(|id| self.camera(id).map(|_| ()))
        {
            return MessageResult(Err(e));
        }
        let targets: Vec<CameraId> = if msg.cameras.is_empty() {
            self.cameras.iter().map(|c| c.id().clone()).collect()
        } else {
            msg.cameras.clone()
        };
        let mut viewers = Vec::new();
        if msg.send_frames {
            for camera in &targets {
                match self.watch(camera, ViewerKind::WebSocket, None, ctx) {
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
        let now = Instant::now();
        for camera in &self.cameras {
            if session.wants(camera.id()) {
                session.send_status(Arc::clone(&camera.status), now);
            }
        }
        MessageResult(Ok(viewers))
    }
}

impl Handler<Unsubscribe> for Hub {
    type Result = Result<(), CommandError>;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) -> Self::Result {
        msg.cameras
            .iter()
            .try_for_each(|id| self.camera(id).map(|_| ()))?;
        let all: Vec<CameraId> = self.cameras.iter().map(|c| c.id().clone()).collect();
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
