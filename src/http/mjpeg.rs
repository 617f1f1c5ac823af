//! Plain HTTP video for VLC, ffmpeg, Home Assistant and 3D-printer hosts: an MJPEG stream and a
//! single JPEG snapshot per camera.

use std::time::{Duration, SystemTime};

use actix_web::http::{ConnectionType, Method, Version};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{LocalBoxStream, StreamExt as _};
use serde::Deserialize;

use super::direct::DirectWriter;
use super::error::{ApiError, ErrorBody};
use super::fanout;
use super::feed::FrameFeed;
use super::watchdog::ConnectionSocket;
use super::AppState;
use crate::camera::frame::preview_index;
use crate::camera::status::CameraState;
use crate::camera::{jpeg, CameraId, Frame};
use crate::hub::{CommandError, ErrorCode, KnownCamera, ListCameras, Viewer, ViewerKind, Watch};

/// Separates the parts of an MJPEG stream.
pub const BOUNDARY: &str = "camfleetframe";
/// Highest `?fps=` a client may ask for.
pub const MAX_CLIENT_FPS: u32 = 240;
/// How long a snapshot waits for a frame from a camera that is opening.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(3);
/// A frame older than this is not served as a snapshot; a newer one is awaited.
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(1);

/// Highest rate of a preview stream without `?fps=`: previews are for tiles in a grid.
pub const PREVIEW_FPS: u32 = 10;

#[derive(Deserialize)]
pub struct StreamQuery {
    fps: Option<String>,
    width: Option<String>,
}

/// The position in [`PREVIEW_WIDTHS`](crate::camera::frame::PREVIEW_WIDTHS) of the width `?width=` asks for, if it asks.
fn preview_width(query: &StreamQuery) -> Result<Option<usize>, ApiError> {
    let Some(text) = query.width.as_deref() else {
        return Ok(None);
    };
    let asked = text
        .parse::<u32>()
        .map_err(|_| format!("{text:?} is not a preview width"));
    asked.and_then(preview_index).map(Some).map_err(|why| {
        ApiError::new(
            ErrorCode::OutOfRange,
            format!("width {why}, e.g. ?width=320, or leave it out for full size"),
        )
    })
}

/// The camera named `id`, when the caller may watch it.
async fn allowed(req: &HttpRequest, state: &AppState, id: &str) -> Result<CameraId, ApiError> {
    let access = super::caller::require(req, state, crate::auth::Role::Viewer).await?;
    super::caller::visible(&access, id)?;
    Ok(
        CameraId::parse(id).map_err(|why| CommandError::BadCameraId {
            id: id.to_string(),
            why: why.clone(),
        })?,
    )
}

/// What a `HEAD` request learns without watching: that the camera is there and may be
/// watched by this caller. It never opens an on-demand camera.
pub(super) async fn head(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    response: HttpResponse,
) -> Result<HttpResponse, ApiError> {
    let camera = allowed(req, state, id).await?;
    match state.hub.send(KnownCamera(camera)).await {
        Ok(answer) => answer.map(|()| response).map_err(Into::into),
        Err(_) => Err(ApiError::stopping()),
    }
}

/// Registers as a viewer of the camera named in the path, or says why not.
pub(super) async fn watch(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    kind: ViewerKind,
) -> Result<Viewer, ApiError> {
    let camera = allowed(req, state, id).await?;
    let client = req.peer_addr().map(|a| a.ip());
    match state
        .hub
        .send(Watch {
            camera,
            kind,
            client,
        })
        .await
    {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(ApiError::stopping()),
    }
}

/// `GET /cameras/{id}/stream.mjpg[?fps=N]`: `multipart/x-mixed-replace`, one JPEG per part.
#[utoipa::path(get, path = "/cameras/{id}/stream.mjpg", tag = "streams",
    params(
        ("id" = String, Path, description = "The camera's id from cameras.yaml", example = "lobby"),
        ("fps" = Option<u32>, Query, minimum = 1, maximum = 240,
            description = "At most this many frames a second; the camera's rate without it, 10 for a preview"),
        ("width" = Option<u32>, Query, description = "A preview this many pixels wide (160, 240, 320, 480, 640 or 960), the height in proportion; full size without it"),
    ),
    responses(
        (status = 200, description = "One JPEG per part, without end; while the camera is down, parts carry a NO SIGNAL picture and an `X-No-Signal` header with the reason",
            content_type = "multipart/x-mixed-replace; boundary=camfleetframe", body = String),
        (status = 400, description = "`fps` is not a whole number from 1 to 240, or `width` not a preview width", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 404, description = "No camera has this id (or the account may not see it); the error lists the cameras", body = ErrorBody),
        (status = 503, description = "A limit on streams is reached, or the server is stopping", body = ErrorBody),
    ))]
pub async fn stream(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    stream_of(&req, &path, &query, &state).await
}

/// The MJPEG stream of camera `id`, whichever URL asked for it.
pub(crate) async fn stream_of(
    req: &HttpRequest,
    id: &str,
    query: &StreamQuery,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let width = preview_width(query)?;
    let fps = match query.fps.as_deref().map(str::parse::<u32>) {
        None if width.is_some() => Some(PREVIEW_FPS),
        None => None,
        Some(Ok(f)) if (1..=MAX_CLIENT_FPS).contains(&f) => Some(f),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::OutOfRange,
                format!("fps must be a whole number from 1 to {MAX_CLIENT_FPS}, e.g. ?fps=5"),
            ))
        }
    };
    let mut response = HttpResponse::Ok();
    response
        .content_type(format!("multipart/x-mixed-replace; boundary={BOUNDARY}"))
        .insert_header(("Cache-Control", "no-cache, no-store"));
    if req.method() == Method::HEAD {
        return head(req, state, id, response.finish()).await;
    }
    let viewer = watch(req, state, id, ViewerKind::Mjpeg).await?;
    // HTTP/1.1 clients get chunks, HTTP/1.0 clients the bare parts until the connection
    // closes. Either way the bytes are shared: a part is built once per frame as one chunk,
    // and the bare part is a slice of it.
    let chunked = req.version() >= Version::HTTP_11;
    // The last chunk, when the server ends the stream (a client that left reads nothing).
    let last = chunked.then_some(Bytes::from_static(b"0\r\n\r\n"));
    let feed = FrameFeed::new(viewer, fps).pictures_only();
    let mut shutdown = state.shutdown.clone();
    // On a plain connection the parts go straight to the socket, uncopied.
    let body: LocalBoxStream<'static, Result<Bytes, actix_web::Error>> =
        if let Some(writer) = req.conn_data::<DirectWriter>().cloned() {
            Box::pin(futures_util::stream::once(async move {
                writer.take_over().await;
                let ended = async {
                    tokio::select! {
                        () = shutdown.wait() => {},
                        () = writer.hung_up() => {},
                    }
                };
                if feed.is_paced() || width.is_some() {
                    let mut parts = Parts::new(feed, Box::pin(ended), width, chunked);
                    while let Some(part) = parts.next().await {
                        if writer.write_all(&part).await.is_err() {
                            return Ok(Bytes::new());
                        }
                    }
                } else {
                    // Every frame, as the camera makes it: the camera's fan-out writes it.
                    let shape: fanout::Shape = if chunked {
                        |_, frame| part(frame)
                    } else {
                        |_, frame| unchunked(&part(frame))
                    };
                    let subscription = fanout::join(feed, writer.clone(), shape);
                    tokio::select! {
                        () = subscription.run() => {},
                        () = ended => {},
                    }
                }
                if let Some(last) = last {
                    let _ = writer.write_all(&last).await;
                }
                Ok(Bytes::new())
            }))
        } else {
            // A viewer that hangs up while no frame comes (the camera is down) is
            // noticed at once, so its slot is free at once.
            let socket = req.conn_data::<ConnectionSocket>().cloned();
            let ended = async move {
                let hung_up: LocalBoxFuture<'static, ()> = match socket {
                    Some(socket) => Box::pin(socket.closed_by_peer()),
                    None => Box::pin(std::future::pending()),
                };
                tokio::select! {
                    () = shutdown.wait() => {},
                    () = hung_up => {},
                }
            };
            let parts = Parts::new(feed, Box::pin(ended), width, chunked);
            Box::pin(
                futures_util::stream::unfold(parts, |mut parts| async move {
                    Some((Ok(parts.next().await?), parts))
                })
                .chain(futures_util::stream::iter(last.map(Ok))),
            )
        };
    // actix-http would frame each chunk again per viewer; it is told to send the bytes as
    // they are, and the framing is declared here.
    if chunked {
        response.insert_header(("Transfer-Encoding", "chunked"));
    }
    let mut response = response.streaming(body);
    let head = response.head_mut();
    head.no_chunking(true);
    head.set_connection_type(ConnectionType::Close);
    Ok(response)
}

/// One viewer's MJPEG parts: each frame's shared part (or its preview's), until the camera
/// is gone or `ended` (the server stops, the viewer hangs up).
struct Parts<'a> {
    feed: FrameFeed,
    ended: LocalBoxFuture<'a, ()>,
    width: Option<usize>,
    chunked: bool,
}

impl<'a> Parts<'a> {
    fn new(
        feed: FrameFeed,
        ended: LocalBoxFuture<'a, ()>,
        width: Option<usize>,
        chunked: bool,
    ) -> Self {
        Parts {
            feed,
            ended,
            width,
            chunked,
        }
    }

    async fn next(&mut self) -> Option<Bytes> {
        // The frame first: the end is looked at only while no frame is ready.
        let frame = tokio::select! {
            biased;
            frame = self.feed.next() => frame?,
            () = &mut self.ended => return None,
        };
        let chunk = match self.width {
            None => part(&frame),
            Some(i) => frame
                .previews
                .part(i, || chunk_of(&frame, &frame.preview(i))),
        };
        let bytes = if self.chunked {
            chunk
        } else {
            unchunked(&chunk)
        };
        self.feed.sent(&frame, bytes.len());
        Some(bytes)
    }
}

/// Text that is safe in an HTTP header: printable ASCII, other characters as `?`.
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// One multipart part (the boundary, its headers, the JPEG and the line end) as one
/// HTTP/1.1 chunk, built once per frame by the first viewer that sends it and shared by
/// every other. The NO SIGNAL picture of a failed camera carries the reason in
/// `X-No-Signal`.
pub fn part(frame: &Frame) -> Bytes {
    frame
        .mjpeg_part
        .get_or_init(|| chunk_of(frame, &frame.picture()))
        .clone()
}

/// The part of `frame` carrying `picture` (the frame's JPEG or a preview of it), as one
/// chunk: its size line, the part, the chunk's line end.
fn chunk_of(frame: &Frame, picture: &[u8]) -> Bytes {
    let no_signal = frame
        .no_signal
        .as_deref()
        .map(|why| format!("X-No-Signal: {}\r\n", header_safe(why)))
        .unwrap_or_default();
    let head = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
         X-Frame-Seq: {}\r\nX-Capture-Timestamp: {}\r\n{no_signal}\r\n",
        picture.len(),
        frame.seq,
        frame.timestamp_micros()
    );
    let size = format!("{:x}\r\n", head.len() + picture.len() + 2);
    let mut bytes = Vec::with_capacity(size.len() + head.len() + picture.len() + 4);
    bytes.extend_from_slice(size.as_bytes());
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(picture);
    bytes.extend_from_slice(b"\r\n\r\n");
    Bytes::from(bytes)
}

/// The bare part inside a chunk made by [`chunk_of`], without copying it.
fn unchunked(chunk: &Bytes) -> Bytes {
    let start = chunk.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
    chunk.slice(start..chunk.len().saturating_sub(2).max(start))
}

/// `GET /cameras/{id}/snapshot.jpg`: the newest frame, or a 503 NO SIGNAL picture.
#[utoipa::path(get, path = "/cameras/{id}/snapshot.jpg", tag = "snapshots",
    params(("id" = String, Path, description = "The camera's id from cameras.yaml", example = "lobby"),
        ("width" = Option<u32>, Query, description = "A preview this many pixels wide (160, 240, 320, 480, 640 or 960), the height in proportion; full size without it"),
    ),
    responses(
        (status = 400, description = "`width` is not a preview width", body = ErrorBody),
        (status = 200, description = "The newest frame, less than a second old", content_type = "image/jpeg", body = String,
            headers(("X-Frame-Seq" = u64, description = "The frame's sequence number"),
                    ("X-Capture-Timestamp" = u64, description = "When it was captured, in microseconds since the Unix epoch"))),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 404, description = "No camera has this id (or the account may not see it); the error lists the cameras", body = ErrorBody),
        (status = 503, description = "The camera is down: a NO SIGNAL picture saying why (JPEG), or a limit is reached (JSON)",
            content(
                (String = "image/jpeg"),
                (ErrorBody = "application/json"),
            ),
            headers(("X-Camera-State" = String, description = "The camera's state, e.g. Reconnecting"),
                    ("X-Camera-Reason" = String, description = "Why it is down"))),
    ))]
pub async fn snapshot(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    snapshot_of(&req, &path, &query, &state).await
}

/// The newest frame of camera `id`, whichever URL asked for it.
pub(crate) async fn snapshot_of(
    req: &HttpRequest,
    id: &str,
    query: &StreamQuery,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let width = preview_width(query)?;
    if req.method() == Method::HEAD {
        let response = HttpResponse::Ok()
            .content_type("image/jpeg")
            .insert_header(("Cache-Control", "no-cache, no-store"))
            .finish();
        return head(req, state, id, response).await;
    }
    let mut viewer = watch(req, state, id, ViewerKind::Snapshot).await?;
    let fresh = |f: &Option<Frame>| {
        f.as_ref().is_some_and(|f| {
            f.no_signal.is_none()
                && SystemTime::now()
                    .duration_since(f.captured_at)
                    .is_ok_and(|age| age < SNAPSHOT_MAX_AGE)
        })
    };
    let mut frame = viewer.watch.borrow_and_update().clone();
    let may_come = matches!(
        viewer.status.state,
        CameraState::Opening | CameraState::Idle | CameraState::Streaming
    );
    if !fresh(&frame) && may_come {
        let next = async {
            viewer.watch.changed().await.ok()?;
            viewer.watch.borrow_and_update().clone()
        };
        frame = tokio::time::timeout(SNAPSHOT_WAIT, next)
            .await
            .ok()
            .flatten();
    }
    if let Some(frame) = frame.filter(|f| f.no_signal.is_none()) {
        let picture = width.map_or_else(|| frame.picture(), |i| frame.preview(i));
        return Ok(HttpResponse::Ok()
            .content_type("image/jpeg")
            .insert_header(("Cache-Control", "no-cache, no-store"))
            .insert_header(("X-Frame-Seq", frame.seq.to_string()))
            .insert_header(("X-Capture-Timestamp", frame.timestamp_micros().to_string()))
            .body(picture));
    }
    let camera = viewer.camera.clone();
    drop(viewer);
    let now = state.hub.send(ListCameras).await.unwrap_or_default();
    let status = now.iter().find(|s| s.id == camera);
    let (name, state_text, reason, size) = match status {
        Some(s) => (
            s.name.clone(),
            s.state.to_string(),
            match s.state.reason() {
                "" => "no frame arrived in time".to_string(),
                r => r.to_string(),
            },
            s.format.map_or((640, 480), |f| (f.width, f.height)),
        ),
        None => (
            camera.to_string(),
            "Stopped".into(),
            "camera removed".into(),
            (640, 480),
        ),
    };
    Ok(HttpResponse::ServiceUnavailable()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "no-cache, no-store"))
        .insert_header(("Retry-After", "1"))
        .insert_header(("X-Camera-State", state_text))
        .insert_header(("X-Camera-Reason", header_safe(&reason)))
        .body(jpeg::placeholder(size.0, size.1, &name, &reason)))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::part;
    use crate::camera::CameraId;
    use crate::config::Config;
    use crate::hub::{ViewerKind, Watch};

    /// Far longer than a few frame intervals of the 20 fps camera below; only a server that
    /// stopped sending runs into it.
    const WAIT: Duration = Duration::from_secs(20);

    /// A viewer reading `stream.mjpg` over a socket, its bytes after the response head.
    struct RawViewer {
        socket: tokio::net::TcpStream,
        body: Vec<u8>,
    }

    impl RawViewer {
        async fn open(addr: std::net::SocketAddr) -> RawViewer {
            let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
            socket
                .write_all(b"GET /cameras/cam/stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .await
                .unwrap();
            let mut viewer = RawViewer {
                socket,
                body: Vec::new(),
            };
            let head_end = loop {
                if let Some(i) = find(&viewer.body, b"\r\n\r\n") {
                    break i;
                }
                viewer.read().await;
            };
            let head = String::from_utf8_lossy(&viewer.body[..head_end]).to_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert!(head.contains("transfer-encoding: chunked"), "{head}");
            viewer.body.drain(..head_end + 4);
            viewer
        }

        async fn read(&mut self) {
            let read = tokio::time::timeout(WAIT, self.socket.read_buf(&mut self.body));
            assert!(read.await.expect("bytes in time").unwrap() > 0, "closed");
        }

        /// The bytes of the chunk carrying the part with sequence number `seq`, exactly
        /// as they came (size line, part, line end), or `None` if a newer part came first.
        async fn part(&mut self, seq: u64) -> Option<Vec<u8>> {
            loop {
                while let Some(line) = find(&self.body, b"\r\n") {
                    let size = std::str::from_utf8(&self.body[..line]).unwrap();
                    let size = usize::from_str_radix(size, 16).expect("a chunk size line");
                    let end = line + 2 + size + 2;
                    if self.body.len() < end {
                        break;
                    }
                    let chunk: Vec<u8> = self.body.drain(..end).collect();
                    let data = &chunk[line + 2..line + 2 + size];
                    assert!(
                        data.starts_with(b"--camfleetframe\r\n"),
                        "a chunk is one part"
                    );
                    let head = String::from_utf8_lossy(&data[..find(data, b"\r\n\r\n")?]);
                    let got: u64 = head
                        .lines()
                        .find_map(|l| l.strip_prefix("X-Frame-Seq: "))
                        .expect("a sequence number")
                        .parse()
                        .unwrap();
                    if got == seq {
                        return Some(chunk);
                    }
                    if got > seq {
                        return None;
                    }
                }
                self.read().await;
            }
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[actix_rt::test]
    async fn every_viewer_receives_the_shared_part_byte_for_byte() {
        let yaml = "cameras:\n  - id: cam\n    source: {kind: synthetic, width: 320, height: 240, fps: 20}\n";
        let config = Config::parse(yaml, std::path::Path::new("test.yaml")).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let store = crate::overrides::OverrideStore::in_memory();
        let server = crate::app::start(config, listener, store).unwrap();
        let hub = server.stopper.hub.clone();
        actix_rt::spawn(server.http);

        let mut viewers = [RawViewer::open(addr).await, RawViewer::open(addr).await];
        let watch = Watch {
            camera: CameraId::parse("cam").unwrap(),
            kind: ViewerKind::Snapshot,
            client: None,
        };
        let mut own = hub.send(watch).await.unwrap().unwrap();
        let mut compared = 0;
        while compared < 3 {
            own.watch.changed().await.unwrap();
            let Some(frame) = own.watch.borrow_and_update().clone() else {
                continue;
            };
            let shared = part(&frame);
            // Built once: every call hands out the same bytes.
            assert_eq!(part(&frame).as_ptr(), shared.as_ptr());
            let mut received = Vec::new();
            for viewer in &mut viewers {
                received.push(viewer.part(frame.seq).await);
            }
            if received.iter().all(Option::is_some) {
                for got in received.into_iter().flatten() {
                    assert!(
                        got == shared,
                        "frame {} differs from the shared part",
                        frame.seq
                    );
                }
                compared += 1;
            }
        }
        server.stopper.handle.stop(false).await;
    }
}
