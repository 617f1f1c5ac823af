//! The WebSocket protocol and the HTTP API, as a client uses them.

use std::time::Instant;

use awc::ws;
use camfleet::proto::{self, client_message::Kind as C, server_message::Kind as S, CameraState};

use camfleet::camera::actor::STATUS_INTERVAL;

use crate::helpers::*;

#[actix_rt::test]
async fn every_camera_reports_streaming_within_two_status_intervals() {
    let server = spawn(&fleet(&["a", "b", "c"]));
    let mut client = server.client().await;
    assert_eq!(client.hello.protocol_version, 1);
    let start = Instant::now();
    client.subscribe(&[]).await;
    // The hub replays its cached status at once; only a status with frames counted proves
    // that the camera itself started. It reports when it starts streaming and then once
    // per status interval.
    let mut streaming = std::collections::HashSet::new();
    while streaming.len() < 3 {
        let s = client
            .recv_until(|k| match k {
                S::CameraStatus(s) => Some(s.clone()),
                _ => None,
            })
            .await;
        if state(&s) == CameraState::Streaming && s.frames_captured > 0 {
            streaming.insert(s.camera_id);
        }
    }
    let bound = STATUS_INTERVAL * 2 + MARGIN;
    assert!(
        start.elapsed() < bound,
        "took {:?}, more than {bound:?}",
        start.elapsed()
    );
}

#[actix_rt::test]
async fn set_control_applies_and_status_shows_it() {
    let server = spawn(&fleet(&["a"]));
    let mut client = server.client().await;
    client.subscribe(&["a"]).await;
    client.streaming("a").await;
    let r = client.set_control("a", "brightness", 200).await;
    assert!(r.ok, "{}", r.error);
    assert_eq!(r.value, Some(200));
    // The answer carries the control as the device now reports it.
    let info = r.control.expect("SetControl's answer carries the control");
    assert_eq!((info.name.as_str(), info.value), ("brightness", Some(200)));
    assert_eq!((info.min, info.max), (0, 255));
    client
        .status_where("a", |s| control_value(s, "brightness") == Some(200))
        .await;
}

#[actix_rt::test]
async fn bad_control_values_and_names_are_refused_and_change_nothing() {
    let server = spawn(&fleet(&["a"]));
    let mut client = server.client().await;
    client.subscribe(&["a"]).await;
    client.streaming("a").await;

    let r = client.set_control("a", "brightness", 300).await;
    assert_eq!(code(r.code), proto::ErrorCode::OutOfRange, "{}", r.error);
    assert!(
        r.error.contains("300") && r.error.contains("from 0 to 255"),
        "{}",
        r.error
    );

    let r = client.set_control("a", "zoom", 1).await;
    assert_eq!(
        code(r.code),
        proto::ErrorCode::UnknownControl,
        "{}",
        r.error
    );
    assert!(
        r.error.contains("no control `zoom`") && r.error.contains("brightness"),
        "{}",
        r.error
    );

    let r = client.set_control("a", "horizontal_flip", 2).await;
    assert_eq!(code(r.code), proto::ErrorCode::OutOfRange, "{}", r.error);
    assert!(r.error.contains("0 (off) or 1 (on)"), "{}", r.error);

    let controls = client.controls("a").await;
    let brightness = controls.iter().find(|c| c.name == "brightness").unwrap();
    assert_eq!(brightness.value, Some(128));
    assert_eq!(
        (brightness.min, brightness.max, brightness.step),
        (0, 255, 1)
    );
    let pattern = controls.iter().find(|c| c.name == "test_pattern").unwrap();
    assert_eq!(pattern.r#type, proto::ControlType::Menu as i32);
    assert_eq!(pattern.menu_items.len(), 4);
}

#[actix_rt::test]
async fn commands_for_unknown_cameras_name_the_camera() {
    let server = spawn(&fleet(&["desk", "lobby"]));
    let mut client = server.client().await;
    let r = client.set_control("nope", "brightness", 1).await;
    assert_eq!(code(r.code), proto::ErrorCode::UnknownCamera, "{}", r.error);
    assert!(
        r.error.contains("`nope`") && r.error.contains("the cameras are: desk, lobby"),
        "{}",
        r.error
    );

    let request_id = client.request_id();
    client
        .send(C::Subscribe(proto::Subscribe {
            camera_ids: vec!["desk".into(), "ghost".into()],
            request_id,
            ..Default::default()
        }))
        .await;
    let r = client.result(request_id).await;
    assert_eq!(code(r.code), proto::ErrorCode::UnknownCamera, "{}", r.error);
    assert!(r.error.contains("`ghost`"), "{}", r.error);
}

#[actix_rt::test]
async fn two_sessions_both_get_status_until_one_unsubscribes() {
    let server = spawn(&fleet(&["a"]));
    let mut one = server.client().await;
    let mut two = server.client().await;
    one.subscribe(&["a"]).await;
    two.subscribe(&[]).await;
    one.status_where("a", |_| true).await;
    two.status_where("a", |_| true).await;

    let request_id = one.request_id();
    one.send(C::Unsubscribe(proto::Unsubscribe {
        camera_ids: vec![],
        request_id,
    }))
    .await;
    assert!(one.result(request_id).await.ok);
    // What came before the answer was sent before the unsubscribe took effect.
    one.forget_backlog();

    // Status comes at least once a second while streaming: two of them reach the
    // subscribed session while the unsubscribed one hears nothing.
    let first = two.status_where("a", |_| true).await.frames_captured;
    two.status_where("a", |s| s.frames_captured > first).await;
    one.send(C::ListCameras(proto::ListCameras {})).await;
    match one.next().await {
        Some(Ok(S::CameraList(list))) => assert_eq!(list.cameras.len(), 1),
        other => panic!("expected only the camera list, got {other:?}"),
    }
}

#[actix_rt::test]
async fn garbage_gets_an_error_and_the_session_goes_on() {
    let server = spawn(&fleet(&["a", "b"]));
    let mut client = server.client().await;
    client.send_raw(vec![0xff, 0xff, 0xff, 0x01]).await;
    let error = client.error().await;
    assert_eq!(code(error.code), proto::ErrorCode::InvalidMessage);
    assert!(
        error.message.contains("not a camfleet.v1.ClientMessage"),
        "{error:?}"
    );

    client.send_raw(vec![]).await;
    let error = client.error().await;
    assert_eq!(code(error.code), proto::ErrorCode::InvalidMessage);
    assert!(error.message.contains("no command"), "{error:?}");

    client.send(C::ListCameras(proto::ListCameras {})).await;
    let list = client
        .recv_until(|k| match k {
            S::CameraList(l) => Some(l.clone()),
            _ => None,
        })
        .await;
    let ids: Vec<_> = list.cameras.iter().map(|c| c.camera_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[actix_rt::test]
async fn an_oversized_message_closes_with_1009_and_others_carry_on() {
    let server = spawn(&fleet(&["a"]));
    let mut bystander = server.client().await;
    let mut client = server.client().await;
    let limit = client.hello.max_message_bytes as usize;
    assert_eq!(limit, 64 * 1024);
    client.send_raw(vec![0u8; limit + 1]).await;
    loop {
        match client.next().await {
            Some(Ok(_)) => {}
            Some(Err(ws::Frame::Close(Some(reason)))) => {
                assert_eq!(reason.code, ws::CloseCode::Size);
                break;
            }
            other => panic!("expected close 1009, got {other:?}"),
        }
    }
    bystander.send(C::ListCameras(proto::ListCameras {})).await;
    bystander
        .recv_until(|k| matches!(k, S::CameraList(_)).then_some(()))
        .await;
}

/// Sends one masked frame, whose first byte is `first`, on a hand-made WebSocket and
/// returns the close code the server answers with.
async fn close_code_for(server: &TestServer, first: u8, payload: &[u8]) -> u16 {
    use tokio::io::AsyncWriteExt;
    let mut socket = raw_websocket(server.addr).await;
    let mask = [3u8, 1, 4, 1];
    let mut frame = vec![first, 0x80 | u8::try_from(payload.len()).unwrap()];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    socket.write_all(&frame).await.unwrap();
    tokio::time::timeout(WAIT, close_code(&mut socket))
        .await
        .expect("the server answers with a close frame")
}

#[actix_rt::test]
async fn protocol_violations_are_closed_with_their_codes() {
    let server = spawn(&fleet(&["a"]));
    // A binary frame with a reserved bit set: 1002.
    assert_eq!(close_code_for(&server, 0x80 | 0x40 | 0x2, b"x").await, 1002);
    // A text frame that is not UTF-8: 1007.
    assert_eq!(
        close_code_for(&server, 0x80 | 0x1, b"\xff\xfe\xfd").await,
        1007
    );
    // Well-formed text is answered, not closed.
    let mut client = server.client().await;
    client.framed_send_text("hello").await;
    let error = client.error().await;
    assert_eq!(code(error.code), proto::ErrorCode::InvalidMessage);
}

#[actix_rt::test]
async fn http_api_lists_cameras_and_health() {
    let server = spawn(&fleet(&["a", "b"]));
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    client
        .status_where("b", |s| {
            state(s) == CameraState::Streaming && s.frames_captured > 0
        })
        .await;
    client
        .status_where("a", |s| {
            state(s) == CameraState::Streaming && s.frames_captured > 0
        })
        .await;
    let list = server.get_json("/api/cameras").await;
    let cams = list.as_array().unwrap();
    assert_eq!(cams.len(), 2);
    assert_eq!(cams[0]["camera_id"], "a");
    assert_eq!(cams[0]["state"], "Streaming");
    assert_eq!(cams[0]["width"], 160);
    assert!(cams[1]["frames_captured"].as_u64().unwrap() > 0);
    let health = awc::Client::new()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[actix_rt::test]
async fn websockets_from_other_sites_are_refused() {
    let server = spawn(&fleet(&["a"]));
    let refused = awc::Client::new()
        .ws(format!("ws://{}/ws", server.addr))
        .origin("http://evil.example")
        .connect()
        .await;
    match refused {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => assert_eq!(status, 421),
        other => panic!("expected 421, got {:?}", other.map(|_| ())),
    }
    let same_site = awc::Client::new()
        .ws(format!("ws://{}/ws", server.addr))
        .origin(format!("http://{}", server.addr))
        .connect()
        .await;
    assert!(same_site.is_ok());
}

#[actix_rt::test]
async fn without_accounts_on_loopback_every_client_may_change_settings() {
    let server = spawn(&fleet(&["a"]));
    let mut client = server.client().await;
    assert!(!client.hello.sign_in_required);
    assert_eq!(
        (client.hello.account.as_str(), client.hello.role.as_str()),
        ("anyone", "admin")
    );
    client.subscribe(&["a"]).await;
    client.streaming("a").await;
    assert!(client.set_control("a", "brightness", 10).await.ok);
}

/// Sixty viewers joining one camera change its viewer count sixty times. Each session hears
/// at most one status of the camera per `STATUS_GAP` (its own subscription's first), not
/// one per join.
#[actix_rt::test]
async fn a_burst_of_joining_viewers_costs_each_session_a_status_per_gap() {
    use camfleet::STATUS_GAP;
    const N: u32 = 60;
    let server = spawn(&fleet(&["a"]));
    let addr = server.addr;
    let watchers = (0..N).map(|_| async move {
        let mut client = Client::connect_to(addr).await;
        client.send_watch(&["a"], 1).await;
        let started = Instant::now();
        let mut statuses = 0u32;
        // Until this session hears that every viewer has joined.
        loop {
            match client.next().await {
                Some(Ok(S::CameraStatus(s))) if s.camera_id == "a" => {
                    statuses += 1;
                    if s.viewers >= N {
                        return (statuses, started.elapsed());
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the connection ended: {other:?}"),
            }
        }
    });
    for (statuses, took) in futures_util::future::join_all(watchers).await {
        let gaps = (took.as_secs_f64() / STATUS_GAP.as_secs_f64()).ceil() as u32;
        assert!(
            statuses <= gaps + 2,
            "{statuses} statuses of one camera in {took:?}, more than one per {STATUS_GAP:?}"
        );
    }
}
