//! The URL shapes of mjpg-streamer and ustreamer, `HEAD` on every route, and HTTP/1.0
//! clients, over real sockets.

use crate::helpers::*;
use crate::mjpeg_client::{jpeg_size, MjpegClient};

fn fleet_with_default(default: Option<&str>) -> String {
    let server = default.map_or(String::new(), |id| {
        format!("server: {{default_camera: {id}}}\n")
    });
    format!(
        "{server}cameras:\n\
         \x20 - id: desk\n    source: {{kind: synthetic, width: 320, height: 240, fps: 20}}\n\
         \x20 - id: door\n    source: {{kind: synthetic, width: 160, height: 120, fps: 20}}\n\
         \x20 - id: shed\n    capture: on_demand\n    source: {{kind: synthetic, width: 160, height: 120, fps: 20}}\n"
    )
}

/// Two whole parts of the stream at `path`, of a picture `size` wide and high.
async fn streams(server: &TestServer, path: &str, size: (usize, usize)) {
    let mut client = MjpegClient::get(server.addr, path, None).await;
    assert_eq!(client.status, 200, "GET {path}");
    let first = client.next_part().await.expect("a first part");
    let second = client.next_part().await.expect("a second part");
    assert!(second.seq > first.seq, "GET {path}: the stream advances");
    assert_eq!(jpeg_size(&second.jpeg), size, "GET {path}");
}

/// One JPEG of `size` at `path`.
async fn snapshots(server: &TestServer, path: &str, size: (usize, usize)) {
    let client = MjpegClient::get(server.addr, path, None).await;
    assert_eq!(client.status, 200, "GET {path}");
    assert_eq!(
        client.header("content-type"),
        Some("image/jpeg"),
        "GET {path}"
    );
    assert_eq!(jpeg_size(&client.body().await), size, "GET {path}");
}

#[actix_rt::test]
async fn mjpg_streamer_and_ustreamer_urls_serve_each_camera_and_the_default_one() {
    let server = spawn(&fleet_with_default(Some("door")));
    let (desk, door) = ((320, 240), (160, 120));
    // The default camera, where an OctoPrint or crowsnest entry points.
    streams(&server, "/?action=stream", door).await;
    snapshots(&server, "/?action=snapshot", door).await;
    streams(&server, "/stream", door).await;
    snapshots(&server, "/snapshot", door).await;
    // Any camera under its own prefix; `?fps=` as on the native URL.
    streams(&server, "/cameras/desk/?action=stream&fps=10", desk).await;
    snapshots(&server, "/cameras/desk/?action=snapshot", desk).await;
    streams(&server, "/cameras/desk/stream", desk).await;
    snapshots(&server, "/cameras/desk/snapshot", desk).await;
    // The bare prefix is the dashboard with that camera at hand.
    let page = MjpegClient::get(server.addr, "/cameras/desk/", None).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("../../#camera=desk"));
    // `/` without an action is still the dashboard.
    let dashboard = MjpegClient::get(server.addr, "/", None).await;
    assert_eq!(dashboard.status, 200);
    assert!(dashboard
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
}

#[actix_rt::test]
async fn without_a_default_camera_the_bare_urls_say_how_to_name_one() {
    let server = spawn(&fleet_with_default(None));
    for path in [
        "/?action=stream",
        "/?action=snapshot",
        "/stream",
        "/snapshot",
    ] {
        let client = MjpegClient::get(server.addr, path, None).await;
        assert_eq!(client.status, 404, "GET {path}");
        let body = String::from_utf8(client.body().await).unwrap();
        assert!(body.contains("server.default_camera"), "GET {path}: {body}");
        assert!(body.contains("/cameras/ID"), "GET {path}: {body}");
    }
    let bad = MjpegClient::get(server.addr, "/cameras/desk/?action=take_picture", None).await;
    assert_eq!(bad.status, 400);
    let body = String::from_utf8(bad.body().await).unwrap();
    assert!(body.contains("?action=stream"), "{body}");
    let unknown = MjpegClient::get(server.addr, "/cameras/attic/stream", None).await;
    assert_eq!(unknown.status, 404);
    let body = String::from_utf8(unknown.body().await).unwrap();
    assert!(body.contains("desk, door, shed"), "{body}");
    // Nothing else was disturbed.
    streams(&server, "/cameras/desk/stream", (320, 240)).await;
}

#[actix_rt::test]
async fn head_answers_like_get_without_a_body_and_opens_no_camera() {
    let server = spawn(&fleet_with_default(Some("desk")));
    let paths = [
        ("/", 200, "text/html"),
        ("/app.js", 200, "text/javascript"),
        ("/login", 200, "text/html"),
        ("/healthz", 200, ""),
        ("/api/cameras", 200, "application/json"),
        ("/metrics", 200, "text/plain"),
        (
            "/cameras/desk/stream.mjpg",
            200,
            "multipart/x-mixed-replace",
        ),
        ("/cameras/desk/snapshot.jpg", 200, "image/jpeg"),
        ("/?action=stream", 200, "multipart/x-mixed-replace"),
        ("/snapshot", 200, "image/jpeg"),
        ("/cameras/shed/stream", 200, "multipart/x-mixed-replace"),
        ("/cameras/attic/stream.mjpg", 404, "application/json"),
    ];
    for (path, status, content_type) in paths {
        let head = MjpegClient::request(
            server.addr,
            "HEAD",
            path,
            "HTTP/1.1",
            "Connection: close\r\n",
        )
        .await;
        assert_eq!(head.status, status, "HEAD {path}");
        let got = head.header("content-type").unwrap_or_default().to_string();
        assert!(got.starts_with(content_type), "HEAD {path}: {got}");
        assert!(
            head.rest_unframed().await.is_empty(),
            "HEAD {path} sent a body"
        );
    }
    // The on-demand camera was only asked about, never opened.
    let cameras = server.get_json("/api/cameras").await;
    let shed = cameras
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["camera_id"] == "shed")
        .unwrap();
    assert_eq!(shed["state"], "Idle", "{shed}");
    assert_eq!(server.get_json("/api/viewers").await, serde_json::json!([]));
}

#[actix_rt::test]
async fn an_http_1_0_client_gets_the_stream_unchunked_until_the_connection_closes() {
    let server = spawn(&fleet_with_default(None));
    let mut client = MjpegClient::request(
        server.addr,
        "GET",
        "/cameras/desk/stream.mjpg",
        "HTTP/1.0",
        "",
    )
    .await;
    assert_eq!(client.status, 200);
    assert!(!client.is_chunked());
    assert_eq!(client.header("transfer-encoding"), None);
    // The parts come as they are: the body starts with the boundary, not a chunk size.
    let first = client.next_part().await.expect("a first part");
    let second = client.next_part().await.expect("a second part");
    assert!(second.seq > first.seq);
    assert_eq!(jpeg_size(&second.jpeg), (320, 240));
    // HTTP/1.1 clients get chunks, one part to a chunk.
    let mut chunked = MjpegClient::get(server.addr, "/cameras/desk/stream.mjpg", None).await;
    assert!(chunked.is_chunked());
    let first = chunked.next_part().await.expect("a first part");
    assert_eq!(jpeg_size(&first.jpeg), (320, 240));
}
