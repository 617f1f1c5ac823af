//! The YAML file's shape, as `serde` reads it; checked further by `validate`.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub cameras: Vec<RawCamera>,
    pub auth: Option<RawAuth>,
    pub mqtt: Option<RawMqtt>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    pub url: String,
    pub host_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub base_topic: Option<String>,
    pub discovery_prefix: Option<String>,
    pub snapshot_interval: Option<u32>,
    pub snapshot_width: Option<u32>,
    pub account: Option<String>,
    pub public_url: Option<String>,
}

/// `auth: none`, or the accounts.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum RawAuth {
    Keyword(String),
    Accounts(RawAccounts),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccounts {
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub tokens: Vec<RawToken>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub name: String,
    pub password_hash: String,
    pub role: crate::auth::Role,
    pub cameras: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToken {
    pub name: String,
    pub token_hash: String,
    pub role: crate::auth::Role,
    pub cameras: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Option<String>,
    pub max_message_bytes: Option<u32>,
    pub max_streams: Option<u32>,
    pub max_streams_per_camera: Option<u32>,
    pub max_sessions: Option<u32>,
    pub max_streams_per_client: Option<u32>,
    pub max_sessions_per_account: Option<u32>,
    pub operator_token: Option<String>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub tls: Option<RawTls>,
    pub default_camera: Option<String>,
    /// Where the RTSP server of H.264 cameras listens, e.g. `0.0.0.0:8554`, or `off`.
    /// Without it, port 8554 on the `listen` address when a camera is declared with H.264.
    pub rtsp_listen: Option<String>,
}

/// `tls: self_signed`, or the paths of a certificate and its key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum RawTls {
    Keyword(String),
    Files(RawTlsFiles),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTlsFiles {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCamera {
    /// The camera's id in URLs, topics and the wire: letters, digits, `-` and `_`.
    pub id: String,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub capture: Option<CaptureMode>,
    pub idle_timeout_secs: Option<u32>,
    /// JPEG quality of frames camfleet encodes (80 unless set).
    #[schemars(range(min = 1, max = 100))]
    pub jpeg_quality: Option<u8>,
    /// Where frames come from.
    pub source: RawSource,
    /// Control values applied on every open, such as `brightness: 140`.
    #[serde(default)]
    pub controls: ControlSettings,
}

/// Every source setting of every kind; `validate` refuses the ones a kind does not take.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    /// `synthetic` (a drawn test picture, no hardware) or `v4l2` (a camera).
    pub kind: SourceKind,
    /// Frame width in pixels.
    #[schemars(range(min = 16, max = 7680))]
    pub width: Option<u32>,
    /// Frame height in pixels.
    #[schemars(range(min = 16, max = 4320))]
    pub height: Option<u32>,
    /// Frames per second.
    #[schemars(range(min = 1, max = 240))]
    pub fps: Option<u32>,
    /// The synthetic picture.
    pub pattern: Option<Pattern>,
    /// Synthetic frames encoded ahead and played in a loop.
    #[schemars(range(max = 300))]
    pub prerender: Option<u32>,
    pub test_controls: Option<bool>,
    pub device: Option<String>,
    pub card: Option<String>,
    pub bus_info: Option<String>,
    pub serial: Option<String>,
    /// The format the camera sends, as a four-character code: MJPG, YUYV, H264 (passed through
    /// untouched), or any raw format `camfleet devices` lists.
    pub pixel_format: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum SourceKind {
    Synthetic,
    V4l2,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Synthetic => "synthetic",
            SourceKind::V4l2 => "v4l2",
        })
    }
}

/// When a camera captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// From start to stop.
    Always,
    /// Only while someone watches: opened for the first viewer, closed an idle timeout
    /// after the last one leaves.
    OnDemand,
}

/// The picture a synthetic source draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// Moving colour bars.
    Bars,
    /// A moving colour gradient.
    Gradient,
    /// A moving checkerboard.
    Checkers,
    /// Moving bars under fine noise: hard to compress, like a real scene.
    Noise,
}

impl Pattern {
    /// Every pattern, in menu order.
    pub const ALL: [Pattern; 4] = [
        Pattern::Bars,
        Pattern::Gradient,
        Pattern::Checkers,
        Pattern::Noise,
    ];

    /// The pattern's name as written in YAML.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Bars => "bars",
            Pattern::Gradient => "gradient",
            Pattern::Checkers => "checkers",
            Pattern::Noise => "noise",
        }
    }
}

/// A desired control value as written in YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredValue {
    /// An integer, or a menu item's index.
    Int(i64),
    /// `true` or `false`, for boolean controls.
    Bool(bool),
    /// A menu item's name, such as `50 Hz`.
    MenuItem(String),
}

impl DesiredValue {
    /// The value as the device takes it, when it does not depend on a menu.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            DesiredValue::Int(v) => Some(*v),
            DesiredValue::Bool(b) => Some(i64::from(*b)),
            DesiredValue::MenuItem(_) => None,
        }
    }
}

impl fmt::Display for DesiredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DesiredValue::Int(v) => write!(f, "{v}"),
            DesiredValue::Bool(b) => write!(f, "{b}"),
            DesiredValue::MenuItem(s) => write!(f, "\"{s}\""),
        }
    }
}

const CONTROL_VALUE_HINT: &str =
    "a control value must be a whole number, true or false, or a menu item's name";

impl<'de> Deserialize<'de> for DesiredValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DesiredValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(CONTROL_VALUE_HINT)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<DesiredValue, E> {
                Ok(DesiredValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DesiredValue, E> {
                Ok(DesiredValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DesiredValue, E> {
                i64::try_from(v)
                    .map(DesiredValue::Int)
                    .map_err(|_| E::custom(format!("{v} is too large for a control value")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DesiredValue, E> {
                Err(E::custom(format!(
                    "{v} is not a whole number; {CONTROL_VALUE_HINT}"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DesiredValue, E> {
                if v.is_empty() {
                    return Err(E::custom(format!(
                        "the value is empty; {CONTROL_VALUE_HINT}"
                    )));
                }
                Ok(DesiredValue::MenuItem(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<DesiredValue, E> {
                Err(E::custom(format!(
                    "the value is missing; {CONTROL_VALUE_HINT}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `controls:` mapping, in file order.
#[derive(Debug, Default)]
pub(super) struct ControlSettings(pub Vec<(String, DesiredValue)>);

impl JsonSchema for DesiredValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ControlValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": CONTROL_VALUE_HINT,
            "oneOf": [
                { "type": "integer" },
                { "type": "boolean" },
                { "type": "string", "minLength": 1 }
            ]
        })
    }
}

impl JsonSchema for ControlSettings {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Controls".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = generator.subschema_for::<DesiredValue>();
        schemars::json_schema!({
            "description": "control names to values, e.g. `brightness: 140`",
            "type": ["object", "null"],
            "additionalProperties": value
        })
    }
}

impl<'de> Deserialize<'de> for ControlSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ControlSettings;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of control names to values, e.g. `brightness: 140`")
            }
            fn visit_unit<E: de::Error>(self) -> Result<ControlSettings, E> {
                Ok(ControlSettings::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ControlSettings, A::Error> {
                let mut out: Vec<(String, DesiredValue)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let value = map.next_value::<DesiredValue>()?;
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!(
                            "control `{name}` is set twice; keep one of the two lines"
                        )));
                    }
                    out.push((name, value));
                }
                Ok(ControlSettings(out))
            }
        }
        d.deserialize_any(V)
    }
}
