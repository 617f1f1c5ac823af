//! The link to an MQTT broker: this host's cameras published as retained topics, and
//! commands from `.../set` topics carried to the hub exactly like a WebSocket client's.
//!
//! [`MqttLink`] is an actor. To the hub it is one more session: it subscribes to every
//! camera's status (never to frames) and sends `SetControl` and `ResetControls` as the
//! account `mqtt.account` names, so the same roles, checks and recording apply. A task
//! beside it drives the MQTT connection (rumqttc's event loop) and hands it what arrives.
//! Failure is a state: while the broker cannot be reached, [`LinkState`] says why, video
//! is served as ever, and on every reconnection the link subscribes again and publishes
//! every retained topic anew.

pub mod discovery;
pub mod topics;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::auth::{Access, Role};
use crate::camera::status::CameraStatus;
use crate::camera::CameraId;
use crate::config::{DesiredValue, MqttSettings};
use crate::hub::{
    self, Changer, CommandError, Hub, ReadControls, ResetControls, SessionCounters, SessionEvent,
    SetControl,
};
use topics::{Command, Topics};

/// Keep-alive with the broker: a host that vanishes is declared offline by the broker
/// (its will) within one and a half of these.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// A camera's state is published on every change of state, format or controls, and
/// otherwise at most this often.
pub const STATE_INTERVAL: Duration = Duration::from_secs(1);
/// Wait between attempts to reach the broker.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long stopping waits for `offline` to reach the broker.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest message read from the broker: commands are a few bytes.
const MAX_INCOMING_BYTES: usize = 64 * 1024;
/// Largest message sent: a discovery message or a thumbnail.
const MAX_OUTGOING_BYTES: usize = 1024 * 1024;
/// JPEG quality of the thumbnails published as snapshots.
const SNAPSHOT_QUALITY: u8 = 70;
/// Messages waiting to go to the broker; beyond this, state updates are dropped (the
/// next one, or the republish on reconnection, replaces them).
const OUTBOX: usize = 256;

/// Whether the link is connected, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Not yet connected since start.
    Connecting,
    /// Connected to the broker.
    Connected,
    /// The broker cannot be reached or dropped the connection; the text says why.
    Down(String),
}

/// The link as the rest of the server holds it: the actor, which broker, and the state it
/// is in.
#[derive(Clone)]
pub struct Link {
    /// The actor, for the fleet view and for stopping.
    pub actor: Addr<MqttLink>,
    /// This host's id in topics.
    pub host_id: String,
    /// `HOST:PORT` of the broker.
    pub broker: String,
    /// The link's state, as it changes.
    pub state: watch::Receiver<LinkState>,
}

impl Link {
    /// The link as `/api/host` shows it.
    #[must_use]
    pub fn describe(&self) -> serde_json::Value {
        let (state, reason) = match &*self.state.borrow() {
            LinkState::Connecting => ("connecting", String::new()),
            LinkState::Connected => ("connected", String::new()),
            LinkState::Down(why) => ("down", why.clone()),
        };
        serde_json::json!({
            "broker": self.broker,
            "host_id": self.host_id,
            "state": state,
            "reason": reason,
        })
    }
}

/// Another host on the broker.
#[derive(Debug, Default)]
struct RemoteHost {
    /// Whether its status says `online`.
    online: bool,
    /// Its cameras' states, by camera id.
    cameras: std::collections::BTreeMap<String, serde_json::Value>,
    /// Its cameras' latest thumbnails (JPEG), by camera id.
    thumbnails: HashMap<String, bytes::Bytes>,
}

/// What a camera last published, to publish only what changed.
#[derive(Default)]
struct Published {
    /// When its state was last published.
    at: Option<Instant>,
    /// The status last published.
    last: Option<Arc<CameraStatus>>,
    /// A state held back by [`STATE_INTERVAL`].
    pending: Option<Arc<CameraStatus>>,
    /// Control values published.
    controls: HashMap<String, i64>,
}

/// The MQTT link actor.
pub struct MqttLink {
    settings: MqttSettings,
    topics: Topics,
    base_url: String,
    hub: Addr<Hub>,
    access: Access,
    client: AsyncClient,
    /// Taken by the connection task when the actor starts.
    events: Option<rumqttc::EventLoop>,
    session: Option<hub::SessionId>,
    statuses: HashMap<CameraId, Arc<CameraStatus>>,
    published: HashMap<CameraId, Published>,
    /// Each camera's controls as last read, for Home Assistant's entities.
    controls: HashMap<CameraId, Vec<crate::camera::control::ControlInfo>>,
    /// Cameras whose controls are being read.
    reading: std::collections::HashSet<CameraId>,
    /// Each announced camera's name; its discovery message depends on nothing else that
    /// changes but its controls, whose reading drops the entry.
    announced: HashMap<CameraId, String>,
    /// The other hosts on the broker, as their retained topics describe them.
    fleet: std::collections::BTreeMap<String, RemoteHost>,
    /// Commands sent to other hosts, waiting for their outcome, by result topic.
    waiting: HashMap<String, VecDeque<tokio::sync::oneshot::Sender<serde_json::Value>>>,
    state: watch::Sender<LinkState>,
    /// Told when `offline` has gone out on a clean stop.
    stopped: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MqttLink {
    /// Starts a link for `settings`, acting as `access`; camera URLs start with
    /// `base_url`. Must be called inside an actix `System`.
    #[must_use]
    pub fn start_link(
        settings: MqttSettings,
        access: Access,
        base_url: String,
        hub: Addr<Hub>,
    ) -> Link {
        let topics = Topics::new(&settings);
        let mut options = MqttOptions::new(
            format!("camfleet-{}", settings.host_id),
            settings.host.clone(),
            settings.port,
        );
        options.set_keep_alive(KEEP_ALIVE);
        // Discovery of a camera with many controls, and thumbnails, exceed rumqttc's
        // default of 10 KiB; commands coming in are small.
        options.set_max_packet_size(MAX_INCOMING_BYTES, MAX_OUTGOING_BYTES);
        options.set_clean_session(true);
        options.set_last_will(LastWill::new(
            topics.status(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &settings.username {
            options.set_credentials(user.clone(), settings.password.clone().unwrap_or_default());
        }
        if settings.tls {
            options.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
                Arc::new(tls_client_config()),
            )));
        }
        let (client, events) = AsyncClient::new(options, OUTBOX);
        let (state, follow) = watch::channel(LinkState::Connecting);
        let (host_id, broker) = (
            settings.host_id.clone(),
            format!("{}:{}", settings.host, settings.port),
        );
        let actor = MqttLink {
            settings,
            topics,
            base_url,
            hub,
            access,
            client,
            events: Some(events),
            session: None,
            statuses: HashMap::new(),
            published: HashMap::new(),
            controls: HashMap::new(),
            reading: std::collections::HashSet::new(),
            announced: HashMap::new(),
            fleet: std::collections::BTreeMap::new(),
            waiting: HashMap::new(),
            state,
            stopped: None,
        }
        .start();
        Link {
            actor,
            host_id,
            broker,
            state: follow,
        }
    }

    /// Queues a message for the broker; when the outbox is full it is dropped, and the
    /// next state, or the republish on reconnection, takes its place.
    fn publish(&self, topic: String, retain: bool, payload: impl Into<Vec<u8>>) {
        if let Err(e) = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            debug!("MQTT message not queued: {e}");
        }
    }

    /// Publishes a camera's state and changed controls now.
    fn publish_state(&mut self, status: &Arc<CameraStatus>) {
        let topic = self.topics.state(&status.id);
        self.publish(topic, true, topics::state_payload(status, &self.base_url));
        let published = self.published.entry(status.id.clone()).or_default();
        published.at = Some(Instant::now());
        published.last = Some(Arc::clone(status));
        published.pending = None;
        let changed: Vec<(String, i64)> = status
            .controls
            .iter()
            // Recorded as published, kept when it differs from what was published before.
            .filter(|(name, value)| published.controls.insert(name.clone(), *value) != Some(*value))
            .cloned()
            .collect();
        for (name, value) in changed {
            self.publish(
                self.topics.control(&status.id, &name),
                true,
                value.to_string(),
            );
        }
    }

    /// A camera's new status: published at once when something a user acts on changed,
    /// else held until [`STATE_INTERVAL`] has passed since the last one.
    fn on_status(&mut self, status: Arc<CameraStatus>, ctx: &mut Context<Self>) {
        self.statuses.insert(status.id.clone(), Arc::clone(&status));
        if *self.state.borrow() != LinkState::Connected {
            return;
        }
        self.announce(&status, ctx);
        let due = self.published.get(&status.id).is_none_or(|p| {
            p.last
                .as_deref()
                .is_none_or(|last| worth_telling_at_once(last, &status))
                || p.at.is_none_or(|at| at.elapsed() >= STATE_INTERVAL)
        });
        if due {
            self.publish_state(&status);
        } else if let Some(p) = self.published.get_mut(&status.id) {
            p.pending = Some(status);
        }
    }

    /// Tells Home Assistant about a camera and its entities when they changed (a new name,
    /// controls read anew), reading its controls first when the ones it reports are not
    /// the ones last read.
    fn announce(&mut self, status: &Arc<CameraStatus>, ctx: &mut Context<Self>) {
        let id = &status.id;
        let known = self.controls.get(id);
        let stale = known.is_none_or(|known| {
            known.len() != status.controls.len()
                || !status
                    .controls
                    .iter()
                    .all(|(name, _)| known.iter().any(|c| &c.name == name))
        });
        if stale && !status.controls.is_empty() && self.reading.insert(id.clone()) {
            let camera = id.clone();
            ctx.spawn(
                self.hub
                    .send(ReadControls {
                        camera: camera.clone(),
                    })
                    .into_actor(self)
                    .map(move |read, act, ctx| {
                        act.reading.remove(&camera);
                        if let Ok(Ok((controls, _))) = read {
                            act.controls.insert(camera.clone(), controls);
                            act.announced.remove(&camera);
                        }
                        if let Some(status) = act.statuses.get(&camera).cloned() {
                            act.announce(&status, ctx);
                        }
                    }),
            );
        }
        if self.announced.get(id) == Some(&status.name) {
            return;
        }
        let config = discovery::device_config(
            &self.topics,
            status,
            self.controls.get(id).map_or(&[][..], Vec::as_slice),
            &self.base_url,
            self.settings.snapshot_interval > 0,
        );
        self.publish(self.topics.discovery(Some(id)), true, config.to_string());
        self.announced.insert(id.clone(), status.name.clone());
    }

    /// Publishes a thumbnail of each streaming camera's newest frame. A camera that is not
    /// streaming is skipped: an on-demand camera is not opened for a thumbnail.
    fn publish_snapshots(&mut self, ctx: &mut Context<Self>) {
        if *self.state.borrow() != LinkState::Connected {
            return;
        }
        let width = self.settings.snapshot_width;
        let streaming: Vec<CameraId> = self
            .statuses
            .values()
            .filter(|s| matches!(s.state, crate::camera::status::CameraState::Streaming))
            .map(|s| s.id.clone())
            .collect();
        for camera in streaming {
            let watch = self.hub.send(hub::Watch {
                camera: camera.clone(),
                kind: hub::ViewerKind::Snapshot,
                client: None,
            });
            let thumbnail = async move {
                let viewer = watch.await.ok()?.ok()?;
                let frame = viewer.watch.borrow().clone()?;
                drop(viewer);
                if frame.no_signal.is_some() {
                    return None;
                }
                let made = actix_web::rt::task::spawn_blocking(move || {
                    crate::camera::jpeg::thumbnail(&frame.picture(), width, SNAPSHOT_QUALITY)
                });
                match made.await {
                    Ok(Ok(jpeg)) => Some(jpeg),
                    Ok(Err(e)) => {
                        debug!("no thumbnail: {e}");
                        None
                    }
                    Err(_) => None,
                }
            };
            ctx.spawn(thumbnail.into_actor(self).map(move |jpeg, act, _| {
                if let Some(jpeg) = jpeg {
                    act.publish(act.topics.snapshot(&camera), true, jpeg.to_vec());
                }
            }));
        }
    }

    /// Tells Home Assistant about this host, the device its cameras are reached through.
    fn announce_host(&self) {
        let config = discovery::host_config(&self.topics, &self.base_url, &self.settings.host_id);
        self.publish(self.topics.discovery(None), true, config.to_string());
    }

    /// Removes what this host published of a camera that left the configuration, Home
    /// Assistant's entities included.
    fn forget(&mut self, id: &CameraId) {
        let mut topics = vec![self.topics.discovery(Some(id)), self.topics.state(id)];
        if let Some(published) = self.published.remove(id) {
            topics.extend(
                published
                    .controls
                    .keys()
                    .map(|c| self.topics.control(id, c)),
            );
        }
        for topic in topics {
            self.publish(topic, true, Vec::new());
        }
        self.statuses.remove(id);
        self.controls.remove(id);
        self.announced.remove(id);
    }

    /// Connected (again): this host is online, its commands are subscribed and every
    /// retained topic is published anew.
    fn on_connected(&mut self, ctx: &mut Context<Self>) {
        info!(
            broker = %format!("{}:{}", self.settings.host, self.settings.port),
            "MQTT connected"
        );
        self.state.send_replace(LinkState::Connected);
        self.publish(self.topics.status(), true, "online");
        let commands = self.topics.command_filters();
        let fleet = self.topics.fleet_filters();
        let assistant = self.topics.assistant_status();
        for filter in commands.iter().chain(&fleet).chain([&assistant]) {
            if let Err(e) = self.client.try_subscribe(filter, QoS::AtLeastOnce) {
                warn!("MQTT subscription not queued: {e}");
            }
        }
        self.announce_host();
        self.published.clear();
        self.announced.clear();
        let statuses: Vec<_> = self.statuses.values().cloned().collect();
        for status in statuses {
            self.publish_state(&status);
            self.announce(&status, ctx);
        }
    }

    /// A message on one of the command topics.
    fn on_message(&mut self, topic: &str, payload: &[u8], ctx: &mut Context<Self>) {
        if topic == self.topics.assistant_status() {
            // Home Assistant (re)started: it reads discovery again.
            if payload == b"online" {
                self.announce_host();
                self.announced.clear();
                let statuses: Vec<_> = self.statuses.values().cloned().collect();
                for status in statuses {
                    self.announce(&status, ctx);
                }
            }
            return;
        }
        if let Some(news) = self.topics.fleet_news(topic) {
            return self.on_fleet_news(news, topic, payload);
        }
        let Some(command) = self.topics.command(topic, payload) else {
            return;
        };
        let result_topic = Topics::result_of(topic);
        let (camera, command) = match command
            .map_err(CommandError::InvalidMessage)
            .and_then(|(camera, command)| Ok((self.visible_camera(&camera)?, command)))
            .and_then(|found| self.permitted().map(|()| found))
        {
            Ok(found) => found,
            Err(e) => return self.publish(result_topic, false, topics::result_payload(&Err(e))),
        };
        let hub = self.hub.clone();
        let by = Changer {
            account: self.access.name.clone(),
            address: None,
        };
        let outcome = async move {
            match command {
                Command::Reset => hub
                    .send(ResetControls { camera, by })
                    .await
                    .unwrap_or(Err(CommandError::Stopping))
                    .map(|()| None),
                Command::Set { control, value } => {
                    let value = resolve(&hub, &camera, &control, &value).await?;
                    hub.send(SetControl {
                        camera,
                        control,
                        value,
                        by,
                    })
                    .await
                    .unwrap_or(Err(CommandError::Stopping))
                    .map(|applied| applied.control.value)
                }
            }
        };
        ctx.spawn(outcome.into_actor(self).map(move |outcome, act, _| {
            act.publish(result_topic, false, topics::result_payload(&outcome));
        }));
    }

    /// Another host's status, camera state or command outcome.
    fn on_fleet_news(&mut self, news: topics::FleetNews<'_>, topic: &str, payload: &[u8]) {
        match news {
            topics::FleetNews::Status { host } => {
                self.fleet.entry(host.to_string()).or_default().online = payload == b"online";
            }
            topics::FleetNews::State { host, camera } => {
                let cameras = &mut self.fleet.entry(host.to_string()).or_default().cameras;
                match serde_json::from_slice::<serde_json::Value>(payload) {
                    Ok(state) if state.is_object() => {
                        cameras.insert(camera.to_string(), state);
                    }
                    // An empty retained message: the camera left that host's fleet.
                    _ => {
                        cameras.remove(camera);
                    }
                }
            }
            topics::FleetNews::Snapshot { host, camera } => {
                let thumbnails = &mut self.fleet.entry(host.to_string()).or_default().thumbnails;
                if payload.is_empty() {
                    thumbnails.remove(camera);
                } else {
                    thumbnails.insert(camera.to_string(), bytes::Bytes::copy_from_slice(payload));
                }
            }
            topics::FleetNews::Result => {
                let mut outcome = serde_json::from_slice(payload).unwrap_or_else(|_| {
                    serde_json::json!({
                        "ok": false,
                        "error": "the host's answer on its result topic is not JSON; is that host \
                                  running camfleet, and does anything else publish there?"
                    })
                });
                // The oldest command still waiting gets it; those that gave up are skipped.
                if let Some(queue) = self.waiting.get_mut(topic) {
                    while let Some(waiter) = queue.pop_front() {
                        match waiter.send(outcome) {
                            Ok(()) => break,
                            Err(back) => outcome = back,
                        }
                    }
                }
            }
        }
    }

    /// The camera `id`, if the link's account may see it.
    fn visible_camera(&self, id: &str) -> Result<CameraId, CommandError> {
        let unknown = || CommandError::UnknownCamera {
            id: id.to_string(),
            known: self
                .statuses
                .keys()
                .filter(|c| self.access.sees(c))
                .map(CameraId::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        };
        let camera = CameraId::parse(id).map_err(|_| unknown())?;
        if self.access.sees(&camera) && self.statuses.contains_key(&camera) {
            Ok(camera)
        } else {
            Err(unknown())
        }
    }

    /// Whether the link's account may change controls.
    fn permitted(&self) -> Result<(), CommandError> {
        if self.access.may(Role::Operator) {
            Ok(())
        } else {
            Err(CommandError::NotPermitted(self.access.refusal_to_change()))
        }
    }
}

/// A control value as the device takes it: a menu item's name is looked up in the
/// camera's controls.
async fn resolve(
    hub: &Addr<Hub>,
    camera: &CameraId,
    control: &str,
    value: &DesiredValue,
) -> Result<i64, CommandError> {
    if let Some(v) = value.as_int() {
        return Ok(v);
    }
    let (controls, _) = hub
        .send(ReadControls {
            camera: camera.clone(),
        })
        .await
        .unwrap_or(Err(CommandError::Stopping))?;
    crate::camera::control::find(&controls, control)
        .and_then(|info| info.resolve(value))
        .map_err(|error| CommandError::Control {
            camera: camera.clone(),
            error,
        })
}

/// Whether `now` differs from `before` in what a user acts on: the state (with its
/// reason), the format, or a control value. Counters alone wait for [`STATE_INTERVAL`].
fn worth_telling_at_once(before: &CameraStatus, now: &CameraStatus) -> bool {
    before.state != now.state || before.format != now.format || before.controls != now.controls
}

/// TLS to the broker, trusting the system's certificate authorities.
pub(crate) fn tls_client_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// What the connection task hands the link.
#[derive(Message)]
#[rtype(result = "()")]
enum Connection {
    Up,
    Down(String),
    Message {
        topic: String,
        payload: Vec<u8>,
    },
    /// `offline` and the disconnect went out.
    Closed,
}

impl Actor for MqttLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let mut events = self.events.take().expect("the event loop is taken once");
        let link = ctx.address();
        // The connection: polled here, off the link's mailbox, until the link stops.
        ctx.spawn(
            async move {
                loop {
                    let handed = match events.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => link.try_send(Connection::Up),
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            link.try_send(Connection::Message {
                                topic: p.topic,
                                payload: p.payload.to_vec(),
                            })
                        }
                        Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                            let _ = link.try_send(Connection::Closed);
                            return;
                        }
                        Ok(_) => Ok(()),
                        Err(e) => {
                            let _ = link.try_send(Connection::Down(e.to_string()));
                            actix::clock::sleep(RETRY_INTERVAL).await;
                            Ok(())
                        }
                    };
                    if let Err(SendError::Closed(_)) = handed {
                        return;
                    }
                }
            }
            .into_actor(self),
        );
        // Every camera's status, like a session that watches them all.
        self.hub
            .send(hub::Connect {
                events: ctx.address().recipient(),
                account: None,
                counters: Arc::new(SessionCounters::default()),
            })
            .into_actor(self)
            .then(|connected, act, _| {
                let id = match connected {
                    Ok(Ok(id)) => Some(id),
                    _ => None,
                };
                act.session = id;
                let hub = act.hub.clone();
                let cameras = act.access.cameras.clone().unwrap_or_default();
                async move {
                    if let Some(session) = id {
                        let _ = hub
                            .send(hub::Subscribe {
                                session,
                                cameras,
                                send_frames: false,
                            })
                            .await;
                    }
                }
                .into_actor(act)
            })
            .wait(ctx);
        if self.settings.snapshot_interval > 0 {
            let every = Duration::from_secs(u64::from(self.settings.snapshot_interval));
            ctx.run_interval(every, MqttLink::publish_snapshots);
        }
        ctx.run_interval(STATE_INTERVAL, |act, _| {
            let due: Vec<_> = act
                .published
                .values_mut()
                .filter(|p| p.at.is_some_and(|at| at.elapsed() >= STATE_INTERVAL))
                .filter_map(|p| p.pending.take())
                .collect();
            for status in due {
                act.publish_state(&status);
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(session) = self.session {
            self.hub.do_send(hub::Disconnect { session });
        }
    }
}

impl Handler<Connection> for MqttLink {
    type Result = ();

    fn handle(&mut self, event: Connection, ctx: &mut Context<Self>) {
        match event {
            Connection::Up => self.on_connected(ctx),
            Connection::Message { topic, payload } => self.on_message(&topic, &payload, ctx),
            Connection::Down(why) => {
                let why = format!(
                    "cannot reach the MQTT broker {}:{}: {why}",
                    self.settings.host, self.settings.port
                );
                if *self.state.borrow() != LinkState::Down(why.clone()) {
                    warn!(
                        "{why}; video is served meanwhile, retrying every {} s",
                        RETRY_INTERVAL.as_secs()
                    );
                }
                self.state.send_replace(LinkState::Down(why));
            }
            Connection::Closed => {
                if let Some(done) = self.stopped.take() {
                    let _ = done.send(());
                }
                ctx.stop();
            }
        }
    }
}

impl Handler<SessionEvent> for MqttLink {
    type Result = ();

    fn handle(&mut self, event: SessionEvent, ctx: &mut Context<Self>) {
        match event {
            SessionEvent::Status(status) if self.access.sees(&status.id) => {
                self.on_status(status, ctx);
            }
            SessionEvent::Fleet(list) => {
                let now: Vec<CameraId> = list.iter().map(|s| s.id.clone()).collect();
                let gone: Vec<CameraId> = self
                    .statuses
                    .keys()
                    .filter(|id| !now.contains(id))
                    .cloned()
                    .collect();
                for id in gone {
                    self.forget(&id);
                }
                for status in list {
                    if self.access.sees(&status.id) {
                        self.on_status(status, ctx);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Stops the link cleanly: `offline` is published and the connection closed; answered
/// once they went out, or after [`STOP_TIMEOUT`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopLink;

impl Handler<StopLink> for MqttLink {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopLink, ctx: &mut Context<Self>) -> Self::Result {
        if *self.state.borrow() != LinkState::Connected {
            ctx.stop();
            return Box::pin(async {});
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        self.stopped = Some(done);
        self.publish(self.topics.status(), true, "offline");
        let _ = self.client.try_disconnect();
        Box::pin(async move {
            let _ = tokio::time::timeout(STOP_TIMEOUT, wait).await;
        })
    }
}

/// The other hosts on the broker and their cameras, as JSON: `{"hosts": [{"host_id",
/// "online", "cameras": [STATE, ...]}]}`, each state as its host publishes it with
/// `"thumbnail": true` when the host has published a thumbnail of the camera.
#[derive(Message)]
#[rtype(result = "serde_json::Value")]
pub struct FleetView;

impl Handler<FleetView> for MqttLink {
    type Result = MessageResult<FleetView>;

    fn handle(&mut self, _: FleetView, _: &mut Context<Self>) -> Self::Result {
        let hosts: Vec<serde_json::Value> = self
            .fleet
            .iter()
            .map(|(host, remote)| {
                let cameras: Vec<serde_json::Value> = remote
                    .cameras
                    .iter()
                    .map(|(id, state)| {
                        let mut state = state.clone();
                        state["thumbnail"] = remote.thumbnails.contains_key(id).into();
                        state
                    })
                    .collect();
                serde_json::json!({
                    "host_id": host,
                    "online": remote.online,
                    "cameras": cameras,
                })
            })
            .collect();
        MessageResult(serde_json::json!({ "hosts": hosts }))
    }
}

/// The latest thumbnail another host published of one of its cameras (a small JPEG every
/// few seconds, not video).
#[derive(Message)]
#[rtype(result = "Option<bytes::Bytes>")]
pub struct RemoteThumbnail {
    /// The host.
    pub host: String,
    /// The camera on it.
    pub camera: String,
}

impl Handler<RemoteThumbnail> for MqttLink {
    type Result = Option<bytes::Bytes>;

    fn handle(&mut self, asked: RemoteThumbnail, _: &mut Context<Self>) -> Self::Result {
        self.fleet
            .get(&asked.host)?
            .thumbnails
            .get(&asked.camera)
            .cloned()
    }
}

/// A command to another host's camera, sent over the broker; answered with the outcome
/// that host publishes, as JSON.
#[derive(Message)]
#[rtype(result = "Result<serde_json::Value, CommandError>")]
pub struct RemoteCommand {
    /// The host.
    pub host: String,
    /// The camera on it.
    pub camera: String,
    /// The control to set, or `None` to reset the camera's controls.
    pub control: Option<String>,
    /// The value, as a `.../set` payload.
    pub value: String,
}

impl Handler<RemoteCommand> for MqttLink {
    type Result = ResponseFuture<Result<serde_json::Value, CommandError>>;

    fn handle(&mut self, command: RemoteCommand, _: &mut Context<Self>) -> Self::Result {
        let camera = match CameraId::parse(&command.camera) {
            Ok(camera) => camera,
            Err(why) => return Box::pin(async move { Err(CommandError::InvalidMessage(why)) }),
        };
        let problem = if !self.access.may(Role::Operator) {
            Some(CommandError::NotPermitted(self.access.refusal_to_change()))
        } else if !command
            .control
            .as_deref()
            .is_none_or(crate::config::topic_safe)
        {
            // A host not on the broker is refused below; a control name goes into a topic.
            Some(CommandError::InvalidMessage(
                "a control name is letters, digits, `-` and `_`, as the camera lists them".into(),
            ))
        } else if !self
            .fleet
            .get(&command.host)
            .is_some_and(|h| h.online && h.cameras.contains_key(&command.camera))
        {
            Some(CommandError::UnknownCamera {
                id: format!("{}/{}", command.host, command.camera),
                known: self
                    .fleet
                    .iter()
                    .filter(|(_, h)| h.online)
                    .flat_map(|(host, h)| h.cameras.keys().map(move |c| format!("{host}/{c}")))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        } else if *self.state.borrow() != LinkState::Connected {
            Some(CommandError::Unreachable(
                "the MQTT broker cannot be reached, so commands to other hosts cannot be sent; \
                 see the MQTT line in the dashboard's header"
                    .into(),
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Box::pin(async move { Err(problem) });
        }
        let set =
            self.topics
                .remote_set(&command.host, &command.camera, command.control.as_deref());
        let (answer, outcome) = tokio::sync::oneshot::channel();
        let queue = self.waiting.entry(Topics::result_of(&set)).or_default();
        // Commands that gave up waiting leave no trace behind.
        queue.retain(|waiter| !waiter.is_closed());
        queue.push_back(answer);
        self.publish(set, false, command.value);
        Box::pin(async move {
            match tokio::time::timeout(hub::COMMAND_TIMEOUT, outcome).await {
                Ok(Ok(outcome)) => Ok(outcome),
                _ => Err(CommandError::Timeout(camera, hub::COMMAND_TIMEOUT)),
            }
        })
    }
}
