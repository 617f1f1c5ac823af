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

    /// Applies the change, then records it (flushed to disk) before the asker hears ok,
    /// so an acknowledged change survives a crash.
    fn handle(&mut self, msg: SetControl, _: &mut Context<Self>) -> Self::Result {
        let (camera, control, value) = (msg.camera.clone(), msg.control.clone(), msg.value);
        Box::pin(self.route(&camera, msg).into_actor(self).map(
            move |answer, hub, _| {
                if let Ok(Applied { is_override: true, .. }) = answer {
                    if let Err(e) = hub.overrides.save(camera.as_str(), &control, value) {
                        warn!(camera = %camera, "could not save the override of {control}: {e}");
                    }
                }
                answer
            },
        ))
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
                .map(move |answer, hub, _| {
                    if answer.is_ok() {
                        if let Err(e) = hub.overrides.drop_camera(camera.as_str()) {
                            warn!(camera = %camera, "could not drop the saved overrides: {e}");
                        }
                    }
                    answer
                }),
        )
    }
}
