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

use std::collections::{BTreeMap, HashMap};
use std::sync::{mpsc, Arc};

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "controls.json";

/// The file: overrides by camera and control name, and beside them, under `$changed`, who
/// made each one and when. (`$` cannot begin a camera id.)
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Saved {
    #[serde(
        rename = "$changed",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    changed: BTreeMap<String, BTreeMap<String, LastChange>>,
    #[serde(flatten)]
    values: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Who made a control's override, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastChange {
    /// The account (or token) name; `anyone` on a server without accounts.
    pub by: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// Where a change stands among a camera's changes: the camera's start (generation), then
/// the order in which that start applied it. A later change always wins, whatever order
/// the answers come back in.
pub type ChangeOrder = (u64, u64);

/// The overrides, by camera and control name, and the writer that keeps them on disk.
#[derive(Default)]
pub struct OverrideStore {
    saved: Saved,
    /// The order of the change behind each saved value.
    order: HashMap<(String, String), ChangeOrder>,
    writer: Option<FileWriter>,
    /// What was wrong with the file found at start, if it had to be moved aside.
    moved_aside: Option<String>,
    /// Writes that failed since start.
    write_failures: u64,
    /// Whether the last write succeeded.
    last_write_ok: bool,
}

impl OverrideStore {
    /// A store that keeps nothing on disk (no state directory).
    #[must_use]
    pub fn in_memory() -> Self {
        OverrideStore {
            last_write_ok: true,
            ..OverrideStore::default()
        }
    }

    /// Opens the store in `dir`, creating the directory if needed and reading what an
    /// earlier run saved, and starts the thread that writes the file.
    ///
    /// # Errors
    /// What went wrong and how to fix it, when the directory cannot be created or the file
    /// cannot be read.
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
                    Saved::default()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Saved::default(),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                moved_aside = Some(move_aside(&path, "it is not UTF-8 text")?);
                Saved::default()
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let writer = FileWriter::start(path)
            .map_err(|e| format!("cannot start the thread that saves overrides: {e}"))?;
        Ok(OverrideStore {
            saved,
            writer: Some(writer),
            moved_aside,
            last_write_ok: true,
            ..OverrideStore::default()
        })
    }

    /// What was wrong with the file found at start and where it went, if it was moved
    /// aside.
    #[must_use]
    pub fn moved_aside(&self) -> Option<&str> {
        self.moved_aside.as_deref()
    }

    /// Writes that failed since start, and whether the last one succeeded.
    #[must_use]
    pub fn write_health(&self) -> (u64, bool) {
        (self.write_failures, self.last_write_ok)
    }

    /// A camera's overrides, in control-name order.
    #[must_use]
    pub fn for_camera(&self, camera: &str) -> Vec<(String, i64)> {
        self.saved
            .values
            .get(camera)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// Saves a control's override, unless a later change of it is already saved, and
    /// hands back the write's outcome. Writes are made on the writer's thread; a burst of
    /// changes becomes one write.
    /// Who made a control's override, and when, if it has one.
    #[must_use]
    pub fn last_change(&self, camera: &str, control: &str) -> Option<&LastChange> {
        self.saved.changed.get(camera)?.get(control)
    }

    pub fn save(
        &mut self,
        camera: &str,
        control: &str,
        value: i64,
        order: ChangeOrder,
        by: &str,
    ) -> Saving {
        let key = (camera.to_string(), control.to_string());
        if self.order.get(&key).is_some_and(|seen| *seen > order) {
            return self.persist();
        }
        self.order.insert(key, order);
        self.saved
            .values
            .entry(camera.to_string())
            .or_default()
            .insert(control.to_string(), value);
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.saved
            .changed
            .entry(camera.to_string())
            .or_default()
            .insert(
                control.to_string(),
                LastChange {
                    by: by.to_string(),
                    at_unix_ms,
                },
            );
        self.persist()
    }

    /// Drops a camera's overrides and hands back the write's outcome.
    pub fn drop_camera(&mut self, camera: &str) -> Saving {
        self.order.retain(|(c, _), _| c != camera);
        self.saved.changed.remove(camera);
        if self.saved.values.remove(camera).is_none() {
            return Saving::Done(Ok(()));
        }
        self.persist()
    }

    /// Notes how a write turned out, for `/metrics`.
    pub fn note(&mut self, outcome: &Result<(), String>) {
        self.last_write_ok = outcome.is_ok();
        if outcome.is_err() {
            self.write_failures += 1;
        }
    }

    fn persist(&self) -> Saving {
        match &self.writer {
            Some(writer) => writer.write(Arc::new(self.saved.clone())),
            None => Saving::Done(Ok(())),
        }
    }
}

/// A write of the overrides on its way: await it for the outcome.
pub enum Saving {
    /// Nothing to wait for.
    Done(Result<(), String>),
    /// The writer's answer.
    Pending(oneshot::Receiver<Result<(), String>>),
}

impl Saving {
    /// The outcome of the write.
    ///
    /// # Errors
    /// What went wrong, and that the change is live but not saved, when the file could not
    /// be written.
    pub async fn outcome(self) -> Result<(), String> {
        match self {
            Saving::Done(outcome) => outcome,
            Saving::Pending(answer) => answer
                .await
                .unwrap_or_else(|_| Err("the thread that saves overrides stopped; restart camfleet to save changes again".into())),
        }
    }
}

/// One request to the writer: the overrides as they are now, and who waits.
struct Job {
    saved: Arc<Saved>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The thread that writes `controls.json`, so that flushing to disk never holds up the hub
/// and the cameras' frames it relays.
struct FileWriter {
    jobs: mpsc::Sender<Job>,
}

impl FileWriter {
    fn start(path: PathBuf) -> io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("overrides-writer".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    // Everything that queued up meanwhile is written at once: the newest
                    // state includes every change before it.
                    let mut batch = vec![first];
                    batch.extend(queue.try_iter());
                    let newest = &batch[batch.len() - 1].saved;
                    let outcome = write_file(&path, newest).map_err(|e| {
                        format!(
                            "cannot write {}: {e}; the change is live but will not survive \
                             a restart; free space or fix the permissions of the state directory",
                            path.display()
                        )
                    });
                    for job in batch {
                        let _ = job.done.send(outcome.clone());
                    }
                }
            })?;
        Ok(FileWriter { jobs })
    }

    fn write(&self, saved: Arc<Saved>) -> Saving {
        let (done, answer) = oneshot::channel();
        match self.jobs.send(Job { saved, done }) {
            Ok(()) => Saving::Pending(answer),
            Err(_) => Saving::Done(Err(
                "the thread that saves overrides stopped; restart camfleet to save changes again"
                    .into(),
            )),
        }
    }
}

/// Writes the overrides to `path` through a new temporary file, flushed, renamed over the
/// old one, and the directory flushed.
fn write_file(path: &Path, saved: &Saved) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (tmp, mut file) = create_temporary(dir)?;
    let written = file
        .write_all(serde_json::to_string_pretty(saved)?.as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
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
        format!(
            "no free temporary file name in {}; remove the stale .controls.json.*.tmp files there",
            dir.display()
        ),
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

    fn saved(dir: &Path) -> String {
        saved_at(dir, FILE_NAME)
    }

    fn saved_at(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap()
    }

    #[actix_rt::test]
    async fn overrides_survive_reopening_and_can_be_dropped() {
        let dir = std::env::temp_dir().join(format!("camfleet-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut store = OverrideStore::open(&dir).unwrap();
        store
            .save("a", "brightness", 10, (1, 1), "alice")
            .outcome()
            .await
            .unwrap();
        store
            .save("a", "contrast", 20, (1, 2), "alice")
            .outcome()
            .await
            .unwrap();
        store
            .save("b", "brightness", 30, (1, 1), "alice")
            .outcome()
            .await
            .unwrap();
        store
            .save("a", "brightness", 11, (1, 3), "alice")
            .outcome()
            .await
            .unwrap();
        // An answer that comes back late does not undo a later change.
        store
            .save("a", "brightness", 99, (1, 0), "alice")
            .outcome()
            .await
            .unwrap();
        let again = OverrideStore::open(&dir).unwrap();
        assert_eq!(
            again.for_camera("a"),
            vec![("brightness".into(), 11), ("contrast".into(), 20)]
        );
        // Who made each change is kept beside it.
        assert_eq!(again.last_change("a", "contrast").unwrap().by, "alice");
        // Files written before changes were recorded read as they did.
        fs::write(dir.join("old.json"), r#"{"a": {"brightness": 5}}"#).unwrap();
        let old: Saved = serde_json::from_str(&saved_at(&dir, "old.json")).unwrap();
        assert_eq!(old.values["a"]["brightness"], 5);
        fs::remove_file(dir.join("old.json")).unwrap();
        let mut again = again;
        again.drop_camera("a").outcome().await.unwrap();
        let dropped = OverrideStore::open(&dir).unwrap();
        assert!(dropped.for_camera("a").is_empty());
        assert!(dropped.last_change("a", "contrast").is_none());
        assert!(saved(&dir).contains("\"b\""));
        fs::write(dir.join(FILE_NAME), "{ not json").unwrap();
        let moved = OverrideStore::open(&dir).unwrap();
        assert!(moved.for_camera("a").is_empty());
        assert!(moved.moved_aside().unwrap().contains("not valid"));
        assert!(!dir.join(FILE_NAME).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
