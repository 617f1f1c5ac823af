//! The messages a camera actor answers: its own capture step, and the hub's commands.

use std::time::Instant;

use actix::{Handler, SyncContext};

use super::{drop_quietly, CameraActor, Capture};
use crate::camera::control::ControlInfo;
use crate::camera::status::CameraState;
use crate::hub::{
    Applied, CommandError, GetControls, Ping, ResetControls, SetControl, StopCamera, ViewerCount,
};

impl Handler<Capture> for CameraActor {
    type Result = ();

    fn handle(&mut self, _: Capture, ctx: &mut SyncContext<Self>) {
        if matches!(self.state, CameraState::Stopped { .. }) {
            return;
        }
        self.guarded(CameraActor::step);
        self.publish_status();
        ctx.address().do_send(Capture);
    }
}

impl Handler<SetControl> for CameraActor {
    type Result = Result<Applied, CommandError>;

    fn handle(&mut self, msg: SetControl, _: &mut SyncContext<Self>) -> Self::Result {
        let result = self
            .guarded(|me| me.set_control(&msg))
            .unwrap_or_else(|| Err(self.unavailable()));
        self.publish_status();
        result
    }
}

impl Handler<ResetControls> for CameraActor {
    type Result = Result<(), CommandError>;

    fn handle(&mut self, _: ResetControls, _: &mut SyncContext<Self>) -> Self::Result {
        let result = self
            .guarded(CameraActor::reset_controls)
            .ok_or_else(|| self.unavailable());
        self.publish_status();
        result
    }
}

impl Handler<GetControls> for CameraActor {
    type Result = Result<Vec<ControlInfo>, CommandError>;

    fn handle(&mut self, _: GetControls, _: &mut SyncContext<Self>) -> Self::Result {
        let read = self.guarded(|me| me.link.device.as_mut().map(|d| d.controls()));
        match read {
            Some(Some(Ok(controls))) => {
                self.link.controls.clone_from(&controls);
                Ok(controls)
            }
            Some(Some(Err(e))) => {
                self.fail(&e);
                Err(self.unavailable())
            }
            _ => Err(self.unavailable()),
        }
    }
}

impl Handler<Ping> for CameraActor {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut SyncContext<Self>) {}
}

impl Handler<ViewerCount> for CameraActor {
    type Result = ();

    fn handle(&mut self, ViewerCount(n): ViewerCount, _: &mut SyncContext<Self>) {
        self.unwatched_since = match (n, self.unwatched_since) {
            (0, None) => Some(Instant::now()),
            (0, since) => since,
            _ => None,
        };
        self.viewers = n;
        self.status_due = true;
        self.publish_status();
    }
}

impl Handler<StopCamera> for CameraActor {
    type Result = ();

    fn handle(&mut self, _: StopCamera, _: &mut SyncContext<Self>) {
        drop_quietly(self.link.device.take());
        self.slot.clear();
        self.set_state(CameraState::Stopped {
            reason: "stopped".into(),
        });
        self.publish_status();
    }
}
