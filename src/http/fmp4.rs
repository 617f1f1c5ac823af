//! `GET /cameras/{id}/stream.mp4`: the live H.264 of a camera that sends it, as fragmented
//! MP4 that VLC, ffmpeg, mpv and a browser's `<video>` play, without decoding or encoding
//! anything.
//!
//! The stream starts at the camera's last keyframe (so a player shows a picture at once)
//! with an initialisation segment made from that keyframe's parameter sets; then each
//! frame is one fragment, sent as it comes. A player that falls a GOP behind skips to the
//! next keyframe, as every H.264 viewer does ([`FrameFeed`]).

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;

use super::error::{ApiError, ErrorBody};
use super::feed::FrameFeed;
use super::mjpeg::{head, watch};
use super::watchdog::ConnectionSocket;
use super::AppState;
use crate::camera::h264::{nal, nal_type, nal_units, Clock, Sps};
use crate::camera::Frame;
use crate::hub::{ErrorCode, ViewerKind};
use crate::mp4::{fragment, init_segment, Sample, Track};

/// `GET /cameras/{id}/stream.mp4`.
#[utoipa::path(get, path = "/cameras/{id}/stream.mp4", tag = "streams",
    params(("id" = String, Path, description = "The camera's id from cameras.yaml", example = "printer")),
    responses(
        (status = 200, description = "Live fragmented MP4 of the camera's H.264, untouched: an initialisation segment, then one fragment per frame from the last keyframe on", content_type = "video/mp4"),
        (status = 409, description = "The camera does not send H.264; its MJPEG stream is at /cameras/{id}/stream.mjpg", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 404, description = "No camera has this id (or the account may not see it); the error lists the cameras", body = ErrorBody),
        (status = 503, description = "A limit on streams is reached, or the server is stopping", body = ErrorBody),
    ))]
pub async fn stream(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let mut response = HttpResponse::Ok();
    response
        .content_type("video/mp4")
        .insert_header(("Cache-Control", "no-cache, no-store"));
    if req.method() == Method::HEAD {
        return head(&req, &state, &id, response.finish()).await;
    }
    let viewer = watch(&req, &state, &id, ViewerKind::Mp4).await?;
    let sends_jpeg = viewer
        .watch
        .borrow()
        .as_ref()
        .is_some_and(|f| f.h264.is_none() && f.no_signal.is_none());
    if sends_jpeg {
        return Err(ApiError::new(
            ErrorCode::DeviceRefused,
            format!(
                "camera `{id}` sends JPEG, not H.264, so it has no MP4 stream; watch it at \
                 /cameras/{id}/stream.mjpg, or set `pixel_format: H264` if the camera offers \
                 it (`camfleet devices` lists what it offers)"
            ),
        ));
    }
    let feed = FrameFeed::new(viewer, None);
    let shutdown = state.shutdown.clone();
    let hung_up: LocalBoxFuture<'static, ()> = match req.conn_data::<ConnectionSocket>() {
        Some(socket) => Box::pin(socket.clone().closed_by_peer()),
        None => Box::pin(std::future::pending()),
    };
    let fragments = futures_util::stream::unfold(
        (feed, shutdown, hung_up, Muxer::default()),
        move |(mut feed, mut shutdown, mut hung_up, mut muxer)| async move {
            loop {
                let frame = tokio::select! {
                    frame = feed.next() => frame?,
                    () = shutdown.wait() => return None,
                    () = &mut hung_up => return None,
                };
                if let Some(bytes) = muxer.push(&frame) {
                    feed.sent(&frame, bytes.len());
                    let next = (feed, shutdown, hung_up, muxer);
                    return Some((Ok::<_, actix_web::Error>(bytes), next));
                }
            }
        },
    );
    Ok(response.streaming(fragments))
}

/// Turns a viewer's H.264 frames into MP4: the initialisation segment before the first
/// keyframe (and again if the picture's parameters change), then a fragment per frame.
#[derive(Default)]
struct Muxer {
    /// The parameter sets the initialisation segment was made from.
    track: Option<(Vec<u8>, Vec<u8>)>,
    clock: Option<Clock>,
    fragments: u32,
}

impl Muxer {
    /// The bytes to send for `frame`; `None` for a frame that has none (not H.264, or
    /// before the first keyframe).
    fn push(&mut self, frame: &Frame) -> Option<Bytes> {
        let h264 = frame.h264.as_ref()?;
        let mut out = Vec::new();
        if h264.keyframe {
            let find = |kind| {
                nal_units(&h264.access_unit)
                    .find(|u| nal_type(u) == Some(kind))
                    .map(<[u8]>::to_vec)
            };
            let (sps, pps) = (find(nal::SPS)?, find(nal::PPS)?);
            if self.track.as_ref() != Some(&(sps.clone(), pps.clone())) {
                let size = Sps::parse(&sps).ok()?;
                out = init_segment(&Track {
                    width: size.width,
                    height: size.height,
                    sps: sps.clone(),
                    pps: pps.clone(),
                });
                self.track = Some((sps, pps));
                self.clock = Some(Clock::new(h264.fps));
                self.fragments = 0;
            }
        }
        let clock = self.clock.as_mut()?;
        let decode_time = clock.ticks(frame.captured_at);
        self.fragments += 1;
        out.extend(fragment(
            self.fragments,
            decode_time,
            &[Sample {
                access_unit: &h264.access_unit,
                duration: clock.frame_ticks(),
                keyframe: h264.keyframe,
            }],
        ));
        Some(Bytes::from(out))
    }
}
