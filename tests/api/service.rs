//! camfleet as a service: the systemd unit, /metrics, control changes that survive a
//! SIGKILL, configuration reload and orderly shutdown, against the real binary where a
//! process must be killed, signalled or restarted.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use awc::ws;
use camfleet::proto::{self, client_message::Kind as C, server_message::Kind as S, CameraState};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;

use crate::helpers::*;
use crate::mjpeg_client::MjpegClient;

/// A camfleet process with its own configuration file and state directory.
struct Process {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("camfleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Process {
    fn start(dir: &Path, addr: Option<SocketAddr>) -> Process {
        let addr = addr.unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        });
        let mut child = Command::new(env!("CARGO_BIN_EXE_camfleet"))
            .args(["serve", "--config"])
            .arg(dir.join("cameras.yaml"))
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("camfleet starts");
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "camfleet did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Process { child, addr, log }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: sends a signal to our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// Waits for a log line containing `text`.
    fn log_line(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while let Ok(line) = self
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(text) {
                return line;
            }
        }
        panic!("no log line with {text:?}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, yaml: &str) {
    // As editors do: write a new file, then rename it over the old one.
    let tmp = dir.join(".cameras.yaml.new");
    std::fs::write(&tmp, yaml).unwrap();
    std::fs::rename(tmp, dir.join("cameras.yaml")).unwrap();
}

fn synthetic(id: &str, fps: u32) -> String {
    format!("  - id: {id}\n    source: {{kind: synthetic, width: 160, height: 120, fps: {fps}}}\n")
}

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        let ok = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "systemd"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
            || (Command::new("apt-get")
                .args(["update", "-qq"])
                .status()
                .is_ok()
                && Command::new("apt-get")
                    .args(["install", "-y", "-qq", "--no-install-recommends", "systemd"])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false));
        assert!(ok, "could not install systemd (for systemd-analyze)");
    }
    // Verified as installed, except that ExecStart points at this build's binary.
    let unit = include_str!("../../deploy/systemd/camfleet.service")
        .replace("/usr/local/bin/camfleet", env!("CARGO_BIN_EXE_camfleet"));
    for line in [
        "Type=notify",
        "DeviceAllow=char-video4linux rw",
        "SupplementaryGroups=video",
        "ProtectSystem=strict",
        "StateDirectory=camfleet",
        "Restart=on-failure",
        "--config /etc/camfleet/cameras.yaml",
    ] {
        assert!(unit.contains(line), "the unit lacks {line}");
    }
    let dir = scratch_dir("unit");
    let path = dir.join("camfleet.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("camfleet.service"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}

/// The metrics text, parsed by the Prometheus project's own Python parser.
fn parse_metrics(text: &str) -> serde_json::Value {
    let have = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status();
    if !have.map(|s| s.success()).unwrap_or(false) {
        let ok = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "prometheus-client"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "could not install prometheus-client");
    }
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n    \
            out[f.name] = {'type': f.type, 'help': f.documentation, 'samples': [[s.name, s.labels, s.value] for s in f.samples]}\n\
        print(json.dumps(out))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sample(m: &serde_json::Value, family: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
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
    let at = client.status_where("a", |_| true).await.frames_captured;
    client
        .status_where("a", |s| s.frames_captured > at + 10)
        .await;
    let second = parse_metrics(&text(&server).await);

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
        "camfleet_session_queue_depth",
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
        sample(
            &second,
            "camfleet_camera_state",
            "camfleet_camera_state",
            &[("camera", "a"), ("state", "streaming")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &second,
            "camfleet_camera_viewers",
            "camfleet_camera_viewers",
            &[("camera", "a"), ("kind", "mjpeg")]
        ),
        1.0
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

    assert!(!client.set_control("a", "brightness", 999).await.ok);
    let third = parse_metrics(&text(&server).await);
    assert_eq!(
        sample(
            &third,
            "camfleet_camera_control_writes_failed",
            "camfleet_camera_control_writes_failed_total",
            &[("camera", "a")]
        ),
        0.0,
        "a value refused before reaching the device is not a failed write"
    );
}

/// Sends brightness changes one after another, and SIGKILLs the server `kill_after` into
/// them; returns the last value the server acknowledged before the connection dropped.
async fn change_until_killed(process: &Process, start: i64, kill_after: Duration) -> i64 {
    let mut client = Client::connect_to(process.addr).await;
    client.subscribe(&["a"]).await;
    client.streaming("a").await;
    let pid = process.child.id() as libc::pid_t;
    std::thread::spawn(move || {
        std::thread::sleep(kill_after);
        // SAFETY: kills our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut acked = 0;
    for value in (start..).map(|v| v % 256) {
        let request_id = client.request_id();
        client
            .send(C::SetControl(proto::SetControl {
                request_id,
                camera_id: "a".into(),
                control: "brightness".into(),
                value,
            }))
            .await;
        match client.try_result(request_id).await {
            Some(r) if r.ok => acked = value,
            _ => return acked,
        }
    }
    unreachable!()
}

#[actix_rt::test]
async fn acknowledged_control_changes_survive_sigkill() {
    let dir = scratch_dir("sigkill");
    std::fs::write(
        dir.join("cameras.yaml"),
        format!("cameras:\n{}", synthetic("a", 20)),
    )
    .unwrap();
    let mut addr = None;
    for (round, kill_after_ms) in [(0, 400u64), (1, 650), (2, 900)] {
        let process = Process::start(&dir, addr);
        addr = Some(process.addr);
        let kill_after = Duration::from_millis(kill_after_ms);
        let acked = change_until_killed(&process, 1 + round * 60, kill_after).await;
        assert!(acked > 0, "no change was acknowledged before the kill");
        drop(process);

        let file = std::fs::read_to_string(dir.join("state/controls.json")).unwrap();
        let recorded: serde_json::Value = serde_json::from_str(&file)
            .unwrap_or_else(|e| panic!("controls.json is corrupt ({e}):\n{file}"));
        let kept = recorded["a"]["brightness"].as_i64().unwrap();
        // The change in flight when the process died may or may not have been recorded.
        assert!(
            kept == acked || kept == (acked + 1) % 256,
            "acked {acked}, file has {kept}"
        );

        let process = Process::start(&dir, addr);
        let mut client = Client::connect_to(process.addr).await;
        client.subscribe(&["a"]).await;
        let s = client
            .status_where("a", |s| {
                state(s) == CameraState::Streaming && !s.controls.is_empty()
            })
            .await;
        assert_eq!(control_value(&s, "brightness"), Some(kept), "round {round}");
    }
}

#[actix_rt::test]
async fn reset_forgets_recorded_changes() {
    let dir = scratch_dir("reset");
    let yaml = "cameras:\n  - id: a\n    source: {kind: synthetic, width: 160, height: 120, fps: 10}\n    controls: {brightness: 100}\n";
    std::fs::write(dir.join("cameras.yaml"), yaml).unwrap();
    let process = Process::start(&dir, None);
    let mut client = Client::connect_to(process.addr).await;
    client.subscribe(&["a"]).await;
    client.streaming("a").await;
    assert!(client.set_control("a", "brightness", 30).await.ok);
    assert!(client.set_control("a", "contrast", 60).await.ok);
    let request_id = client.request_id();
    client
        .send(C::ResetControls(proto::ResetControls {
            request_id,
            camera_id: "a".into(),
        }))
        .await;
    assert!(client.result(request_id).await.ok);
    let s = client
        .status_where("a", |s| control_value(s, "brightness") == Some(100))
        .await;
    assert_eq!(
        control_value(&s, "contrast"),
        Some(128),
        "back to the device default"
    );
    let file = std::fs::read_to_string(dir.join("state/controls.json")).unwrap();
    assert!(!file.contains("\"a\""), "still recorded: {file}");
}

#[actix_rt::test]
async fn reload_touches_only_what_changed() {
    let dir = scratch_dir("reload");
    let before = format!(
        "cameras:\n{}{}{}",
        synthetic("a", 20),
        synthetic("b", 20),
        synthetic("c", 30)
    );
    std::fs::write(dir.join("cameras.yaml"), &before).unwrap();
    let process = Process::start(&dir, None);
    let mut client = Client::connect_to(process.addr).await;
    client.subscribe(&[]).await;
    for id in ["a", "b", "c"] {
        client
            .status_where(id, |s| state(s) == CameraState::Streaming)
            .await;
    }

    // A viewer of c's frames stays attached while c restarts.
    let mut viewer = Client::connect_to(process.addr).await;
    let request_id = viewer.request_id();
    viewer
        .send(C::Subscribe(proto::Subscribe {
            camera_ids: vec!["c".into()],
            request_id,
            send_frames: true,
            max_fps: 0,
        }))
        .await;
    assert!(viewer.result(request_id).await.ok);
    client.status_where("c", |s| s.frames_captured > 60).await;

    // c changes, d is new; a and b are as they were.
    let after = format!(
        "cameras:\n{}{}{}{}",
        synthetic("a", 20),
        synthetic("b", 20),
        synthetic("c", 10),
        synthetic("d", 10)
    );
    write_config(&dir, &after);
    let mut last = std::collections::HashMap::<String, u64>::new();
    let mut c_restarted = false;
    let mut fleet_seen = false;
    let deadline = Instant::now() + WAIT;
    while !(c_restarted && fleet_seen && last.get("d").is_some_and(|n| *n > 0)) {
        assert!(
            Instant::now() < deadline,
            "reload did not finish: {last:?} c:{c_restarted} fleet:{fleet_seen}"
        );
        match client.next().await {
            Some(Ok(S::CameraStatus(s))) => {
                if s.camera_id == "a" || s.camera_id == "b" {
                    let prev = last.get(&s.camera_id).copied().unwrap_or(0);
                    assert!(
                        s.frames_captured >= prev,
                        "{} was restarted: {prev} -> {}",
                        s.camera_id,
                        s.frames_captured
                    );
                    assert_eq!(
                        state(&s),
                        CameraState::Streaming,
                        "{} was disturbed",
                        s.camera_id
                    );
                    assert_eq!(s.reconnects, 0);
                }
                if s.camera_id == "c"
                    && s.requested_fps == 10.0
                    && state(&s) == CameraState::Streaming
                {
                    c_restarted = true;
                }
                last.insert(s.camera_id.clone(), s.frames_captured);
            }
            Some(Ok(S::CameraList(l))) => {
                let ids: Vec<_> = l.cameras.iter().map(|c| c.camera_id.as_str()).collect();
                assert_eq!(ids, ["a", "b", "c", "d"]);
                fleet_seen = true;
            }
            _ => {}
        }
    }
    process.log_line("configuration reloaded");
    // The restarted camera's new frames reach the viewer that was already watching.
    let restarted = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let waited = Instant::now();
    viewer
        .recv_until(|k| match k {
            S::Frame(f) if f.capture_timestamp > restarted => Some(()),
            _ => None,
        })
        .await;
    assert!(
        waited.elapsed() < Duration::from_secs(2),
        "the restarted camera's first frame took {:?} to reach its viewer",
        waited.elapsed()
    );

    // A broken file changes nothing, and every client hears why.
    write_config(
        &dir,
        &after.replace(
            "id: c\n    source: {kind: synthetic, width: 160, height: 120, fps: 10",
            "id: c\n    source: {kind: synthetic, width: 160, height: 120, fps: 0",
        ),
    );
    let error = client.error().await.message;
    assert!(
        error.contains("was not reloaded") && error.contains("fps 0 is out of range"),
        "{error}"
    );
    process.log_line("was not reloaded");
    let a = client.status_where("a", |_| true).await.frames_captured;
    client
        .status_where("a", |s| {
            s.frames_captured > a && state(s) == CameraState::Streaming
        })
        .await;
    client.streaming("d").await;

    // SIGHUP reloads too.
    process.signal(libc::SIGHUP);
    process.log_line("reloading");
}

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

    let started = Instant::now();
    process.signal(libc::SIGTERM);
    let status = loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "camfleet did not exit"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    };
    let took = started.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
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
