//! The `mqtt:` section: the broker's URL, this host's id in topics, and the account that
//! commands over MQTT act as.

use super::error::Seg;
use super::raw::RawMqtt;
use super::validate::Issues;
use super::MqttSettings;
use crate::auth::Auth;

/// The first topic level unless `base_topic` is set.
pub const DEFAULT_BASE_TOPIC: &str = "camfleet";
/// Home Assistant's discovery prefix unless `discovery_prefix` is set.
pub const DEFAULT_DISCOVERY_PREFIX: &str = "homeassistant";
/// Snapshot width unless `snapshot_width` is set: a thumbnail, so a broker never carries
/// video.
pub const DEFAULT_SNAPSHOT_WIDTH: u32 = 320;

/// Whether `s` can stand as one topic level and in Home Assistant's ids.
#[must_use]
pub fn topic_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn validate_mqtt(
    raw: Option<RawMqtt>,
    auth: &Auth,
    issues: &Issues<'_>,
) -> Option<MqttSettings> {
    let raw = raw?;
    let at = |key: &'static str, message: String| {
        issues.at(&[Seg::Key("mqtt"), Seg::Key(key)], message);
    };
    let (tls, rest) = if let Some(rest) = raw.url.strip_prefix("mqtt://") {
        (false, rest)
    } else if let Some(rest) = raw.url.strip_prefix("mqtts://") {
        (true, rest)
    } else {
        at(
            "url",
            format!(
                "`{}` is not a broker URL; write `mqtt://HOST:1883`, or `mqtts://HOST:8883` \
                 for TLS",
                raw.url
            ),
        );
        return None;
    };
    let rest = rest.trim_end_matches('/');
    // `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
    let (host, port) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((v6, after)) => (v6, after.strip_prefix(':')),
        None => match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    let port = match port.map(str::parse::<u16>) {
        None => {
            if tls {
                8883
            } else {
                1883
            }
        }
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            at(
                "url",
                format!(
                    "`{}` has no valid port; write the broker's port, like `mqtt://HOST:1883`",
                    raw.url
                ),
            );
            return None;
        }
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        at(
            "url",
            format!(
                "`{}` names no broker host; write `mqtt://HOST:1883` (user and password go in \
                 `username:` and `password:`)",
                raw.url
            ),
        );
        return None;
    }
    let host_id = raw
        .host_id
        .clone()
        .unwrap_or_else(|| super::this_host_name().unwrap_or_default());
    if !topic_safe(&host_id) {
        at(
            "host_id",
            format!(
                "`{host_id}` cannot be a topic level; set `host_id:` to letters, digits, `-` \
                 and `_` only, unique per host (it names this host in every topic)"
            ),
        );
    }
    let base_topic = raw
        .base_topic
        .clone()
        .unwrap_or_else(|| DEFAULT_BASE_TOPIC.into());
    let discovery_prefix = raw
        .discovery_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_DISCOVERY_PREFIX.into());
    for (key, value) in [
        ("base_topic", &base_topic),
        ("discovery_prefix", &discovery_prefix),
    ] {
        if value.is_empty()
            || value.starts_with('/')
            || value.ends_with('/')
            || value.contains(['+', '#', '\0'])
        {
            at(
                key,
                format!(
                    "`{value}` cannot start topics; use levels without `+`, `#` or a leading \
                     or trailing `/`, like `camfleet` or `site/camfleet`"
                ),
            );
        }
    }
    let snapshot_width = raw.snapshot_width.unwrap_or(DEFAULT_SNAPSHOT_WIDTH);
    if !(16..=1920).contains(&snapshot_width) {
        at(
            "snapshot_width",
            format!("{snapshot_width} is not a thumbnail width; give 16 to 1920 pixels"),
        );
    }
    if raw.password.is_some() && raw.username.is_none() {
        at(
            "password",
            "a password without a `username:`; add the broker account's name".into(),
        );
    }
    match (&raw.account, auth) {
        (None, Auth::Accounts { .. }) => at(
            "url",
            "this server has accounts, so commands over MQTT need one to act as; make a \
             token with `camfleet token new mqtt --role operator`, paste its entry under \
             `auth: tokens:`, and add `account: mqtt` here"
                .into(),
        ),
        (Some(name), Auth::Accounts { .. }) if auth.account(name).is_none() => at(
            "account",
            format!(
                "no user or token is named `{name}`; name one from `auth:` (its role and \
                 cameras apply to commands over MQTT)"
            ),
        ),
        _ => {}
    }
    Some(MqttSettings {
        host: host.to_string(),
        port,
        tls,
        host_id,
        username: raw.username,
        password: raw.password,
        base_topic,
        discovery_prefix,
        snapshot_interval: raw.snapshot_interval.unwrap_or(0),
        snapshot_width,
        account: raw.account,
        public_url: raw.public_url.map(|u| u.trim_end_matches('/').to_string()),
    })
}
