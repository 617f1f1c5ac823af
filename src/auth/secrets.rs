//! Hashing passwords and tokens, and signing sign-in cookies.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Random bytes from the operating system.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system gives random bytes");
    bytes
}

/// An argon2id hash of `password` in PHC form (`$argon2id$v=19$...`), with a fresh salt.
///
/// # Panics
/// If the operating system gives no random bytes.
#[must_use]
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&random::<16>()).expect("16 bytes make a salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

/// Whether `password` matches `hash`; a hash that cannot be read matches nothing.
#[must_use]
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new API token and its hash: `cf_` and 43 characters of 256 random bits.
#[must_use]
pub fn new_token() -> (String, String) {
    let token = format!("cf_{}", URL_SAFE_NO_PAD.encode(random::<32>()));
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a token, in lower-case hex.
#[must_use]
pub fn token_hash(token: &str) -> String {
    use std::fmt::Write as _;
    Sha256::digest(token.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Compares without stopping at the first difference.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Signs and checks the dashboard's sign-in cookie: `NAME.EXPIRES.MAC`, where the MAC is
/// an HMAC-SHA256 under a key made when the server starts (a restart signs everyone out).
#[derive(Clone)]
pub struct CookieKey([u8; 32]);

impl Default for CookieKey {
    fn default() -> Self {
        CookieKey(random())
    }
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

impl CookieKey {
    fn mac(&self, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(text.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// A cookie value saying `name` signed in, good for `lifetime`.
    #[must_use]
    pub fn sign(&self, name: &str, lifetime: Duration) -> String {
        let expires = (SystemTime::now() + lifetime)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let text = format!("{}.{expires}", URL_SAFE_NO_PAD.encode(name));
        let mac = self.mac(&text);
        format!("{text}.{mac}")
    }

    /// The name a cookie vouches for, if its MAC is right and it has not expired.
    #[must_use]
    pub fn verify(&self, cookie: &str) -> Option<String> {
        let (text, mac) = cookie.rsplit_once('.')?;
        if !same(self.mac(text).as_bytes(), mac.as_bytes()) {
            return None;
        }
        let (name, expires) = text.split_once('.')?;
        let expires: u64 = expires.parse().ok()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        if now >= expires {
            return None;
        }
        String::from_utf8(URL_SAFE_NO_PAD.decode(name).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_refused_when_forged_or_expired() {
        let key = CookieKey::default();
        let cookie = key.sign("alice", Duration::from_secs(60));
        assert_eq!(key.verify(&cookie).as_deref(), Some("alice"));
        let other = CookieKey::default();
        assert_eq!(other.verify(&cookie), None);
        let forged = cookie.replacen(
            &URL_SAFE_NO_PAD.encode("alice"),
            &URL_SAFE_NO_PAD.encode("admin"),
            1,
        );
        assert_eq!(key.verify(&forged), None);
        assert_eq!(key.verify(&key.sign("alice", Duration::ZERO)), None);
    }
}
