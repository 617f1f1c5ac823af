//! Home Assistant MQTT discovery: one device per camera, reached through the host's
//! device, with an entity per control the camera really has (its own ranges and menu
//! items), sensors for its state, frame rate and dropped frames, and an image of its
//! snapshots when they are published.
//!
//! Device discovery (`DISCOVERY/device/ID/config`) puts all of a camera's entities in
//! one retained message; an empty retained message deletes them.

use serde_json::{json, Map, Value};

use super::topics::Topics;
use crate::camera::control::{ControlInfo, ControlType};
use crate::camera::status::CameraStatus;

/// The camera states in which its controls can be used.
const USABLE_STATES: &str = "['Streaming', 'Idle']";

/// The discovery message of one camera: its device and entities.
#[must_use]
pub fn device_config(
    topics: &Topics,
    status: &CameraStatus,
    controls: &[ControlInfo],
    base_url: &str,
    snapshots: bool,
) -> Value {
    let camera = &status.id;
    let state = topics.state(camera);
    let host_available = json!({
        "topic": topics.status(),
        "payload_available": "online",
        "payload_not_available": "offline",
    });
    // Controls need the host up and the camera streaming (or idle, opened on demand).
    let usable = json!([
        host_available,
        {
            "topic": state,
            "value_template": format!(
                "{{{{ 'online' if value_json.state in {USABLE_STATES} else 'offline' }}}}"
            ),
        },
    ]);
    let mut components = Map::new();
    for control in controls.iter().filter(|c| !c.flags.disabled) {
        if let Some(mut entity) = control_entity(topics, status, control) {
            entity.insert(
                "unique_id".into(),
                json!(unique_id(topics, status, &control.name)),
            );
            entity.insert("name".into(), json!(label(&control.name)));
            entity.insert("entity_category".into(), json!("config"));
            entity.insert("availability".into(), usable.clone());
            entity.insert("availability_mode".into(), json!("all"));
            components.insert(control.name.clone(), Value::Object(entity));
        }
    }
    // The camera's own figures stay readable whatever its state, while the host is up.
    let sensors = [
        ("state", "State", "{{ value_json.state }}", None, None),
        (
            "fps",
            "Frame rate",
            "{{ value_json.fps | round(1) }}",
            Some("fps"),
            Some("measurement"),
        ),
        (
            "frames_dropped",
            "Dropped frames",
            "{{ value_json.frames_dropped }}",
            None,
            Some("total_increasing"),
        ),
    ];
    for (key, name, template, unit, class) in sensors {
        let mut sensor = json!({
            "platform": "sensor",
            "unique_id": unique_id(topics, status, key),
            "name": name,
            "state_topic": state,
            "value_template": template,
            "availability": [host_available],
        });
        if let Some(unit) = unit {
            sensor["unit_of_measurement"] = json!(unit);
        }
        if let Some(class) = class {
            sensor["state_class"] = json!(class);
            sensor["entity_category"] = json!("diagnostic");
        }
        components.insert(format!("camfleet_{key}"), sensor);
    }
    if snapshots {
        components.insert(
            "camfleet_snapshot".into(),
            json!({
                "platform": "image",
                "unique_id": unique_id(topics, status, "snapshot"),
                "name": "Snapshot",
                "image_topic": topics.snapshot(camera),
                "content_type": "image/jpeg",
                "availability": [host_available],
            }),
        );
    }
    json!({
        "device": {
            "identifiers": [topics.device_id(Some(camera))],
            "name": status.name,
            "manufacturer": "camfleet",
            "model": "camera",
            "via_device": topics.device_id(None),
            "configuration_url": super::topics::dashboard_url(base_url, camera),
        },
        "origin": {
            "name": "camfleet",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
        "components": components,
        "qos": 1,
    })
}

/// The discovery message of the host itself, the device each camera is reached through:
/// one connectivity sensor that follows `BASE/HOST/status`.
#[must_use]
pub fn host_config(topics: &Topics, base_url: &str, host_id: &str) -> Value {
    json!({
        "device": {
            "identifiers": [topics.device_id(None)],
            "name": format!("camfleet {host_id}"),
            "manufacturer": "camfleet",
            "model": "host",
            "sw_version": env!("CARGO_PKG_VERSION"),
            "configuration_url": base_url,
        },
        "origin": {
            "name": "camfleet",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
        "components": {
            "camfleet_status": {
                "platform": "binary_sensor",
                "unique_id": format!("{}_status", topics.device_id(None)),
                "name": "Status",
                "device_class": "connectivity",
                "state_topic": topics.status(),
                "payload_on": "online",
                "payload_off": "offline",
            },
        },
        "qos": 1,
    })
}

/// The entity of one control, without the fields every entity has; `None` for kinds
/// Home Assistant has no entity for.
fn control_entity(
    topics: &Topics,
    status: &CameraStatus,
    control: &ControlInfo,
) -> Option<Map<String, Value>> {
    let camera = &status.id;
    let command = topics.control_set(camera, &control.name);
    let state = topics.control(camera, &control.name);
    let entity = match &control.kind {
        ControlType::Button => json!({
            "platform": "button",
            "command_topic": command,
            "payload_press": "1",
        }),
        _ if control.flags.read_only => json!({
            "platform": "sensor",
            "state_topic": state,
        }),
        ControlType::Integer | ControlType::Integer64 => json!({
            "platform": "number",
            "command_topic": command,
            "state_topic": state,
            "min": control.min,
            "max": control.max,
            "step": control.step.max(1),
            "mode": "slider",
        }),
        ControlType::Boolean => json!({
            "platform": "switch",
            "command_topic": command,
            "state_topic": state,
            "payload_on": "1",
            "payload_off": "0",
            "state_on": "1",
            "state_off": "0",
        }),
        ControlType::Menu | ControlType::IntegerMenu => {
            // The state topic carries the item's index; the entity shows its name.
            let names: Map<String, Value> = control
                .menu
                .iter()
                .map(|m| (m.index.to_string(), json!(m.name)))
                .collect();
            json!({
                "platform": "select",
                "command_topic": command,
                "state_topic": state,
                "options": control.menu.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
                "value_template": format!(
                    "{{{{ {}.get(value, value) }}}}",
                    Value::Object(names)
                ),
            })
        }
        ControlType::Bitmask | ControlType::Unsupported(_) => return None,
    };
    match entity {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn unique_id(topics: &Topics, status: &CameraStatus, key: &str) -> String {
    format!("{}_{key}", topics.device_id(Some(&status.id)))
}

/// `exposure_time_absolute` as `Exposure time absolute`.
fn label(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
