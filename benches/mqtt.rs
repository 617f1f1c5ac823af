//! The MQTT link's load on a broker, measured: three camfleet hosts with eight cameras
//! each, snapshots every 5 s, on one mosquitto; then the time from a `.../set` to its
//! `.../result`, one command at a time.
//!
//! `cargo bench --bench mqtt` (installs mosquitto through `tests/deps.sh mqtt`).
//! `CAMFLEET_BENCH_SECONDS` sets the measured window (default 60).

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const HOSTS: usize = 3;
const CAMERAS_PER_HOST: usize = 8;
const SNAPSHOT_INTERVAL_SECS: u32 = 5;
const COMMANDS: usize = 200;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn fleet_file(dir: &Path, host: usize, broker: u16) -> PathBuf {
    let mut yaml = format!(
        "mqtt:\n  url: mqtt://127.0.0.1:{broker}\n  host_id: host-{host}\n  snapshot_interval: {SNAPSHOT_INTERVAL_SECS}\ncameras:\n"
    );
    for camera in 0..CAMERAS_PER_HOST {
        let _ = writeln!(
            yaml,
            "  - id: cam-{camera}\n    source: {{kind: synthetic, width: 640, height: 480, fps: 15, prerender: 15}}"
        );
    }
    let path = dir.join(format!("host-{host}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ok = Command::new(repo.join("tests/deps.sh"))
        .arg("mqtt")
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "tests/deps.sh mqtt failed");
    let seconds: u64 = std::env::var("CAMFLEET_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = std::env::temp_dir().join(format!("camfleet-bench-mqtt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let broker = free_port();
    std::fs::write(
        dir.join("mosquitto.conf"),
        format!("listener {broker} 127.0.0.1\nallow_anonymous true\n"),
    )
    .unwrap();
    let _mosquitto = Killed(
        Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(dir.join("mosquitto.conf"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(broker);
    let _hosts: Vec<Killed> = (0..HOSTS)
        .map(|host| {
            let port = free_port();
            let child = Command::new(env!("CARGO_BIN_EXE_camfleet"))
                .args(["serve", "--config"])
                .arg(fleet_file(&dir, host, broker))
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .arg("--state-dir")
                .arg(dir.join(format!("state-{host}")))
                .env("RUST_LOG", "warn")
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            wait_listening(port);
            Killed(child)
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(measure(broker, seconds));
}

async fn measure(broker: u16, seconds: u64) {
    let mut options = MqttOptions::new("bench", "127.0.0.1", broker);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(options, 64);
    client.subscribe("#", QoS::AtMostOnce).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                if tx
                    .send((p.topic, p.payload.len(), p.retain, Instant::now()))
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    // Warm up: each camera's state and a first snapshot seen.
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 * HOSTS * CAMERAS_PER_HOST {
        let (topic, ..) = rx.recv().await.unwrap();
        if topic.ends_with("/state") || topic.ends_with("/snapshot") {
            seen.insert(topic);
        }
    }
    while rx.try_recv().is_ok() {}
    let start = Instant::now();
    let window = Duration::from_secs(seconds);
    let mut counts = std::collections::BTreeMap::<&'static str, (u64, u64)>::new();
    while let Ok(Some((topic, bytes, _, _))) =
        tokio::time::timeout(window.saturating_sub(start.elapsed()), rx.recv()).await
    {
        let kind = if topic.ends_with("/state") {
            "state"
        } else if topic.ends_with("/snapshot") {
            "snapshot"
        } else if topic.contains("/control/") {
            "control"
        } else if topic.starts_with("homeassistant/") {
            "discovery"
        } else {
            "other"
        };
        let c = counts.entry(kind).or_default();
        c.0 += 1;
        c.1 += bytes as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{HOSTS} hosts x {CAMERAS_PER_HOST} cameras, snapshots every {SNAPSHOT_INTERVAL_SECS} s, {secs:.0} s measured:"
    );
    println!("| messages | per second | payload bytes per second |");
    println!("|---|---:|---:|");
    let (mut all_n, mut all_b) = (0, 0);
    for (kind, (n, b)) in &counts {
        println!(
            "| {kind} | {:.1} | {:.0} |",
            *n as f64 / secs,
            *b as f64 / secs
        );
        all_n += n;
        all_b += b;
    }
    println!(
        "| all | {:.1} | {:.0} |",
        all_n as f64 / secs,
        all_b as f64 / secs
    );

    // One command at a time: `.../set` to `.../result`.
    let mut took = Vec::with_capacity(COMMANDS);
    for i in 0..COMMANDS {
        while rx.try_recv().is_ok() {}
        let host = i % HOSTS;
        let set = format!("camfleet/host-{host}/cam-0/control/brightness/set");
        let result = format!("camfleet/host-{host}/cam-0/control/brightness/result");
        let sent = Instant::now();
        client
            .publish(set, QoS::AtLeastOnce, false, (100 + i % 50).to_string())
            .await
            .unwrap();
        loop {
            let (topic, _, _, at) = rx.recv().await.unwrap();
            if topic == result {
                took.push(at - sent);
                break;
            }
        }
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "set -> result over {COMMANDS} commands: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(took[COMMANDS / 2]),
        ms(took[COMMANDS * 99 / 100]),
        ms(took[COMMANDS - 1])
    );
}
