//! The second step of parsing: checks what types cannot (ranges, duplicates, settings that
//! do not belong to a source kind) and turns the raw structs into validated configuration,
//! with every problem located in the text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::error::{locate, path_string, Seg};
use super::{
    raw, CameraConfig, CaptureMode, Config, ConfigError, ConfigErrors, DesiredControl, DeviceMatch,
    Pattern, ServerConfig, SourceConfig, SyntheticConfig, SyntheticOutput, V4l2Config,
    DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_JPEG_QUALITY, DEFAULT_LISTEN, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_ACCOUNT, DEFAULT_MAX_STREAMS,
    DEFAULT_MAX_STREAMS_PER_CAMERA, DEFAULT_MAX_STREAMS_PER_CLIENT,
};
use crate::camera::CameraId;

/// Collects semantic errors and finds their positions in the text.
pub(crate) struct Issues<'t> {
    text: &'t str,
    file: &'t Path,
    found: std::cell::RefCell<Vec<ConfigError>>,
}

impl<'t> Issues<'t> {
    pub(super) fn new(text: &'t str, file: &'t Path) -> Self {
        Issues {
            text,
            file,
            found: RefCell::default(),
        }
    }

    /// Records a problem with the node at `path`.
    pub(super) fn at(&self, path: &[Seg<'_>], message: impl Into<String>) {
        let (line, column) = match locate(self.text, path) {
            Some((l, c)) => (Some(l), Some(c)),
            None => (None, None),
        };
        self.found.borrow_mut().push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            message: format!("{}: {}", path_string(path), message.into()),
        });
    }

    fn line_of(&self, path: &[Seg<'_>]) -> Option<usize> {
        locate(self.text, path).map(|(l, _)| l)
    }
}

pub(super) fn validate(raw: raw::RawConfig, issues: &Issues<'_>) -> Result<Config, ConfigErrors> {
    let server = validate_server(&raw.server, issues);
    if raw.cameras.is_empty() {
        issues.at(
            &[Seg::Key("cameras")],
            "no cameras are declared; add at least one camera under `cameras:` \
             (see the examples in the repository's cameras.yaml)",
        );
    }
    let mut cameras = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, cam) in raw.cameras.into_iter().enumerate() {
        let id_path = [Seg::Key("cameras"), Seg::Index(i), Seg::Key("id")];
        if let Some(first) = seen.get(&cam.id) {
            let first_path = [Seg::Key("cameras"), Seg::Index(*first), Seg::Key("id")];
            let where_first = match issues.line_of(&first_path) {
                Some(line) => format!("line {line}"),
                None => path_string(&first_path),
            };
            issues.at(
                &id_path,
                format!(
                    "camera id `{}` is already used by cameras[{first}] at {where_first}; \
                     give every camera its own id",
                    cam.id
                ),
            );
        } else {
            seen.insert(cam.id.clone(), i);
        }
        if let Some(camera) = validate_camera(i, cam, issues) {
            cameras.push(camera);
        }
    }
    let ids: Vec<CameraId> = cameras
        .iter()
        .map(|c: &CameraConfig| c.id.clone())
        .collect();
    let default_camera = default_camera(raw.server.default_camera.as_deref(), &ids, issues);
    let sends_h264 = cameras.iter().any(|c| match &c.source {
        SourceConfig::Synthetic(s) => s.output == SyntheticOutput::H264,
        SourceConfig::V4l2(v) => v.pixel_format == Some(*b"H264"),
    });
    let rtsp_listen = rtsp_listen(
        raw.server.rtsp_listen.as_deref(),
        server.as_ref().map(|s| s.listen),
        sends_h264,
        issues,
    );
    let auth = super::auth::validate_auth(raw.auth, &ids, issues);
    let mqtt = super::mqtt::validate_mqtt(raw.mqtt, &auth, issues);
    let found = issues.found.take();
    if found.is_empty() {
        Ok(Config {
            server: ServerConfig {
                default_camera,
                rtsp_listen,
                ..server.expect("server settings are valid when no issue was found")
            },
            cameras,
            auth,
            mqtt,
        })
    } else {
        Err(ConfigErrors(found))
    }
}

fn validate_server(raw: &raw::RawServer, issues: &Issues<'_>) -> Option<ServerConfig> {
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = if let Ok(addr) = listen_text.parse::<SocketAddr>() {
        Some(addr)
    } else {
        issues.at(
            &[Seg::Key("server"), Seg::Key("listen")],
            format!(
                "`{listen_text}` is not an address and port; write it like \
                 `127.0.0.1:8080`, or `0.0.0.0:8080` to listen on every interface"
            ),
        );
        None
    };
    let max_message_bytes = raw.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    if !(1024..=16 * 1024 * 1024).contains(&max_message_bytes) {
        issues.at(
            &[Seg::Key("server"), Seg::Key("max_message_bytes")],
            format!("{max_message_bytes} is out of range; use a size from 1024 to 16777216 bytes"),
        );
    }
    let limit = |key: &'static str, value: Option<u32>, default: u32| {
        let v = value.unwrap_or(default);
        if !(1..=10_000).contains(&v) {
            issues.at(
                &[Seg::Key("server"), Seg::Key(key)],
                format!("{v} is out of range; use a number from 1 to 10000"),
            );
        }
        v
    };
    refuse_operator_token(raw.operator_token.as_deref(), issues);
    Some(ServerConfig {
        max_streams: limit("max_streams", raw.max_streams, DEFAULT_MAX_STREAMS),
        max_streams_per_camera: limit(
            "max_streams_per_camera",
            raw.max_streams_per_camera,
            DEFAULT_MAX_STREAMS_PER_CAMERA,
        ),
        max_sessions: limit("max_sessions", raw.max_sessions, DEFAULT_MAX_SESSIONS),
        max_streams_per_client: limit(
            "max_streams_per_client",
            raw.max_streams_per_client,
            DEFAULT_MAX_STREAMS_PER_CLIENT,
        ),
        max_sessions_per_account: limit(
            "max_sessions_per_account",
            raw.max_sessions_per_account,
            DEFAULT_MAX_SESSIONS_PER_ACCOUNT,
        ),
        allowed_hosts: allowed_hosts(&raw.allowed_hosts, issues),
        trusted_proxies: trusted_proxies(&raw.trusted_proxies, issues),
        tls: tls(raw.tls.as_ref(), issues),
        // Checked against the cameras once they are read.
        default_camera: None,
        rtsp_listen: None,
        listen: listen?,
        max_message_bytes,
    })
}

/// `server.rtsp_listen`: an address, `off`, or by default port 8554 of the HTTP address
/// when some camera is declared with H.264.
fn rtsp_listen(
    text: Option<&str>,
    listen: Option<SocketAddr>,
    sends_h264: bool,
    issues: &Issues<'_>,
) -> Option<SocketAddr> {
    match text {
        Some("off") => None,
        Some(text) => text.parse::<SocketAddr>().map_or_else(
            |_| {
                issues.at(
                    &[Seg::Key("server"), Seg::Key("rtsp_listen")],
                    format!(
                        "`{text}` is not an address and port; write it like `0.0.0.0:8554`, \
                         or `off` for no RTSP server"
                    ),
                );
                None
            },
            Some,
        ),
        None => listen
            .filter(|_| sends_h264)
            .map(|l| SocketAddr::new(l.ip(), super::DEFAULT_RTSP_PORT)),
    }
}

/// `server.default_camera`, which must be one of the cameras.
fn default_camera(id: Option<&str>, cameras: &[CameraId], issues: &Issues<'_>) -> Option<CameraId> {
    let id = id?;
    let found = cameras.iter().find(|c| c.as_str() == id).cloned();
    if found.is_none() {
        let known: Vec<&str> = cameras.iter().map(CameraId::as_str).collect();
        issues.at(
            &[Seg::Key("server"), Seg::Key("default_camera")],
            format!(
                "there is no camera `{id}`; name one of the cameras: {}",
                known.join(", ")
            ),
        );
    }
    found
}

fn allowed_hosts(names: &[String], issues: &Issues<'_>) -> Vec<String> {
    let mut hosts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let host = name.to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            hosts.push(host);
        } else {
            issues.at(
                &[Seg::Key("server"), Seg::Key("allowed_hosts"), Seg::Index(i)],
                format!(
                    "`{name}` is not a host name; write the name alone, without scheme, port \
                     or path, like `cameras.example.net`"
                ),
            );
        }
    }
    hosts
}

fn trusted_proxies(addrs: &[String], issues: &Issues<'_>) -> Vec<std::net::IpAddr> {
    let mut proxies = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        match addr.parse() {
            Ok(ip) => proxies.push(ip),
            Err(_) => issues.at(
                &[
                    Seg::Key("server"),
                    Seg::Key("trusted_proxies"),
                    Seg::Index(i),
                ],
                format!(
                    "`{addr}` is not an IP address; list each proxy's address, like `127.0.0.1`"
                ),
            ),
        }
    }
    proxies
}

fn tls(raw: Option<&raw::RawTls>, issues: &Issues<'_>) -> Option<super::TlsSettings> {
    match raw? {
        raw::RawTls::Keyword(k) if k == "self_signed" => Some(super::TlsSettings::SelfSigned),
        raw::RawTls::Keyword(k) => {
            issues.at(
                &[Seg::Key("server"), Seg::Key("tls")],
                format!(
                    "`{k}` is not a TLS setting; write `tls: self_signed` for a certificate \
                     camfleet makes itself, or `tls: {{cert: FILE.pem, key: FILE.pem}}`"
                ),
            );
            None
        }
        raw::RawTls::Files(f) => Some(super::TlsSettings::Files {
            cert: PathBuf::from(&f.cert),
            key: PathBuf::from(&f.key),
        }),
    }
}

/// `server.operator_token` gave way to accounts with roles; a file that still has one is
/// refused with the way to move, so no server silently runs more open than it did.
fn refuse_operator_token(token: Option<&str>, issues: &Issues<'_>) {
    if token.is_some() {
        issues.at(
            &[Seg::Key("server"), Seg::Key("operator_token")],
            "the operator token is replaced by accounts with roles. Run `camfleet token new \
             operator --role operator`, paste the `auth: tokens:` entry it prints into \
             cameras.yaml, give clients the new token, and delete this line",
        );
    }
}

fn validate_camera(i: usize, raw: raw::RawCamera, issues: &Issues<'_>) -> Option<CameraConfig> {
    let at = |key: &'static str, msg: String| {
        issues.at(&[Seg::Key("cameras"), Seg::Index(i), Seg::Key(key)], msg);
    };
    let id = match CameraId::parse(&raw.id) {
        Ok(id) => Some(id),
        Err(why) => {
            at("id", why);
            None
        }
    };
    let source = validate_source(i, &raw.source, issues);
    let jpeg_quality = raw.jpeg_quality.unwrap_or(DEFAULT_JPEG_QUALITY);
    if !(1..=100).contains(&jpeg_quality) {
        at(
            "jpeg_quality",
            format!(
                "{jpeg_quality} is out of range; use a quality from 1 to 100 (80 is a good start)"
            ),
        );
    }
    let idle = raw.idle_timeout_secs.unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS);
    if !(1..=86_400).contains(&idle) {
        at(
            "idle_timeout_secs",
            format!("{idle} is out of range; use from 1 to 86400 seconds"),
        );
    }
    if raw.idle_timeout_secs.is_some() && raw.capture != Some(CaptureMode::OnDemand) {
        at(
            "idle_timeout_secs",
            "only on-demand cameras have an idle timeout; add `capture: on_demand` or remove it"
                .into(),
        );
    }
    // A synthetic camera's controls are known ahead; a V4L2 camera's only once it is open.
    let known_controls = match &source {
        Some(SourceConfig::Synthetic(s)) => Some(crate::camera::source::synthetic::control_names(
            s.test_controls,
        )),
        _ => None,
    };
    let mut controls = Vec::new();
    for (name, value) in raw.controls.0 {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let unknown = known_controls
            .as_ref()
            .filter(|known| valid && !known.contains(&name));
        let problem = if !valid {
            Some(format!(
                "`{name}` is not a control name; names are lower case with underscores, \
                 as `camfleet devices` lists them, e.g. `white_balance_automatic`"
            ))
        } else if let Some(known) = unknown {
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            let hint = match crate::config::closest(&name, &names) {
                Some(best) => format!("did you mean `{best}`? "),
                None => String::new(),
            };
            Some(format!(
                "a synthetic camera has no control `{name}`; {hint}its controls are: {}",
                names.join(", ")
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            issues.at(
                &[
                    Seg::Key("cameras"),
                    Seg::Index(i),
                    Seg::Key("controls"),
                    Seg::Key(&name),
                ],
                problem,
            );
        }
        controls.push(DesiredControl { name, value });
    }
    Some(CameraConfig {
        name: raw.name.unwrap_or_else(|| raw.id.clone()),
        id: id?,
        enabled: raw.enabled.unwrap_or(true),
        capture: raw.capture.unwrap_or(CaptureMode::Always),
        idle_timeout: std::time::Duration::from_secs(u64::from(idle)),
        jpeg_quality,
        source: source?,
        controls,
    })
}

fn validate_source(i: usize, raw: &raw::RawSource, issues: &Issues<'_>) -> Option<SourceConfig> {
    let path = |key: &'static str| {
        [
            Seg::Key("cameras"),
            Seg::Index(i),
            Seg::Key("source"),
            Seg::Key(key),
        ]
    };
    let before = issues.found.borrow().len();
    let check_range = |key: &'static str, value: Option<u32>, min: u32, max: u32, what: &str| {
        if let Some(v) = value {
            if !(min..=max).contains(&v) {
                issues.at(
                    &path(key),
                    format!("{key} {v} is out of range; use {what} from {min} to {max}"),
                );
            }
        }
    };
    check_range("fps", raw.fps, 1, 240, "a frame rate");
    check_range("width", raw.width, 16, 7680, "a width in pixels");
    check_range("height", raw.height, 16, 4320, "a height in pixels");

    let kind = raw.kind;
    let refuse = |key: &'static str, present: bool, hint: &str| {
        if present {
            issues.at(
                &path(key),
                format!("`{key}` is not a setting of a {kind} source; {hint}"),
            );
        }
    };
    let source = match kind {
        raw::SourceKind::Synthetic => {
            let hint =
                "synthetic sources take width, height, fps, pattern, pixel_format, prerender and test_controls";
            refuse("device", raw.device.is_some(), hint);
            refuse("card", raw.card.is_some(), hint);
            refuse("bus_info", raw.bus_info.is_some(), hint);
            refuse("serial", raw.serial.is_some(), hint);
            let output = match raw.pixel_format.as_deref() {
                None | Some("MJPG") => SyntheticOutput::Jpeg,
                Some("YUYV") => SyntheticOutput::Yuyv,
                Some("H264") => SyntheticOutput::H264,
                Some(other) => {
                    issues.at(
                        &path("pixel_format"),
                        format!("a synthetic source delivers MJPG, YUYV or H264, not `{other}`"),
                    );
                    SyntheticOutput::Jpeg
                }
            };
            check_range("prerender", raw.prerender, 0, 300, "a number of frames");
            SourceConfig::Synthetic(SyntheticConfig {
                width: raw.width.unwrap_or(640),
                height: raw.height.unwrap_or(480),
                fps: raw.fps.unwrap_or(15),
                pattern: raw.pattern.unwrap_or(Pattern::Bars),
                prerender: raw.prerender.unwrap_or(0),
                test_controls: raw.test_controls.unwrap_or(false),
                output,
            })
        }
        raw::SourceKind::V4l2 => {
            let hint = "V4L2 sources take device (or card, bus_info, serial), pixel_format, width, height and fps";
            refuse("pattern", raw.pattern.is_some(), hint);
            refuse("prerender", raw.prerender.is_some(), hint);
            refuse("test_controls", raw.test_controls.is_some(), hint);
            let device = v4l2_device(raw, &path("kind"), issues);
            let pixel_format = raw.pixel_format.as_deref().and_then(|f| {
                let bytes = f.as_bytes();
                let ok =
                    bytes.len() == 4 && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
                if !ok {
                    issues.at(
                        &path("pixel_format"),
                        format!(
                            "`{f}` is not a FourCC; use four characters such as MJPG or YUYV \
                             (`camfleet devices` lists what each camera offers)"
                        ),
                    );
                    return None;
                }
                Some([bytes[0], bytes[1], bytes[2], bytes[3]])
            });
            let size = match (raw.width, raw.height) {
                (Some(w), Some(h)) => Some((w, h)),
                (None, None) => None,
                (Some(_), None) | (None, Some(_)) => {
                    let key = if raw.width.is_some() {
                        "width"
                    } else {
                        "height"
                    };
                    issues.at(
                        &path(key),
                        "set both width and height, or neither to take the device's default size",
                    );
                    None
                }
            };
            SourceConfig::V4l2(V4l2Config {
                device: device?,
                pixel_format,
                size,
                fps: raw.fps,
            })
        }
    };
    (issues.found.borrow().len() == before).then_some(source)
}

fn v4l2_device(
    raw: &raw::RawSource,
    kind_path: &[Seg<'_>],
    issues: &Issues<'_>,
) -> Option<DeviceMatch> {
    let mut given = Vec::new();
    if let Some(d) = &raw.device {
        given.push(DeviceMatch::Path(PathBuf::from(d)));
    }
    if let Some(c) = &raw.card {
        given.push(DeviceMatch::Card(c.clone()));
    }
    if let Some(b) = &raw.bus_info {
        given.push(DeviceMatch::BusInfo(b.clone()));
    }
    if let Some(s) = &raw.serial {
        given.push(DeviceMatch::Serial(s.clone()));
    }
    if given.len() != 1 {
        issues.at(
            kind_path,
            "a V4L2 source needs exactly one of `device` (a path such as \
             /dev/v4l/by-id/usb-...-video-index0), `card`, `bus_info` or `serial`",
        );
        return None;
    }
    given.pop()
}
