//! The `auth:` section: accounts and tokens, checked against the cameras they name; and
//! the rule that a server reachable from the network does not run open by accident.

use std::net::SocketAddr;

use super::error::Seg;
use super::raw::{RawAccounts, RawAuth};
use super::validate::Issues;
use crate::auth::{ApiToken, Auth, User};
use crate::camera::CameraId;

/// The lines a user adds to run with one account.
pub const FIRST_ACCOUNT: &str = "auth:\n  users:\n    - {name: admin, role: admin, password_hash: \"PASTE `camfleet hash-password` OUTPUT\"}";

pub(super) fn validate_auth(
    raw: Option<RawAuth>,
    cameras: &[CameraId],
    issues: &Issues<'_>,
) -> Auth {
    let accounts = match raw {
        None => return Auth::Open { explicit: false },
        Some(RawAuth::Keyword(k)) if k == "none" => return Auth::Open { explicit: true },
        Some(RawAuth::Keyword(k)) => {
            issues.at(
                &[Seg::Key("auth")],
                format!(
                    "`{k}` is not an auth setting; write `auth: none` to let anyone who can \
                     reach the server watch and change everything, or list accounts under \
                     `auth: users:`"
                ),
            );
            return Auth::Open { explicit: true };
        }
        Some(RawAuth::Accounts(a)) => a,
    };
    let RawAccounts { users, tokens } = accounts;
    if users.is_empty() && tokens.is_empty() {
        issues.at(
            &[Seg::Key("auth")],
            "no account or token is listed; add one under `users:` (with a hash from \
             `camfleet hash-password`) or `tokens:` (from `camfleet token new`), or write \
             `auth: none` to run open",
        );
    }
    let mut names = std::collections::HashSet::new();
    let users = users
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let at = |key, msg: String| issues.at(&[Seg::Key("auth"), Seg::Key("users"), Seg::Index(i), Seg::Key(key)], msg);
            if u.name.is_empty() || u.name.contains(':') || u.name.trim() != u.name {
                at("name", format!("`{}` cannot be a user name; use letters, digits and punctuation other than `:`", u.name));
            } else if !names.insert(u.name.clone()) {
                at("name", format!("`{}` is listed twice; give each account its own name", u.name));
            }
            if argon2::password_hash::PasswordHash::new(&u.password_hash).is_err() {
                at(
                    "password_hash",
                    "is not a password hash; run `camfleet hash-password`, type the password, \
                     and paste the line it prints (it starts with `$argon2id$`)"
                        .into(),
                );
            }
            let cameras = camera_list(u.cameras, cameras, &[Seg::Key("auth"), Seg::Key("users"), Seg::Index(i)], issues);
            User { name: u.name, password_hash: u.password_hash, role: u.role, cameras }
        })
        .collect();
    let tokens = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let at = |key, msg: String| {
                issues.at(
                    &[
                        Seg::Key("auth"),
                        Seg::Key("tokens"),
                        Seg::Index(i),
                        Seg::Key(key),
                    ],
                    msg,
                );
            };
            if !names.insert(t.name.clone()) {
                at(
                    "name",
                    format!(
                        "`{}` is listed twice; give each account and token its own name",
                        t.name
                    ),
                );
            }
            let hash = t.token_hash.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                at(
                    "token_hash",
                    "is not a token hash (64 hex digits); run `camfleet token new NAME --role \
                     ROLE` and paste the `token_hash` it prints, never the token itself"
                        .into(),
                );
            }
            let cameras = camera_list(
                t.cameras,
                cameras,
                &[Seg::Key("auth"), Seg::Key("tokens"), Seg::Index(i)],
                issues,
            );
            ApiToken {
                name: t.name,
                token_hash: hash,
                role: t.role,
                cameras,
            }
        })
        .collect();
    Auth::Accounts { users, tokens }
}

fn camera_list(
    listed: Option<Vec<String>>,
    cameras: &[CameraId],
    at: &[Seg<'_>],
    issues: &Issues<'_>,
) -> Option<Vec<CameraId>> {
    let listed = listed?;
    let mut out = Vec::new();
    for (i, id) in listed.iter().enumerate() {
        if let Some(c) = cameras.iter().find(|c| c.as_str() == id) {
            out.push(c.clone());
        } else {
            let mut path = at.to_vec();
            path.extend([Seg::Key("cameras"), Seg::Index(i)]);
            let known: Vec<&str> = cameras.iter().map(CameraId::as_str).collect();
            issues.at(
                &path,
                format!(
                    "there is no camera `{id}`; the cameras are: {}",
                    known.join(", ")
                ),
            );
        }
    }
    Some(out)
}

/// Why the server must not start as configured: open to the network with no accounts.
#[must_use]
pub fn exposure_problem(auth: &Auth, listen: SocketAddr) -> Option<String> {
    if listen.ip().is_loopback() || auth.required() || matches!(auth, Auth::Open { explicit: true })
    {
        return None;
    }
    Some(format!(
        "camfleet would listen on {listen}, reachable from the network, with no accounts: \
         anyone there could watch every camera and change its settings. Add an account to \
         cameras.yaml:\n\n{FIRST_ACCOUNT}\n\nor listen on 127.0.0.1, or write `auth: none` \
         to run open on purpose."
    ))
}
