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

mod accounts;
mod cli;
mod h264;
mod https;
mod kubernetes;
mod limits;
mod metrics;
mod mqtt;
mod openapi;
mod overrides;
mod players;
mod python;
mod reload;
mod schema;
mod shutdown;
mod soak;

use crate::helpers::*;
use metrics::{install_metrics_parser, metrics_text, parse_metrics, sample, whole};

/// A camfleet process with its own configuration file and state directory.
pub(super) struct Process {
    pub(super) child: Child,
    pub(super) addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

pub(super) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("camfleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `camfleet serve` on `dir`'s cameras.yaml and state directory, listening on `addr`.
fn serve_command(dir: &Path, addr: SocketAddr) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_camfleet"));
    command
        .args(["serve", "--config"])
        .arg(dir.join("cameras.yaml"))
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--state-dir")
        .arg(dir.join("state"));
    command
}

impl Process {
    pub(super) fn start(dir: &Path, addr: Option<SocketAddr>) -> Process {
        let addr = addr.unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        });
        let mut child = serve_command(dir, addr)
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

    pub(super) fn signal(&self, sig: libc::c_int) {
        // SAFETY: sends a signal to our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// Waits for a log line containing `text`.
    pub(super) fn log_line(&self, text: &str) -> String {
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

impl Process {
    /// A WebSocket client of this process, watching `camera` stream.
    pub(super) async fn watcher(&self, camera: &str) -> Client {
        let mut client = Client::connect_to(self.addr).await;
        client.subscribe(&[camera]).await;
        client.streaming(camera).await;
        client
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` with `input` on its standard input and waits for it.
pub(super) fn run_with_input(command: &mut Command, input: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `camfleet ARGS` with `input` on standard input; returns its status, stdout, stderr.
pub(super) fn camfleet(args: &[&str], input: &str) -> (bool, String, String) {
    let out = run_with_input(
        Command::new(env!("CARGO_BIN_EXE_camfleet")).args(args),
        input,
    );
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Installs a test group's tools with `tests/deps.sh` and returns what it printed.
pub(super) fn deps(group: &str) -> String {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deps.sh"))
        .arg(group)
        .stderr(Stdio::inherit())
        .output()
        .expect("tests/deps.sh runs");
    assert!(out.status.success(), "tests/deps.sh {group} failed");
    String::from_utf8(out.stdout).unwrap()
}

pub(super) fn write_config(dir: &Path, yaml: &str) {
    // As editors do: write a new file, then rename it over the old one.
    let tmp = dir.join(".cameras.yaml.new");
    std::fs::write(&tmp, yaml).unwrap();
    std::fs::rename(tmp, dir.join("cameras.yaml")).unwrap();
}

/// Resident memory of a process, in KiB.
pub(super) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

pub(super) fn synthetic(id: &str, fps: u32) -> String {
    format!("  - id: {id}\n    source: {{kind: synthetic, width: 160, height: 120, fps: {fps}}}\n")
}

#[test]
fn the_systemd_unit_verifies() {
    deps("service");
    // Verified as installed, except that ExecStart points at this build's binary.
    let unit = include_str!("../../../deploy/systemd/camfleet.service")
        .replace("/usr/local/bin/camfleet", env!("CARGO_BIN_EXE_camfleet"));
    for line in [
        "Type=notify",
        "DeviceAllow=char-video4linux rw",
        "SupplementaryGroups=video camfleet",
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

/// What systemd's `Type=notify` waits for: `READY=1` once camfleet serves, `STOPPING=1` on
/// SIGTERM, on the datagram socket named by `NOTIFY_SOCKET`.
#[test]
fn systemd_hears_ready_and_stopping() {
    let dir = scratch_dir("notify");
    write_config(&dir, &format!("cameras:\n{}", synthetic("a", 10)));
    let socket_path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(WAIT * 3)).unwrap();
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = serve_command(&dir, addr)
        .env("NOTIFY_SOCKET", &socket_path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let heard = |buf: &mut [u8]| {
        let n = socket.recv(buf).expect("camfleet notified systemd");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(heard(&mut buf).trim(), "READY=1");
    // Ready means serving.
    std::net::TcpStream::connect(addr).expect("camfleet listens once it says READY=1");
    // SAFETY: sends a signal to our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(heard(&mut buf).trim(), "STOPPING=1");
    assert!(child.wait().unwrap().success());
}

/// Deletes a group the test made, however the test ends.
struct GroupCleanup(String);

impl Drop for GroupCleanup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.0).status();
    }
}

/// deploy/README.md's permissions, as its commands set them, under the systemd unit's
/// `DynamicUser=yes`: a user id that exists only while the service runs (61184 to 65519),
/// with `SupplementaryGroups=camfleet`, reads the configuration; the same id without the
/// group cannot. Needs root, as the guide's commands do.
#[test]
fn the_deploy_guides_permissions_work_for_a_dynamic_user() {
    assert_eq!(
        // SAFETY: a plain call with no arguments.
        unsafe { libc::geteuid() },
        0,
        "this test creates a group and runs camfleet as another user: run it as root"
    );
    let unit = include_str!("../../../deploy/systemd/camfleet.service");
    assert!(
        unit.contains("DynamicUser=yes") && unit.contains("SupplementaryGroups=video camfleet")
    );
    let group = format!("cf{}", std::process::id());
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("groupadd", &["--system", &group]);
    let _cleanup = GroupCleanup(group.clone());
    let dir = scratch_dir("deploy-perms");
    // Anyone may pass through it, as through /etc.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let etc = dir.join("etc-camfleet");
    let config = etc.join("cameras.yaml");
    let (etc_s, config_s) = (etc.to_str().unwrap(), config.to_str().unwrap());
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/cameras.yaml");
    // The guide's own commands.
    run("install", &["-d", "-m", "0750", "-g", &group, etc_s]);
    run("install", &["-m", "0640", "-g", &group, source, config_s]);

    let check = |groups: &str| {
        let out = Command::new("setpriv")
            .args(["--reuid=61999", "--regid=61999", groups, "--"])
            .arg(env!("CARGO_BIN_EXE_camfleet"))
            .args(["check", "--config", config_s])
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, said) = check(&format!("--groups={group}"));
    assert!(ok && said.contains("camera(s)"), "{said}");
    let (ok, said) = check("--clear-groups");
    assert!(!ok && said.contains("ermission denied"), "{said}");
}

#[test]
fn check_takes_the_file_as_an_argument_or_with_config() {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/cameras.yaml");
    for args in [vec!["check", repo], vec!["check", "--config", repo]] {
        let (ok, out, err) = camfleet(&args, "");
        assert!(ok && out.contains("camera(s)"), "{args:?}: {out}{err}");
    }
    let (ok, _, err) = camfleet(&["check", "/nonexistent/cameras.yaml"], "");
    assert!(!ok && err.contains("cannot read the file"), "{err}");
}
