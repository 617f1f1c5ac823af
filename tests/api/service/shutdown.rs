//! An orderly, quick stop with many viewers.

use super::*;
use crate::mjpeg_client::MjpegClient;
#[actix_rt::test]
async fn shutdown_with_100_viewers_is_quick_and_closes_every_socket() {
    let dir = scratch_dir("shutdown");
    let yaml = format!(
        "server:\n  max_sessions: 200\ncameras:\n{}{}",
        synthetic("a", 15),
        synthetic("b", 15)
    );
    std::fs::write(dir.join("cameras.yaml"), yaml).unwrap();
    let mut process = Process::start(&dir, None);
    let addr = process.addr;
    let mut closes = Vec::new();
    for _ in 0..100 {
        let (_, mut ws) = awc::Client::new()
            .ws(format!("ws://{addr}/ws"))
            .max_frame_size(16 << 20)
            .connect()
            .await
            .unwrap();
        let subscribe = proto::ClientMessage {
            kind: Some(C::Subscribe(proto::Subscribe {
                camera_ids: vec![],
                request_id: 1,
                send_frames: true,
                max_fps: 5,
                preview_width: 0,
            })),
        };
        ws.send(ws::Message::Binary(subscribe.encode_to_vec().into()))
            .await
            .unwrap();
        closes.push(actix_rt::spawn(async move {
            while let Some(frame) = ws.next().await {
                if let Ok(ws::Frame::Close(reason)) = frame {
                    return reason.map(|r| r.code);
                }
            }
            None
        }));
    }
    let mut mjpeg = MjpegClient::get(addr, "/cameras/a/stream.mjpg", None).await;
    mjpeg.next_part().await.unwrap();
    // Every client is a registered viewer before the stop begins.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut r = awc::Client::new()
            .get(format!("http://{addr}/api/viewers"))
            .send()
            .await
            .unwrap();
        let viewers: serde_json::Value = r.json().limit(1 << 20).await.unwrap();
        // 100 clients watching 2 cameras each, and the MJPEG viewer.
        let expected = 2 * 100 + 1;
        if viewers.as_array().unwrap().len() == expected {
            break;
        }
        assert!(Instant::now() < deadline, "not all clients became viewers");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }

    // Stopping waits at most for connections to close and for cameras to let go.
    let bound = Duration::from_secs(camfleet::app::SHUTDOWN_TIMEOUT_SECS)
        + camfleet::CAMERA_STOP_TIMEOUT
        + MARGIN;
    let started = Instant::now();
    process.signal(libc::SIGTERM);
    let status = loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < bound + WAIT, "camfleet did not exit");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    };
    let took = started.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(took < bound, "shutdown took {took:?}, more than {bound:?}");
    let mut codes = Vec::new();
    for c in closes {
        codes.push(c.await.unwrap());
    }
    let away = codes
        .iter()
        .filter(|c| **c == Some(ws::CloseCode::Away))
        .count();
    assert_eq!(away, 100, "close codes: {codes:?}");
    while mjpeg.next_part().await.is_some() {}
    process.log_line("stopped");
}
