//! The MQTT link against a real broker: Debian's mosquitto, started by the test on a free
//! port, and the camfleet binary, as a user runs them.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

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
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let options = MqttOptions::new(
            format!("test-{}-{id}", std::process::id()),
            "127.0.0.1",
            broker.port,
        );
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

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Time for the link to (re)connect and publish: a retry, plus the margin.
fn link_wait() -> Duration {
    camfleet::mqtt::RETRY_INTERVAL + camfleet::mqtt::STATE_INTERVAL + WAIT
}

#[actix_rt::test]
async fn a_host_publishes_retained_state_and_takes_commands_like_a_websocket_client() {
    let dir = scratch_dir("mqtt-topics");
    let broker = Broker::start(&dir);
    write_config(&dir, &mqtt_yaml(&broker, "bench-1"));
    let process = Process::start(&dir, None);
    process.log_line("MQTT connected");
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
    mqtt.publish("camfleet/bench-1/desk/control/brightness/set", "77")
        .await;
    let result = mqtt
        .next_on(
            "camfleet/bench-1/desk/control/brightness/result",
            WAIT,
            |_| true,
        )
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
    mqtt.publish("camfleet/bench-1/desk/control/brightness/set", "999")
        .await;
    let result = mqtt
        .next_on(
            "camfleet/bench-1/desk/control/brightness/result",
            WAIT,
            |_| true,
        )
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
    mqtt.publish("camfleet/bench-1/attic/control/brightness/set", "1")
        .await;
    let result = mqtt
        .next_on(
            "camfleet/bench-1/attic/control/brightness/result",
            WAIT,
            |_| true,
        )
        .await;
    assert_eq!(json(&result.payload)["code"], "unknown_camera");
    mqtt.publish("camfleet/bench-1/desk/reset/set", "").await;
    let result = mqtt
        .next_on("camfleet/bench-1/desk/reset/result", WAIT, |_| true)
        .await;
    assert_eq!(json(&result.payload), serde_json::json!({"ok": true}));
    watcher
        .status_where("desk", |s| control_value(s, "brightness") == Some(128))
        .await;
}

#[actix_rt::test]
async fn a_killed_host_goes_offline_and_a_restarted_broker_gets_everything_again() {
    let dir = scratch_dir("mqtt-outages");
    let broker = Broker::start(&dir);
    write_config(&dir, &mqtt_yaml(&broker, "bench-2"));
    let process = Process::start(&dir, None);
    process.log_line("MQTT connected");
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
    mqtt.publish("camfleet/bench-2/desk/control/brightness/set", "5")
        .await;
    let result = mqtt
        .next_on(
            "camfleet/bench-2/desk/control/brightness/result",
            WAIT,
            |_| true,
        )
        .await;
    assert_eq!(
        json(&result.payload),
        serde_json::json!({"ok": true, "value": 5})
    );
}
