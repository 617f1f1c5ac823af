//! A camera that sends H.264, served untouched: to the dashboard's WebSocket, to RTSP
//! clients (ffmpeg, and a minimal client here that reads every RTP packet), and as
//! fragmented MP4. The camera is the synthetic H.264 one (`OpenH264`).

use std::process::{Command, Stdio};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use camfleet::camera::h264::{nal_units, AccessUnit};

/// The camera: 320x240 at 30 fps, a keyframe every second.
const FPS: usize = 30;

fn fleet(prerender: u32) -> String {
    format!(
        "server:\n  rtsp_listen: 127.0.0.1:0\ncameras:\n  - id: cam\n    source: {{kind: synthetic, \
         pixel_format: H264, width: 320, height: 240, fps: {FPS}, prerender: {prerender}}}\n"
    )
}

/// The NAL units of an access unit, which is what must arrive untouched (start codes may
/// differ between Annex B writers).
fn units(au: &[u8]) -> Vec<Vec<u8>> {
    nal_units(au).map(<[u8]>::to_vec).collect()
}

/// A minimal RTSP client: plays `camera` over TCP, interleaved, and hands back access
/// units rebuilt from the RTP packets (single NAL units and FU-A fragments).
struct RtspClient {
    socket: tokio::net::TcpStream,
    buf: BytesMut,
    /// RTP sequence number of the last packet.
    last_sequence: Option<u16>,
}

impl RtspClient {
    /// A connection to the RTSP server from the local address `from` (127.0.0.0/8).
    async fn connect(port: u16, from: [u8; 4]) -> RtspClient {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((from, 0).into()).unwrap();
        let socket = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        RtspClient {
            socket,
            buf: BytesMut::new(),
            last_sequence: None,
        }
    }

    async fn play(port: u16, camera: &str) -> (RtspClient, String) {
        let mut c = RtspClient::connect(port, [127, 0, 0, 1]).await;
        let url = format!("rtsp://127.0.0.1:{port}/{camera}");
        let (head, sdp) = c
            .request(&format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n"))
            .await;
        assert!(head.starts_with("RTSP/1.0 200"), "{head}");
        let (head, _) = c
            .request(&format!(
                "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
            ))
            .await;
        assert!(head.starts_with("RTSP/1.0 200"), "{head}");
        let session = head
            .lines()
            .find_map(|l| l.strip_prefix("Session: "))
            .and_then(|s| s.split(';').next())
            .expect("a session")
            .to_string();
        let (head, _) = c
            .request(&format!(
                "PLAY {url}/ RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n"
            ))
            .await;
        assert!(head.starts_with("RTSP/1.0 200"), "{head}");
        (c, sdp)
    }

    async fn fill(&mut self) {
        let n = tokio::time::timeout(WAIT, self.socket.read_buf(&mut self.buf))
            .await
            .expect("the server sends within WAIT")
            .unwrap();
        assert!(n > 0, "the server closed the RTSP connection");
    }

    /// Sends a request (without its blank line) and reads the response head and body.
    async fn request(&mut self, head: &str) -> (String, String) {
        self.socket
            .write_all(format!("{head}\r\n").as_bytes())
            .await
            .unwrap();
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        self.buf.advance(end + 4);
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |n| n.parse().unwrap());
        while self.buf.len() < len {
            self.fill().await;
        }
        let body = String::from_utf8_lossy(&self.buf.split_to(len)).to_string();
        (head, body)
    }

    /// The next access unit, rebuilt from its packets; every packet's sequence number
    /// must follow the one before.
    async fn access_unit(&mut self) -> Vec<u8> {
        let mut au = Vec::new();
        loop {
            while self.buf.len() < 4
                || self.buf.len() < 4 + usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]))
            {
                self.fill().await;
            }
            assert_eq!(self.buf[0], b'$', "interleaved data");
            let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
            let channel = self.buf[1];
            self.buf.advance(4);
            let packet = self.buf.split_to(len);
            if channel != 0 {
                continue;
            }
            let sequence = u16::from_be_bytes([packet[2], packet[3]]);
            if let Some(last) = self.last_sequence {
                assert_eq!(sequence, last.wrapping_add(1), "an RTP packet is missing");
            }
            self.last_sequence = Some(sequence);
            let marker = packet[1] & 0x80 != 0;
            let payload = &packet[12 + 4 * usize::from(packet[0] & 0x0f)..];
            // FU-A (type 28): pieces of one NAL unit; anything else is a whole NAL unit.
            if payload[0] & 0x1f == 28 {
                let fu = payload[1];
                if fu & 0x80 != 0 {
                    au.extend_from_slice(&[0, 0, 0, 1, (payload[0] & 0xe0) | (fu & 0x1f)]);
                }
                au.extend_from_slice(&payload[2..]);
            } else {
                au.extend_from_slice(&[0, 0, 0, 1]);
                au.extend_from_slice(payload);
            }
            if marker {
                return au;
            }
        }
    }
}

async fn rtsp_port(server: &TestServer) -> u16 {
    let host = server.get_json("/api/host").await;
    host["rtsp_port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("the RTSP server runs")
}

/// The next H.264 frame a WebSocket client gets: (seq, keyframe, codec string, access unit).
async fn ws_frame(client: &mut Client) -> (u64, bool, String, Vec<u8>) {
    client
        .recv_until(|m| match m {
            S::Frame(f) if f.codec == proto::Codec::H264 as i32 => {
                Some((f.seq, f.keyframe, f.codec_string.clone(), f.h264.to_vec()))
            }
            _ => None,
        })
        .await
}

#[actix_rt::test]
async fn a_late_joiner_starts_at_a_keyframe_and_two_rtsp_clients_and_a_dashboard_get_every_frame() {
    // Live encoding: every access unit differs (the frame counter and clock are drawn in).
    let server = spawn(&fleet(0));
    let port = rtsp_port(&server).await;
    let mut first = server.client().await;
    first.watch(&["cam"], 0).await;
    // Join once the camera is past its first keyframe, in the middle of a GOP.
    loop {
        let (seq, ..) = ws_frame(&mut first).await;
        if seq > FPS as u64 + FPS as u64 / 2 {
            break;
        }
    }
    drop(first);
    let mut dashboard = server.client().await;
    dashboard.watch(&["cam"], 0).await;
    let (seq, keyframe, codec, au) = ws_frame(&mut dashboard).await;
    assert!(
        keyframe,
        "a late joiner's first frame is a keyframe (frame {seq})"
    );
    assert!(
        AccessUnit::of(&au).starts_a_stream(),
        "with its SPS and PPS"
    );
    assert!(codec.starts_with("avc1.") && codec.len() == 11, "{codec}");
    let mut seen = vec![(seq, units(&au))];

    // Two RTSP clients play while the dashboard watches; each collects two GOPs.
    let take = 2 * FPS;
    let players: Vec<_> = (0..2)
        .map(|_| {
            actix_rt::spawn(async move {
                let (mut client, sdp) = RtspClient::play(port, "cam").await;
                assert!(
                    sdp.contains("H264/90000") && sdp.contains("sprop-parameter-sets="),
                    "{sdp}"
                );
                let mut got = Vec::new();
                while got.len() < take {
                    got.push(units(&client.access_unit().await));
                }
                // The connection stays open (the viewer listed) until the test is done.
                (got, client)
            })
        })
        .collect();
    while !players.iter().all(tokio::task::JoinHandle::is_finished) {
        let (seq, _, _, au) = ws_frame(&mut dashboard).await;
        let last = seen.last().unwrap().0;
        assert_eq!(seq, last + 1, "the dashboard got every frame in order");
        seen.push((seq, units(&au)));
    }
    // Each viewer's first frame came without waiting for the next keyframe: within one
    // GOP (one second) at most, with scheduling slack.
    let viewers = server.get_json("/api/viewers").await;
    let waits: Vec<f64> = viewers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["first_frame_wait_ms"].as_f64())
        .collect();
    assert_eq!(
        waits.len(),
        3,
        "the dashboard and two RTSP clients: {viewers}"
    );
    let bound = (Duration::from_secs(1) + MARGIN).as_secs_f64() * 1000.0;
    assert!(
        waits.iter().all(|w| *w < bound),
        "keyframe waits {waits:?} ms"
    );
    for player in players {
        let (got, _connection) = player.await.unwrap();
        let types: Vec<u8> = got[0].iter().map(|u| u[0] & 0x1f).collect();
        assert!(
            types.contains(&5) && types.contains(&7) && types.contains(&8),
            "an RTSP client starts at a keyframe with its SPS and PPS: NAL types {types:?}"
        );
        let start = seen
            .iter()
            .position(|(_, u)| *u == got[0])
            .expect("the RTSP client's first frame is one the dashboard got");
        let same: Vec<&Vec<Vec<u8>>> = seen[start..].iter().map(|(_, u)| u).collect();
        assert!(
            same.len() >= got.len(),
            "the dashboard saw the RTSP client's frames"
        );
        for (i, au) in got.iter().enumerate() {
            assert!(
                *au == *same[i],
                "the RTSP client's frame {i} is the dashboard's frame {}, untouched",
                seen[start + i].0
            );
        }
    }
}

/// A `DESCRIBE` of `camera` on a connection of its own from `from`, signed in as `user`
/// (name and password) if given: the status line and the body. The connection is kept,
/// since it holds the viewer the `DESCRIBE` registered.
async fn describe(
    port: u16,
    from: [u8; 4],
    camera: &str,
    user: Option<(&str, &str)>,
) -> (String, String, RtspClient) {
    let mut c = RtspClient::connect(port, from).await;
    let authorization = user.map_or(String::new(), |(name, password)| {
        use base64::Engine as _;
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        format!("Authorization: Basic {pair}\r\n")
    });
    let (head, body) = c
        .request(&format!(
            "DESCRIBE rtsp://127.0.0.1:{port}/{camera} RTSP/1.0\r\nCSeq: 1\r\n{authorization}"
        ))
        .await;
    (head, body, c)
}

#[actix_rt::test]
async fn rtsp_takes_the_http_servers_accounts_visibility_password_wait_and_limits() {
    const ALICE: (&str, &str) = ("alice", "alice-long-password");
    const BOB: (&str, &str) = ("bob", "bob-long-password");
    deps("players");
    let camera = |id: &str| {
        format!(
            "  - id: {id}\n    source: {{kind: synthetic, pixel_format: H264, width: 320, \
             height: 240, fps: {FPS}, prerender: {FPS}}}\n"
        )
    };
    let server = spawn(&format!(
        "server:\n  rtsp_listen: 127.0.0.1:0\n  max_streams_per_camera: 1\nauth:\n  users:\n    \
         - {{name: {}, role: viewer, password_hash: \"{}\"}}\n    \
         - {{name: {}, role: viewer, cameras: [other], password_hash: \"{}\"}}\n\
         cameras:\n{}{}",
        ALICE.0,
        camfleet::auth::hash_password(ALICE.1),
        BOB.0,
        camfleet::auth::hash_password(BOB.1),
        camera("cam"),
        camera("other"),
    ));
    let port = {
        let host = awc::Client::new()
            .get(server.url("/api/host"))
            .basic_auth(ALICE.0, ALICE.1)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        u16::try_from(host["rtsp_port"].as_u64().expect("the RTSP server runs")).unwrap()
    };
    let status = |head: &str| head.lines().next().unwrap_or_default().to_string();

    // No credentials: 401, asking for Basic, as HTTP does.
    let (head, body, _) = describe(port, [127, 0, 0, 1], "cam", None).await;
    assert!(head.starts_with("RTSP/1.0 401"), "{head}");
    assert!(head.contains("WWW-Authenticate: Basic"), "{head}");
    assert!(
        body.contains("rtsp://NAME:PASSWORD@"),
        "the refusal says how: {body}"
    );

    // A wrong password is refused, and that address must wait before it tries again,
    // while another address signs in at once.
    let wrong = (ALICE.0, "not-her-password");
    let (head, ..) = describe(port, [127, 0, 0, 7], "cam", Some(wrong)).await;
    assert!(head.starts_with("RTSP/1.0 401"), "{head}");
    let (head, body, _) = describe(port, [127, 0, 0, 7], "cam", Some(ALICE)).await;
    assert!(
        !head.starts_with("RTSP/1.0 200") && body.contains("try again in"),
        "{}: {body}",
        status(&head)
    );

    // An account sees only its cameras.
    let (head, ..) = describe(port, [127, 0, 0, 1], "cam", Some(BOB)).await;
    assert!(
        head.starts_with("RTSP/1.0 404"),
        "bob may not see cam: {head}"
    );

    // The stream limits count RTSP clients: one per camera here.
    let (head, sdp, _holding) = describe(port, [127, 0, 0, 1], "other", Some(BOB)).await;
    assert!(head.starts_with("RTSP/1.0 200"), "{head}");
    assert!(sdp.contains("H264/90000"), "{sdp}");
    let (head, body, _) = describe(port, [127, 0, 0, 1], "other", Some(ALICE)).await;
    assert!(
        !head.starts_with("RTSP/1.0 200") && body.contains("limit"),
        "a second viewer of `other`: {}: {body}",
        status(&head)
    );

    // A player signs in from the URL, as a user writes it.
    let url = format!("rtsp://{}:{}@127.0.0.1:{port}/cam", ALICE.0, ALICE.1);
    let probed = tokio::task::spawn_blocking(move || ffprobe(&url))
        .await
        .unwrap();
    assert_eq!(probed, format!("h264,320,240,{FPS}/1"));
}

/// Runs ffmpeg on `url` for five seconds of stream time, decoding every frame; returns the
/// frames decoded.
fn ffmpeg_records(url: &str, rtsp_transport: Option<&str>) -> usize {
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-v", "error"]);
    if let Some(t) = rtsp_transport {
        command.args(["-rtsp_transport", t]);
    }
    let child = command
        .args(["-i", url, "-t", "5", "-f", "framemd5", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    let out = wait_for(child, &format!("ffmpeg -i {url}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{url}: {stderr}");
    assert!(
        stderr.is_empty(),
        "{url}: ffmpeg reported errors:\n{stderr}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count()
}

/// What ffprobe says of the first video stream at `url`: codec, width, height, rate.
fn ffprobe(url: &str) -> String {
    let child = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,r_frame_rate",
        ])
        .args(["-of", "csv=p=0", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffprobe runs");
    let out = wait_for(child, &format!("ffprobe {url}"));
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn wait_for(mut child: std::process::Child, what: &str) -> std::process::Output {
    // Five seconds of video plus start-up, with a wide margin for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{what} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn ffmpeg_records_five_seconds_over_rtsp_and_mp4_that_decode_without_an_error() {
    deps("players");
    let dir = scratch_dir("h264-players");
    let rtsp = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    write_config(&dir, &fleet(60).replace("127.0.0.1:0", &rtsp.to_string()));
    let process = Process::start(&dir, None);
    let urls = [
        (format!("rtsp://{rtsp}/cam"), Some("tcp")),
        (format!("rtsp://{rtsp}/cam"), Some("udp")),
        (
            format!("http://{}/cameras/cam/stream.mp4", process.addr),
            None,
        ),
    ];
    for (url, transport) in &urls {
        assert_eq!(ffprobe(url), "h264,320,240,30/1", "{url}");
        let frames = ffmpeg_records(url, *transport);
        // Five seconds at 30 fps; a player that fell behind would skip to a keyframe, so
        // fewer is allowed, but never none.
        assert!(
            frames > FPS,
            "{url} ({transport:?}): {frames} frames in 5 s"
        );
    }
}
