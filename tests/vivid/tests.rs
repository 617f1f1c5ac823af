//! The V4L2 tests, run one after another inside the VM.

use std::future::Future;
use std::pin::Pin;
use std::process::Command;
use std::time::{Duration, Instant};

use camfleet::config::Config;
use camfleet::proto::{self, CameraState};

use crate::helpers::{code, control_value, spawn, state, Client};
use crate::loopback::{self, Feeder};
use crate::mjpeg_client::{jpeg_size, MjpegClient};

type Test = fn() -> Pin<Box<dyn Future<Output = ()>>>;

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        pub const ALL: &[(&str, Test)] = &[$((stringify!($name), || Box::pin($name()))),*];
    };
}

tests!(
    two_devices_capture_at_their_rate,
    control_list_matches_v4l2_ctl,
    live_control_change_reaches_the_driver,
    desired_controls_are_in_effect_after_start,
    unplug_and_rebind_recover,
    mjpeg_passes_through_from_a_real_driver,
    h264_passes_through_from_a_real_driver,
    device_errors_are_states_and_refusals,
    devices_are_found_by_link_card_and_bus_info,
    devices_yaml_is_a_valid_fleet,
    the_udev_rule_names_a_camera_by_its_port,
);

const VIVID: &str = "\
cameras:
  - id: cam0
    source: {kind: v4l2, device: /dev/video0, pixel_format: YUYV, width: 320, height: 180, fps: 30}
    controls:
      brightness: 77
      gain: 50
      gain_automatic: false
  - id: cam1
    source: {kind: v4l2, device: /dev/video1, pixel_format: YUYV, width: 640, height: 360, fps: 25}
";

fn v4l2_ctl(args: &[&str]) -> String {
    let out = Command::new("v4l2-ctl")
        .args(args)
        .output()
        .expect("v4l2-ctl runs");
    assert!(
        out.status.success(),
        "v4l2-ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn get_ctrl(device: &str, name: &str) -> i64 {
    let out = v4l2_ctl(&["-d", device, "--get-ctrl", name]);
    out.trim().rsplit(": ").next().unwrap().parse().unwrap()
}

fn sysfs_write(path: &str, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| panic!("writing {value} to {path}: {e}"));
}

/// Frames per second of `id` measured from its counters over at least `secs` seconds.
async fn measured_fps(client: &mut Client, id: &str, secs: f64) -> f64 {
    // Statuses kept back, or queued while the test did something else, are old: read until
    // one has to be waited for, which is fresh.
    client.forget_backlog();
    let first = loop {
        let waited = Instant::now();
        let s = client.status_where(id, |_| true).await;
        if waited.elapsed() > Duration::from_millis(300) {
            break s;
        }
    };
    let t0 = Instant::now();
    let last = client
        .status_where(id, |_| t0.elapsed().as_secs_f64() >= secs)
        .await;
    (last.frames_captured - first.frames_captured) as f64 / t0.elapsed().as_secs_f64()
}

async fn two_devices_capture_at_their_rate() {
    let server = spawn(VIVID);
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    let s0 = client.streaming("cam0").await;
    let s1 = client.streaming("cam1").await;
    assert_eq!(
        (s0.width, s0.height, s0.pixel_format.as_str()),
        (320, 180, "YUYV")
    );
    assert_eq!((s1.width, s1.height), (640, 360));
    assert!(s0.format_note.is_empty(), "{}", s0.format_note);
    assert_eq!((s0.device_fps, s1.device_fps), (30.0, 25.0));
    let (fps0, fps1) = (
        measured_fps(&mut client, "cam0", 4.0).await,
        measured_fps(&mut client, "cam1", 4.0).await,
    );
    assert!(
        (fps0 - 30.0).abs() <= 3.0,
        "cam0 at {fps0:.1} fps, asked 30"
    );
    assert!(
        (fps1 - 25.0).abs() <= 2.5,
        "cam1 at {fps1:.1} fps, asked 25"
    );

    // Raw frames are encoded for a viewer, and decode.
    let mut viewer = MjpegClient::get(server.addr, "/cameras/cam1/stream.mjpg", None).await;
    for _ in 0..5 {
        assert_eq!(
            jpeg_size(&viewer.next_part().await.unwrap().jpeg),
            (640, 360)
        );
    }
    let s = client.status_where("cam1", |s| s.frames_encoded > 0).await;
    assert!(s.encode_seconds > 0.0);
}

async fn control_list_matches_v4l2_ctl() {
    let server = spawn(VIVID);
    let mut client = server.client().await;
    client.subscribe(&["cam0"]).await;
    client.streaming("cam0").await;
    let ours = client.controls("cam0").await;
    let listed = v4l2_ctl(&["-d", "/dev/video0", "-l"]);
    let mut compared = 0;
    // Control lines read `name 0xID (type) : min=... max=...`; class headings do not.
    let is_control = |l: &&str| {
        let t: Vec<&str> = l.split_whitespace().collect();
        t.len() > 2 && t[1].starts_with("0x") && t[2].starts_with('(')
    };
    for line in listed.lines().filter(is_control) {
        let name = line.split_whitespace().next().unwrap();
        let c = ours
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("camfleet does not list `{name}`"));
        let field = |key: &str| -> Option<i64> {
            let at = line.find(&format!(" {key}="))? + key.len() + 2;
            line[at..].split_whitespace().next()?.parse().ok()
        };
        for (key, ours) in [
            ("min", c.min),
            ("max", c.max),
            ("step", c.step),
            ("default", c.default),
        ] {
            if let Some(theirs) = field(key) {
                assert_eq!(ours, theirs, "`{name}` {key}");
            }
        }
        compared += 1;
    }
    let extra: Vec<&str> = ours
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| {
            !listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(n))
        })
        .collect();
    assert!(
        extra.is_empty(),
        "camfleet lists controls v4l2-ctl does not: {extra:?}"
    );
    assert_eq!(compared, ours.len());
    assert!(compared > 40, "only {compared} controls compared");
    let unsupported = ours
        .iter()
        .filter(|c| c.r#type == proto::ControlType::Unsupported as i32)
        .count();
    assert!(
        unsupported >= 5,
        "vivid's compound controls are listed as unsupported"
    );
}

async fn live_control_change_reaches_the_driver() {
    let server = spawn(VIVID);
    let mut client = server.client().await;
    client.subscribe(&["cam0"]).await;
    let before = client.streaming("cam0").await;
    let r = client.set_control("cam0", "brightness", 200).await;
    assert!(r.ok, "{}", r.error);
    assert_eq!(r.value, Some(200));
    assert_eq!(get_ctrl("/dev/video0", "brightness"), 200);
    let after = client
        .status_where("cam0", |s| s.frames_captured > before.frames_captured + 30)
        .await;
    assert_eq!(state(&after), CameraState::Streaming);
    assert_eq!(after.reconnects, 0, "the stream restarted");
    assert_eq!(control_value(&after, "brightness"), Some(200));
}

async fn desired_controls_are_in_effect_after_start() {
    let server = spawn(VIVID);
    let mut client = server.client().await;
    client.subscribe(&["cam0"]).await;
    let s = client.streaming("cam0").await;
    assert!(s.control_problems.is_empty(), "{:?}", s.control_problems);
    // gain is written before gain_automatic in the file; the automatic mode goes first,
    // or the manual gain would not stick.
    assert_eq!(get_ctrl("/dev/video0", "brightness"), 77);
    assert_eq!(get_ctrl("/dev/video0", "gain_automatic"), 0);
    assert_eq!(get_ctrl("/dev/video0", "gain"), 50);
}

async fn unplug_and_rebind_recover() {
    let server = spawn(VIVID);
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    client.streaming("cam0").await;
    client.streaming("cam1").await;

    let pressed = Instant::now();
    assert!(client.set_control("cam0", "disconnect", 1).await.ok);
    let down = client
        .status_where("cam0", |s| state(s) == CameraState::Reconnecting)
        .await;
    assert!(
        pressed.elapsed() < Duration::from_secs(1),
        "took {:?}",
        pressed.elapsed()
    );
    assert!(down.reason.contains("unplugged"), "{}", down.reason);
    // The other vivid device goes on alone.
    let a = client.status_where("cam1", |_| true).await.frames_captured;
    let b = client.status_where("cam1", |s| s.frames_captured > a).await;
    let c = client
        .status_where("cam1", |s| s.frames_captured > b.frames_captured)
        .await;
    assert_eq!(state(&c), CameraState::Streaming);

    sysfs_write("/sys/bus/platform/drivers/vivid/unbind", "vivid.0");
    sysfs_write("/sys/bus/platform/drivers/vivid/bind", "vivid.0");
    let up = client
        .status_where("cam0", |s| {
            state(s) == CameraState::Streaming && s.reconnects >= 1
        })
        .await;
    assert!(up.control_problems.is_empty(), "{:?}", up.control_problems);
    assert_eq!(get_ctrl("/dev/video0", "brightness"), 77);
    assert_eq!(get_ctrl("/dev/video0", "gain"), 50);
    let seq = up.frames_captured;
    client
        .status_where("cam0", |s| s.frames_captured > seq + 10)
        .await;
    client
        .status_where("cam1", |s| state(s) == CameraState::Streaming)
        .await;
}

async fn mjpeg_passes_through_from_a_real_driver() {
    let (w, h) = (1280, 720);
    let written = loopback::frames(w, h, 30);
    let _feeder = Feeder::start(written.clone(), *b"MJPG", w, h, 30);
    let server = spawn(&format!(
        "cameras:\n  - id: loop\n    source: {{kind: v4l2, device: {}, pixel_format: MJPG}}\n",
        loopback::DEVICE
    ));
    let mut client = server.client().await;
    client.subscribe(&["loop"]).await;
    let s = client.streaming("loop").await;
    assert_eq!((s.pixel_format.as_str(), s.width, s.height), ("MJPG", w, h));

    let mut viewer = MjpegClient::get(server.addr, "/cameras/loop/stream.mjpg", None).await;
    for _ in 0..40 {
        let part = viewer.next_part().await.unwrap();
        assert!(
            written.iter().any(|j| j.as_ref() == part.jpeg.as_slice()),
            "a served frame ({} bytes) is not one of the JPEGs written",
            part.jpeg.len()
        );
    }
    let fps = measured_fps(&mut client, "loop", 4.0).await;

    assert!(
        (fps - 30.0).abs() <= 3.0,
        "loopback at {fps:.1} fps, fed 30"
    );
    let s = client.status_where("loop", |_| true).await;
    assert_eq!(s.frames_encoded, 0, "MJPEG was re-encoded");
}

async fn h264_passes_through_from_a_real_driver() {
    let (w, h) = (320, 240);
    let gop = loopback::FPS as usize;
    // Two GOPs, written in a loop at their rate.
    let written = loopback::h264_units(w, h, 2 * loopback::FPS);
    let _feeder = Feeder::start(written.clone(), *b"H264", w, h, loopback::FPS);
    let server = spawn(&format!(
        "server:\n  rtsp_listen: 127.0.0.1:0\ncameras:\n  - id: loop\n    source: {{kind: v4l2, device: {}, pixel_format: H264}}\n",
        loopback::DEVICE
    ));
    let mut client = server.client().await;
    client.watch(&["loop"], 0).await;

    // Every frame the WebSocket client gets is a written access unit, byte for byte, in
    // the order written, starting at a keyframe. (Nothing else is read before the first
    // frame, so that none is passed over.)
    let mut last: Option<usize> = None;
    for n in 0..3 * gop {
        let (au, keyframe) = client
            .recv_until(|m| match m {
                proto::server_message::Kind::Frame(f) if f.codec == proto::Codec::H264 as i32 => {
                    Some((f.h264.to_vec(), f.keyframe))
                }
                _ => None,
            })
            .await;
        // v4l2loopback may hand over its first buffer at full size (as with MJPEG): the
        // unit written, then what the buffer held before. Only the first frame may be so.
        let same = |u: &bytes::Bytes| {
            u.as_ref() == au.as_slice() || (last.is_none() && au.starts_with(u.as_ref()))
        };
        let i = written.iter().position(same).unwrap_or_else(|| {
            panic!(
                "frame {n} ({} bytes) is not an access unit written",
                au.len()
            )
        });
        assert_eq!(keyframe, i % gop == 0, "frame {n} is unit {i}");
        match last {
            None => assert!(keyframe, "the first frame is a keyframe, not unit {i}"),
            Some(l) => assert_eq!(i, (l + 1) % written.len(), "frame {n} follows unit {l}"),
        }
        last = Some(i);
    }
    let s = client.status_where("loop", |s| s.gop_frames > 0).await;
    assert_eq!((s.pixel_format.as_str(), s.width, s.height), ("H264", w, h));
    assert_eq!(s.gop_frames as usize, gop);
    assert!(s.codec.starts_with("avc1."), "{}", s.codec);
    assert_eq!(s.frames_encoded, 0, "H.264 was re-encoded");

    // Players see H.264 of the size and rate written, over HTTP and RTSP.
    let host = server.get_json("/api/host").await;
    let rtsp = host["rtsp_port"].as_u64().expect("the RTSP server runs");
    for url in [
        format!("http://{}/cameras/loop/stream.mp4", server.addr),
        format!("rtsp://127.0.0.1:{rtsp}/loop"),
    ] {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-select_streams",
                "v:0",
            ])
            .args([
                "-show_entries",
                "stream=codec_name,width,height,r_frame_rate",
            ])
            .args(["-of", "csv=p=0", &url])
            .output()
            .expect("ffprobe runs");
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(said, format!("h264,{w},{h},{}/1", loopback::FPS), "{url}");
    }
}

async fn device_errors_are_states_and_refusals() {
    let server = spawn(&format!(
        "{VIVID}  - id: ghost\n    source: {{kind: v4l2, device: /dev/video-missing}}\n"
    ));
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    let ghost = client
        .status_where("ghost", |s| state(s) == CameraState::Reconnecting)
        .await;
    assert!(
        ghost.reason.contains("/dev/video-missing does not exist"),
        "{}",
        ghost.reason
    );
    client.streaming("cam0").await;

    // vivid locks its cropping controls while streaming; the driver's own refusal comes back.
    let r = client
        .set_control("cam0", "enable_capture_cropping", 0)
        .await;
    assert_eq!(code(r.code), proto::ErrorCode::DeviceRefused, "{}", r.error);
    assert!(
        r.error.contains("refused") && r.error.contains("locked"),
        "{}",
        r.error
    );
    assert_eq!(get_ctrl("/dev/video0", "enable_capture_cropping"), 1);
    // A value out of range is refused before it reaches the driver, naming the range.
    let r = client.set_control("cam0", "brightness", 999).await;
    assert_eq!(code(r.code), proto::ErrorCode::OutOfRange, "{}", r.error);
    assert!(r.error.contains("from 0 to 255"), "{}", r.error);
}

async fn devices_are_found_by_link_card_and_bus_info() {
    // The VM has no udev, so a link like /dev/v4l/by-id/... is made by hand.
    let link = std::env::temp_dir().join("usb-vivid-camera-video-index0");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/dev/video0", &link).unwrap();
    let link = link.display();
    let server = spawn(&format!(
        "cameras:\n\
         \x20 - id: by-link\n    source: {{kind: v4l2, device: {link}, width: 320, height: 180, fps: 15}}\n\
         \x20 - id: by-bus\n    source: {{kind: v4l2, bus_info: \"platform:vivid-001\", width: 320, height: 180, fps: 15}}\n"
    ));
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    client.streaming("by-link").await;
    client.streaming("by-bus").await;
    drop(client);
    drop(server);

    let server = spawn("cameras:\n  - id: by-card\n    source: {kind: v4l2, card: vivid, width: 320, height: 180, fps: 15}\n  - id: nowhere\n    source: {kind: v4l2, serial: NO-SUCH-SERIAL}\n");
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    client.streaming("by-card").await;
    let missing = client
        .status_where("nowhere", |s| state(s) == CameraState::Reconnecting)
        .await;
    assert!(
        missing.reason.contains("USB serial \"NO-SUCH-SERIAL\""),
        "{}",
        missing.reason
    );
}

async fn devices_yaml_is_a_valid_fleet() {
    let yaml = camfleet::devices::yaml();
    let config = Config::parse(&yaml, std::path::Path::new("devices.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert!(config.cameras.len() >= 2, "{yaml}");
    let report = camfleet::devices::report();
    assert!(report.contains("/dev/video0: vivid"), "{report}");
    assert!(report.contains("control brightness"), "{report}");
}

/// deploy/udev/99-camfleet.rules, run by the host's udev (`udevadm test` applies the rules
/// and makes the links) on vivid, which has no USB serial: the camera is named by its port
/// path, and camfleet captures through that name.
async fn the_udev_rule_names_a_camera_by_its_port() {
    let rules = include_str!("../../deploy/udev/99-camfleet.rules");
    // udev reports each action with the rule's file and line.
    let line_of = |text: &str| {
        let n = rules
            .lines()
            .position(|l| l.starts_with("SUBSYSTEM") && l.contains(text))
            .unwrap()
            + 1;
        format!("99-camfleet.rules:{n} ")
    };
    let (by_serial, by_port) = (
        line_of("SYMLINK+=\"camfleet/$env"),
        line_of("camfleet/port/"),
    );
    // /run is the VM's own tmpfs, and /run/udev/rules.d is one of udev's rule directories.
    std::fs::create_dir_all("/run/udev/rules.d").unwrap();
    std::fs::write("/run/udev/rules.d/99-camfleet.rules", rules).unwrap();
    let out = Command::new("udevadm")
        .args(["test", "--action=add", "/sys/class/video4linux/video0"])
        .output()
        .expect("udevadm runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    let tag = said
        .lines()
        .find_map(|l| l.strip_prefix("ID_PATH_TAG="))
        .unwrap_or_else(|| panic!("udev found no port path for vivid:\n{said}"));
    let link = format!("/dev/camfleet/port/{tag}");
    assert!(
        said.contains(&format!("{by_port}LINK 'camfleet/port/{tag}'")),
        "{said}"
    );
    assert!(said.contains(&format!("{by_port}MODE 0660")), "{said}");
    // No serial, so no serial name.
    assert!(!said.contains(&by_serial), "{said}");
    assert_eq!(
        std::fs::canonicalize(&link).unwrap(),
        std::path::Path::new("/dev/video0")
    );
    let server = spawn(&format!(
        "cameras:\n  - id: by-port\n    source: {{kind: v4l2, device: {link}, width: 320, height: 180, fps: 15}}\n"
    ));
    let mut client = server.client().await;
    client.subscribe(&[]).await;
    client.streaming("by-port").await;
}
