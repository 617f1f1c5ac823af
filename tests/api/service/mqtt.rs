//! The MQTT link against a real broker: Debian's mosquitto, started by the test on a free
//! port, and the camfleet binary, as a user runs them.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

use super::*;

/// A mosquitto broker of the test's own.
struct Broker {
    child: Child,
    port: u16,
    conf: PathBuf,
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        deps("mqtt");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        )
        .unwrap();
        Broker::run(conf, port)
    }

    /// The broker as `deploy/mosquitto/` sets it up, with these accounts, on a free port.
    fn deployed(dir: &Path, accounts: &[(&str, &str)]) -> Broker {
        deps("mqtt");
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/mosquitto");
        let passwd = dir.join("camfleet.passwd");
        for (i, (user, password)) in accounts.iter().enumerate() {
            let mut make = Command::new("mosquitto_passwd");
            if i == 0 {
                make.arg("-c");
            }
            let ok = make
                .arg("-b")
                .arg(&passwd)
                .args([user, password])
                .status()
                .unwrap()
                .success();
            assert!(ok, "mosquitto_passwd failed");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = std::fs::read_to_string(deploy.join("mosquitto.conf"))
            .unwrap()
            .replace("listener 1883", &format!("listener {port} 127.0.0.1"))
            .replace("/etc/mosquitto/camfleet.passwd", &passwd.to_string_lossy())
            .replace(
                "/etc/mosquitto/camfleet.acl",
                &deploy.join("camfleet.acl").to_string_lossy(),
            )
            + &format!("persistence_location {}/\n", dir.display());
        let path = dir.join("mosquitto.conf");
        std::fs::write(&path, conf).unwrap();
        Broker::run(path, port)
    }

    fn run(conf: PathBuf, port: u16) -> Broker {
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, port, conf }
    }

    /// Stops the broker; [`Broker::run`] with what it returns starts it again, keeping
    /// nothing.
    fn stop(mut self) -> (PathBuf, u16) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.conf.clone(), self.port)
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message as a subscriber receives it.
#[derive(Debug, Clone)]
struct Received {
    topic: String,
    payload: String,
    bytes: Vec<u8>,
    retained: bool,
}

/// An MQTT client: what it receives on its filters, and what it publishes.
struct MqttClient {
    client: AsyncClient,
    messages: tokio::sync::mpsc::UnboundedReceiver<Received>,
    /// Messages on other topics than the one last waited for, in arrival order.
    kept: std::collections::VecDeque<Received>,
}

impl MqttClient {
    async fn connect(broker: &Broker, filters: &[&str]) -> MqttClient {
        MqttClient::connect_as(broker, None, filters).await
    }

    async fn connect_as(
        broker: &Broker,
        account: Option<(&str, &str)>,
        filters: &[&str],
    ) -> MqttClient {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let options = MqttOptions::new(
            format!("test-{}-{id}", std::process::id()),
            "127.0.0.1",
            broker.port,
        );
        let mut options = options;
        options.set_max_packet_size(1 << 20, 1 << 20);
        if let Some((user, password)) = account {
            options.set_credentials(user, password);
        }
        let (client, mut events) = AsyncClient::new(options, 64);
        for filter in filters {
            client.subscribe(*filter, QoS::AtLeastOnce).await.unwrap();
        }
        let (tx, messages) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(event) = events.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = event {
                    let received = Received {
                        topic: p.topic,
                        payload: String::from_utf8_lossy(&p.payload).into_owned(),
                        bytes: p.payload.to_vec(),
                        retained: p.retain,
                    };
                    if tx.send(received).is_err() {
                        return;
                    }
                }
            }
        });
        MqttClient {
            client,
            messages,
            kept: std::collections::VecDeque::new(),
        }
    }

    /// The next message on `topic` that `pick` accepts, within `within`. Messages on
    /// `topic` before it are passed over; those on other topics are kept for later.
    async fn next_on(
        &mut self,
        topic: &str,
        within: Duration,
        mut pick: impl FnMut(&Received) -> bool,
    ) -> Received {
        let mut others = std::collections::VecDeque::new();
        let mut found = None;
        while let Some(m) = self.kept.pop_front() {
            if m.topic != topic {
                others.push_back(m);
            } else if pick(&m) {
                found = Some(m);
                break;
            }
        }
        others.append(&mut self.kept);
        self.kept = others;
        if let Some(m) = found {
            return m;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.messages.recv()).await {
                Ok(Some(m)) if m.topic == topic => {
                    if pick(&m) {
                        return m;
                    }
                }
                Ok(Some(m)) => self.kept.push_back(m),
                Ok(None) | Err(_) => panic!("nothing on {topic} within {within:?}"),
            }
        }
    }

    /// The payload of the next message on `topic`, as bytes.
    async fn next_raw(&mut self, topic: &str, within: Duration) -> Vec<u8> {
        self.next_on(topic, within, |_| true).await.bytes
    }

    /// Publishes `payload` on a `.../set` topic and waits for what comes on its
    /// `.../result`.
    async fn command(&mut self, set: &str, payload: &str) -> Received {
        self.publish(set, payload).await;
        let result = format!("{}/result", set.strip_suffix("/set").unwrap());
        self.next_on(&result, WAIT, |_| true).await
    }

    async fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }
}

fn mqtt_yaml(broker: &Broker, host: &str) -> String {
    format!(
        "mqtt:\n  url: {}\n  host_id: {host}\ncameras:\n{}",
        broker.url(),
        synthetic("desk", 10)
    )
}

/// `GET /api/host`, as JSON.
async fn api_host(addr: SocketAddr) -> serde_json::Value {
    let (status, reply) = http_request(addr, None, "GET", "/api/host", &[], "").await;
    assert_eq!(status, 200, "{reply}");
    json(reply.split("\r\n\r\n").nth(1).unwrap())
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A broker of the test's own and a camfleet host `host` connected to it.
fn host_on_broker(dir: &Path, host: &str) -> (Broker, Process) {
    let broker = Broker::start(dir);
    write_config(dir, &mqtt_yaml(&broker, host));
    let process = Process::start(dir, None);
    process.log_line("MQTT connected");
    (broker, process)
}

/// Time for the link to (re)connect and publish: a retry, plus the margin.
fn link_wait() -> Duration {
    camfleet::mqtt::RETRY_INTERVAL + camfleet::mqtt::STATE_INTERVAL + WAIT
}

#[actix_rt::test]
async fn a_host_publishes_retained_state_and_takes_commands_like_a_websocket_client() {
    let dir = scratch_dir("mqtt-topics");
    let (broker, process) = host_on_broker(&dir, "bench-1");
    // A subscriber that comes later gets the retained topics.
    let mut mqtt = MqttClient::connect(&broker, &["camfleet/bench-1/#"]).await;
    let status = mqtt
        .next_on("camfleet/bench-1/status", link_wait(), |_| true)
        .await;
    assert!(status.retained && status.payload == "online", "{status:?}");
    let state = mqtt
        .next_on("camfleet/bench-1/desk/state", link_wait(), |m| {
            json(&m.payload)["state"] == "Streaming"
        })
        .await;
    let body = json(&state.payload);
    assert_eq!(body["camera_id"], "desk");
    assert!(body["fps"].is_number() && body["frames_captured"].is_number());
    assert_eq!(
        body["urls"]["mjpeg"],
        format!("http://{}/cameras/desk/stream.mjpg", process.addr)
    );
    mqtt.next_on(
        "camfleet/bench-1/desk/control/brightness",
        link_wait(),
        |_| true,
    )
    .await;
    // Once published, state and controls are retained: a newcomer gets them at once.
    let mut later = MqttClient::connect(&broker, &["camfleet/bench-1/desk/#"]).await;
    for topic in [
        "camfleet/bench-1/desk/state",
        "camfleet/bench-1/desk/control/brightness",
    ] {
        let m = later.next_on(topic, WAIT, |_| true).await;
        assert!(m.retained, "{m:?}");
    }
    drop(later);

    // A command goes through the hub: the camera changes, WebSocket clients see it, the
    // state file keeps it with who made it.
    let mut watcher = process.watcher("desk").await;
    let result = mqtt
        .command("camfleet/bench-1/desk/control/brightness/set", "77")
        .await;
    assert!(!result.retained);
    assert_eq!(
        json(&result.payload),
        serde_json::json!({"ok": true, "value": 77})
    );
    watcher
        .status_where("desk", |s| control_value(s, "brightness") == Some(77))
        .await;
    mqtt.next_on("camfleet/bench-1/desk/control/brightness", WAIT, |m| {
        m.payload == "77"
    })
    .await;
    let saved = std::fs::read_to_string(dir.join("state/controls.json")).unwrap();
    let saved = json(&saved);
    assert_eq!(saved["desk"]["brightness"], 77, "{saved}");
    assert_eq!(
        saved["$changed"]["desk"]["brightness"]["by"], "mqtt",
        "{saved}"
    );

    // A bad value gets the range, and nothing changes.
    let result = mqtt
        .command("camfleet/bench-1/desk/control/brightness/set", "999")
        .await;
    let body = json(&result.payload);
    assert_eq!(body["ok"], false);
    assert_eq!(body["code"], "out_of_range");
    assert!(
        body["error"].as_str().unwrap().contains("0 to 255"),
        "{body}"
    );
    let saved = json(&std::fs::read_to_string(dir.join("state/controls.json")).unwrap());
    assert_eq!(saved["desk"]["brightness"], 77, "{saved}");
    // A camera that does not exist, and a reset.
    let result = mqtt
        .command("camfleet/bench-1/attic/control/brightness/set", "1")
        .await;
    assert_eq!(json(&result.payload)["code"], "unknown_camera");
    let result = mqtt.command("camfleet/bench-1/desk/reset/set", "").await;
    assert_eq!(json(&result.payload), serde_json::json!({"ok": true}));
    watcher
        .status_where("desk", |s| control_value(s, "brightness") == Some(128))
        .await;
    // A changed `mqtt:` section is said to wait for a restart, not silently ignored.
    write_config(
        &dir,
        &mqtt_yaml(&broker, "bench-1").replace("host_id: bench-1", "host_id: bench-9"),
    );
    process.log_line("the `mqtt:` section changed");
}

#[actix_rt::test]
async fn a_killed_host_goes_offline_and_a_restarted_broker_gets_everything_again() {
    let dir = scratch_dir("mqtt-outages");
    let (broker, process) = host_on_broker(&dir, "bench-2");
    let mut mqtt = MqttClient::connect(&broker, &["camfleet/bench-2/status"]).await;
    mqtt.next_on("camfleet/bench-2/status", link_wait(), |m| {
        m.payload == "online"
    })
    .await;
    // SIGKILL: no goodbye, so the broker publishes the will.
    let addr = process.addr;
    process.signal(libc::SIGKILL);
    mqtt.next_on(
        "camfleet/bench-2/status",
        camfleet::mqtt::KEEP_ALIVE * 2 + WAIT,
        |m| m.payload == "offline",
    )
    .await;
    drop(process);
    // Retained: a newcomer reads `offline` too.
    let mut later = MqttClient::connect(&broker, &["camfleet/bench-2/status"]).await;
    let status = later
        .next_on("camfleet/bench-2/status", WAIT, |_| true)
        .await;
    assert!(status.retained && status.payload == "offline", "{status:?}");
    drop((mqtt, later));

    // Back; then the broker goes away: the link says so in its log and /metrics, and the
    // camera is served meanwhile.
    let process = Process::start(&dir, Some(addr));
    process.log_line("MQTT connected");
    let (conf, port) = broker.stop();
    process.log_line("cannot reach the MQTT broker");
    let metrics = metrics_text(addr).await;
    assert!(metrics.contains("camfleet_mqtt_connected 0"), "{metrics}");
    let host = api_host(addr).await;
    assert_eq!(host["mqtt"]["state"], "down", "{host}");
    assert!(
        host["mqtt"]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("cannot reach the MQTT broker 127.0.0.1:{port}")),
        "{host}"
    );
    let mut watcher = process.watcher("desk").await;
    let before = watcher.streaming("desk").await.frames_captured;
    watcher
        .status_where("desk", |s| s.frames_captured > before)
        .await;

    // The broker is back with nothing kept: everything is published again.
    let broker = Broker::run(conf, port);
    process.log_line("MQTT connected");
    let mut mqtt = MqttClient::connect(
        &broker,
        &["camfleet/bench-2/status", "camfleet/bench-2/desk/#"],
    )
    .await;
    mqtt.next_on("camfleet/bench-2/status", link_wait(), |m| {
        m.payload == "online"
    })
    .await;
    mqtt.next_on("camfleet/bench-2/desk/state", link_wait(), |_| true)
        .await;
    let metrics = metrics_text(addr).await;
    assert!(metrics.contains("camfleet_mqtt_connected 1"), "{metrics}");
    assert_eq!(api_host(addr).await["mqtt"]["state"], "connected");
    let result = mqtt
        .command("camfleet/bench-2/desk/control/brightness/set", "5")
        .await;
    assert_eq!(
        json(&result.payload),
        serde_json::json!({"ok": true, "value": 5})
    );
}

/// The keys Home Assistant's MQTT platforms take (of those camfleet uses), and the ones
/// each requires.
fn platform_keys(platform: &str) -> (&'static [&'static str], &'static [&'static str]) {
    const ENTITY: &[&str] = &[
        "platform",
        "unique_id",
        "name",
        "availability",
        "availability_mode",
        "entity_category",
    ];
    let (allowed, required): (&[&str], &[&str]) = match platform {
        "number" => (
            &["command_topic", "state_topic", "min", "max", "step", "mode"],
            &["command_topic"],
        ),
        "switch" => (
            &[
                "command_topic",
                "state_topic",
                "payload_on",
                "payload_off",
                "state_on",
                "state_off",
            ],
            &["command_topic"],
        ),
        "select" => (
            &["command_topic", "state_topic", "options", "value_template"],
            &["command_topic", "options"],
        ),
        "button" => (&["command_topic", "payload_press"], &["command_topic"]),
        "sensor" => (
            &[
                "state_topic",
                "value_template",
                "unit_of_measurement",
                "state_class",
            ],
            &["state_topic"],
        ),
        "binary_sensor" => (
            &["state_topic", "payload_on", "payload_off", "device_class"],
            &["state_topic"],
        ),
        "image" => (&["image_topic", "content_type"], &["image_topic"]),
        other => panic!("camfleet announced a platform it should not: {other}"),
    };
    let all: Vec<&str> = ENTITY.iter().chain(allowed).copied().collect();
    (Box::leak(all.into_boxed_slice()), required)
}

/// Every component of a device discovery message has its platform's required keys, no
/// key the platform does not take, and a unique id.
fn check_components(config: &serde_json::Value) {
    assert!(config["origin"]["name"].is_string(), "{config}");
    assert!(config["device"]["identifiers"][0].is_string(), "{config}");
    for (key, entity) in config["components"].as_object().unwrap() {
        let platform = entity["platform"].as_str().unwrap();
        let (allowed, required) = platform_keys(platform);
        for k in entity.as_object().unwrap().keys() {
            assert!(
                allowed.contains(&k.as_str()),
                "{key}: {platform} takes no `{k}`"
            );
        }
        for k in required.iter().chain(&["unique_id"]) {
            assert!(entity.get(*k).is_some(), "{key}: {platform} needs `{k}`");
        }
    }
}

#[actix_rt::test]
async fn home_assistant_discovers_each_camera_with_its_real_controls() {
    let dir = scratch_dir("mqtt-discovery");
    let broker = Broker::start(&dir);
    let yaml = |cameras: &str| {
        format!(
            "mqtt:\n  url: {}\n  host_id: ha-1\n  snapshot_interval: 1\n  snapshot_width: 80\ncameras:\n{cameras}",
            broker.url()
        )
    };
    let desk = "  - id: desk\n    name: Desk\n    source: {kind: synthetic, width: 160, height: 120, fps: 10, test_controls: true}\n";
    write_config(&dir, &yaml(&format!("{desk}{}", synthetic("porch", 10))));
    let process = Process::start(&dir, None);
    let mut mqtt = MqttClient::connect(&broker, &["homeassistant/device/#"]).await;
    let topic = "homeassistant/device/camfleet_ha-1/desk/config";
    let config = mqtt
        .next_on(topic, link_wait(), |m| {
            json(&m.payload)["components"]["brightness"].is_object()
        })
        .await;
    let config = json(&config.payload);
    check_components(&config);
    assert_eq!(config["device"]["name"], "Desk");
    assert_eq!(config["device"]["via_device"], "camfleet_ha-1");
    assert_eq!(
        config["device"]["configuration_url"],
        format!("http://{}/#camera=desk", process.addr)
    );
    let host = mqtt
        .next_on("homeassistant/device/camfleet_ha-1/config", WAIT, |_| true)
        .await;
    check_components(&json(&host.payload));

    // Each control as the camera reports it over the WebSocket: the same ranges and items.
    let mut client = Client::connect_to(process.addr).await;
    let controls = client.controls("desk").await;
    let components = &config["components"];
    let mut seen = std::collections::BTreeSet::new();
    for c in &controls {
        let entity = &components[c.name.as_str()];
        let kind = proto::ControlType::try_from(c.r#type).unwrap();
        let platform = entity["platform"].as_str().unwrap_or("none");
        seen.insert(platform.to_string());
        match kind {
            proto::ControlType::Integer => {
                assert_eq!(platform, "number", "{}", c.name);
                assert_eq!(
                    (&entity["min"], &entity["max"], &entity["step"]),
                    (&json!(c.min), &json!(c.max), &json!(c.step)),
                    "{}",
                    c.name
                );
            }
            proto::ControlType::Boolean => assert_eq!(platform, "switch", "{}", c.name),
            proto::ControlType::Menu => {
                assert_eq!(platform, "select", "{}", c.name);
                let items: Vec<&str> = c.menu_items.iter().map(|m| m.name.as_str()).collect();
                assert_eq!(entity["options"], json!(items), "{}", c.name);
            }
            proto::ControlType::Button => {
                assert_eq!(platform, "button", "{}", c.name);
                assert_eq!(
                    entity["command_topic"],
                    format!("camfleet/ha-1/desk/control/{}/set", c.name)
                );
            }
            other => panic!("the synthetic camera has no {other:?} control"),
        }
    }
    assert_eq!(
        seen,
        ["button", "number", "select", "switch"]
            .map(String::from)
            .into(),
    );
    // Snapshots: a thumbnail of the configured width, retained, shown by an image entity.
    assert_eq!(
        components["camfleet_snapshot"]["image_topic"],
        "camfleet/ha-1/desk/snapshot"
    );
    let mut thumbnails = MqttClient::connect(&broker, &["camfleet/ha-1/desk/snapshot"]).await;
    let every = Duration::from_secs(1);
    let got = thumbnails
        .next_raw("camfleet/ha-1/desk/snapshot", every + link_wait())
        .await;
    assert_eq!(crate::mjpeg_client::jpeg_size(&got), (80, 60));

    // What a select sends, a menu item's name, is what camfleet takes.
    let mut commands = MqttClient::connect(&broker, &["camfleet/ha-1/desk/control/+/result"]).await;
    let result = commands
        .command("camfleet/ha-1/desk/control/test_pattern/set", "checkers")
        .await;
    assert_eq!(json(&result.payload), json!({"ok": true, "value": 2}));

    // Home Assistant restarts: everything is announced again.
    commands.publish("homeassistant/status", "online").await;
    mqtt.next_on(topic, WAIT, |m| !m.payload.is_empty()).await;

    // A camera removed from the configuration: its device is deleted.
    write_config(&dir, &yaml(&synthetic("porch", 10)));
    process.log_line("configuration reloaded");
    mqtt.next_on(topic, WAIT, |m| m.payload.is_empty()).await;
    // Nothing is left retained: a newcomer gets porch's device, and none for desk before
    // its own marker (the broker sends retained messages at the subscription, before any
    // message the same client publishes after it).
    let mut later =
        MqttClient::connect(&broker, &["homeassistant/device/#", "camfleet-test/marker"]).await;
    later.publish("camfleet-test/marker", "after").await;
    later
        .next_on(
            "homeassistant/device/camfleet_ha-1/porch/config",
            WAIT,
            |m| m.retained,
        )
        .await;
    later.next_on("camfleet-test/marker", WAIT, |_| true).await;
    assert!(
        later.kept.iter().all(|m| m.topic != topic),
        "{:?}",
        later.kept
    );
}

#[actix_rt::test]
async fn the_example_broker_keeps_each_host_to_its_own_topics() {
    let dir = scratch_dir("mqtt-acl");
    let accounts = [("pi-1", "one"), ("pi-2", "two"), ("homeassistant", "ha")];
    let broker = Broker::deployed(&dir, &accounts);
    let mut hosts = Vec::new();
    for (host, password) in &accounts[..2] {
        let home = dir.join(host);
        std::fs::create_dir_all(&home).unwrap();
        write_config(
            &home,
            &format!(
                "mqtt:\n  url: {}\n  host_id: {host}\n  username: {host}\n  password: {password}\ncameras:\n{}",
                broker.url(),
                synthetic("desk", 10)
            ),
        );
        let process = Process::start(&home, None);
        process.log_line("MQTT connected");
        hosts.push(process);
    }
    let mut assistant = MqttClient::connect_as(
        &broker,
        Some(accounts[2]),
        &["camfleet/#", "homeassistant/#"],
    )
    .await;
    for host in ["pi-1", "pi-2"] {
        assistant
            .next_on(&format!("camfleet/{host}/status"), link_wait(), |m| {
                m.payload == "online"
            })
            .await;
        assistant
            .next_on(
                &format!("homeassistant/device/camfleet_{host}/desk/config"),
                link_wait(),
                |_| true,
            )
            .await;
    }
    // pi-1 cannot speak for pi-2: the broker drops what it publishes there, and passes
    // what it publishes under its own name (messages of one client arrive in order).
    let pi1 = MqttClient::connect_as(&broker, Some(accounts[0]), &[]).await;
    pi1.publish("camfleet/pi-2/status", "offline").await;
    pi1.publish("camfleet/pi-1/desk/state", "{}").await;
    assistant
        .next_on("camfleet/pi-1/desk/state", WAIT, |m| m.payload == "{}")
        .await;
    assert!(
        assistant
            .kept
            .iter()
            .all(|m| !(m.topic == "camfleet/pi-2/status" && m.payload == "offline")),
        "pi-1 forged pi-2's status"
    );
    // But it may send pi-2 a command, as the fleet dashboard does; so may Home Assistant.
    let mut results = MqttClient::connect_as(
        &broker,
        Some(accounts[2]),
        &["camfleet/pi-2/desk/control/+/result"],
    )
    .await;
    pi1.publish("camfleet/pi-2/desk/control/brightness/set", "33")
        .await;
    let result = results
        .next_on("camfleet/pi-2/desk/control/brightness/result", WAIT, |_| {
            true
        })
        .await;
    assert_eq!(json(&result.payload), json!({"ok": true, "value": 33}));
    assistant
        .publish("camfleet/pi-2/desk/control/brightness/set", "34")
        .await;
    let result = results
        .next_on("camfleet/pi-2/desk/control/brightness/result", WAIT, |_| {
            true
        })
        .await;
    assert_eq!(json(&result.payload), json!({"ok": true, "value": 34}));
}

/// `GET path` at `addr`: the status and the body's bytes.
async fn http_get_bytes(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut r = awc::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    let body = r.body().await.unwrap().to_vec();
    (r.status().as_u16(), body)
}

/// `GET /api/fleet` at `addr`, until `pick` accepts it.
async fn fleet_until(
    addr: SocketAddr,
    within: Duration,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, reply) = http_request(addr, None, "GET", "/api/fleet", &[], "").await;
        assert_eq!(status, 200, "{reply}");
        let fleet = json(reply.split("\r\n\r\n").nth(1).unwrap());
        if pick(&fleet) {
            return fleet;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet never became as expected: {fleet}"
        );
        // Polled as the dashboard does; each answer is the link's registry at that moment.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn a_host_sees_the_other_hosts_and_changes_their_cameras_over_the_broker() {
    let dir = scratch_dir("mqtt-fleet");
    let broker = Broker::start(&dir);
    let mut hosts = Vec::new();
    for host in ["alpha", "beta"] {
        let home = dir.join(host);
        std::fs::create_dir_all(&home).unwrap();
        let yaml = mqtt_yaml(&broker, host).replace(
            "\ncameras:",
            "\n  snapshot_interval: 1\n  snapshot_width: 80\ncameras:",
        );
        write_config(&home, &yaml);
        let process = Process::start(&home, None);
        process.log_line("MQTT connected");
        hosts.push(process);
    }
    let (alpha, beta) = (hosts[0].addr, hosts[1].addr);
    let host = |fleet: &serde_json::Value, id: &str| {
        fleet["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host_id"] == id)
            .cloned()
    };
    // alpha sees beta (not itself), its camera, and where to watch it.
    let fleet = fleet_until(alpha, link_wait(), |f| {
        host(f, "beta")
            .is_some_and(|b| b["online"] == true && b["cameras"][0]["state"] == "Streaming")
    })
    .await;
    assert!(host(&fleet, "alpha").is_none(), "{fleet}");
    let desk = &host(&fleet, "beta").unwrap()["cameras"][0];
    assert_eq!(desk["camera_id"], "desk");
    assert_eq!(
        desk["urls"]["mjpeg"],
        format!("http://{beta}/cameras/desk/stream.mjpg")
    );

    // beta's thumbnails, from the broker, through alpha.
    let deadline = Instant::now() + link_wait();
    let thumbnail = loop {
        let (status, reply) = http_get_bytes(alpha, "/api/fleet/beta/desk/thumbnail.jpg").await;
        if status == 200 {
            break reply;
        }
        assert!(Instant::now() < deadline, "no thumbnail of beta's camera");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(crate::mjpeg_client::jpeg_size(&thumbnail), (80, 60));

    // A command from alpha reaches beta's camera and comes back with beta's outcome.
    let post = |path: &'static str, body: &'static str| async move {
        http_request(alpha, None, "POST", path, &[], body).await
    };
    let (status, reply) = post("/api/fleet/beta/desk/control/brightness", "66").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        json(reply.split("\r\n\r\n").nth(1).unwrap()),
        json!({"ok": true, "value": 66})
    );
    let mut watcher = hosts[1].watcher("desk").await;
    watcher
        .status_where("desk", |s| control_value(s, "brightness") == Some(66))
        .await;
    let (_, reply) = post("/api/fleet/beta/desk/control/brightness", "700").await;
    let outcome = json(reply.split("\r\n\r\n").nth(1).unwrap());
    assert_eq!(outcome["code"], "out_of_range", "{outcome}");
    let (status, reply) = post("/api/fleet/beta/attic/control/brightness", "1").await;
    assert_eq!(status, 404, "{reply}");
    assert!(reply.contains("beta/desk"), "{reply}");

    // beta dies: alpha shows it offline, its camera still listed.
    hosts[1].signal(libc::SIGKILL);
    let fleet = fleet_until(alpha, camfleet::mqtt::KEEP_ALIVE * 2 + WAIT, |f| {
        host(f, "beta").is_some_and(|b| b["online"] == false)
    })
    .await;
    assert_eq!(
        host(&fleet, "beta").unwrap()["cameras"][0]["camera_id"],
        "desk"
    );
    let (status, _) = post("/api/fleet/beta/desk/control/brightness", "5").await;
    assert_eq!(status, 404);
}
