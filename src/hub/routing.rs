//! Commands routed from sessions to cameras, and the saving of control overrides.

use actix::prelude::*;
use tracing::{info, warn};

use super::{Applied, CommandError, GetControls, Hub, ReadControls, ResetControls, SetControl};
use crate::camera::actor::CameraActor;
use crate::camera::control::ControlInfo;
use crate::camera::CameraId;
use crate::overrides::Saving;

impl Hub {
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
        let timeout = self.timing.command_timeout;
        Box::pin(async move {
            let Some(addr) = addr else {
                return Err(CommandError::NotRunning(camera));
            };
            match addr.send(msg).timeout(timeout).await {
                Ok(answer) => answer,
                Err(MailboxError::Timeout) => Err(CommandError::Timeout(camera, timeout)),
                Err(MailboxError::Closed) => Err(CommandError::NotRunning(camera)),
            }
        })
    }

    /// Routes a command that changes the overrides: once the camera has carried it out,
    /// `save` (given its answer) starts the write, and the asker hears the answer only once
    /// the write is done. A write that fails turns the answer into `NotSaved`: the change is
    /// live, but a restart would lose it.
    fn route_and_save<M, T>(
        &mut self,
        camera: CameraId,
        msg: M,
        save: impl FnOnce(&T, &mut Hub) -> Option<Saving> + 'static,
    ) -> ResponseActFuture<Self, Result<T, CommandError>>
    where
        M: Message<Result = Result<T, CommandError>> + Send + 'static,
        T: Send + 'static,
        CameraActor: Handler<M>,
    {
        Box::pin(
            self.route(&camera, msg)
                .into_actor(self)
                .then(move |answer, hub, _| {
                    let saving = answer.as_ref().ok().and_then(|done| save(done, hub));
                    async move {
                        let saved = match saving {
                            Some(saving) => Some(saving.outcome().await),
                            None => None,
                        };
                        (answer, saved, camera)
                    }
                    .into_actor(hub)
                })
                .map(|(answer, saved, camera), hub, _| {
                    let Some(saved) = saved else { return answer };
                    hub.overrides.note(&saved);
                    match saved {
                        Ok(()) => answer,
                        Err(why) => {
                            warn!(camera = %camera, "{why}");
                            Err(CommandError::NotSaved { camera, why })
                        }
                    }
                }),
        )
    }
}

impl Handler<SetControl> for Hub {
    type Result = ResponseActFuture<Self, Result<Applied, CommandError>>;

    /// Applies the change, then saves it (flushed to disk, on the writer's thread) before
    /// the asker hears ok, so an acknowledged change survives a crash.
    fn handle(&mut self, msg: SetControl, _: &mut Context<Self>) -> Self::Result {
        let (camera, control, value) = (msg.camera.clone(), msg.control.clone(), msg.value);
        let by = msg.by.clone();
        let id = camera.clone();
        // The start of the camera that this command reaches; it numbers its changes.
        let entry = self.camera(&camera).ok();
        let generation = entry.map_or(0, |c| c.generation);
        let old = entry.and_then(|c| {
            c.status
                .controls
                .iter()
                .find(|(n, _)| *n == control)
                .map(|(_, v)| *v)
        });
        let saved_by = by.account.clone();
        let answered = camera.clone();
        Box::pin(
            self.route_and_save(camera, msg, move |applied: &Applied, hub| {
                info!(
                    camera = %id,
                    control = %control,
                    old = ?old,
                    new = ?applied.control.value,
                    account = %by.account,
                    address = ?by.address,
                    "control changed"
                );
                if !applied.is_override {
                    return None;
                }
                let order = (generation, applied.order);
                Some(
                    hub.overrides
                        .save(id.as_str(), &control, value, order, &saved_by),
                )
            })
            .map(move |answer, hub, _| {
                answer.map(|mut applied| {
                    if applied.is_override {
                        applied.saved = hub
                            .overrides
                            .last_change(answered.as_str(), &applied.control.name)
                            .cloned();
                    }
                    applied
                })
            }),
        )
    }
}

impl Handler<GetControls> for Hub {
    type Result = ResponseFuture<Result<Vec<ControlInfo>, CommandError>>;

    fn handle(&mut self, msg: GetControls, _: &mut Context<Self>) -> Self::Result {
        let camera = msg.camera.clone();
        self.route(&camera, msg)
    }
}

impl Handler<ReadControls> for Hub {
    type Result = ResponseActFuture<
        Self,
        Result<
            (
                Vec<ControlInfo>,
                Vec<(String, crate::overrides::LastChange)>,
            ),
            CommandError,
        >,
    >;

    fn handle(&mut self, msg: ReadControls, _: &mut Context<Self>) -> Self::Result {
        let camera = msg.camera.clone();
        Box::pin(
            self.route(
                &msg.camera,
                GetControls {
                    camera: msg.camera.clone(),
                },
            )
            .into_actor(self)
            .map(move |answer, hub, _| {
                answer.map(|controls| {
                    let changes = controls
                        .iter()
                        .filter_map(|c| {
                            hub.overrides
                                .last_change(camera.as_str(), &c.name)
                                .map(|l| (c.name.clone(), l.clone()))
                        })
                        .collect();
                    (controls, changes)
                })
            }),
        )
    }
}

impl Handler<ResetControls> for Hub {
    type Result = ResponseActFuture<Self, Result<(), CommandError>>;

    /// Drops the saved overrides once the camera has gone back to its configuration, as
    /// `SetControl` saves one once the camera has applied it: a camera that refused or did
    /// not answer keeps its overrides, on the device and on disk alike.
    fn handle(&mut self, msg: ResetControls, _: &mut Context<Self>) -> Self::Result {
        let camera = msg.camera.clone();
        let id = camera.clone();
        let by = msg.by.clone();
        self.route_and_save(camera, msg, move |(), hub| {
            info!(camera = %id, account = %by.account, address = ?by.address, "controls reset to the configuration");
            Some(hub.overrides.drop_camera(id.as_str()))
        })
    }
}
