//! Who is asking: credentials read from a request, as each kind of client sends them.
//!
//! - The dashboard: the signed `camfleet_session` cookie set by `POST /login`.
//! - MJPEG and snapshot clients (VLC, `ffmpeg`, `OpenCV`, Home Assistant, OctoPrint): HTTP Basic,
//!   from `http://user:pass@host/...`; a 401 carries `WWW-Authenticate` so they ask.
//! - Scripts and programs: `Authorization: Bearer TOKEN`.
//!
//! Wrong passwords are slowed per client address by the [`Gate`]; other addresses are not
//! affected, so a flood of guesses cannot lock the right user out from elsewhere.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tracing::warn;

use super::error::ApiError;
use super::AppState;
use crate::auth::{Access, Auth, Role};
use crate::camera::CameraId;
use crate::hub::ErrorCode;

/// The sign-in cookie's name.
pub const COOKIE: &str = "camfleet_session";
/// How long a dashboard sign-in lasts.
pub const SIGN_IN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The wait after the first wrong password from an address; it doubles with each one
/// after, up to [`MAX_SIGN_IN_DELAY`].
pub const FIRST_SIGN_IN_DELAY: Duration = Duration::from_millis(500);
/// The longest wait between sign-in attempts from one address.
pub const MAX_SIGN_IN_DELAY: Duration = Duration::from_secs(60);

/// The credentials a request carries, read but not yet checked.
enum Presented {
    Password { name: String, password: String },
    Token(String),
    Cookie(String),
    Nothing,
}

fn presented(req: &HttpRequest) -> Presented {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(value) = authorization {
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return Presented::Token(rest.trim().to_string());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            if let Some((name, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                return Presented::Password {
                    name: name.to_string(),
                    password: password.to_string(),
                };
            }
        }
    }
    match req.cookie(COOKIE) {
        Some(c) => Presented::Cookie(c.value().to_string()),
        None => Presented::Nothing,
    }
}

/// The client's address, for slowing its wrong passwords.
fn address(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// The caller's rights: `Ok(None)` when it presents nothing on a server with accounts.
///
/// # Errors
/// Credentials that are wrong (401), or too many wrong ones from this address (503,
/// `LIMIT_REACHED`).
pub async fn identify(req: &HttpRequest, state: &AppState) -> Result<Option<Access>, ApiError> {
    let auth: Arc<Auth> = state.auth.borrow().clone();
    if !auth.required() {
        return Ok(auth.anonymous());
    }
    match presented(req) {
        Presented::Nothing => Ok(None),
        Presented::Cookie(value) => Ok(state
            .cookie_key
            .verify(&value)
            .and_then(|name| auth.signed_in(&name))),
        Presented::Token(token) => match auth.by_token(&token) {
            // A right token says nothing about passwords: it does not lift an address's wait.
            Some(access) => Ok(Some(access)),
            None => checked(state, address(req), None, "token").map(Some),
        },
        Presented::Password { name, password } => sign_in(state, address(req), &name, password)
            .await
            .map(Some),
    }
}

/// Checks a password off the server's threads (argon2 is slow on purpose), after the
/// address's wait is over.
///
/// # Errors
/// 503 (`LIMIT_REACHED`) while the address must wait; 401 for a wrong name or password.
pub async fn sign_in(
    state: &AppState,
    from: Option<IpAddr>,
    name: &str,
    password: String,
) -> Result<Access, ApiError> {
    let ip = from_or_unknown(from);
    if let Ok(Some(wait)) = state.gate.send(MayTry(ip)).await {
        return Err(ApiError::new(
            ErrorCode::LimitReached,
            format!(
                "too many wrong sign-ins from {ip}; try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let auth: Arc<Auth> = state.auth.borrow().clone();
    let who = name.to_string();
    let access = web::block(move || auth.sign_in(&who, &password))
        .await
        .ok()
        .flatten();
    checked(state, from, access, name)
}

fn from_or_unknown(from: Option<IpAddr>) -> IpAddr {
    from.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

fn checked(
    state: &AppState,
    from: Option<IpAddr>,
    access: Option<Access>,
    what: &str,
) -> Result<Access, ApiError> {
    let ip = from_or_unknown(from);
    state.gate.do_send(Tried {
        ip,
        ok: access.is_some(),
    });
    access.ok_or_else(|| {
        warn!(from = %ip, "wrong credentials for {what}");
        not_signed_in("the name, password or token is wrong")
    })
}

fn not_signed_in(why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotSignedIn,
        format!(
            "{why}; sign in at /login, or send a name and password (http://NAME:PASSWORD@host/...) \
             or `Authorization: Bearer TOKEN`"
        ),
    )
}

/// The caller, who must have at least `role`.
///
/// # Errors
/// 401 without credentials, 403 when the role is not enough.
pub async fn require(req: &HttpRequest, state: &AppState, role: Role) -> Result<Access, ApiError> {
    let access = identify(req, state)
        .await?
        .ok_or_else(|| not_signed_in("this needs an account"))?;
    if access.may(role) {
        Ok(access)
    } else {
        Err(ApiError::new(
            ErrorCode::NotPermitted,
            format!(
                "this needs the {role} role; `{}` is a {}",
                access.name, access.role
            ),
        ))
    }
}

/// Refuses a camera the caller may not see as though it did not exist.
///
/// # Errors
/// 404 for a camera outside the caller's list.
pub fn visible(access: &Access, camera: &str) -> Result<(), ApiError> {
    let id = CameraId::parse(camera).ok();
    if id.is_some_and(|id| access.sees(&id)) || access.cameras.is_none() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnknownCamera,
            format!("there is no camera `{camera}`"),
        ))
    }
}

/// Wrong sign-ins per client address, and how long each must wait.
#[derive(Default)]
pub struct Gate {
    failures: HashMap<IpAddr, (u32, Instant)>,
    /// Every wrong sign-in since the server started.
    failed_total: u64,
}

impl Actor for Gate {
    type Context = Context<Self>;
}

/// How long `0` must still wait before trying again, if at all.
#[derive(Message)]
#[rtype(result = "Option<Duration>")]
pub struct MayTry(pub IpAddr);

/// An attempt from `ip` was right or wrong.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Tried {
    /// Where it came from.
    pub ip: IpAddr,
    /// Whether the credentials were right.
    pub ok: bool,
}

/// Wrong sign-ins counted since the server started, for `/metrics`.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct FailedSignIns;

impl Handler<MayTry> for Gate {
    type Result = Option<Duration>;

    fn handle(&mut self, MayTry(ip): MayTry, _: &mut Context<Self>) -> Self::Result {
        let (_, until) = self.failures.get(&ip)?;
        until.checked_duration_since(Instant::now())
    }
}

impl Handler<Tried> for Gate {
    type Result = ();

    fn handle(&mut self, t: Tried, _: &mut Context<Self>) {
        if t.ok {
            self.failures.remove(&t.ip);
            return;
        }
        let now = Instant::now();
        // Addresses whose wait is long over are forgotten, so the table stays small.
        self.failures
            .retain(|_, (_, until)| now < *until + MAX_SIGN_IN_DELAY);
        let count = self.failures.get(&t.ip).map_or(0, |(n, _)| *n) + 1;
        let delay = FIRST_SIGN_IN_DELAY
            .saturating_mul(1 << (count - 1).min(16))
            .min(MAX_SIGN_IN_DELAY);
        self.failures.insert(t.ip, (count, now + delay));
        self.failed_total += 1;
    }
}

impl Handler<FailedSignIns> for Gate {
    type Result = u64;

    fn handle(&mut self, _: FailedSignIns, _: &mut Context<Self>) -> u64 {
        self.failed_total
    }
}
