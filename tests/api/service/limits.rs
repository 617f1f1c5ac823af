//! Limits a client cannot get around, checked against the real binary so its memory can be
//! read: a frame header that announces more than the largest message is refused before its
//! payload is buffered, and a flood of control changes written to a real disk leaves the
//! other cameras their frame rate.

use tokio::io::AsyncWriteExt;

use super::*;
use crate::mjpeg_client::MjpegClient;

/// How much payload the client streams after the refused header.
const MOST: u64 = 256 << 20;

#[actix_rt::test]
async fn a_huge_frame_header_is_refused_before_its_payload_is_buffered() {
    let dir = scratch_dir("huge-frame");
    write_config(&dir, &format!("cameras:\n{}", synthetic("a", 10)));
    let process = Process::start(&dir, None);
    let pid = process.child.id();
    let before = rss_kib(pid);

    let socket = raw_websocket(process.addr).await;
    let (mut rd, mut wr) = socket.into_split();
    // A binary frame announcing 2^40 bytes, masked as a client's must be.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    wr.write_all(&header).await.unwrap();
    let writer = actix_rt::spawn(async move {
        let chunk = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        // Until the server stops reading: the write fails, or cannot finish in time.
        while sent < MOST {
            match tokio::time::timeout(MARGIN, wr.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len() as u64,
                _ => break,
            }
        }
        sent
    });
    let code = tokio::time::timeout(WAIT, close_code(&mut rd))
        .await
        .expect("the server closes the connection without waiting for the payload");
    assert_eq!(code, 1009, "close code");
    // The client goes on streaming; the server discards what follows the refused header.
    let sent = writer.await.unwrap();
    let after = rss_kib(pid);
    assert!(
        after < before + 8 * 1024,
        "resident memory grew from {before} KiB to {after} KiB while the client sent {sent} bytes"
    );
}

/// Clients sending control changes as fast as they are answered, to camera `a`.
const FLOODERS: usize = 4;
/// Changes each flooder keeps in flight.
const IN_FLIGHT: usize = 16;
/// The bystander camera's frame rate, and how many of its frames the flood lasts.
const BYSTANDER_FPS: u32 = 20;
const FLOOD_FRAMES: u64 = 100;

/// Sends brightness changes to camera `a` until `stop`; returns (ok, refused) answer counts.
async fn flood(addr: SocketAddr, stop: tokio::sync::watch::Receiver<bool>) -> (u64, u64) {
    let mut client = Client::connect_to(addr).await;
    let (mut ok, mut refused) = (0, 0);
    let mut value = 0;
    while !*stop.borrow() {
        let mut ids = Vec::with_capacity(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            value = (value + 7) % 256;
            ids.push(client.send_set_control("a", "brightness", value).await);
        }
        for request_id in ids {
            let r = client.result(request_id).await;
            if r.ok {
                ok += 1;
            } else {
                assert_eq!(code(r.code), proto::ErrorCode::LimitReached, "{}", r.error);
                refused += 1;
            }
        }
    }
    (ok, refused)
}

/// Every change is written to `state/controls.json` on the real disk before its answer.
/// Writes happen on their own thread, so camera `b`, which nobody changes, goes on at its
/// frame rate: its viewer receives at least 90 % of the frames its clock asks for.
#[actix_rt::test]
async fn a_control_flood_leaves_other_cameras_their_frame_rate() {
    // Under the build's directory, which is on disk, where /tmp may be memory.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("flood-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_config(
        &dir,
        &format!(
            "cameras:\n{}{}",
            synthetic("a", 10),
            synthetic("b", BYSTANDER_FPS)
        ),
    );
    let process = Process::start(&dir, None);
    let mut viewer = MjpegClient::get(process.addr, "/cameras/b/stream.mjpg", None).await;
    assert_eq!(viewer.status, 200);
    viewer.next_part().await.expect("camera b streams");

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| actix_rt::spawn(flood(process.addr, stop.clone())))
        .collect();
    // Measure once the flood is under way: the first answers are back.
    let mut watcher = Client::connect_to(process.addr).await;
    let r = watcher.set_control("a", "contrast", 40).await;
    assert!(r.ok, "{}", r.error);

    let first = viewer.next_part().await.expect("camera b streams");
    let mut last = first.captured_us;
    for _ in 0..FLOOD_FRAMES {
        last = viewer
            .next_part()
            .await
            .expect("camera b streams")
            .captured_us;
    }
    stop_tx.send(true).unwrap();
    let (mut ok, mut refused) = (0, 0);
    for f in flooders {
        let (o, r) = f.await.unwrap();
        ok += o;
        refused += r;
    }
    let seconds = (last - first.captured_us) as f64 / 1e6;
    let fps = FLOOD_FRAMES as f64 / seconds;
    let changes = ok as f64 / seconds;
    eprintln!(
        "camera b: {fps:.1} fps of {BYSTANDER_FPS} during {changes:.0} recorded changes/s \
         to camera a ({refused} refused by the rate limit)"
    );
    assert!(ok > 0, "no change was recorded during the flood");
    assert!(
        fps >= 0.9 * f64::from(BYSTANDER_FPS),
        "camera b fell to {fps:.1} fps of {BYSTANDER_FPS} during the flood"
    );
    // Every recorded change reached the file: it ends on the camera's value.
    let a = watcher.controls("a").await;
    let brightness = a.iter().find(|c| c.name == "brightness").unwrap().value;
    let file = std::fs::read_to_string(dir.join("state/controls.json")).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(recorded["a"]["brightness"].as_i64(), brightness);
}
