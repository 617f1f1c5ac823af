//! Who a client is and what it may do: accounts and API tokens from `cameras.yaml`, their
//! roles, the cameras each may see, and the signed cookie of a dashboard sign-in.
//!
//! Knows nothing of HTTP or actix; `http::caller` reads credentials from requests and asks
//! here. Passwords are stored as argon2id hashes (slow on purpose). API tokens are 256
//! random bits, so a plain SHA-256 of one cannot be searched back, and checking one costs
//! nothing on every stream request.

mod secrets;

use std::fmt;

use serde::Deserialize;

use crate::camera::CameraId;
pub use secrets::{hash_password, new_token, token_hash, verify_password, CookieKey};

/// What an account may do; each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Watch cameras.
    Viewer,
    /// Also change and reset controls.
    Operator,
    /// Also reload the configuration, see every session and read reload errors.
    Admin,
}

impl Role {
    /// The name used in `cameras.yaml`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A client's rights once its credentials are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The account or token name; `anyone` when the server runs open.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The cameras it may see; all when `None`.
    pub cameras: Option<Vec<CameraId>>,
}

impl Access {
    /// Everyone, on a server that runs without accounts.
    #[must_use]
    pub fn open() -> Self {
        Access {
            name: "anyone".into(),
            role: Role::Admin,
            cameras: None,
        }
    }

    /// Whether this client may see `camera` at all.
    #[must_use]
    pub fn sees(&self, camera: &CameraId) -> bool {
        self.cameras.as_ref().is_none_or(|c| c.contains(camera))
    }

    /// Why this client may not change controls: the text a refused change gets.
    #[must_use]
    pub fn refusal_to_change(&self) -> String {
        format!(
            "changing controls needs the operator role; `{}` is a {} and may only watch",
            self.name, self.role
        )
    }

    /// Whether this client has at least `role`.
    #[must_use]
    pub fn may(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// One person who signs in with a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name to sign in with.
    pub name: String,
    /// argon2 hash in PHC form, from `camfleet hash-password`.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// The cameras the user may see; all when `None`.
    pub cameras: Option<Vec<CameraId>>,
}

/// A token a script or another program presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// What the token is for, as it appears in logs.
    pub name: String,
    /// SHA-256 of the token, hex, from `camfleet token new`.
    pub token_hash: String,
    /// What the token may do.
    pub role: Role,
    /// The cameras it may see; all when `None`.
    pub cameras: Option<Vec<CameraId>>,
}

/// Who may use the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Everyone may do everything: no `auth:` on a loopback address, or `auth: none`.
    Open {
        /// Whether `auth: none` was written (the server then warns at every start).
        explicit: bool,
    },
    /// Only these accounts and tokens.
    Accounts {
        /// People.
        users: Vec<User>,
        /// Programs.
        tokens: Vec<ApiToken>,
    },
}

impl Auth {
    /// Whether the server asks for credentials.
    #[must_use]
    pub fn required(&self) -> bool {
        matches!(self, Auth::Accounts { .. })
    }

    /// The rights of a client that presents nothing: everything on an open server.
    #[must_use]
    pub fn anonymous(&self) -> Option<Access> {
        matches!(self, Auth::Open { .. }).then(Access::open)
    }

    /// The user `name`, if the password is right.
    #[must_use]
    pub fn sign_in(&self, name: &str, password: &str) -> Option<Access> {
        let user = self.user(name)?;
        verify_password(&user.password_hash, password).then(|| user_access(user))
    }

    /// The rights of user `name`, whose sign-in a cookie vouches for.
    #[must_use]
    pub fn signed_in(&self, name: &str) -> Option<Access> {
        self.user(name).map(user_access)
    }

    /// The token's rights, if it is one of the configured tokens.
    #[must_use]
    pub fn by_token(&self, token: &str) -> Option<Access> {
        let Auth::Accounts { tokens, .. } = self else {
            return None;
        };
        let hash = token_hash(token);
        tokens
            .iter()
            .find(|t| secrets::same(t.token_hash.as_bytes(), hash.as_bytes()))
            .map(token_access)
    }

    /// The rights of the user or token called `name`, for a link that acts as it (MQTT);
    /// everything on an open server.
    #[must_use]
    pub fn account(&self, name: &str) -> Option<Access> {
        match self {
            Auth::Open { .. } => Some(Access {
                name: name.to_string(),
                ..Access::open()
            }),
            Auth::Accounts { tokens, .. } => self
                .user(name)
                .map(user_access)
                .or_else(|| tokens.iter().find(|t| t.name == name).map(token_access)),
        }
    }

    fn user(&self, name: &str) -> Option<&User> {
        match self {
            Auth::Accounts { users, .. } => users.iter().find(|u| u.name == name),
            Auth::Open { .. } => None,
        }
    }
}

fn token_access(token: &ApiToken) -> Access {
    Access {
        name: token.name.clone(),
        role: token.role,
        cameras: token.cameras.clone(),
    }
}

fn user_access(user: &User) -> Access {
    Access {
        name: user.name.clone(),
        role: user.role,
        cameras: user.cameras.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_check_against_their_hashes() {
        let (token, hash) = new_token();
        let auth = Auth::Accounts {
            users: vec![User {
                name: "alice".into(),
                password_hash: hash_password("correct horse"),
                role: Role::Operator,
                cameras: Some(vec![CameraId::parse("desk").unwrap()]),
            }],
            tokens: vec![ApiToken {
                name: "ha".into(),
                token_hash: hash,
                role: Role::Viewer,
                cameras: None,
            }],
        };
        let alice = auth.sign_in("alice", "correct horse").unwrap();
        assert!(alice.may(Role::Operator) && !alice.may(Role::Admin));
        assert!(alice.sees(&CameraId::parse("desk").unwrap()));
        assert!(!alice.sees(&CameraId::parse("lobby").unwrap()));
        assert!(auth.sign_in("alice", "wrong").is_none());
        assert!(auth.sign_in("bob", "correct horse").is_none());
        assert_eq!(auth.by_token(&token).unwrap().name, "ha");
        assert!(auth.by_token("cf_not-a-token").is_none());
        assert!(auth.anonymous().is_none());
        assert_eq!(
            Auth::Open { explicit: false }.anonymous(),
            Some(Access::open())
        );
    }
}
