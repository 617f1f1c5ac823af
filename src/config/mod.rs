//! `cameras.yaml` to validated configuration: the one place YAML is parsed.
//!
//! Parsing happens in two steps. `serde_yaml` reads the text into the plain `raw` structs,
//! which catches syntax errors, wrong types and unknown keys with their positions. Then
//! [`validate`] checks what types cannot (ranges, duplicates, settings that do not belong to
//! a source kind) and turns the raw structs into the types the rest of camfleet uses. Every
//! error names the file, line and column, what is wrong and how to fix it.

mod auth;
mod error;
mod mqtt;
mod raw;
mod validate;

pub use auth::{exposure_problem, FIRST_ACCOUNT};
pub use mqtt::topic_safe;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use error::{closest, ConfigError, ConfigErrors};
pub use raw::{CaptureMode, DesiredValue, Pattern};

use crate::camera::CameraId;

/// Where `camfleet serve` listens unless the file or `--listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Largest client WebSocket message accepted unless the file says otherwise.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 64 * 1024;
/// MJPEG streams served at once, in all, unless the file says otherwise.
pub const DEFAULT_MAX_STREAMS: u32 = 64;
/// MJPEG streams of one camera served at once unless the file says otherwise.
pub const DEFAULT_MAX_STREAMS_PER_CAMERA: u32 = 16;
/// WebSocket sessions served at once unless the file says otherwise.
pub const DEFAULT_MAX_SESSIONS: u32 = 64;
/// MJPEG streams one client address may hold at once, unless set.
pub const DEFAULT_MAX_STREAMS_PER_CLIENT: u32 = 8;
/// WebSocket sessions one account may hold at once, unless set.
pub const DEFAULT_MAX_SESSIONS_PER_ACCOUNT: u32 = 16;
/// How long an on-demand camera stays open after its last viewer leaves, unless set.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u32 = 10;
/// JPEG quality for cameras whose frames camfleet encodes, unless set.
pub const DEFAULT_JPEG_QUALITY: u8 = 80;

/// This machine's host name, which `mqtt.host_id`, the self-signed certificate and the
/// URLs of a server listening on every interface use.
#[must_use]
pub fn this_host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// A validated fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Server-wide settings.
    pub server: ServerConfig,
    /// The cameras, in file order.
    pub cameras: Vec<CameraConfig>,
    /// Who may use the server.
    pub auth: crate::auth::Auth,
    /// The link to an MQTT broker, when set.
    pub mqtt: Option<MqttSettings>,
}

/// The `mqtt:` section: which broker to join, and under which topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttSettings {
    /// The broker's host name or address.
    pub host: String,
    /// The broker's port (1883, or 8883 over TLS, unless given).
    pub port: u16,
    /// Whether to speak TLS to the broker (`mqtts://`).
    pub tls: bool,
    /// This host's name in topics: `BASE/HOST/...`.
    pub host_id: String,
    /// The broker account, if it asks for one.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// The first topic level, `camfleet` unless set.
    pub base_topic: String,
    /// Where Home Assistant reads discovery, `homeassistant` unless set.
    pub discovery_prefix: String,
    /// Seconds between snapshots published per camera; 0 publishes none.
    pub snapshot_interval: u32,
    /// Width the snapshots are scaled down to, in pixels.
    pub snapshot_width: u32,
    /// The account whose role and cameras commands over MQTT have; `None` on a server
    /// without accounts.
    pub account: Option<String>,
    /// Where browsers reach this host, for the URLs published with each camera;
    /// derived from the listen address and the host name unless set.
    pub public_url: Option<String>,
}

/// Server-wide settings, from the file's `server:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address the HTTP and WebSocket server binds.
    pub listen: SocketAddr,
    /// Largest client WebSocket message, in bytes; larger ones close with code 1009.
    pub max_message_bytes: u32,
    /// MJPEG streams served at once, in all.
    pub max_streams: u32,
    /// MJPEG streams of one camera served at once.
    pub max_streams_per_camera: u32,
    /// WebSocket sessions served at once.
    pub max_sessions: u32,
    /// MJPEG streams one client address may hold at once.
    pub max_streams_per_client: u32,
    /// WebSocket sessions one account may hold at once.
    pub max_sessions_per_account: u32,
    /// Host names, besides IP addresses and `localhost`, that browsers may use to reach the
    /// server (lower case). A request naming any other host is refused, which keeps web pages
    /// from reaching the server through DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-Host` and `Forwarded` headers are believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// HTTPS, when set.
    pub tls: Option<TlsSettings>,
    /// The camera that answers mjpg-streamer's bare `/?action=stream` and ustreamer's
    /// `/stream` (and their snapshots), when set.
    pub default_camera: Option<CameraId>,
    /// Where the RTSP server of H.264 cameras listens; `None`: no RTSP server.
    pub rtsp_listen: Option<SocketAddr>,
}

/// The RTSP port when `server.rtsp_listen` does not name one: the one IP cameras use.
pub const DEFAULT_RTSP_PORT: u16 = 8554;

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSettings {
    /// Made once for this host's names and kept in the state directory.
    SelfSigned,
    /// PEM files, read at start and again on every reload.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
}

/// One camera as declared.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraConfig {
    /// Unique, URL-safe id.
    pub id: CameraId,
    /// Display name.
    pub name: String,
    /// Disabled cameras are listed but never opened.
    pub enabled: bool,
    /// Whether the camera captures always or only while watched.
    pub capture: CaptureMode,
    /// For on-demand capture: how long the device stays open after the last viewer left.
    pub idle_timeout: std::time::Duration,
    /// Quality (1 to 100) of the JPEGs camfleet encodes from raw formats.
    pub jpeg_quality: u8,
    /// Where frames come from.
    pub source: SourceConfig,
    /// Control values to apply after every open, in file order.
    pub controls: Vec<DesiredControl>,
}

/// Where a camera's frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// A generated test picture; needs no hardware.
    Synthetic(SyntheticConfig),
    /// A V4L2 device such as a USB camera.
    V4l2(V4l2Config),
}

/// Settings of a synthetic source.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// The picture's starting pattern.
    pub pattern: Pattern,
    /// When non-zero, frames are encoded ahead into a ring of this many and replayed, so
    /// the source costs almost nothing per frame; the ring is re-rendered when a control
    /// changes. Zero encodes every frame live, with the real frame counter and clock.
    pub prerender: u32,
    /// Adds controls that make the source stall, vanish or panic, for testing recovery.
    pub test_controls: bool,
    /// What its frames are: JPEG, raw YUYV (which camfleet encodes), or H.264.
    pub output: SyntheticOutput,
}

/// What a synthetic camera delivers, as `pixel_format` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyntheticOutput {
    /// `MJPG`: every frame a JPEG file.
    #[default]
    Jpeg,
    /// `YUYV`: raw frames that camfleet encodes to JPEG.
    Yuyv,
    /// `H264`: access units of an H.264 stream with a keyframe every second.
    H264,
}

/// How a V4L2 device is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceMatch {
    /// A device node or a link to one, such as `/dev/v4l/by-id/...`.
    Path(PathBuf),
    /// The driver's card name, as `camfleet devices` lists it.
    Card(String),
    /// The bus info, such as `usb-0000:00:14.0-2`.
    BusInfo(String),
    /// The USB serial number.
    Serial(String),
}

/// Settings of a V4L2 source.
#[derive(Debug, Clone, PartialEq)]
pub struct V4l2Config {
    /// Which device.
    pub device: DeviceMatch,
    /// Preferred pixel format as a four-character code such as `MJPG` or `YUYV`; MJPEG is preferred
    /// when this is not set and the device offers it.
    pub pixel_format: Option<[u8; 4]>,
    /// Requested frame size, when set.
    pub size: Option<(u32, u32)>,
    /// Requested frames per second, when set.
    pub fps: Option<u32>,
}

/// A control value the configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredControl {
    /// The control's name, such as `brightness`.
    pub name: String,
    /// The value to set.
    pub value: DesiredValue,
}

impl Config {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// Every problem found, each with its file, line and column, when the file cannot be
    /// read or is not a valid fleet.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let refuse = |message: String| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                column: None,
                message,
            }])
        };
        // Reading a FIFO or a device could block for ever; only a regular file is read.
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.is_file() {
                return Err(refuse(format!(
                    "not a regular file ({}); camfleet reads its configuration only from a \
                     regular file: write the YAML to a file there",
                    kind_of(meta.file_type())
                )));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                column: None,
                message: format!(
                    "cannot read the file: {e}; pass the right path with --config FILE"
                ),
            }])
        })?;
        Config::parse(&text, path)
    }

    /// Validates configuration text; `file` names it in errors.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
        let raw: raw::RawConfig =
            serde_yaml::from_str(text).map_err(|e| every_yaml_error(text, file, &e))?;
        validate::validate(raw, &validate::Issues::new(text, file))
    }
}

/// Every type error in the file, not only the first the YAML library stops at: each
/// top-level section and each camera is read again alone (the rest of the file blanked
/// out, so lines and columns stay), and what each one's reading finds is added.
fn every_yaml_error(text: &str, file: &Path, first: &serde_yaml::Error) -> ConfigErrors {
    let mut errors = vec![error::from_yaml_error(file, text, first)];
    // Only the types are in question when the YAML itself reads.
    if serde_yaml::from_str::<serde_yaml::Value>(text).is_err() {
        return ConfigErrors(errors);
    }
    let lines: Vec<&str> = text.lines().collect();
    for (camera, kept) in error::units(&lines) {
        let alone: String = lines
            .iter()
            .enumerate()
            .map(|(k, line)| {
                if kept.iter().any(|r| r.contains(&k)) {
                    *line
                } else {
                    ""
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let Err(e) = serde_yaml::from_str::<raw::RawConfig>(&alone) else {
            continue;
        };
        let mut found = error::from_yaml_error(file, &alone, &e);
        if let Some(i) = camera {
            found.message = found
                .message
                .replacen("cameras[0]", &format!("cameras[{i}]"), 1);
        }
        if found.line.is_some() && !errors.iter().any(|e| e.line == found.line) {
            errors.push(found);
        }
    }
    errors.sort_by_key(|e| (e.line, e.column));
    ConfigErrors(errors)
}

/// The JSON Schema of `cameras.yaml`, made from the types the file is parsed into, so the
/// two cannot drift. Editors complete and check the file with it; what a schema cannot
/// express (ids unique, a source kind's own settings) is left to `camfleet check`.
#[must_use]
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(raw::RawConfig);
    schema.insert("title".into(), "camfleet cameras.yaml".into());
    schema.into()
}

/// What kind of file something is, in words.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests;
