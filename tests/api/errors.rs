//! Every error code of the wire contract (`ErrorCode` in proto/), each met the way a
//! client meets it, over the WebSocket and, where HTTP has it too, as the JSON `code`.
//! `NOT_SAVED` needs a state directory that fails, so the real binary: see
//! `service::overrides::a_change_that_cannot_be_saved_is_not_acknowledged_and_is_saved_later`.

use std::time::Duration;

use camfleet::proto::{self, client_message::Kind as C, ErrorCode};

use crate::helpers::*;

const TEST_CAMERA: &str = "\
cameras:
  - id: a
    source: {kind: synthetic, width: 160, height: 120, fps: 20, test_controls: true}
";

/// An HTTP GET's status and JSON body.
async fn get(server: &TestServer, path: &str, origin: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = awc::Client::new().get(server.url(path));
    if let Some(origin) = origin {
        request = request.insert_header(("Origin", origin));
    }
    let mut response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON error body");
    (status, body)
}

async fn streaming_client(server: &TestServer, camera: &str) -> Client {
    let mut client = server.client().await;
    client.subscribe(&[camera]).await;
    client.streaming(camera).await;
    client
}

#[actix_rt::test]
async fn unknown_camera() {
    let server = spawn(TEST_CAMERA);
    let mut client = server.client().await;
    let r = client.set_control("ghost", "brightness", 1).await;
    assert_eq!(code(r.code), ErrorCode::UnknownCamera, "{}", r.error);
    assert!(r.error.contains("the cameras are: a"), "{}", r.error);
    let (status, body) = get(&server, "/cameras/ghost/stream.mjpg", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_camera"))
    );
}

#[actix_rt::test]
async fn unknown_control() {
    let server = spawn(TEST_CAMERA);
    let mut client = streaming_client(&server, "a").await;
    let r = client.set_control("a", "zoom", 1).await;
    assert_eq!(code(r.code), ErrorCode::UnknownControl, "{}", r.error);
    assert!(r.error.contains("brightness"), "{}", r.error);
    assert!(!r.error.contains("did you mean"), "{}", r.error);
    let r = client.set_control("a", "brightnes", 1).await;
    assert_eq!(code(r.code), ErrorCode::UnknownControl, "{}", r.error);
    assert!(
        r.error.contains("did you mean `brightness`?"),
        "{}",
        r.error
    );
}

#[actix_rt::test]
async fn out_of_range() {
    let server = spawn(TEST_CAMERA);
    let mut client = streaming_client(&server, "a").await;
    let r = client.set_control("a", "brightness", 256).await;
    assert_eq!(code(r.code), ErrorCode::OutOfRange, "{}", r.error);
    let brightness = client.controls("a").await;
    let brightness = brightness.iter().find(|c| c.name == "brightness").unwrap();
    assert_eq!(brightness.value, Some(128), "nothing changed");
    let (status, body) = get(&server, "/cameras/a/stream.mjpg?fps=0", None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("out_of_range")));
}

#[actix_rt::test]
async fn not_permitted_and_not_signed_in() {
    let (token, hash) = camfleet::auth::new_token();
    let server = spawn(&format!(
        "auth:\n  tokens:\n    - {{name: tv, role: viewer, token_hash: \"{hash}\"}}\n{TEST_CAMERA}"
    ));
    let mut client = server.client().await;
    let r = client.set_control("a", "brightness", 1).await;
    assert_eq!(code(r.code), ErrorCode::NotSignedIn, "{}", r.error);
    let (status, body) = get(&server, "/api/cameras", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("not_signed_in"))
    );
    assert!(client.authenticate(&token).await.ok);
    let r = client.set_control("a", "brightness", 1).await;
    assert_eq!(code(r.code), ErrorCode::NotPermitted, "{}", r.error);
}

#[actix_rt::test]
async fn wrong_host() {
    let server = spawn(TEST_CAMERA);
    let (status, body) = get(&server, "/ws", Some("http://evil.example")).await;
    assert_eq!((status, body["code"].as_str()), (421, Some("wrong_host")));
}

#[actix_rt::test]
async fn device_refused() {
    let server = spawn(TEST_CAMERA);
    let mut client = streaming_client(&server, "a").await;
    assert!(client.set_control("a", "busy", 1).await.ok);
    let r = client.set_control("a", "brightness", 1).await;
    assert_eq!(code(r.code), ErrorCode::DeviceRefused, "{}", r.error);
    assert!(r.error.contains("busy"), "{}", r.error);
    assert!(client.set_control("a", "busy", 0).await.ok);
    assert!(client.set_control("a", "brightness", 1).await.ok);
}

#[actix_rt::test]
async fn camera_not_running() {
    let server = spawn(&format!(
        "{TEST_CAMERA}  - id: off\n    enabled: false\n    source: {{kind: synthetic}}\n"
    ));
    let mut client = streaming_client(&server, "a").await;
    let r = client.set_control("off", "brightness", 1).await;
    assert_eq!(code(r.code), ErrorCode::CameraNotRunning, "{}", r.error);
    // A camera that is away is not running either; the answer says why.
    client.unplug("a").await;
    let r = client.set_control("a", "brightness", 1).await;
    assert_eq!(code(r.code), ErrorCode::CameraNotRunning, "{}", r.error);
    assert!(r.error.contains("Reconnecting"), "{}", r.error);
}

#[actix_rt::test]
async fn timeout() {
    let timing = fast_timing();
    let server = spawn_with_timing(TEST_CAMERA, timing);
    let mut client = streaming_client(&server, "a").await;
    // The camera's thread hangs in its next capture, longer than the hub waits.
    let hang = timing.command_timeout * 4;
    client.hang("a", hang).await;
    let r = client.set_control("a", "brightness", 1).await;
    assert_eq!(code(r.code), ErrorCode::Timeout, "{}", r.error);
    // Once the device is back, the camera answers again: within the hang, each try
    // costing at most one command timeout.
    let tries = hang.as_millis() / timing.command_timeout.as_millis() + 2;
    let mut answered = false;
    for _ in 0..tries {
        let r = client.set_control("a", "brightness", 2).await;
        if r.ok {
            answered = true;
            break;
        }
        assert_eq!(code(r.code), ErrorCode::Timeout, "{}", r.error);
    }
    assert!(answered, "the camera did not answer after its hang");
}

#[actix_rt::test]
async fn invalid_message() {
    let server = spawn(TEST_CAMERA);
    let mut client = server.client().await;
    client.send_raw(vec![0xff, 0xff, 0xff, 0x01]).await;
    let error = client.error().await;
    assert_eq!(code(error.code), ErrorCode::InvalidMessage, "{error:?}");
}

#[actix_rt::test]
async fn limit_reached() {
    let server = spawn(&format!(
        "server:\n  max_streams_per_camera: 1\n{TEST_CAMERA}"
    ));
    // MJPEG: a second stream of one camera is over its limit.
    let first = awc::Client::new()
        .get(server.url("/cameras/a/stream.mjpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let (status, body) = get(&server, "/cameras/a/stream.mjpg", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("limit_reached"))
    );
    drop(first);

    // WebSocket: commands waiting on a hanging camera, past the session's limit.
    let mut client = streaming_client(&server, "a").await;
    let hang = Duration::from_secs(3);
    client.hang("a", hang).await;
    let max = camfleet::MAX_IN_FLIGHT;
    let mut ids = Vec::new();
    for _ in 0..=max {
        let request_id = client.request_id();
        ids.push(request_id);
        client
            .send(C::GetControls(proto::GetControls {
                request_id,
                camera_id: "a".into(),
            }))
            .await;
    }
    let over = client.result(*ids.last().unwrap()).await;
    assert_eq!(code(over.code), ErrorCode::LimitReached, "{}", over.error);
    assert!(over.error.contains(&max.to_string()), "{}", over.error);
}

#[actix_rt::test]
async fn a_command_flood_is_refused_past_the_rate_and_the_session_goes_on() {
    let server = spawn(TEST_CAMERA);
    let mut flooder = streaming_client(&server, "a").await;
    let mut bystander = streaming_client(&server, "a").await;
    // Three bursts' worth at once: the rate cannot have refilled two bursts meanwhile.
    // Authenticate is answered by the session itself, so no other limit is in play.
    let burst = camfleet::COMMAND_BURST as usize;
    let mut ids = Vec::new();
    for _ in 0..3 * burst {
        let request_id = flooder.request_id();
        ids.push(request_id);
        flooder
            .send(C::Authenticate(proto::Authenticate {
                request_id,
                token: String::new(),
            }))
            .await;
    }
    let mut refused = 0;
    for request_id in ids {
        let r = flooder.result(request_id).await;
        if !r.ok {
            assert_eq!(code(r.code), ErrorCode::LimitReached, "{}", r.error);
            refused += 1;
        }
    }
    assert!(
        refused >= burst / 2,
        "only {refused} of {} refused",
        3 * burst
    );
    // Another client is not held back, and the flooder's session is still there.
    assert!(bystander.set_control("a", "contrast", 10).await.ok);
    // Its commands are carried out again once the rate has refilled: each refusal comes
    // back at once, so this asks again until one goes through.
    let mut answered = false;
    for _ in 0..10 * camfleet::COMMAND_BURST {
        flooder.send(C::ListCameras(proto::ListCameras {})).await;
        let list = flooder
            .recv_until(|k| match k {
                proto::server_message::Kind::CameraList(_) => Some(true),
                proto::server_message::Kind::CommandResult(r) if r.request_id == 0 => {
                    assert_eq!(code(r.code), ErrorCode::LimitReached, "{}", r.error);
                    Some(false)
                }
                _ => None,
            })
            .await;
        if list {
            answered = true;
            break;
        }
    }
    assert!(answered, "the flooder's session never answered again");
}
