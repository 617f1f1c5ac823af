//! Table-driven tests: each bad file must give its line and a message that says what to do.

use std::path::Path;

use super::*;

const GOOD: &str = "\
server:
  listen: 127.0.0.1:9000
cameras:
  - id: lobby
    name: Lobby
    source:
      kind: synthetic
      width: 320
      height: 240
      fps: 10
    controls:
      brightness: 140
      horizontal_flip: true
      test_pattern: checkers
  - id: desk
    enabled: false
    source:
      kind: v4l2
      device: /dev/v4l/by-id/usb-cam-video-index0
      pixel_format: MJPG
      width: 1280
      height: 720
      fps: 30
";

#[test]
fn the_repository_default_is_valid() {
    let text = include_str!("../../cameras.yaml");
    let config = Config::parse(text, Path::new("cameras.yaml")).unwrap();
    assert!(config.cameras.len() >= 3);
    assert!(config
        .cameras
        .iter()
        .all(|c| matches!(c.source, SourceConfig::Synthetic(_))));
}

#[test]
fn a_good_file_parses_into_validated_types() {
    let config = Config::parse(GOOD, Path::new("good.yaml")).unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:9000".parse().unwrap());
    let lobby = &config.cameras[0];
    assert_eq!(lobby.id.as_str(), "lobby");
    assert_eq!(
        lobby.controls,
        vec![
            DesiredControl {
                name: "brightness".into(),
                value: DesiredValue::Int(140)
            },
            DesiredControl {
                name: "horizontal_flip".into(),
                value: DesiredValue::Bool(true)
            },
            DesiredControl {
                name: "test_pattern".into(),
                value: DesiredValue::MenuItem("checkers".into())
            },
        ]
    );
    let desk = &config.cameras[1];
    assert!(!desk.enabled);
    assert_eq!(desk.name, "desk");
    match &desk.source {
        SourceConfig::V4l2(v) => {
            assert_eq!(v.pixel_format, Some(*b"MJPG"));
            assert_eq!(v.size, Some((1280, 720)));
            assert_eq!(v.fps, Some(30));
        }
        other @ SourceConfig::Synthetic(_) => panic!("unexpected {other:?}"),
    }
}

/// (what it tests, file, line of the first error, words the message must contain)
const BAD: &[(&str, &str, usize, &[&str])] = &[
    (
        "a synthetic camera's misspelt control, with a suggestion",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\n    controls:\n      brightnes: 10\n",
        5,
        &["no control `brightnes`", "did you mean `brightness`?", "test_pattern"],
    ),
    (
        "a test control without test_controls",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\n    controls: {stall: true}\n",
        4,
        &["no control `stall`", "its controls are: brightness"],
    ),
    (
        "unknown key with a suggestion",
        "cameras:\n  - id: a\n    source:\n      kind: synthetic\n      fsp: 10\n",
        5,
        &["unknown field `fsp`", "did you mean `fps`?"],
    ),
    (
        "duplicate id names both places",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\n  - id: a\n    source: {kind: synthetic}\n",
        4,
        &["`a` is already used by cameras[0] at line 2", "its own id"],
    ),
    (
        "fps zero",
        "cameras:\n  - id: a\n    source:\n      kind: synthetic\n      fps: 0\n",
        5,
        &["fps 0 is out of range", "from 1 to 240"],
    ),
    (
        "resolution that is not a number",
        "cameras:\n  - id: a\n    source:\n      kind: synthetic\n      width: wide\n",
        5,
        &["width", "expected a whole number"],
    ),
    (
        "control value of the wrong type",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\n    controls:\n      brightness: 1.5\n",
        5,
        &["1.5 is not a whole number", "true or false"],
    ),
    (
        "id that is not URL-safe",
        "cameras:\n  - id: front door\n    source: {kind: synthetic}\n",
        2,
        &["contains ' '", "letters, digits"],
    ),
    (
        "listen address that is not an address",
        "server:\n  listen: localhost\ncameras:\n  - id: a\n    source: {kind: synthetic}\n",
        2,
        &["not an address and port", "127.0.0.1:8080"],
    ),
    (
        "unknown source kind",
        "cameras:\n  - id: a\n    source:\n      kind: usb\n",
        4,
        &["unknown variant `usb`", "synthetic", "v4l2"],
    ),
    (
        "setting of another source kind",
        "cameras:\n  - id: a\n    source:\n      kind: synthetic\n      device: /dev/video0\n",
        5,
        &["`device` is not a setting of a synthetic source", "synthetic sources take"],
    ),
    (
        "v4l2 source without a device",
        "cameras:\n  - id: a\n    source:\n      kind: v4l2\n      fps: 30\n",
        4,
        &["exactly one of `device`", "/dev/v4l/by-id"],
    ),
    (
        "width without height",
        "cameras:\n  - id: a\n    source:\n      kind: v4l2\n      device: /dev/video0\n      width: 640\n",
        6,
        &["set both width and height"],
    ),
    (
        "missing id",
        "cameras:\n  - name: A\n    source: {kind: synthetic}\n",
        2,
        &["missing field `id`", "add `id: ...`"],
    ),
    (
        "control name in the wrong form",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\n    controls:\n      Brightness: 3\n",
        5,
        &["`Brightness` is not a control name", "lower case"],
    ),
    (
        "YAML syntax error",
        "cameras:\n  - id: a\n    source: {kind: synthetic\n",
        4,
        &["did not find expected"],
    ),
    (
        "bad FourCC",
        "cameras:\n  - id: a\n    source:\n      kind: v4l2\n      device: /dev/video0\n      pixel_format: MJPEG\n",
        6,
        &["`MJPEG` is not a FourCC", "MJPG"],
    ),
    (
        "no cameras",
        "server:\n  listen: 127.0.0.1:8080\ncameras: []\n",
        3,
        &["no cameras are declared"],
    ),
    (
        "operator token, replaced by accounts",
        "server:\n  operator_token: abc\ncameras:\n  - id: a\n    source: {kind: synthetic}\n",
        2,
        &["replaced by accounts", "camfleet token new operator --role operator"],
    ),
    (
        "an account names a camera that is not declared",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\nauth:\n  tokens:\n    - {name: t, role: viewer, token_hash: \"0000000000000000000000000000000000000000000000000000000000000000\", cameras: [a, gate]}\n",
        6,
        &["no camera `gate`", "the cameras are: a"],
    ),
    (
        "a password written where its hash belongs",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\nauth:\n  users:\n    - {name: al, role: admin, password_hash: hunter2}\n",
        6,
        &["is not a password hash", "camfleet hash-password"],
    ),
    (
        "auth spelt wrong",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\nauth: off\n",
        4,
        &["`off` is not an auth setting", "auth: none"],
    ),
    (
        "an MQTT broker URL of another scheme",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\nmqtt:\n  url: http://broker:1883\n  host_id: pi\n",
        5,
        &["is not a broker URL", "mqtt://HOST:1883"],
    ),
    (
        "an MQTT port that is not a number",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\nmqtt:\n  url: mqtt://broker:mqtt\n  host_id: pi\n",
        5,
        &["no valid port"],
    ),
    (
        "an MQTT host id that cannot be a topic level",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\nmqtt:\n  url: mqtt://broker\n  host_id: pi/1\n",
        6,
        &["`pi/1` cannot be a topic level", "letters, digits"],
    ),
    (
        "MQTT on a server with accounts but no account for it",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\nauth:\n  tokens:\n    - {name: t, role: viewer, token_hash: \"0000000000000000000000000000000000000000000000000000000000000000\"}\nmqtt:\n  url: mqtt://broker\n  host_id: pi\n",
        8,
        &["commands over MQTT need one", "camfleet token new mqtt --role operator", "account: mqtt"],
    ),
    (
        "MQTT acting as an account that does not exist",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\nauth:\n  tokens:\n    - {name: t, role: viewer, token_hash: \"0000000000000000000000000000000000000000000000000000000000000000\"}\nmqtt:\n  url: mqtt://broker\n  host_id: pi\n  account: robot\n",
        10,
        &["no user or token is named `robot`"],
    ),
    (
        "a default camera that is not declared",
        "server:\n  default_camera: attic\ncameras:\n  - id: a\n    source: {kind: synthetic}\n",
        2,
        &["there is no camera `attic`", "cameras: a"],
    ),
    (
        "control set twice",
        "cameras:\n  - id: a\n    source: {kind: synthetic}\n    controls:\n      gain: 1\n      gain: 2\n",
        5,
        &["control `gain` is set twice"],
    ),
];

#[test]
fn bad_files_say_where_what_and_how() {
    let mut failures = Vec::new();
    for (what, text, line, words) in BAD {
        let Err(errors) = Config::parse(text, Path::new("bad.yaml")) else {
            failures.push(format!("{what}: was accepted"));
            continue;
        };
        let first = &errors.0[0];
        let shown = first.to_string();
        if first.line != Some(*line) {
            failures.push(format!("{what}: expected line {line}, got {shown}"));
        }
        if !shown.starts_with("bad.yaml:") {
            failures.push(format!("{what}: does not name the file: {shown}"));
        }
        for w in *words {
            if !shown.contains(w) {
                failures.push(format!("{what}: `{w}` missing from: {shown}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "cameras:\n  - id: a\n    source: {kind: synthetic, fps: 0}\n  - id: a\n    source: {kind: synthetic, width: 1}\n";
    let errors = Config::parse(text, Path::new("bad.yaml")).unwrap_err();
    assert_eq!(errors.0.len(), 3, "{errors}");
}

#[test]
fn a_server_on_the_network_needs_accounts_or_auth_none() {
    let camera = "cameras:\n  - id: a\n    source: {kind: synthetic}\n";
    let open = Config::parse(camera, Path::new("c.yaml")).unwrap();
    let lan: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let problem = super::exposure_problem(&open.auth, lan).expect("refused");
    assert!(
        problem.contains("auth:\n  users:") && problem.contains("camfleet hash-password"),
        "{problem}"
    );
    let local: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert_eq!(super::exposure_problem(&open.auth, local), None);
    let on_purpose = Config::parse(&format!("auth: none\n{camera}"), Path::new("c.yaml")).unwrap();
    assert_eq!(super::exposure_problem(&on_purpose.auth, lan), None);
}

#[test]
fn an_mqtt_section_takes_its_defaults() {
    let text = "cameras:\n  - id: a\n    source: {kind: synthetic}\nmqtt:\n  url: mqtts://[::1]\n  host_id: bench-3\n";
    let mqtt = Config::parse(text, Path::new("x.yaml"))
        .unwrap()
        .mqtt
        .unwrap();
    assert_eq!(
        (mqtt.host.as_str(), mqtt.port, mqtt.tls),
        ("::1", 8883, true)
    );
    assert_eq!(mqtt.base_topic, "camfleet");
    assert_eq!(mqtt.discovery_prefix, "homeassistant");
    assert_eq!(mqtt.snapshot_interval, 0);
}

#[test]
fn every_type_error_is_reported_where_it_is() {
    let text = "server:\n  max_streams: many\ncameras:\n  - id: a\n    source:\n      kind: synthetic\n      width: wide\n  - id: b\n    source: {kind: synthetic}\n  - id: c\n    enabled: maybe\n    source: {kind: synthetic}\n";
    let errors = Config::parse(text, Path::new("f.yaml")).unwrap_err().0;
    let at: Vec<(Option<usize>, &str)> = errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    assert_eq!(errors.len(), 3, "{at:?}");
    assert_eq!(errors[0].line, Some(2), "{at:?}");
    assert!(errors[0].message.contains("server.max_streams"), "{at:?}");
    assert_eq!(errors[1].line, Some(7), "{at:?}");
    assert!(
        errors[1].message.contains("cameras[0].source.width"),
        "{at:?}"
    );
    assert_eq!(errors[2].line, Some(11), "{at:?}");
    assert!(errors[2].message.contains("cameras[2].enabled"), "{at:?}");
}

#[test]
fn a_duplicate_key_is_located_at_the_duplicate() {
    let text = "cameras:\n  - id: a\n    source:\n      kind: synthetic\n      fps: 10\n      width: 320\n      fps: 12\n";
    let errors = Config::parse(text, Path::new("f.yaml")).unwrap_err().0;
    assert_eq!(
        (errors[0].line, errors[0].column),
        (Some(7), Some(7)),
        "{errors:?}"
    );
    assert!(errors[0].message.contains("fps"), "{errors:?}");
}
