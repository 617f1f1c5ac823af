//! Live video as viewers get it: MJPEG streams, snapshots and frames over the WebSocket.

use std::time::{Duration, Instant};

use camfleet::proto::{self, client_message::Kind as C, server_message::Kind as S, CameraState};

use crate::helpers::*;
use crate::mjpeg_client::{jpeg_size, MjpegClient, Part};

const FPS: u32 = 20;

fn camera(id: &str, extra: &str) -> String {
    format!(
        "  - id: {id}\n    source: {{kind: synthetic, width: 320, height: 240, fps: {FPS}, test_controls: true{extra}}}\n"
    )
}

/// The camera's newest frame number, as the server reports it.
async fn newest_seq(server: &TestServer, camera: &str) -> u64 {
    let list = server.get_json("/api/cameras").await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["camera_id"] == camera)
        .and_then(|c| c["last_frame_seq"].as_u64())
        .unwrap()
}

/// Reads parts until one is at least as new as the camera's newest frame when reading
/// began, three times over: the stream keeps advancing and never serves from a backlog.
/// Returns every part read.
async fn keeps_up(server: &TestServer, client: &mut MjpegClient, camera: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    for _ in 0..3 {
        let target = newest_seq(server, camera).await;
        loop {
            let part = tokio::time::timeout(WAIT, client.next_part())
                .await
                .expect("a part in time")
                .expect("the stream goes on");
            let seq = part.seq;
            parts.push(part);
            if seq >= target {
                break;
            }
        }
    }
    parts
}

/// Whether frames with these capture times (microseconds) came at most `fps` a second.
/// The first comes at once; each later one waits for its turn, so the k-th is captured at
/// least k cap intervals after the first, less one interval of slack for the frame that
/// was on hand when its turn came.
fn at_most_per_second(times: &[u64], fps: u64) -> bool {
    let interval = 1_000_000 / fps;
    let k = times.len() as u64 - 1;
    times[times.len() - 1] - times[0] + interval >= k * interval
}

#[actix_rt::test]
async fn an_mjpeg_stream_keeps_up_with_the_camera_in_whole_jpegs() {
    let server = spawn(&format!("cameras:\n{}", camera("a", "")));
    let mut client = MjpegClient::get(server.addr, "/cameras/a/stream.mjpg", None).await;
    assert_eq!(client.status, 200);
    assert_eq!(
        client.header("content-type"),
        Some("multipart/x-mixed-replace; boundary=camfleetframe")
    );
    let parts = keeps_up(&server, &mut client, "a").await;
    for p in &parts {
        assert_eq!(jpeg_size(&p.jpeg), (320, 240));
    }
    assert!(parts.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[actix_rt::test]
async fn a_slow_viewer_skips_frames_and_never_slows_a_fast_one() {
    let server = spawn(&format!(
        "cameras:\n  - id: a\n    source: {{kind: synthetic, width: 640, height: 480, fps: {FPS}, pattern: noise, prerender: {FPS}}}\n"
    ));
    // A tiny receive buffer makes the slow reader push back on the server at once.
    let mut slow = MjpegClient::get(server.addr, "/cameras/a/stream.mjpg", Some(4096)).await;
    let slow_reader = actix_rt::spawn(async move {
        let mut seqs = Vec::new();
        for _ in 0..5 {
            seqs.push(slow.next_part().await.expect("slow stream goes on").seq);
            actix_rt::time::sleep(Duration::from_secs(1)).await;
        }
        (seqs, slow)
    });
    let mut fast = MjpegClient::get(server.addr, "/cameras/a/stream.mjpg", None).await;
    keeps_up(&server, &mut fast, "a").await;

    let (seqs, _still_connected) = slow_reader.await.unwrap();
    // One part a second from a 20 fps camera: the slow viewer gets the newest frame each
    // time, not a backlog.
    let late_gap = seqs[4] - seqs[3];
    assert!(
        late_gap >= u64::from(FPS) / 2,
        "slow viewer's frames came from a backlog: {seqs:?}"
    );
    let viewers = server.get_json("/api/viewers").await;
    let skipped: Vec<u64> = viewers
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["frames_skipped"].as_u64().unwrap())
        .collect();
    // Every frame between two that the slow viewer got was skipped, and counted.
    let gaps = seqs[4] - seqs[0] - 4;
    assert!(
        skipped.iter().any(|s| *s >= gaps),
        "skips per viewer: {skipped:?}, the slow viewer's frames: {seqs:?}"
    );
}

#[actix_rt::test]
async fn snapshots_are_jpegs_and_a_faulted_camera_says_no_signal() {
    let server = spawn(&format!("cameras:\n{}{}", camera("a", ""), camera("b", "")));
    let snap = MjpegClient::get(server.addr, "/cameras/a/snapshot.jpg", None).await;
    assert_eq!(snap.status, 200);
    assert_eq!(snap.header("content-type"), Some("image/jpeg"));
    assert_eq!(jpeg_size(&snap.body().await), (320, 240));

    let mut client = server.client().await;
    client.subscribe(&["b"]).await;
    client.streaming("b").await;
    client.unplug("b").await;
    let snap = MjpegClient::get(server.addr, "/cameras/b/snapshot.jpg", None).await;
    assert_eq!(snap.status, 503);
    assert_eq!(snap.header("content-type"), Some("image/jpeg"));
    assert_eq!(snap.header("x-camera-state"), Some("Reconnecting"));
    assert!(snap
        .header("x-camera-reason")
        .unwrap()
        .contains("unplugged"));
    assert_eq!(jpeg_size(&snap.body().await), (320, 240));

    let missing = MjpegClient::get(server.addr, "/cameras/zzz/snapshot.jpg", None).await;
    assert_eq!(missing.status, 404);
    let body = String::from_utf8(missing.body().await).unwrap();
    assert!(body.contains("no camera has id `zzz`"), "{body}");
}

#[actix_rt::test]
async fn websocket_frames_come_for_subscribed_cameras_only_within_max_fps() {
    let server = spawn(&format!(
        "cameras:\n{}{}{}",
        camera("a", ""),
        camera("b", ""),
        camera("c", "")
    ));
    let mut client = server.client().await;
    client.watch(&["a", "b"], 5).await;
    // Capture times of the frames each camera sent, until each sent eight.
    let mut times = std::collections::HashMap::<String, Vec<u64>>::new();
    while ["a", "b"]
        .iter()
        .any(|c| times.get(*c).map_or(0, Vec::len) < 8)
    {
        match client.next().await {
            Some(Ok(S::Frame(f))) => {
                assert_ne!(f.camera_id, "c", "frames of a camera not subscribed to");
                assert_eq!(jpeg_size(&f.jpeg), (320, 240));
                times
                    .entry(f.camera_id.clone())
                    .or_default()
                    .push(f.capture_timestamp);
            }
            Some(Ok(S::CameraStatus(s))) => assert_ne!(s.camera_id, "c"),
            _ => {}
        }
    }
    for (cam, t) in &times {
        assert!(
            at_most_per_second(t, 5),
            "camera {cam}: more than max_fps 5: {t:?}"
        );
    }
}

#[actix_rt::test]
async fn on_demand_cameras_open_only_while_watched() {
    let server = spawn(&format!(
        "cameras:\n  - id: od\n    capture: on_demand\n    idle_timeout_secs: 1\n    source: {{kind: synthetic, width: 320, height: 240, fps: {FPS}}}\n"
    ));
    let mut client = server.client().await;
    client.subscribe(&["od"]).await;
    let idle = client.status_where("od", |_| true).await;
    assert_eq!(state(&idle), CameraState::Idle);
    assert_eq!(idle.capture_mode, "on_demand");
    assert_eq!(idle.frames_captured, 0);

    let mut viewer = MjpegClient::get(server.addr, "/cameras/od/stream.mjpg", None).await;
    assert_eq!(
        jpeg_size(&viewer.next_part().await.unwrap().jpeg),
        (320, 240)
    );
    let watched = client
        .status_where("od", |s| {
            state(s) == CameraState::Streaming && s.viewers == 1
        })
        .await;
    drop(viewer);
    let closed = client
        .status_where("od", |s| state(s) == CameraState::Idle)
        .await;
    assert_eq!(closed.viewers, 0);
    assert!(closed.frames_captured > watched.frames_captured);
    // Closed means closed: nothing is captured while idle (an idle camera still reports
    // once a second).
    for _ in 0..2 {
        let s = client.status_where("od", |_| true).await;
        assert_eq!(state(&s), CameraState::Idle);
        assert_eq!(s.frames_captured, closed.frames_captured);
    }
}

#[actix_rt::test]
async fn stream_limits_unknown_cameras_and_rate_caps() {
    let server = spawn(&format!(
        "server:\n  max_streams_per_camera: 2\n  max_streams: 3\ncameras:\n{}{}",
        camera("a", ""),
        camera("b", "")
    ));
    let path = "/cameras/a/stream.mjpg";
    let _one = MjpegClient::get(server.addr, path, None).await;
    let _two = MjpegClient::get(server.addr, path, None).await;
    let three = MjpegClient::get(server.addr, path, None).await;
    assert_eq!(three.status, 503);
    let body = String::from_utf8(three.body().await).unwrap();
    assert!(body.contains("max_streams_per_camera"), "{body}");

    let mut capped = MjpegClient::get(server.addr, "/cameras/b/stream.mjpg?fps=4", None).await;
    assert_eq!(capped.status, 200);
    let mut times = Vec::new();
    while times.len() < 6 {
        times.push(
            capped
                .next_part()
                .await
                .expect("the stream goes on")
                .captured_us,
        );
    }
    assert!(
        at_most_per_second(&times, 4),
        "more parts than fps=4: {times:?}"
    );
    let over = MjpegClient::get(server.addr, "/cameras/b/stream.mjpg", None).await;
    assert_eq!(over.status, 503);
    assert!(String::from_utf8(over.body().await)
        .unwrap()
        .contains("server.max_streams"));

    let bad = MjpegClient::get(server.addr, "/cameras/b/stream.mjpg?fps=fast", None).await;
    assert_eq!(bad.status, 400);
    let missing = MjpegClient::get(server.addr, "/cameras/nope/stream.mjpg", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("application/json"));
}

#[actix_rt::test]
async fn corrupt_frames_are_dropped_and_counted() {
    let server = spawn(&format!("cameras:\n{}", camera("a", "")));
    let mut client = server.client().await;
    client.subscribe(&["a"]).await;
    client.streaming("a").await;
    let mut viewer = MjpegClient::get(server.addr, "/cameras/a/stream.mjpg", None).await;
    // Each press damages one of the next frames.
    for _ in 0..3 {
        assert!(client.set_control("a", "corrupt_frame", 1).await.ok);
    }
    client.status_where("a", |s| s.frames_corrupt == 3).await;
    for _ in 0..20 {
        let part = viewer.next_part().await.unwrap();
        assert_eq!(jpeg_size(&part.jpeg), (320, 240));
    }
}

#[actix_rt::test]
async fn raw_frames_are_encoded_once_per_frame_and_only_while_watched() {
    let server = spawn(&format!(
        "cameras:\n{}",
        camera("raw", ", pixel_format: YUYV")
    ));
    let mut client = server.client().await;
    client.subscribe(&["raw"]).await;
    let unwatched = client
        .status_where("raw", |s| {
            state(s) == CameraState::Streaming && s.frames_captured > 10
        })
        .await;
    assert_eq!(unwatched.pixel_format, "YUYV");
    assert_eq!(unwatched.frames_encoded, 0, "encoded with nobody watching");

    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(MjpegClient::get(server.addr, "/cameras/raw/stream.mjpg", None).await);
    }
    let start = client.status_where("raw", |s| s.viewers == 3).await;
    for v in &mut viewers {
        assert_eq!(jpeg_size(&v.next_part().await.unwrap().jpeg), (320, 240));
    }
    let end = client
        .status_where("raw", |s| s.frames_captured >= start.frames_captured + 20)
        .await;
    let captured = end.frames_captured - start.frames_captured;
    let encoded = end.frames_encoded - start.frames_encoded;
    // Once per captured frame, not once per viewer.
    assert!(
        encoded <= captured + 1,
        "{encoded} encodes for {captured} frames"
    );
    assert!(
        encoded + 2 >= captured,
        "{encoded} encodes for {captured} frames"
    );
}

#[actix_rt::test]
async fn stopping_the_server_ends_streams_at_once() {
    let server = spawn(&format!("cameras:\n{}", camera("a", "")));
    let mut viewer = MjpegClient::get(server.addr, "/cameras/a/stream.mjpg", None).await;
    viewer.next_part().await.unwrap();
    let started = Instant::now();
    drop(server);
    while viewer.next_part().await.is_some() {}
    // Stopping waits at most for connections to close and for cameras to let go.
    let bound = Duration::from_secs(camfleet::app::SHUTDOWN_TIMEOUT_SECS)
        + camfleet::CAMERA_STOP_TIMEOUT
        + MARGIN;
    assert!(
        started.elapsed() < bound,
        "took {:?}, more than {bound:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn clients_that_stop_reading_lose_their_slots() {
    use tokio::io::AsyncWriteExt;
    let server = spawn(&format!(
        "server:\n  max_sessions: 2\ncameras:\n  - id: a\n    source: {{kind: synthetic, width: 640, height: 480, fps: {FPS}, pattern: noise, prerender: {FPS}}}\n"
    ));
    // Two clients take every frame, then never read again; their receive buffers are tiny.
    let mut frozen = Vec::new();
    for _ in 0..2 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(server.addr).await.unwrap();
        let mut ws = raw_websocket_on(stream).await;
        let subscribe = C::Subscribe(proto::Subscribe {
            camera_ids: vec!["a".into()],
            request_id: 1,
            send_frames: true,
            max_fps: 0,
            preview_width: 0,
        });
        ws.write_all(&masked_frame(subscribe)).await.unwrap();
        frozen.push(ws);
    }
    // Every slot is taken, so a third client is turned away...
    let turned_away = Instant::now();
    let mut third = server.client().await;
    match third.next().await {
        Some(Err(awc::ws::Frame::Close(Some(reason)))) => {
            assert_eq!(reason.code, awc::ws::CloseCode::Again);
        }
        other => panic!("expected close 1013, got {other:?}"),
    }
    // ... until the frozen ones are cut: within the client timeout, one heartbeat for the
    // watchdog to notice, and a margin.
    let bound = camfleet::CLIENT_TIMEOUT + camfleet::HEARTBEAT_INTERVAL + MARGIN;
    loop {
        let mut client = server.client().await;
        client.send(C::ListCameras(proto::ListCameras {})).await;
        let answer = client.next().await;
        if matches!(answer, Some(Ok(S::CameraList(_)))) {
            break;
        }
        assert!(
            turned_away.elapsed() < bound,
            "frozen clients still hold their slots after {:?}: {answer:?}",
            turned_away.elapsed()
        );
        // Pacing between attempts, not a wait for anything.
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    drop(frozen);
}

#[actix_rt::test]
async fn previews_decode_at_the_asked_width_in_proportion() {
    let server = spawn(&format!("cameras:\n{}", camera("cam", "")));
    for (width, height) in [(160, 120), (240, 180)] {
        let snap = MjpegClient::get(
            server.addr,
            &format!("/cameras/cam/snapshot.jpg?width={width}"),
            None,
        )
        .await;
        assert_eq!(snap.status, 200);
        assert_eq!(jpeg_size(&snap.body().await), (width, height));
        let mut stream = MjpegClient::get(
            server.addr,
            &format!("/cameras/cam/stream.mjpg?width={width}"),
            None,
        )
        .await;
        for _ in 0..2 {
            let part = stream.next_part().await.expect("a preview part");
            assert_eq!(jpeg_size(&part.jpeg), (width, height));
        }
    }
    // No wider than the camera: the frame as it is.
    let snap = MjpegClient::get(server.addr, "/cameras/cam/snapshot.jpg?width=640", None).await;
    assert_eq!(jpeg_size(&snap.body().await), (320, 240));
    for path in ["stream.mjpg", "snapshot.jpg"] {
        let bad =
            MjpegClient::get(server.addr, &format!("/cameras/cam/{path}?width=123"), None).await;
        assert_eq!(bad.status, 400);
        let body = String::from_utf8(bad.body().await).unwrap();
        assert!(
            body.contains("not a preview width") && body.contains("320"),
            "{body}"
        );
    }
}

#[actix_rt::test]
async fn a_preview_is_made_once_per_frame_however_many_watch_it() {
    let server = spawn(&format!("cameras:\n{}", camera("cam", "")));
    let mut client = server.client().await;
    client.subscribe(&["cam"]).await;
    // A full-size viewer makes no preview.
    let mut full = MjpegClient::get(server.addr, "/cameras/cam/stream.mjpg", None).await;
    let start = client.status_where("cam", |s| s.viewers == 1).await;
    full.next_part().await.expect("a part");
    let unasked = client
        .status_where("cam", |s| s.frames_captured >= start.frames_captured + 10)
        .await;
    assert_eq!(
        unasked.previews_encoded, 0,
        "previews made with none asked for"
    );
    drop(full);

    let path = format!("/cameras/cam/stream.mjpg?width=160&fps={FPS}");
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(MjpegClient::get(server.addr, &path, None).await);
    }
    let start = client.status_where("cam", |s| s.viewers == 3).await;
    for v in &mut viewers {
        assert_eq!(jpeg_size(&v.next_part().await.unwrap().jpeg), (160, 120));
    }
    let end = client
        .status_where("cam", |s| s.frames_captured >= start.frames_captured + 20)
        .await;
    let captured = end.frames_captured - start.frames_captured;
    let made = end.previews_encoded - start.previews_encoded;
    // Once per frame, not once per viewer: three viewers of every frame would make three.
    assert!(made > 0, "no preview made");
    assert!(made <= captured + 1, "{made} previews of {captured} frames");
}

#[actix_rt::test]
async fn websocket_previews_come_at_the_asked_width_made_once_for_every_session() {
    let server = spawn(&format!("cameras:\n{}", camera("cam", "")));
    let subscribe = |request_id, preview_width| {
        C::Subscribe(proto::Subscribe {
            camera_ids: vec!["cam".into()],
            request_id,
            send_frames: true,
            max_fps: 0,
            preview_width,
        })
    };
    let mut refused = server.client().await;
    refused.send(subscribe(7, 123)).await;
    let answer = refused.result(7).await;
    assert!(!answer.ok);
    assert!(
        answer.error.contains("preview_width 123") && answer.error.contains("320"),
        "{}",
        answer.error
    );

    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut client = server.client().await;
        client.send(subscribe(1, 160)).await;
        assert!(client.result(1).await.ok);
        sessions.push(client);
    }
    let start = sessions[0].status_where("cam", |s| s.viewers == 3).await;
    let mut last_seq = 0;
    for client in &mut sessions {
        let frame = client
            .recv_until(|m| match m {
                S::Frame(f) => Some(f.clone()),
                _ => None,
            })
            .await;
        assert_eq!(jpeg_size(&frame.jpeg), (160, 120));
        last_seq = last_seq.max(frame.seq);
    }
    let end = sessions[0]
        .status_where("cam", |s| s.frames_captured >= start.frames_captured + 20)
        .await;
    let captured = end.frames_captured - start.frames_captured;
    let made = end.previews_encoded - start.previews_encoded;
    assert!(made > 0 && last_seq > 0, "no preview made");
    assert!(made <= captured + 1, "{made} previews of {captured} frames");
}

#[actix_rt::test]
async fn a_camera_that_encodes_slower_than_it_captures_keeps_its_frames_in_order() {
    // At 240 fps a 3840x2160 raw frame has 4.2 ms to be encoded, less than it takes on any
    // machine: the camera moves its encoding to encoder threads, which finish out of order.
    let server = spawn(
        "cameras:\n  - id: fast\n    source: {kind: synthetic, width: 3840, height: 2160, fps: 240, pattern: noise, prerender: 4, pixel_format: YUYV}\n",
    );
    let mut viewers = Vec::new();
    for _ in 0..2 {
        viewers.push(MjpegClient::get(server.addr, "/cameras/fast/stream.mjpg", None).await);
    }
    let mut client = server.client().await;
    client.subscribe(&["fast"]).await;
    let pooled = client.status_where("fast", |s| s.encoder_threads > 0).await;
    assert!(pooled.encoder_threads >= 2, "{}", pooled.encoder_threads);
    for viewer in &mut viewers {
        let mut last: Option<Part> = None;
        for _ in 0..40 {
            let part = viewer.next_part().await.expect("the stream goes on");
            assert_eq!(jpeg_size(&part.jpeg), (3840, 2160));
            if let Some(before) = &last {
                assert!(part.seq > before.seq, "{} after {}", part.seq, before.seq);
                assert!(
                    part.captured_us > before.captured_us,
                    "frame {} captured before frame {}",
                    part.seq,
                    before.seq
                );
            }
            last = Some(part);
        }
    }
}
