//! Commands routed from sessions to cameras, and the saving of control overrides.

use actix::prelude::*;
use tracing::warn;

use super::{Applied, CommandError, GetControls, Hub, ResetControls, SetControl};
use crate::camera::actor::CameraActor;
use crate::camera::control::ControlInfo;
use crate::camera::CameraId;

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
}

impl Handler<SetControl> for Hub {
    type Result = ResponseActFuture<Self, Result<Applied, CommandError>>;

    /// Applies the change, then saves it (flushed to disk, on the writer's thread) before
    /// the asker hears ok, so an acknowledged change survives a crash. A change that could
    /// not be saved is answered with `NotSaved`: it is live, but a restart would lose it.
    fn handle(&mut self, msg: SetControl, _: &mut Context<Self>) -> Self::Result {
        let (camera, control, value) = (msg.camera.clone(), msg.control.clone(), msg.value);
        Box::pin(
            self.route(&camera, msg)
                .into_actor(self)
                .then(move |answer, hub, _| {
                    let saving = match &answer {
                        Ok(applied) if applied.is_override => {
                            let generation = hub.camera(&camera).map_or(0, |c| c.generation);
                            let order = (generation, applied.order);
                            Some(hub.overrides.save(camera.as_str(), &control, value, order))
                        }
                        _ => None,
                    };
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

impl Handler<GetControls> for Hub {
    type Result = ResponseFuture<Result<Vec<ControlInfo>, CommandError>>;

    fn handle(&mut self, msg: GetControls, _: &mut Context<Self>) -> Self::Result {
        let camera = msg.camera.clone();
        self.route(&camera, msg)
    }
}

impl Handler<ResetControls> for Hub {
    type Result = ResponseActFuture<Self, Result<(), CommandError>>;

    /// Drops the saved overrides once the camera has gone back to its configuration, as
    /// `SetControl` saves one once the camera has applied it: a camera that refused or did
    /// not answer keeps its overrides, on the device and on disk alike.
    fn handle(&mut self, msg: ResetControls, _: &mut Context<Self>) -> Self::Result {
        let camera = msg.camera.clone();
        Box::pin(
            self.route(&camera, msg)
                .into_actor(self)
                .then(move |answer, hub, _| {
                    let saving = answer
                        .is_ok()
                        .then(|| hub.overrides.drop_camera(camera.as_str()));
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
                    saved.map_err(|why| {
                        warn!(camera = %camera, "{why}");
                        CommandError::NotSaved { camera, why }
                    })
                }),
        )
    }
}
