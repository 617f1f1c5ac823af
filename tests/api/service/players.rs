//! The players and libraries people point at a camera: ffmpeg, VLC and `OpenCV`, each
//! reading camfleet's own stream URL and the URL shapes of mjpg-streamer and ustreamer,
//! counting the frames they decode.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;
use crate::mjpeg_client::jpeg_size;

/// Frames each player must decode from each URL.
const FRAMES: usize = 5;
/// How long a player may take before it counts as hung: its start-up plus `FRAMES` at the
/// camera's 20 fps, with a wide margin for a loaded machine.
const PLAYER_DEADLINE: Duration = Duration::from_secs(60);
/// The camera's picture.
const SIZE: (usize, usize) = (320, 240);

/// Every stream URL shape of camera `front`, which is also the default camera.
const STREAMS: [&str; 5] = [
    "/cameras/front/stream.mjpg",
    "/?action=stream",
    "/cameras/front/?action=stream",
    "/stream",
    "/cameras/front/stream",
];
const SNAPSHOTS: [&str; 5] = [
    "/cameras/front/snapshot.jpg",
    "/?action=snapshot",
    "/cameras/front/?action=snapshot",
    "/snapshot",
    "/cameras/front/snapshot",
];

fn start_fleet(name: &str) -> (PathBuf, Process) {
    let dir = scratch_dir(name);
    write_config(
        &dir,
        "server: {default_camera: front}\ncameras:\n  - id: front\n    source: {kind: synthetic, width: 320, height: 240, fps: 20}\n  - id: back\n    source: {kind: synthetic, width: 160, height: 120, fps: 20}\n",
    );
    let process = Process::start(&dir, None);
    (dir, process)
}

/// The size in bytes of each picture in ffmpeg's `framemd5` output (one line per decoded
/// frame: stream, dts, pts, duration, size, checksum).
fn framemd5_sizes(stdout: &[u8]) -> Vec<usize> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(',').nth(4).unwrap().trim().parse().unwrap())
        .collect()
}

/// Waits for `child` to end within [`PLAYER_DEADLINE`], or kills it and says so.
fn finish(mut child: Child, what: &str) -> std::process::Output {
    let deadline = Instant::now() + PLAYER_DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{what} did not finish within {PLAYER_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn ffmpeg_decodes_every_url_shape() {
    deps("players");
    let (_dir, process) = start_fleet("players-ffmpeg");
    let urls = STREAMS
        .iter()
        .map(|p| (p, FRAMES))
        .chain(SNAPSHOTS.iter().map(|p| (p, 1)));
    for (path, frames) in urls {
        let url = format!("http://{}{path}", process.addr);
        // framemd5 prints one line per decoded frame, with its size in bytes.
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i", &url])
            .args(["-frames:v", &frames.to_string(), "-f", "framemd5", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffmpeg runs");
        let out = finish(child, &format!("ffmpeg -i {url}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.is_empty(), "{url}: {stderr}");
        let decoded = framemd5_sizes(&out.stdout);
        assert_eq!(decoded.len(), frames, "{url}: {decoded:?}");
        // Each decoded picture is RGB or YUV of the camera's size.
        for bytes in decoded {
            assert!(bytes >= SIZE.0 * SIZE.1, "{url}: a frame of {bytes} bytes");
        }
    }
}

#[test]
fn opencv_reads_every_url_shape() {
    let python = deps("python");
    let (_dir, process) = start_fleet("players-opencv");
    let script = format!(
        r"
import cv2, json, sys
base = sys.argv[1]
seen = {{}}
for path in json.loads(sys.argv[2]):
    capture = cv2.VideoCapture(base + path, cv2.CAP_FFMPEG)
    shapes = []
    while len(shapes) < {FRAMES}:
        ok, frame = capture.read()
        if not ok:
            break
        shapes.append(list(frame.shape))
    capture.release()
    seen[path] = shapes
print(json.dumps(seen))
"
    );
    let child = Command::new(python.trim())
        .args(["-c", &script, &format!("http://{}", process.addr)])
        .arg(serde_json::to_string(&STREAMS).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let out = finish(child, "OpenCV");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for path in STREAMS {
        let shapes = seen[path].as_array().unwrap();
        assert_eq!(shapes.len(), FRAMES, "{path}: {seen}");
        for shape in shapes {
            assert_eq!(shape, &serde_json::json!([SIZE.1, SIZE.0, 3]), "{path}");
        }
    }
}

/// The whole JPEGs in a multipart file as VLC's `mpjpeg` muxer writes it.
fn vlc_parts(file: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = file;
    while let Some(at) = rest.windows(16).position(|w| w == b"Content-Length: ") {
        let after = &rest[at + 16..];
        let Some(eol) = after.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let len: usize = String::from_utf8_lossy(&after[..eol]).parse().unwrap();
        let Some(blank) = after.windows(4).position(|w| w == b"\r\n\r\n") else {
            break;
        };
        let body = &after[blank + 4..];
        if body.len() < len {
            break;
        }
        parts.push(body[..len].to_vec());
        rest = &body[len..];
    }
    parts
}

#[test]
fn vlc_records_every_url_shape() {
    deps("players");
    let (dir, process) = start_fleet("players-vlc");
    // VLC refuses to run as root; as root, it runs as nobody, writing where nobody may.
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let out_dir = dir.join("vlc");
    std::fs::create_dir_all(&out_dir).unwrap();
    Command::new("chmod")
        .arg("777")
        .arg(&out_dir)
        .status()
        .unwrap();
    for (i, path) in STREAMS.iter().enumerate() {
        let url = format!("http://{}{path}", process.addr);
        let file = out_dir.join(format!("{i}.mjpg"));
        let sout = format!("#std{{access=file,mux=mpjpeg,dst={}}}", file.display());
        let mut command = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--", "cvlc"]);
            c
        } else {
            Command::new("cvlc")
        };
        let mut vlc = command
            .args(["-q", "--no-video-title-show", &url, "--sout", &sout])
            .env("HOME", &out_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cvlc runs");
        // VLC records until stopped: wait for the frames, then stop it.
        let deadline = Instant::now() + PLAYER_DEADLINE;
        let parts = loop {
            let parts = vlc_parts(&std::fs::read(&file).unwrap_or_default());
            if parts.len() >= FRAMES {
                break parts;
            }
            if Instant::now() > deadline || vlc.try_wait().unwrap().is_some() {
                vlc.kill().ok();
                panic!("{url}: VLC recorded {} frames", parts.len());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // runuser passes SIGTERM on to VLC.
        Command::new("kill")
            .arg(vlc.id().to_string())
            .status()
            .unwrap();
        vlc.wait().unwrap();
        for jpeg in &parts[..FRAMES] {
            assert_eq!(jpeg_size(jpeg), SIZE, "{url}");
        }
    }
}

/// Access units of a moving 320x240 picture with fine detail (keyframes larger than one
/// RTP packet), encoded by `OpenH264` with a keyframe every `gop` frames.
fn h264_stream(count: usize, gop: u32) -> Vec<Vec<u8>> {
    use openh264::encoder::{Encoder, EncoderConfig, IntraFramePeriod};
    use openh264::formats::YUVBuffer;
    let (w, h) = SIZE;
    // Every frame encoded: a camera does not skip frames to hold a bitrate.
    let config = EncoderConfig::new()
        .intra_frame_period(IntraFramePeriod::from_num_frames(gop))
        .skip_frames(false);
    let mut encoder =
        Encoder::with_api_config(openh264::OpenH264API::from_source(), config).unwrap();
    (0..count)
        .map(|n| {
            let mut yuv = vec![128u8; w * h * 3 / 2];
            for (i, p) in yuv[..w * h].iter_mut().enumerate() {
                let (x, y) = (i % w, i / w);
                let grain = (x * 7919 + y * 104_729) % 61;
                *p = ((x + y + n * 5 + grain) % 256) as u8;
            }
            encoder
                .encode(&YUVBuffer::from_vec(yuv, w, h))
                .unwrap()
                .to_vec()
        })
        .collect()
}

#[test]
fn ffmpeg_plays_fragmented_mp4_of_h264_access_units_untouched() {
    use camfleet::camera::h264::{nal, nal_type, nal_units, AccessUnit, Sps};
    use camfleet::mp4::{fragment, init_segment, Sample, Track, TIMESCALE};
    const FPS: u32 = 30;
    deps("players");
    let units = h264_stream(60, FPS);
    let first = &units[0];
    let find = |kind| {
        nal_units(first)
            .find(|u| nal_type(u) == Some(kind))
            .expect("the first access unit carries its parameter sets")
            .to_vec()
    };
    let sps = find(nal::SPS);
    let size = Sps::parse(&sps).unwrap();
    let mut file = init_segment(&Track {
        width: size.width,
        height: size.height,
        sps,
        pps: find(nal::PPS),
    });
    // One fragment per GOP, as a live stream sends them.
    for (i, gop) in units.chunks(FPS as usize).enumerate() {
        let samples: Vec<Sample> = gop
            .iter()
            .map(|au| Sample {
                access_unit: au,
                duration: TIMESCALE / FPS,
                keyframe: AccessUnit::of(au).keyframe,
            })
            .collect();
        assert!(samples[0].keyframe);
        let start = (i * gop.len()) as u64 * u64::from(TIMESCALE / FPS);
        file.extend(fragment(i as u32 + 1, start, &samples));
    }
    let path = scratch_dir("fmp4").join("stream.mp4");
    std::fs::write(&path, &file).unwrap();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,r_frame_rate,nb_read_frames",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(&path)
        .output()
        .expect("ffprobe runs");
    let said = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    for line in [
        "codec_name=h264",
        "width=320",
        "height=240",
        "r_frame_rate=30/1",
        "nb_read_frames=60",
    ] {
        assert!(said.lines().any(|l| l == line), "ffprobe said:\n{said}");
    }
    // Every frame decodes without a word from the decoder.
    let decoded = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let errors = String::from_utf8_lossy(&decoded.stderr);
    assert!(decoded.status.success() && errors.is_empty(), "{errors}");
}

/// Whether a UDP socket is bound to `port` on this machine.
fn udp_port_bound(port: u16) -> bool {
    let hex = format!(":{port:04X} ");
    std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| t.lines().any(|l| l.contains(&hex)))
}

#[test]
fn ffmpeg_decodes_rtp_packets_of_h264_access_units_from_their_sdp() {
    use camfleet::camera::h264::{nal, nal_type, nal_units};
    use camfleet::rtp::{sdp_media, Packetizer, CLOCK_RATE, MAX_PAYLOAD};
    /// Frames ffmpeg must decode; the camera sends until it has.
    const DECODE: usize = 40;
    const FPS: u32 = 30;
    deps("players");
    let units = h264_stream(90, FPS);
    assert!(
        nal_units(&units[0]).any(|u| u.len() > MAX_PAYLOAD),
        "the keyframe travels in fragments"
    );
    let find = |kind| {
        nal_units(&units[0])
            .find(|u| nal_type(u) == Some(kind))
            .unwrap()
            .to_vec()
    };
    // An even port whose neighbour (RTCP) is free too.
    let port = loop {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        if port % 2 == 0 && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            break port;
        }
    };
    let dir = scratch_dir("rtp");
    let sdp = dir.join("camera.sdp");
    std::fs::write(
        &sdp,
        format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=camfleet\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{}",
            sdp_media(&find(nal::SPS), &find(nal::PPS), port, None)
        ),
    )
    .unwrap();
    let ffmpeg = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-protocol_whitelist",
            "file,udp,rtp",
        ])
        .arg("-i")
        .arg(&sdp)
        .args(["-frames:v", &DECODE.to_string(), "-f", "framemd5", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    let deadline = Instant::now() + PLAYER_DEADLINE;
    while !udp_port_bound(port) {
        assert!(Instant::now() < deadline, "ffmpeg did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The camera: every frame's packets at its rate, from its first keyframe on, until
    // ffmpeg has its frames.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut packetizer = Packetizer::new(0x00ca_f1ee, 1000);
    let mut ffmpeg = Some(ffmpeg);
    for (n, au) in units.iter().enumerate() {
        let timestamp = n as u32 * (CLOCK_RATE / FPS);
        for packet in packetizer.packetize(au, timestamp) {
            socket.send_to(&packet, ("127.0.0.1", port)).unwrap();
        }
        if ffmpeg.as_mut().unwrap().try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1) / FPS);
    }
    let out = finish(ffmpeg.take().unwrap(), "ffmpeg -i camera.sdp");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && errors.is_empty(), "{errors}");
    let decoded = framemd5_sizes(&out.stdout);
    assert_eq!(decoded.len(), DECODE);
    for bytes in decoded {
        assert_eq!(bytes, SIZE.0 * SIZE.1 * 3 / 2, "a 320x240 4:2:0 picture");
    }
}
