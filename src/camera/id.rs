//! `CameraId`: a camera's unique, URL-safe name.

use std::fmt;

/// Longest id accepted.
const MAX_ID_LEN: usize = 64;

/// A camera's id from `cameras.yaml`: 1 to 64 ASCII letters, digits, `-` or `_`, so it can
/// stand in a URL path as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CameraId(String);

impl CameraId {
    /// Checks that `s` is a valid id; the error says what is wrong and how to fix it.
    ///
    /// # Errors
    /// What is wrong with the text, when it is not a valid id.
    pub fn parse(s: &str) -> Result<CameraId, String> {
        if s.is_empty() {
            return Err("the camera id is empty; use a short name such as `front-door`".into());
        }
        if s.len() > MAX_ID_LEN {
            return Err(format!(
                "camera id `{s}` is {} characters long; use at most {MAX_ID_LEN}",
                s.len()
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "camera id `{s}` contains {bad:?}; use only letters, digits, `-` and `_` \
                 so the id works in URLs"
            ));
        }
        Ok(CameraId(s.to_string()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::CameraId;

    #[test]
    fn ids_are_url_safe() {
        assert!(CameraId::parse("front-door_2").is_ok());
        assert!(CameraId::parse("").is_err());
        assert!(CameraId::parse("a b").unwrap_err().contains("' '"));
        assert!(CameraId::parse("a/b").is_err());
        assert!(CameraId::parse(&"x".repeat(65)).is_err());
    }
}
