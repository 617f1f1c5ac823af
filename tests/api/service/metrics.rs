//! /metrics, parsed by the Prometheus project's own parser, moving as frames flow.

use super::*;
use crate::mjpeg_client::MjpegClient;
/// The metrics text, parsed by the Prometheus project's own Python parser.
pub(super) fn parse_metrics(text: &str) -> serde_json::Value {
    let python = deps("python");
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n    \
            out[f.name] = {'type': f.type, 'help': f.documentation, 'samples': [[s.name, s.labels, s.value] for s in f.samples]}\n\
        print(json.dumps(out))\n";
    let out = run_with_input(Command::new(python.trim()).args(["-c", script]), text);
    assert!(
        out.status.success(),
        "the parser refused /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Installs the parser [`parse_metrics`] uses. Tests call it before they connect a
/// WebSocket client: the clients answer the server's heartbeats only while they read, and
/// a first install can take longer than the server waits for an answer.
pub(super) fn install_metrics_parser() {
    deps("python");
}

/// The text of `/metrics` at `addr`.
pub(super) async fn metrics_text(addr: SocketAddr) -> String {
    let mut r = awc::Client::new()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    String::from_utf8(r.body().await.unwrap().to_vec()).unwrap()
}

/// A sample that counts something, as the whole number it is.
pub(super) fn whole(v: f64) -> u64 {
    assert!(v >= 0.0 && v.fract() == 0.0, "{v} is not a count");
    v as u64
}

pub(super) fn sample(
    m: &serde_json::Value,
    family: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    m[family]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family}"))
        .iter()
        .find(|s| s[0] == name && labels.iter().all(|(k, v)| s[1][k] == *v))
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))[2]
        .as_f64()
        .unwrap()
}

#[actix_rt::test]
async fn metrics_parse_and_move_as_frames_flow() {
    install_metrics_parser();
    let server = spawn(&fleet(&["a", "b"]));
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    client.streaming("a").await;
    let mut viewer = MjpegClient::get(server.addr, "/cameras/a/stream.mjpg", None).await;
    for _ in 0..5 {
        viewer.next_part().await.unwrap();
    }
    let text = |server: &TestServer| {
        let url = server.url("/metrics");
        async move {
            let mut r = awc::Client::new().get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(r
                .headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4"));
            String::from_utf8(r.body().await.unwrap().to_vec()).unwrap()
        }
    };
    let first = parse_metrics(&text(&server).await);
    // Both cameras report more frames than /metrics showed; the hub then holds those
    // statuses, which /metrics reads.
    for camera in ["a", "b"] {
        let shown = whole(sample(
            &first,
            "camfleet_camera_frames_captured",
            "camfleet_camera_frames_captured_total",
            &[("camera", camera)],
        ));
        client
            .status_where(camera, |s| s.frames_captured > shown)
            .await;
    }
    let second_text = text(&server).await;
    // No label takes a new value per connection.
    assert!(!second_text.contains("session=\""), "{second_text}");
    let second = parse_metrics(&second_text);

    for family in [
        "camfleet_camera_state",
        "camfleet_camera_fps",
        "camfleet_camera_frames_captured",
        "camfleet_camera_frames_dropped",
        "camfleet_camera_frames_corrupt",
        "camfleet_camera_reconnects",
        "camfleet_camera_control_writes_failed",
        "camfleet_camera_viewers",
        "camfleet_camera_send_latency_seconds",
        "camfleet_camera_encode_seconds",
        "camfleet_session_queue_depth_max",
        "camfleet_session_events_dropped",
        "camfleet_session_frames_replaced",
    ] {
        assert!(second.get(family).is_some(), "{family} missing");
        assert!(!second[family]["help"].as_str().unwrap().is_empty());
    }
    let captured = |m: &serde_json::Value, cam| {
        sample(
            m,
            "camfleet_camera_frames_captured",
            "camfleet_camera_frames_captured_total",
            &[("camera", cam)],
        )
    };
    assert!(captured(&second, "a") > captured(&first, "a"));
    assert!(captured(&second, "b") > captured(&first, "b"));
    assert_eq!(
        whole(sample(
            &second,
            "camfleet_camera_state",
            "camfleet_camera_state",
            &[("camera", "a"), ("state", "streaming")]
        )),
        1
    );
    assert_eq!(
        whole(sample(
            &second,
            "camfleet_camera_viewers",
            "camfleet_camera_viewers",
            &[("camera", "a"), ("kind", "mjpeg")]
        )),
        1
    );
    let sent = |m: &serde_json::Value| {
        sample(
            m,
            "camfleet_camera_send_latency_seconds",
            "camfleet_camera_send_latency_seconds_count",
            &[("camera", "a")],
        )
    };
    assert!(
        sent(&second) > sent(&first),
        "latency histogram did not move"
    );
    assert_eq!(
        second["camfleet_camera_send_latency_seconds"]["type"],
        "histogram"
    );

    let refused = client.set_control("a", "brightness", 999).await;
    assert_eq!(
        code(refused.code),
        proto::ErrorCode::OutOfRange,
        "{}",
        refused.error
    );
    let third = parse_metrics(&text(&server).await);
    assert_eq!(
        whole(sample(
            &third,
            "camfleet_camera_control_writes_failed",
            "camfleet_camera_control_writes_failed_total",
            &[("camera", "a")]
        )),
        0,
        "a value refused before reaching the device is not a failed write"
    );
}
