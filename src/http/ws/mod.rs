//! The WebSocket session actor at `/ws`: one per connected client.
//!
//! It speaks binary protobuf (`camfleet.v1.ClientMessage` in, `ServerMessage` out), sends
//! `Hello` on connect, pings every [`HEARTBEAT_INTERVAL`] and drops a client that is silent
//! for [`CLIENT_TIMEOUT`]; a watchdog outside it cuts the connection if it is not served
//! for that long (a client that stopped reading). Each client may send
//! [`COMMANDS_PER_SECOND`] commands a second. It registers with the hub in `started` and
//! says goodbye in `stopping`, so the pair is always symmetric. This module and its
//! `incoming` part are the only ones that use `actix-web-actors`.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use tracing::debug;

use super::budget::CommandBudget;
use super::direct::DirectWriter;
use super::feed::FrameFeed;
use super::frame_guard::{FrameGuard, Verdict};
use super::watchdog::{ConnectionSocket, Watchdog};

mod access;
mod incoming;
mod output;
use super::wire::{self, Command};
use super::AppState;
use crate::camera::CameraId;
use crate::hub::{self, CommandError, Hub, SessionCounters, SessionEvent, SessionId, Viewer};
use crate::proto::{self, server_message::Kind as ServerKind};
use crate::stats::ViewerCounters;
use output::{Output, ToBody};

/// How often the server pings each client.
pub const HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// A client that sends nothing, not even a pong, for this long is disconnected.
pub const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// Events the hub may queue for one session; past this it drops and counts them.
pub const SESSION_QUEUE: usize = 64;
/// Commands one session may have waiting on cameras at once.
pub const MAX_IN_FLIGHT: usize = 32;
/// How often a session with subscriptions gets its own delivery counters.
pub const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Commands one session may send a second, on average; past that they are refused with
/// `LIMIT_REACHED` and the session goes on. A dashboard sends a few a second.
pub const COMMANDS_PER_SECOND: u32 = 100;
/// Commands one session may send at once before the rate applies.
pub const COMMAND_BURST: u32 = 200;

/// A camera's frames being sent to this client.
struct FrameSubscription {
    /// The feed in the session's context; `None` when the response body runs it.
    handle: Option<SpawnHandle>,
    counters: Arc<ViewerCounters>,
}

/// A frame (or its preview) as the framed message every session shares, for a session
/// whose messages go through its context (HTTPS).
struct OutgoingFrame(bytes::Bytes);

/// One client's connection.
pub struct WsSession {
    hub: Addr<Hub>,
    id: Option<SessionId>,
    last_heard: Instant,
    in_flight: usize,
    max_message_bytes: u32,
    feeds: HashMap<CameraId, FrameSubscription>,
    /// Frames replaced on cameras this session no longer watches.
    replaced_before: u64,
    /// Status events the hub could not queue for this session.
    dropped_by_hub: u64,
    /// Shared with the hub, for metrics.
    counters: Arc<SessionCounters>,
    /// Who the client is; `None` until it signs in on a server with accounts.
    access: Option<crate::auth::Access>,
    /// The accounts, for `Authenticate`.
    auth: tokio::sync::watch::Receiver<Arc<crate::auth::Auth>>,
    /// The client's address, for the log of who changed what.
    address: Option<std::net::IpAddr>,
    /// Raised by the frame guard when the client breaks the protocol.
    verdict: Verdict,
    /// Commands this session may still send now.
    budget: CommandBudget,
    /// Cuts the connection if this session is not served for `CLIENT_TIMEOUT`.
    watchdog: Option<Watchdog>,
    /// Where what it sends goes.
    output: Output,
}

/// `GET /ws`: upgrades to a WebSocket session.
pub fn route(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    access: Option<crate::auth::Access>,
) -> actix_web::Result<HttpResponse> {
    let verdict = Verdict::default();
    let session = WsSession {
        hub: state.hub.clone(),
        id: None,
        last_heard: Instant::now(),
        in_flight: 0,
        max_message_bytes: state.max_message_bytes,
        feeds: HashMap::new(),
        replaced_before: 0,
        dropped_by_hub: 0,
        counters: Arc::default(),
        access,
        auth: state.auth.clone(),
        address: req.peer_addr().map(|a| a.ip()),
        verdict: Rc::clone(&verdict),
        budget: CommandBudget::new(),
        watchdog: req
            .conn_data::<ConnectionSocket>()
            .cloned()
            .map(Watchdog::start),
        output: Output::Context,
    };
    let guarded = FrameGuard::new(payload, state.max_message_bytes, verdict);
    let Some(writer) = req.conn_data::<DirectWriter>().cloned() else {
        return ws::WsResponseBuilder::new(session, req, guarded)
            .frame_size(state.max_message_bytes as usize)
            .start();
    };
    // On a plain connection the session's messages go straight to the socket.
    let mut response = ws::handshake(req)?;
    let (sent, to_write) = tokio::sync::mpsc::unbounded_channel();
    let session = WsSession {
        output: Output::Direct(sent),
        ..session
    };
    let codec = actix_http::ws::Codec::new().max_size(state.max_message_bytes as usize);
    let context = ws::WebsocketContext::with_codec(session, guarded, codec);
    Ok(response.streaming(output::direct_body(writer, context, to_write)))
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(SESSION_QUEUE);
        let hello = wire::hello(self.max_message_bytes, self.access.as_ref());
        self.send(ctx, hello);
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            act.served();
            if act.last_heard.elapsed() > CLIENT_TIMEOUT {
                debug!(session = ?act.id, "client timed out");
                ctx.stop();
            } else {
                act.ping(ctx);
            }
        });
        // Nothing else is handled until the hub has given this session its id.
        self.hub
            .send(hub::Connect {
                events: ctx.address().recipient(),
                // On a server without accounts everyone is `anyone`: no one account's share.
                account: self
                    .access
                    .as_ref()
                    .filter(|_| self.auth.borrow().required())
                    .map(|a| a.name.clone()),
                counters: Arc::clone(&self.counters),
            })
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Ok(Ok(id)) => act.id = Some(id),
                Ok(Err(refused)) => {
                    act.close(
                        ctx,
                        Some(ws::CloseReason {
                            code: ws::CloseCode::Again,
                            description: Some(refused.to_string()),
                        }),
                    );
                }
                Err(_) => ctx.stop(),
            })
            .wait(ctx);
        ctx.run_interval(STATS_INTERVAL, |act, ctx| {
            if !act.feeds.is_empty() || act.dropped_by_hub > 0 {
                act.publish_stats(ctx);
            }
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        if let Some(session) = self.id.take() {
            self.hub.do_send(hub::Disconnect { session });
        }
        Running::Stop
    }
}

impl WsSession {
    /// Tells the watchdog that this session runs.
    fn served(&self) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.served();
        }
    }

    /// Publishes this session's delivery counters: to the client, and to the counters the
    /// hub reads for `/metrics`.
    fn publish_stats(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let replaced: u64 = self
            .feeds
            .values()
            .map(|f| ViewerCounters::get(&f.counters.skipped))
            .sum();
        let frames_replaced = self.replaced_before + replaced;
        self.counters
            .frames_replaced
            .store(frames_replaced, std::sync::atomic::Ordering::Relaxed);
        let stats = ServerKind::SessionStats(proto::SessionStats {
            messages_dropped: self.dropped_by_hub,
            frames_replaced,
        });
        self.send(ctx, stats);
    }

    /// Starts sending frames from these viewers, replacing earlier feeds of the same cameras.
    fn add_feeds(
        &mut self,
        viewers: Vec<Viewer>,
        max_fps: u32,
        preview: Option<usize>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        for viewer in viewers {
            let camera = viewer.camera.clone();
            self.stop_feed(&camera, ctx);
            let counters = Arc::clone(&viewer.counters);
            // Previews are for tiles in a grid: at most PREVIEW_FPS unless asked otherwise.
            let fps = match (max_fps, preview) {
                (0, Some(_)) => crate::http::mjpeg::PREVIEW_FPS,
                _ => max_fps,
            };
            let feed = FrameFeed::new(viewer, Some(fps));
            let handle = match &self.output {
                // Every frame, as the camera makes it: the camera's fan-out writes it.
                Output::Direct(_) if !feed.is_paced() && preview.is_none() => {
                    self.hand_over(ToBody::Join(camera.clone(), feed));
                    None
                }
                _ => {
                    let stream = futures_util::stream::unfold(feed, move |mut feed| async move {
                        let frame = feed.next().await?;
                        let camera = &feed.viewer().camera;
                        let message = match preview {
                            None => wire::frame(camera, &frame),
                            Some(i) => wire::preview_frame(camera, &frame, i),
                        };
                        feed.sent(&frame, message.len());
                        Some((message, feed))
                    });
                    match &self.output {
                        Output::Context => Some(
                            ctx.add_stream(futures_util::StreamExt::map(stream, OutgoingFrame)),
                        ),
                        Output::Direct(_) => {
                            self.hand_over(ToBody::Feed(camera.clone(), Box::pin(stream)));
                            None
                        }
                    }
                }
            };
            self.feeds
                .insert(camera, FrameSubscription { handle, counters });
        }
    }

    fn stop_feed(&mut self, camera: &CameraId, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(old) = self.feeds.remove(camera) {
            self.replaced_before += ViewerCounters::get(&old.counters.skipped);
            match old.handle {
                Some(handle) => {
                    ctx.cancel_future(handle);
                }
                None => self.hand_over(ToBody::Unfeed(camera.clone())),
            }
        }
    }

    /// Sends `request` to the hub and the answer, shaped by `reply` (which may also act on
    /// this session), back to this client.
    fn ask<M>(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        request_id: u64,
        request: M,
        reply: impl FnOnce(M::Result, &mut Self, &mut ws::WebsocketContext<Self>) -> ServerKind
            + 'static,
    ) where
        M: Message + Send + 'static,
        M::Result: Send,
        Hub: Handler<M>,
    {
        if self.in_flight >= MAX_IN_FLIGHT {
            let busy = CommandError::LimitReached(format!(
                "{MAX_IN_FLIGHT} commands are already waiting for an answer; \
                 wait for their results before sending more"
            ));
            return self.send(ctx, wire::failure(request_id, &busy));
        }
        self.in_flight += 1;
        self.hub
            .send(request)
            .into_actor(self)
            .map(move |answer, act, ctx| {
                act.in_flight -= 1;
                let kind = match answer {
                    Ok(value) => reply(value, act, ctx),
                    Err(_) => wire::failure(request_id, &CommandError::Stopping),
                };
                act.send(ctx, kind);
            })
            .spawn(ctx);
    }

    fn command(&mut self, bytes: &[u8], ctx: &mut ws::WebsocketContext<Self>) {
        let command = match wire::decode(bytes) {
            Ok(c) => c,
            Err(rejection) => return self.send(ctx, rejection.answer()),
        };
        let Some(session) = self.id else { return };
        let request_id = command.request_id();
        if !self.budget.take() {
            let busy = CommandError::LimitReached(format!(
                "more than {COMMANDS_PER_SECOND} commands a second from this connection \
                 (after a burst of {COMMAND_BURST}); send fewer, this one was not carried out"
            ));
            return self.send(ctx, wire::failure(request_id, &busy));
        }
        let command = match self.permit(command) {
            Ok(c) => c,
            Err(e) => return self.send(ctx, wire::failure(request_id, &e)),
        };
        match command {
            Command::Authenticate { token, .. } => {
                let answer = match self.authenticate(&token) {
                    Ok(()) => wire::ok(request_id),
                    Err(e) => wire::failure(request_id, &e),
                };
                self.send(ctx, answer);
            }
            Command::ListCameras => self.ask(ctx, 0, hub::ListCameras, |list, act, _| {
                wire::camera_list(&act.visible(list))
            }),
            Command::ResetControls { camera, .. } => self.ask(
                ctx,
                request_id,
                hub::ResetControls {
                    camera,
                    by: self.changer(),
                },
                move |r, _, _| wire::outcome(request_id, &r),
            ),
            Command::Subscribe {
                cameras,
                send_frames,
                max_fps,
                preview,
                ..
            } => {
                let msg = hub::Subscribe {
                    session,
                    cameras,
                    send_frames,
                };
                self.ask(ctx, request_id, msg, move |r, act, ctx| {
                    let r = r.map(|viewers| act.add_feeds(viewers, max_fps, preview, ctx));
                    wire::outcome(request_id, &r)
                });
            }
            Command::Unsubscribe { cameras, .. } => {
                let stop: Vec<CameraId> = if cameras.is_empty() {
                    self.feeds.keys().cloned().collect()
                } else {
                    cameras.clone()
                };
                for camera in &stop {
                    self.stop_feed(camera, ctx);
                }
                self.ask(
                    ctx,
                    request_id,
                    hub::Unsubscribe { session, cameras },
                    move |r, _, _| wire::outcome(request_id, &r),
                );
            }
            Command::SetControl {
                camera,
                control,
                value,
                ..
            } => {
                let msg = hub::SetControl {
                    camera,
                    control,
                    value,
                    by: self.changer(),
                };
                self.ask(ctx, request_id, msg, move |r, _, _| match r {
                    Ok(applied) => wire::applied(request_id, &applied),
                    Err(e) => wire::failure(request_id, &e),
                });
            }
            Command::GetControls { camera, .. } => {
                let camera_id = camera.to_string();
                self.ask(
                    ctx,
                    request_id,
                    hub::ReadControls { camera },
                    move |r, _, _| match r {
                        Ok((controls, changes)) => ServerKind::ControlList(proto::ControlList {
                            request_id,
                            camera_id,
                            controls: controls
                                .iter()
                                .map(|c| {
                                    let last = changes.iter().find(|(n, _)| *n == c.name);
                                    wire::changed(wire::control(c), last.map(|(_, l)| l))
                                })
                                .collect(),
                        }),
                        Err(e) => wire::failure(request_id, &e),
                    },
                );
            }
        }
    }
}

impl WsSession {
    /// The cameras of `list` this session may see.
    fn visible(
        &self,
        list: Vec<Arc<crate::camera::status::CameraStatus>>,
    ) -> Vec<Arc<crate::camera::status::CameraStatus>> {
        list.into_iter().filter(|s| self.sees(&s.id)).collect()
    }
}

impl StreamHandler<OutgoingFrame> for WsSession {
    fn handle(&mut self, out: OutgoingFrame, ctx: &mut Self::Context) {
        self.served();
        // Only over HTTPS: on a plain connection the body runs the feeds itself.
        ctx.binary(wire::payload(&out.0));
    }

    /// A camera's feed ends when the camera is gone; the session goes on.
    fn finished(&mut self, _: &mut Self::Context) {}
}

impl Handler<SessionEvent> for WsSession {
    type Result = ();

    fn handle(&mut self, event: SessionEvent, ctx: &mut Self::Context) {
        self.counters
            .handled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let kind = match event {
            SessionEvent::Fleet(list) => wire::camera_list(&self.visible(list)),
            SessionEvent::Notice(text) => wire::notice(text),
            SessionEvent::AdminNotice(text) if self.is_admin() => wire::notice(text),
            SessionEvent::Close => {
                self.close(
                    ctx,
                    Some(ws::CloseReason {
                        code: ws::CloseCode::Away,
                        description: Some("camfleet is stopping".into()),
                    }),
                );
                return;
            }
            SessionEvent::Status(status) if self.sees(&status.id) => {
                ServerKind::CameraStatus(wire::status(&status))
            }
            // Not for this client: a notice for admins, a camera it may not see.
            SessionEvent::AdminNotice(_) | SessionEvent::Status(_) => return,
            SessionEvent::Dropped(n) => {
                self.dropped_by_hub = n;
                return self.publish_stats(ctx);
            }
        };
        self.send(ctx, kind);
    }
}
