//! Failure is a state: a camera that vanishes, panics or stalls comes back by itself, with
//! its controls re-applied, and the other cameras never notice.

use camfleet::proto::{server_message::Kind as S, CameraState};

use crate::helpers::*;
use crate::mjpeg_client::{jpeg_size, MjpegClient};

const FLEET: &str = "\
cameras:
  - id: a
    source: {kind: synthetic, width: 160, height: 120, fps: 20, test_controls: true}
    controls:
      brightness: 150
  - id: b
    source: {kind: synthetic, width: 160, height: 120, fps: 20}
";

/// Reads statuses until camera `a` is back to Streaming after a fault, checking that
/// camera `b` keeps capturing meanwhile. Returns `a`'s status when it is back.
async fn until_a_recovers(client: &mut Client, reason_has: &str) -> camfleet::proto::CameraStatus {
    let down = client
        .status_where("a", |s| state(s) == CameraState::Reconnecting)
        .await;
    assert!(down.reason.contains(reason_has), "reason: {}", down.reason);
    let mut b_counts = Vec::new();
    let up = client
        .recv_until(|k| match k {
            S::CameraStatus(s) if s.camera_id == "b" => {
                b_counts.push(s.frames_captured);
                None
            }
            S::CameraStatus(s) if s.camera_id == "a" && state(s) == CameraState::Streaming => {
                Some(s.clone())
            }
            _ => None,
        })
        .await;
    assert!(
        b_counts.windows(2).all(|w| w[0] < w[1]),
        "camera b stalled while a was down: {b_counts:?}"
    );
    up
}

#[actix_rt::test]
async fn an_unplugged_camera_comes_back_with_its_controls() {
    let server = spawn_with_timing(FLEET, fast_timing());
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    client.streaming("a").await;
    assert!(client.set_control("a", "contrast", 90).await.ok);
    assert!(client.set_control("a", "reconnect_delay_ms", 300).await.ok);
    let b_before = client.status_where("b", |_| true).await.frames_captured;

    assert!(client.set_control("a", "disconnect", 1).await.ok);
    let up = until_a_recovers(&mut client, "unplugged").await;
    assert_eq!(up.reconnects, 1);
    // Re-applied after the reopen: the file's value and the live change alike.
    assert_eq!(control_value(&up, "brightness"), Some(150));
    assert_eq!(control_value(&up, "contrast"), Some(90));
    let b_after = client.status_where("b", |_| true).await.frames_captured;
    assert!(b_after > b_before, "b went from {b_before} to {b_after}");
    // And frames flow again.
    let seq = up.frames_captured;
    client.status_where("a", |s| s.frames_captured > seq).await;
}

#[actix_rt::test]
async fn a_panicking_camera_recovers_and_the_process_survives() {
    let server = spawn_with_timing(FLEET, fast_timing());
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    client.streaming("a").await;
    assert!(client.set_control("a", "panic", 1).await.ok);
    let up = until_a_recovers(&mut client, "panicked").await;
    assert_eq!(control_value(&up, "brightness"), Some(150));
    let health = awc::Client::new()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The camera answers commands again.
    assert!(client.set_control("a", "brightness", 10).await.ok);
}

#[actix_rt::test]
async fn a_stalled_camera_is_reopened() {
    let server = spawn_with_timing(FLEET, fast_timing());
    let mut client = server.client().await;
    client.subscribe(&["a", "b"]).await;
    client.streaming("a").await;
    assert!(client.set_control("a", "stall", 1).await.ok);
    until_a_recovers(&mut client, "no frame for").await;
    // The stall was a live change, so it sticks across the reopen until it is undone.
    assert!(client.set_control("a", "stall", 0).await.ok);
    let now = client.status_where("a", |_| true).await.frames_captured;
    client
        .status_where("a", |s| s.frames_captured > now + 5)
        .await;
}

#[actix_rt::test]
async fn viewers_see_no_signal_with_the_reason_then_live_frames_again() {
    let server = spawn_with_timing(FLEET, fast_timing());
    let mut client = server.client().await;
    client.watch(&["a"], 0).await;
    client.streaming("a").await;
    let mut viewer = MjpegClient::get(server.addr, "/cameras/a/stream.mjpg", None).await;
    let live = viewer.next_part().await.expect("a live picture");
    assert_eq!(live.no_signal, None);

    assert!(client.set_control("a", "reconnect_delay_ms", 300).await.ok);
    assert!(client.set_control("a", "disconnect", 1).await.ok);
    let dark = loop {
        let part = viewer
            .next_part()
            .await
            .expect("the stream goes on while the camera is down");
        if part.no_signal.is_some() {
            break part;
        }
    };
    let reason = dark.no_signal.clone().unwrap();
    assert!(reason.contains("unplugged"), "reason: {reason}");
    assert_eq!(
        jpeg_size(&dark.jpeg),
        (160, 120),
        "the NO SIGNAL picture is a JPEG"
    );
    // The WebSocket viewer sees it too, with the reason.
    let ws_reason = client
        .recv_until(|k| match k {
            S::Frame(f) if f.camera_id == "a" && !f.no_signal.is_empty() => {
                Some(f.no_signal.clone())
            }
            _ => None,
        })
        .await;
    assert!(ws_reason.contains("unplugged"), "reason: {ws_reason}");

    let back = loop {
        let part = viewer
            .next_part()
            .await
            .expect("the stream goes on after recovery");
        if part.no_signal.is_none() {
            break part;
        }
    };
    assert!(back.seq > dark.seq);
    client
        .recv_until(|k| match k {
            S::Frame(f) if f.camera_id == "a" && f.no_signal.is_empty() => Some(()),
            _ => None,
        })
        .await;
}

#[actix_rt::test]
async fn healthz_names_a_camera_that_does_not_answer() {
    let server = spawn_with_timing(FLEET, fast_timing());
    let mut client = server.client().await;
    client.subscribe(&["a"]).await;
    client.streaming("a").await;
    let health = || async {
        let mut r = awc::Client::new()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        let body = String::from_utf8(r.body().await.unwrap().to_vec()).unwrap();
        (r.status().as_u16(), body)
    };
    assert_eq!(health().await.0, 200);
    // Camera a's thread hangs in its next capture, past the health check's wait.
    let hang = camfleet::HEALTH_TIMEOUT * 3;
    client.hang("a", hang).await;
    let (status, body) = health().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("`a`") && !body.contains("`b`"), "{body}");
    // Once it answers again, so does /healthz: within the hang and one more check.
    let deadline = std::time::Instant::now() + hang + camfleet::HEALTH_TIMEOUT * 2 + MARGIN;
    loop {
        let (status, body) = health().await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status}: {body}"
        );
    }
}

#[actix_rt::test]
async fn an_mjpeg_viewer_that_hangs_up_while_the_camera_is_down_frees_its_slot_at_once() {
    let server = spawn_with_timing(FLEET, fast_timing());
    let mut client = server.client().await;
    client.subscribe(&["a"]).await;
    client.streaming("a").await;
    client.unplug("a").await;
    let mut viewer = MjpegClient::get(server.addr, "/cameras/a/stream.mjpg", None).await;
    let dark = viewer.next_part().await.expect("the NO SIGNAL picture");
    assert!(dark.no_signal.is_some());
    let viewers = |list: &serde_json::Value| list.as_array().unwrap().len();
    assert_eq!(viewers(&server.get_json("/api/viewers").await), 1);
    // No frame comes while the camera is down; the hang-up alone must free the slot.
    drop(viewer);
    let deadline = std::time::Instant::now() + MARGIN;
    while viewers(&server.get_json("/api/viewers").await) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the viewer that hung up still holds its slot"
        );
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
