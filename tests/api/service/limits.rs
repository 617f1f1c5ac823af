//! Limits a client cannot get around, checked against the real binary so its memory can be
//! read: a frame header that announces more than the largest message is refused before its
//! payload is buffered.

use tokio::io::AsyncWriteExt;

use super::*;

/// How much payload the client streams after the refused header.
const MOST: u64 = 256 << 20;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

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
