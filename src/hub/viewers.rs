//! The hub's viewers: who watches which camera's frames, within the stream limits.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use actix::prelude::*;

use super::{CommandError, Hub, Unwatch, Viewer, ViewerCount, ViewerId, ViewerKind, Watch};
use crate::camera::CameraId;
use crate::stats::ViewerCounters;

pub(super) struct ViewerEntry {
    pub(super) camera: CameraId,
    client: Option<IpAddr>,
    pub(super) kind: ViewerKind,
    counters: Arc<ViewerCounters>,
    since: SystemTime,
}

/// One viewer, as `/api/viewers` lists it.
#[derive(Debug, Clone)]
pub struct ViewerInfo {
    /// The client's address (MJPEG and snapshots).
    pub client: Option<IpAddr>,
    /// The viewer's id.
    pub id: ViewerId,
    /// The camera watched.
    pub camera: CameraId,
    /// How it is watched.
    pub kind: ViewerKind,
    /// When watching began.
    pub since: SystemTime,
    /// Frames sent.
    pub sent: u64,
    /// Frames skipped because the viewer was behind.
    pub skipped: u64,
    /// JPEG bytes sent.
    pub bytes: u64,
    /// Time from watching to the first frame sent (for H.264, its keyframe), if one was.
    pub first_frame_wait: Option<std::time::Duration>,
}

/// Asks for every viewer.
#[derive(Message)]
#[rtype(result = "Vec<ViewerInfo>")]
pub struct ListViewers;

impl Hub {
    /// Registers a viewer of `camera`, within the stream limits for MJPEG.
    pub(super) fn watch(
        &mut self,
        camera: &CameraId,
        kind: ViewerKind,
        client: Option<IpAddr>,
        ctx: &mut Context<Self>,
    ) -> Result<Viewer, CommandError> {
        let entry = self.camera(camera)?;
        let (watch, latency, status) = (
            entry.watch.clone(),
            Arc::clone(&entry.latency),
            Arc::clone(&entry.status),
        );
        if kind.is_stream() {
            let mjpeg = |v: &&ViewerEntry| v.kind.is_stream();
            let all = self.viewers.values().filter(mjpeg).count();
            let here = self
                .viewers
                .values()
                .filter(mjpeg)
                .filter(|v| v.camera == *camera)
                .count();
            if here >= self.server.max_streams_per_camera as usize {
                return Err(CommandError::LimitReached(format!(
                    "camera `{camera}` already serves {here} video streams (MJPEG, MP4, RTSP), its limit \
                     (server.max_streams_per_camera); close one or raise the limit"
                )));
            }
            let theirs = self
                .viewers
                .values()
                .filter(mjpeg)
                .filter(|v| client.is_some() && v.client == client)
                .count();
            if let Some(ip) =
                client.filter(|_| theirs >= self.server.max_streams_per_client as usize)
            {
                return Err(CommandError::LimitReached(format!(
                    "{ip} already holds {theirs} video streams, the limit for one client \
                     (server.max_streams_per_client); close one of them"
                )));
            }
            if all >= self.server.max_streams as usize {
                return Err(CommandError::LimitReached(format!(
                    "the server already serves {all} video streams, its limit \
                     (server.max_streams); close one or raise the limit"
                )));
            }
        }
        let id = self.next_viewer;
        self.next_viewer += 1;
        let hub = ctx.address().recipient();
        let viewer = Viewer::new(id, hub, camera.clone(), watch, latency, status);
        self.viewers.insert(
            id,
            ViewerEntry {
                camera: camera.clone(),
                client,
                kind,
                counters: Arc::clone(&viewer.counters),
                since: SystemTime::now(),
            },
        );
        self.tell_viewer_count(camera);
        Ok(viewer)
    }

    /// Tells a camera its number of viewers when it changed.
    pub(super) fn tell_viewer_count(&mut self, camera: &CameraId) {
        let n = self
            .viewers
            .values()
            .filter(|v| v.camera == *camera)
            .count();
        if let Some(entry) = self.cameras.iter_mut().find(|c| c.id() == camera) {
            if entry.viewers_told != n {
                entry.viewers_told = n;
                if let Some(addr) = &entry.addr {
                    addr.do_send(ViewerCount(n));
                }
            }
        }
    }
}

impl Handler<Watch> for Hub {
    type Result = MessageResult<Watch>;

    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.watch(&msg.camera, msg.kind, msg.client, ctx))
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
                client: v.client,
                id: *id,
                camera: v.camera.clone(),
                kind: v.kind,
                since: v.since,
                sent: ViewerCounters::get(&v.counters.sent),
                skipped: ViewerCounters::get(&v.counters.skipped),
                bytes: ViewerCounters::get(&v.counters.bytes),
                first_frame_wait: ViewerCounters::get(&v.counters.first_frame_wait_us)
                    .checked_sub(1)
                    .map(std::time::Duration::from_micros),
            })
            .collect();
        list.sort_by_key(|v| v.id);
        MessageResult(list)
    }
}
