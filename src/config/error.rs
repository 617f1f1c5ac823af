//! Configuration errors that say where (file, line, column), what, and how to fix it.

use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one configuration file; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One step of a path into the YAML document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A key of a mapping.
    Key(&'a str),
    /// An element of a sequence.
    Index(usize),
}

/// Renders a path as `cameras[2].source.fps`.
pub fn path_string(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// Turns a YAML parse or type error in `yaml` into a [`ConfigError`], with a hint where
/// one helps.
pub fn from_yaml_error(file: &Path, yaml: &str, err: &serde_yaml::Error) -> ConfigError {
    let text = err.to_string();
    // The library appends " at line L column C"; we print the location ourselves.
    let message = match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    let mut location = err.location().map(|l| (l.line(), l.column()));
    // A duplicate key is reported at the start of its mapping; point at the second one.
    if let (Some(key), Some((line, column))) = (duplicate_key(&message), location) {
        location = second_key(yaml, key, line, column).or(location);
    }
    ConfigError {
        file: file.to_path_buf(),
        line: location.map(|l| l.0),
        column: location.map(|l| l.1),
        message: explain(&message),
    }
}

/// The key a duplicate-key error names: "duplicate field `K`" (a setting) or "duplicate
/// entry with key "K"" (a mapping of names).
fn duplicate_key(message: &str) -> Option<&str> {
    for (open, close) in [
        ("duplicate field `", '`'),
        ("duplicate entry with key \"", '"'),
    ] {
        if let Some(at) = message.find(open) {
            let rest = &message[at + open.len()..];
            return Some(&rest[..rest.find(close)?]);
        }
    }
    None
}

/// Where `key` is written the second time in the mapping that starts at `line`, `column`
/// (1-based), in block style: the mapping's own keys sit at its column.
fn second_key(yaml: &str, key: &str, line: usize, column: usize) -> Option<(usize, usize)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = column.checked_sub(1)?;
    let mut seen = 0;
    for (k, text) in lines.iter().enumerate().skip(line.checked_sub(1)?) {
        // After the mapping's first line, only lines at its column hold its keys; a line
        // left of it ends the mapping.
        if k + 1 > line && !text.trim().is_empty() && !text.trim_start().starts_with('#') {
            let lead = text.len() - text.trim_start().len();
            if lead < indent {
                break;
            }
            if lead != indent {
                continue;
            }
        }
        let body = text.get(indent..).unwrap_or("");
        let body = body.strip_prefix("- ").unwrap_or(body);
        let bare = body
            .strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with(':'));
        let quoted = body
            .strip_prefix('"')
            .and_then(|b| b.strip_prefix(key))
            .is_some_and(|r| r.starts_with('"'));
        if bare || quoted {
            seen += 1;
            if seen == 2 {
                return Some((k + 1, text.len() - body.len() + 1));
            }
        }
    }
    None
}

/// A part of a block-style file that can be read alone: the camera's index, if it is one,
/// and the lines (0-based) it keeps.
pub type Unit = (Option<usize>, Vec<std::ops::Range<usize>>);

/// Each top-level section but `cameras`, and each camera (with the `cameras:` line).
pub fn units(lines: &[&str]) -> Vec<Unit> {
    let content = |l: &str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
    let indent = |l: &str| l.len() - l.trim_start().len();
    let tops: Vec<usize> = (0..lines.len())
        .filter(|&k| content(lines[k]) && indent(lines[k]) == 0 && !lines[k].starts_with('-'))
        .collect();
    let mut out = Vec::new();
    for (n, &start) in tops.iter().enumerate() {
        let end = tops.get(n + 1).copied().unwrap_or(lines.len());
        if lines[start].trim_end() != "cameras:" {
            out.push((None, std::iter::once(start..end).collect()));
            continue;
        }
        let items: Vec<usize> = (start + 1..end)
            .filter(|&k| {
                let t = lines[k].trim_start();
                content(lines[k]) && (t == "-" || t.starts_with("- "))
            })
            .collect();
        let Some(column) = items.first().map(|&k| indent(lines[k])) else {
            continue;
        };
        let items: Vec<usize> = items
            .into_iter()
            .filter(|&k| indent(lines[k]) == column)
            .collect();
        for (i, &from) in items.iter().enumerate() {
            let to = items.get(i + 1).copied().unwrap_or(end);
            out.push((Some(i), vec![start..start + 1, from..to]));
        }
    }
    out
}

/// Adds a "did you mean" to unknown names and plain words to type errors.
fn explain(message: &str) -> String {
    let ticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let unknown = ["unknown field `", "unknown variant `"]
        .iter()
        .find(|p| message.contains(*p));
    if let (Some(kind), Some((name, expected))) = (unknown, ticked.split_first()) {
        let what = if kind.contains("field") {
            "setting"
        } else {
            "value"
        };
        let mut out = message.to_string();
        match closest(name, expected) {
            Some(best) => {
                let _ = write!(out, "; did you mean `{best}`?");
            }
            None => {
                let _ = write!(out, "; remove it or use a known {what}");
            }
        }
        return out;
    }
    let plain = message
        .replace("expected u32", "expected a whole number")
        .replace("expected u16", "expected a whole number")
        .replace("expected u64", "expected a whole number")
        .replace("expected usize", "expected a whole number")
        .replace("expected a boolean", "expected true or false");
    if message.contains("missing field `") {
        if let Some(name) = ticked.first() {
            return format!("{plain}; add `{name}: ...` here");
        }
    }
    plain
}

/// The candidate nearest to `name`, if it is near enough to be a typo.
#[must_use]
pub fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Finds the line and column of the node at `path` in `text`.
///
/// The YAML library knows where every node is but exposes it only on errors, so this
/// walks the document to the node and fails there on purpose; the failure carries the
/// node's position.
pub fn locate(text: &str, path: &[Seg<'_>]) -> Option<(usize, usize)> {
    let de = serde_yaml::Deserializer::from_str(text);
    match Seek(path).deserialize(de) {
        Err(e) if e.to_string().contains(SEEK_MARK) => e.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

const SEEK_MARK: &str = "camfleet-seek-target";

struct Seek<'p, 'a>(&'p [Seg<'a>]);

impl<'de> DeserializeSeed<'de> for Seek<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any node")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(SEEK_MARK));
        };
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            if key.as_str() == Some(want) {
                return map.next_value_seed(Seek(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(SEEK_MARK));
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek(rest)).map(|_| ())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(SEEK_MARK))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(SEEK_MARK))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(SEEK_MARK))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(SEEK_MARK))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(SEEK_MARK))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(SEEK_MARK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_nested_values() {
        let text = "a: 1\nlist:\n  - x: 1\n  - x: 2\n    y: hello\n";
        assert_eq!(locate(text, &[Seg::Key("a")]), Some((1, 4)));
        assert_eq!(
            locate(text, &[Seg::Key("list"), Seg::Index(1), Seg::Key("y")]),
            Some((5, 8))
        );
        assert_eq!(locate(text, &[Seg::Key("missing")]), None);
    }

    #[test]
    fn closest_suggests_typos_only() {
        assert_eq!(closest("fsp", &["fps", "width"]), Some("fps"));
        assert_eq!(closest("colour", &["fps", "width"]), None);
    }
}
