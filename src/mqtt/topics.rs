//! Topic names and payloads: what the link publishes and what it reads, with no I/O.
//!
//! ```text
//! BASE/HOST/status                      online | offline (retained; offline is the will)
//! BASE/HOST/CAMERA/state                JSON status with URLs (retained)
//! BASE/HOST/CAMERA/control/NAME         the value read back (retained)
//! BASE/HOST/CAMERA/control/NAME/set     a command: a number, true/false/ON/OFF, or a menu item
//! BASE/HOST/CAMERA/control/NAME/result  its outcome, JSON
//! BASE/HOST/CAMERA/reset/set            puts the camera back to cameras.yaml
//! BASE/HOST/CAMERA/reset/result         its outcome, JSON
//! BASE/HOST/CAMERA/snapshot             a small JPEG, every `snapshot_interval` seconds
//! DISCOVERY/device/camfleet_HOST/CAMERA/config   Home Assistant's device discovery
//! DISCOVERY/status                      Home Assistant says `online` when it starts
//! ```

use serde_json::{json, Value};

use crate::camera::status::CameraStatus;
use crate::camera::CameraId;
use crate::config::{DesiredValue, MqttSettings};
use crate::hub::CommandError;

/// The topics of one host.
#[derive(Debug, Clone)]
pub struct Topics {
    /// `BASE`.
    base: String,
    /// `BASE/HOST`.
    host: String,
    /// This host's id.
    host_id: String,
    /// Home Assistant's discovery prefix.
    discovery: String,
}

/// What another host's message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetNews<'a> {
    /// `BASE/HOST/status`.
    Status {
        /// The host.
        host: &'a str,
    },
    /// `BASE/HOST/CAMERA/state`.
    State {
        /// The host.
        host: &'a str,
        /// The camera.
        camera: &'a str,
    },
    /// `BASE/HOST/CAMERA/snapshot`.
    Snapshot {
        /// The host.
        host: &'a str,
        /// The camera.
        camera: &'a str,
    },
    /// The outcome of a command.
    Result,
}

/// A command read from a `.../set` topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Set one control.
    Set {
        /// The control's name.
        control: String,
        /// The value asked for.
        value: DesiredValue,
    },
    /// Put the camera's controls back to the configuration.
    Reset,
}

impl Topics {
    /// The topics of the host `settings` describe.
    #[must_use]
    pub fn new(settings: &MqttSettings) -> Self {
        Topics {
            base: settings.base_topic.clone(),
            host: format!("{}/{}", settings.base_topic, settings.host_id),
            host_id: settings.host_id.clone(),
            discovery: settings.discovery_prefix.clone(),
        }
    }

    /// `BASE/HOST/CAMERA/snapshot`.
    #[must_use]
    pub fn snapshot(&self, camera: &CameraId) -> String {
        format!("{}/{camera}/snapshot", self.host)
    }

    /// `BASE/HOST/CAMERA/control/NAME/set`.
    #[must_use]
    pub fn control_set(&self, camera: &CameraId, control: &str) -> String {
        format!("{}/set", self.control(camera, control))
    }

    /// Home Assistant's id of a camera's device, or with `None` of this host's.
    #[must_use]
    pub fn device_id(&self, camera: Option<&CameraId>) -> String {
        match camera {
            Some(camera) => format!("camfleet_{}_{camera}", self.host_id),
            None => format!("camfleet_{}", self.host_id),
        }
    }

    /// Where a camera's Home Assistant device is announced, or with `None` this host's:
    /// `DISCOVERY/device/camfleet_HOST/CAMERA/config` and `.../camfleet_HOST/config`, all
    /// under one level a broker's ACL can give the host alone.
    #[must_use]
    pub fn discovery(&self, camera: Option<&CameraId>) -> String {
        let host = self.device_id(None);
        match camera {
            Some(camera) => format!("{}/device/{host}/{camera}/config", self.discovery),
            None => format!("{}/device/{host}/config", self.discovery),
        }
    }

    /// Where Home Assistant says it has (re)started.
    #[must_use]
    pub fn assistant_status(&self) -> String {
        format!("{}/status", self.discovery)
    }

    /// `BASE/HOST/status`.
    #[must_use]
    pub fn status(&self) -> String {
        format!("{}/status", self.host)
    }

    /// `BASE/HOST/CAMERA/state`.
    #[must_use]
    pub fn state(&self, camera: &CameraId) -> String {
        format!("{}/{camera}/state", self.host)
    }

    /// `BASE/HOST/CAMERA/control/NAME`.
    #[must_use]
    pub fn control(&self, camera: &CameraId, control: &str) -> String {
        format!("{}/{camera}/control/{control}", self.host)
    }

    /// Where the outcome of the command on `topic` (a `.../set`) goes: `.../result`.
    #[must_use]
    pub fn result_of(set_topic: &str) -> String {
        format!(
            "{}/result",
            set_topic.strip_suffix("/set").unwrap_or(set_topic)
        )
    }

    /// The filters that bring this host's commands.
    #[must_use]
    pub fn command_filters(&self) -> [String; 2] {
        [
            format!("{}/+/control/+/set", self.host),
            format!("{}/+/reset/set", self.host),
        ]
    }

    /// The filters that bring every host's status and camera states, and the outcomes of
    /// commands, for the fleet view.
    #[must_use]
    pub fn fleet_filters(&self) -> [String; 5] {
        [
            format!("{}/+/status", self.base),
            format!("{}/+/+/state", self.base),
            format!("{}/+/+/snapshot", self.base),
            format!("{}/+/+/control/+/result", self.base),
            format!("{}/+/+/reset/result", self.base),
        ]
    }

    /// What a message from another host tells the fleet view, if anything.
    #[must_use]
    pub fn fleet_news<'a>(&self, topic: &'a str) -> Option<FleetNews<'a>> {
        let rest = topic.strip_prefix(&self.base)?.strip_prefix('/')?;
        let levels: Vec<&str> = rest.split('/').collect();
        if levels.first() == Some(&self.host_id.as_str()) {
            return None;
        }
        match levels.as_slice() {
            [host, "status"] => Some(FleetNews::Status { host }),
            [host, camera, "state"] => Some(FleetNews::State { host, camera }),
            [host, camera, "snapshot"] => Some(FleetNews::Snapshot { host, camera }),
            [_, _, "control", _, "result"] | [_, _, "reset", "result"] => Some(FleetNews::Result),
            _ => None,
        }
    }

    /// A command to another host's camera: `BASE/HOST/CAMERA/control/NAME/set`, or
    /// `.../reset/set` without a control.
    #[must_use]
    pub fn remote_set(&self, host: &str, camera: &str, control: Option<&str>) -> String {
        match control {
            Some(name) => format!("{}/{host}/{camera}/control/{name}/set", self.base),
            None => format!("{}/{host}/{camera}/reset/set", self.base),
        }
    }

    /// The camera and command a message on `topic` carries, if it is one of this host's
    /// command topics.
    ///
    /// Inside, an error says what is wrong with the payload.
    #[must_use]
    pub fn command(
        &self,
        topic: &str,
        payload: &[u8],
    ) -> Option<Result<(String, Command), String>> {
        let rest = topic.strip_prefix(&self.host)?.strip_prefix('/')?;
        let levels: Vec<&str> = rest.split('/').collect();
        let (camera, command) = match levels.as_slice() {
            [camera, "control", name, "set"] => (*camera, Some(*name)),
            [camera, "reset", "set"] => (*camera, None),
            _ => return None,
        };
        let Some(control) = command else {
            return Some(Ok((camera.to_string(), Command::Reset)));
        };
        Some(parse_value(control, payload).map(|value| {
            (
                camera.to_string(),
                Command::Set {
                    control: control.to_string(),
                    value,
                },
            )
        }))
    }
}

/// A `.../set` payload: a whole number, `true`/`false`/`ON`/`OFF` (what Home Assistant's
/// switches send), or a menu item's name.
fn parse_value(control: &str, payload: &[u8]) -> Result<DesiredValue, String> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| format!("the value for `{control}` is not text; send a number, ON or OFF, or a menu item's name"))?
        .trim();
    if text.is_empty() {
        return Err(format!(
            "the value for `{control}` is empty; send a number, ON or OFF, or a menu item's name"
        ));
    }
    Ok(if let Ok(n) = text.parse::<i64>() {
        DesiredValue::Int(n)
    } else if ["on", "true"].iter().any(|w| text.eq_ignore_ascii_case(w)) {
        DesiredValue::Bool(true)
    } else if ["off", "false"]
        .iter()
        .any(|w| text.eq_ignore_ascii_case(w))
    {
        DesiredValue::Bool(false)
    } else {
        DesiredValue::MenuItem(text.to_string())
    })
}

/// Where the dashboard shows `camera`.
#[must_use]
pub fn dashboard_url(base_url: &str, camera: &CameraId) -> String {
    format!("{base_url}/#camera={camera}")
}

/// The retained state of a camera: its status as `/api/cameras` gives it, with where
/// browsers reach it.
#[must_use]
pub fn state_payload(status: &CameraStatus, base_url: &str) -> Vec<u8> {
    let mut state = serde_json::to_value(crate::http::wire::status(status)).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut state {
        let id = &status.id;
        map.insert(
            "urls".into(),
            json!({
                "dashboard": dashboard_url(base_url, id),
                "mjpeg": format!("{base_url}/cameras/{id}/stream.mjpg"),
                "snapshot": format!("{base_url}/cameras/{id}/snapshot.jpg"),
                "websocket": format!("{}/ws", base_url.replacen("http", "ws", 1)),
            }),
        );
    }
    state.to_string().into_bytes()
}

/// The outcome of a command, for its `.../result` topic.
#[must_use]
pub fn result_payload(outcome: &Result<Option<i64>, CommandError>) -> Vec<u8> {
    match outcome {
        Ok(Some(value)) => json!({"ok": true, "value": value}),
        Ok(None) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "code": e.code().name(), "error": e.to_string()}),
    }
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics {
            base: "camfleet".into(),
            host: "camfleet/pi-1".into(),
            host_id: "pi-1".into(),
            discovery: "homeassistant".into(),
        }
    }

    #[test]
    fn commands_are_read_from_this_hosts_set_topics_only() {
        let t = topics();
        assert_eq!(
            t.command("camfleet/pi-1/desk/control/brightness/set", b" 42 "),
            Some(Ok((
                "desk".into(),
                Command::Set {
                    control: "brightness".into(),
                    value: DesiredValue::Int(42)
                }
            )))
        );
        assert_eq!(
            t.command(
                "camfleet/pi-1/desk/control/power_line_frequency/set",
                b"50 Hz"
            ),
            Some(Ok((
                "desk".into(),
                Command::Set {
                    control: "power_line_frequency".into(),
                    value: DesiredValue::MenuItem("50 Hz".into())
                }
            )))
        );
        assert_eq!(
            t.command(
                "camfleet/pi-1/desk/control/exposure_auto_priority/set",
                b"OFF"
            ),
            Some(Ok((
                "desk".into(),
                Command::Set {
                    control: "exposure_auto_priority".into(),
                    value: DesiredValue::Bool(false)
                }
            )))
        );
        assert_eq!(
            t.command("camfleet/pi-1/desk/reset/set", b""),
            Some(Ok(("desk".into(), Command::Reset)))
        );
        assert!(matches!(
            t.command("camfleet/pi-1/desk/control/brightness/set", b""),
            Some(Err(e)) if e.contains("empty")
        ));
        assert_eq!(t.command("camfleet/pi-2/desk/reset/set", b""), None);
        assert_eq!(
            t.command("camfleet/pi-1/desk/control/brightness", b"1"),
            None
        );
        assert_eq!(
            Topics::result_of("camfleet/pi-1/desk/control/brightness/set"),
            "camfleet/pi-1/desk/control/brightness/result"
        );
    }
}
