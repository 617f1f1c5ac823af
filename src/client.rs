//! A client of a running server over its WebSocket, for `camfleet status`, `controls` and
//! `set`: the same protocol and credentials as the dashboard and every other client.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use anyhow::{anyhow, bail, Context as _};
use awc::ws;
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use prost::Message as _;

use crate::proto::{
    client_message::Kind as Ask, server_message::Kind as Answer, CameraStatus, ClientMessage,
    ControlInfo, ControlType, ErrorCode,
};

/// How long an answer may take: the hub's own timeout for a camera is 5 s.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the live table is drawn again.
const REDRAW: Duration = Duration::from_secs(1);

/// Where the server is and who is asking.
pub struct Target {
    /// `http://HOST:PORT` (or `https://`, `ws://`, `wss://`), credentials allowed as
    /// `user:password@`.
    pub url: String,
    /// An API token (`camfleet token new`), sent as `Authorization: Bearer`.
    pub token: Option<String>,
}

/// One open WebSocket to the server.
pub struct Connection {
    socket: actix_codec::Framed<awc::BoxedSocket, ws::Codec>,
    next_request: u64,
}

impl Connection {
    /// Opens `/ws` and reads the server's `Hello`.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the credentials.
    pub async fn open(target: &Target) -> anyhow::Result<Connection> {
        let (url, basic) = ws_url(&target.url)?;
        let client = awc::Client::builder()
            .connector(
                awc::Connector::new().rustls_0_23(Arc::new(crate::mqtt::tls_client_config())),
            )
            .finish();
        let mut request = client.ws(url.as_str());
        if let Some(token) = &target.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        } else if let Some(basic) = basic {
            request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
        }
        let (response, socket) = request.connect().await.map_err(|e| match e {
            awc::error::WsClientError::InvalidResponseStatus(s) if s == 401 => anyhow!(
                "{url} needs an account: pass --token TOKEN (or CAMFLEET_TOKEN), or put \
                 user:password@ in the URL"
            ),
            e => anyhow!("cannot open {url}: {e}"),
        })?;
        if response.status() != 101 {
            bail!("{url} answered {}", response.status());
        }
        let mut conn = Connection {
            socket,
            next_request: 1,
        };
        match conn.next().await? {
            Answer::Hello(hello) if hello.sign_in_required => bail!(
                "the server needs an account: pass --token TOKEN, or put user:password@ in \
                 the URL"
            ),
            Answer::Hello(_) => Ok(conn),
            other => bail!("the server did not greet with Hello but {other:?}"),
        }
    }

    async fn send(&mut self, kind: Ask) -> anyhow::Result<()> {
        let bytes = ClientMessage { kind: Some(kind) }.encode_to_vec();
        self.socket
            .send(ws::Message::Binary(bytes.into()))
            .await
            .context("the connection closed")
    }

    fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// The next message from the server, answering pings meanwhile.
    async fn next(&mut self) -> anyhow::Result<Answer> {
        loop {
            let frame = tokio::time::timeout(ANSWER_TIMEOUT, self.socket.next())
                .await
                .map_err(|_| anyhow!("the server sent nothing for {ANSWER_TIMEOUT:?}"))?
                .ok_or_else(|| anyhow!("the server closed the connection"))??;
            match frame {
                ws::Frame::Binary(bytes) => {
                    let message = crate::proto::ServerMessage::decode(bytes)
                        .context("the server sent a message that does not decode")?;
                    if let Some(kind) = message.kind {
                        return Ok(kind);
                    }
                }
                ws::Frame::Ping(payload) => {
                    self.socket.send(ws::Message::Pong(payload)).await?;
                }
                ws::Frame::Close(reason) => bail!("the server closed the connection: {reason:?}"),
                _ => {}
            }
        }
    }

    /// Every camera's status, in the server's order.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn cameras(&mut self) -> anyhow::Result<Vec<CameraStatus>> {
        self.send(Ask::ListCameras(crate::proto::ListCameras {}))
            .await?;
        loop {
            if let Answer::CameraList(list) = self.next().await? {
                return Ok(list.cameras);
            }
        }
    }

    /// A camera's controls, as the dashboard's panel lists them.
    ///
    /// # Errors
    /// When the camera is unknown or not running, or the connection fails.
    pub async fn controls(&mut self, camera: &str) -> anyhow::Result<Vec<ControlInfo>> {
        let request_id = self.request_id();
        self.send(Ask::GetControls(crate::proto::GetControls {
            request_id,
            camera_id: camera.to_string(),
        }))
        .await?;
        loop {
            match self.next().await? {
                Answer::ControlList(list) if list.request_id == request_id => {
                    return Ok(list.controls)
                }
                Answer::CommandResult(r) if r.request_id == request_id => {
                    bail!("{}: {}", code_name(r.code), r.error)
                }
                _ => {}
            }
        }
    }

    /// Sets a control; `value` is a number, `true`/`false`, or a menu item's name. Answers
    /// the control as the camera now reports it.
    ///
    /// # Errors
    /// The server's refusal, with its code and text.
    pub async fn set(
        &mut self,
        camera: &str,
        control: &str,
        value: &str,
    ) -> anyhow::Result<ControlInfo> {
        let controls = self.controls(camera).await?;
        let value = match controls.iter().find(|c| c.name == control) {
            Some(info) => parse_value(info, value)?,
            // The server names the controls there are.
            None => value.parse().unwrap_or(0),
        };
        let request_id = self.request_id();
        self.send(Ask::SetControl(crate::proto::SetControl {
            request_id,
            camera_id: camera.to_string(),
            control: control.to_string(),
            value,
        }))
        .await?;
        loop {
            if let Answer::CommandResult(r) = self.next().await? {
                if r.request_id != request_id {
                    continue;
                }
                if !r.ok {
                    bail!("{}: {}", code_name(r.code), r.error);
                }
                return r
                    .control
                    .ok_or_else(|| anyhow!("the server did not send the control back"));
            }
        }
    }

    /// Prints the fleet's table to `out` once, or keeps redrawing it in place as status
    /// arrives.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn status(&mut self, once: bool, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
        let mut shown = self.cameras().await?;
        let table = |shown: &[CameraStatus]| status_table(shown.iter());
        if once {
            write!(out, "{}", table(&shown))?;
            return Ok(());
        }
        let request_id = self.request_id();
        self.send(Ask::Subscribe(crate::proto::Subscribe {
            camera_ids: Vec::new(),
            request_id,
            send_frames: false,
            max_fps: 0,
            preview_width: 0,
        }))
        .await?;
        let mut drawn: Option<Instant> = None;
        loop {
            if drawn.is_none_or(|at| at.elapsed() >= REDRAW) {
                // Home, clear the screen, draw.
                write!(out, "\x1b[H\x1b[2J{}", table(&shown))?;
                out.flush()?;
                drawn = Some(Instant::now());
            }
            match self.next().await? {
                Answer::CameraStatus(c) => {
                    match shown.iter_mut().find(|s| s.camera_id == c.camera_id) {
                        Some(row) => *row = c,
                        None => shown.push(c),
                    }
                }
                Answer::CameraList(list) => shown = list.cameras,
                _ => {}
            }
        }
    }
}

/// `http://`, `https://`, `ws://` or `wss://` to the `/ws` URL, and the `user:password@`
/// in it as HTTP Basic credentials.
fn ws_url(url: &str) -> anyhow::Result<(String, Option<String>)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow!("`{url}` is not a URL; write it as http://HOST:PORT"))?;
    let scheme = match scheme {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => bail!("`{other}://` is not served; use http:// or https://"),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (basic, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (
            Some(base64::engine::general_purpose::STANDARD.encode(user)),
            host,
        ),
        None => (None, authority),
    };
    let path = path.trim_end_matches('/');
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    Ok((format!("{scheme}://{host}{prefix}/ws"), basic))
}

/// A value as the user typed it, for a control: a number, `true`/`false`, or a menu item.
fn parse_value(info: &ControlInfo, text: &str) -> anyhow::Result<i64> {
    if let Ok(v) = text.parse::<i64>() {
        return Ok(v);
    }
    match text {
        "true" | "on" => return Ok(1),
        "false" | "off" => return Ok(0),
        _ => {}
    }
    if let Some(item) = info.menu_items.iter().find(|m| m.name == text) {
        return Ok(item.index);
    }
    let items: Vec<&str> = info.menu_items.iter().map(|m| m.name.as_str()).collect();
    if items.is_empty() {
        bail!(
            "`{text}` is not a value of `{}`: give a whole number",
            info.name
        )
    }
    bail!(
        "`{text}` is not a value of `{}`: give a number or one of: {}",
        info.name,
        items.join(", ")
    )
}

fn code_name(code: i32) -> &'static str {
    ErrorCode::try_from(code).map_or("ERROR", |c| {
        c.as_str_name().trim_start_matches("ERROR_CODE_")
    })
}

/// The fleet as a table: camera, state, fps, viewers, frames skipped, and the reason.
#[must_use]
pub fn status_table<'a>(cameras: impl Iterator<Item = &'a CameraStatus>) -> String {
    let mut out = format!(
        "{:<20} {:<13} {:>6} {:>7} {:>9}  {}\n",
        "CAMERA", "STATE", "FPS", "VIEWERS", "SKIPPED", "REASON"
    );
    for c in cameras {
        let _ = writeln!(
            out,
            "{:<20} {:<13} {:>6.1} {:>7} {:>9}  {}",
            c.camera_id,
            crate::http::api::state_name(c.state),
            c.fps,
            c.viewers,
            c.frames_dropped,
            c.reason
        );
    }
    out
}

/// A camera's controls as a table: name, value, what it takes, and its flags.
#[must_use]
pub fn controls_table(controls: &[ControlInfo]) -> String {
    let mut out = format!("{:<28} {:>8}  {}\n", "CONTROL", "VALUE", "TAKES");
    for c in controls {
        let value = c.value.map_or_else(|| "-".to_string(), |v| v.to_string());
        let takes = match ControlType::try_from(c.r#type) {
            Ok(ControlType::Boolean) => "true or false".to_string(),
            Ok(ControlType::Button) => "any value presses it".to_string(),
            Ok(ControlType::Menu | ControlType::IntegerMenu) => c
                .menu_items
                .iter()
                .map(|m| format!("{}={}", m.index, m.name))
                .collect::<Vec<_>>()
                .join(", "),
            _ => format!("{} to {}, step {}", c.min, c.max, c.step),
        };
        let mut flags = Vec::new();
        for (set, name) in [
            (c.read_only, "read-only"),
            (c.inactive, "inactive"),
            (c.disabled, "disabled"),
            (c.grabbed, "busy"),
        ] {
            if set {
                flags.push(name);
            }
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" ({})", flags.join(", "))
        };
        let _ = writeln!(out, "{:<28} {:>8}  {takes}{flags}", c.name, value);
    }
    out
}
