//! Overrides: control values set while a camera runs. Each is applied after the configured
//! value on every open, kept in `controls.json` under the state directory so it survives
//! restarts, and dropped by `ResetControls`. The store is owned by the hub, which saves
//! each override once the camera has applied it and before the client hears `ok`.
//!
//! Every write goes to a new temporary file, created exclusively and never through a
//! symbolic link, that is flushed to disk (fsync) and then renamed over the old one, and
//! the directory is flushed too: a crash at any moment leaves either the old file or the new
//! one, never a mix.
//!
//! A file that cannot be parsed (garbage, empty, truncated, wrong types) does not stop
//! camfleet: it is moved aside with a timestamp, the cameras start with the configuration's
//! values, and the problem is logged, reported in `/metrics` and told to every client.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "controls.json";

/// The overrides, by camera and control name.
#[derive(Debug, Default)]
pub struct OverrideStore {
    path: Option<PathBuf>,
    saved: BTreeMap<String, BTreeMap<String, i64>>,
    /// What was wrong with the file found at start, if it had to be moved aside.
    moved_aside: Option<String>,
}

impl OverrideStore {
    /// A store that keeps nothing on disk (no state directory).
    #[must_use]
    pub fn in_memory() -> Self {
        OverrideStore::default()
    }

    /// Opens the store in `dir`, creating the directory if needed and reading what an
    /// earlier run saved.
    ///
    /// # Errors
    /// What went wrong and how to fix it, when the directory cannot be created or the file
    /// cannot be read or parsed.
    pub fn open(dir: &Path) -> Result<Self, String> {
        fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the state directory {}: {e}; pass another with --state-dir",
                dir.display()
            )
        })?;
        let path = dir.join(FILE_NAME);
        let mut moved_aside = None;
        let saved = match fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(saved) => saved,
                Err(e) => {
                    moved_aside = Some(move_aside(&path, &format!("it is not valid ({e})"))?);
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                moved_aside = Some(move_aside(&path, "it is not UTF-8 text")?);
                BTreeMap::new()
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(OverrideStore {
            path: Some(path),
            saved,
            moved_aside,
        })
    }

    /// What was wrong with the file found at start and where it went, if it was moved
    /// aside.
    #[must_use]
    pub fn moved_aside(&self) -> Option<&str> {
        self.moved_aside.as_deref()
    }

    /// A camera's overrides, in control-name order.
    #[must_use]
    pub fn for_camera(&self, camera: &str) -> Vec<(String, i64)> {
        self.saved
            .get(camera)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// Saves a control's override and writes the file.
    ///
    /// # Errors
    /// When the file cannot be written; the override is then kept in memory only.
    pub fn save(&mut self, camera: &str, control: &str, value: i64) -> io::Result<()> {
        self.saved
            .entry(camera.to_string())
            .or_default()
            .insert(control.to_string(), value);
        self.write()
    }

    /// Drops a camera's overrides and writes the file.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn drop_camera(&mut self, camera: &str) -> io::Result<()> {
        if self.saved.remove(camera).is_some() {
            self.write()?;
        }
        Ok(())
    }

    fn write(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let (tmp, mut file) = create_temporary(dir)?;
        let written = file
            .write_all(serde_json::to_string_pretty(&self.saved)?.as_bytes())
            .and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        File::open(dir)?.sync_all()
    }
}

/// Creates a new temporary file in `dir` under a name nobody else uses: exclusively, and
/// never through a symbolic link planted there.
fn create_temporary(dir: &Path) -> io::Result<(PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    for attempt in 0..16u32 {
        let tmp = dir.join(format!(
            ".{FILE_NAME}.{}.{stamp}.{attempt}.tmp",
            std::process::id()
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free temporary file name in {}", dir.display()),
    ))
}

/// Moves a file that cannot be read as overrides to `NAME.corrupt-SECONDS`, and says so.
fn move_aside(path: &Path, why: &str) -> Result<String, String> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let aside = path.with_file_name(format!("{FILE_NAME}.corrupt-{stamp}"));
    fs::rename(path, &aside).map_err(|e| {
        format!(
            "{} cannot be used ({why}) nor moved aside ({e}); remove it to start without \
             the overrides it held",
            path.display()
        )
    })?;
    Ok(format!(
        "{} could not be used: {why}; it was moved to {}, and the cameras start with the \
         values of the configuration",
        path.display(),
        aside.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_survive_reopening_and_can_be_dropped() {
        let dir = std::env::temp_dir().join(format!("camfleet-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut store = OverrideStore::open(&dir).unwrap();
        store.save("a", "brightness", 10).unwrap();
        store.save("a", "contrast", 20).unwrap();
        store.save("b", "brightness", 30).unwrap();
        store.save("a", "brightness", 11).unwrap();
        let again = OverrideStore::open(&dir).unwrap();
        assert_eq!(
            again.for_camera("a"),
            vec![("brightness".into(), 11), ("contrast".into(), 20)]
        );
        let mut again = again;
        again.drop_camera("a").unwrap();
        assert!(OverrideStore::open(&dir)
            .unwrap()
            .for_camera("a")
            .is_empty());
        fs::write(dir.join(FILE_NAME), "{ not json").unwrap();
        let moved = OverrideStore::open(&dir).unwrap();
        assert!(moved.for_camera("a").is_empty());
        assert!(moved.moved_aside().unwrap().contains("not valid"));
        assert!(!dir.join(FILE_NAME).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
