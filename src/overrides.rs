//! Overrides: control values set while a camera runs. Each is applied after the configured
//! value on every open, kept in `controls.json` under the state directory so it survives
//! restarts, and dropped by `ResetControls`. The store is owned by the hub, which saves
//! each override once the camera has applied it and before the client hears `ok`.
//!
//! Every write goes to a temporary file that is flushed to disk (fsync) and then renamed
//! over the old one, and the directory is flushed too: a crash at any moment leaves either
//! the old file or the new one, never a mix.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "controls.json";

/// The overrides, by camera and control name.
#[derive(Debug, Default)]
pub struct OverrideStore {
    path: Option<PathBuf>,
    saved: BTreeMap<String, BTreeMap<String, i64>>,
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
        let saved = match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{} is not valid ({e}); move it away to start without the overrides it holds",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(OverrideStore {
            path: Some(path),
            saved,
        })
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
        let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(serde_json::to_string_pretty(&self.saved)?.as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    }
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
        assert!(OverrideStore::open(&dir).unwrap_err().contains("not valid"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
