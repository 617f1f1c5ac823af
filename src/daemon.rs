//! `camfleet serve` as a long-running service: readiness for systemd, reloading the
//! configuration on SIGHUP and when its file changes, and an orderly stop on SIGTERM and
//! SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::hub::{Broadcast, Reload};
use crate::overrides::OverrideStore;

/// How long to wait after a change to the configuration file before reading it, so an
/// editor's save (often several writes and a rename) is read once, whole.
pub const RELOAD_SETTLE: Duration = Duration::from_millis(300);
/// Longest a reload waits for the configuration file to be read.
pub const RELOAD_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the control overrides live unless `--state-dir` says otherwise: systemd's
/// `$STATE_DIRECTORY`, else `$XDG_STATE_HOME/camfleet`, else `~/.local/state/camfleet`.
#[must_use]
pub fn default_state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may list several, separated by colons; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        return Some(PathBuf::from(first));
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return Some(PathBuf::from(dir).join("camfleet"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/camfleet"))
}

/// Tells systemd (`Type=notify`) how the service is; does nothing outside systemd.
pub fn notify_systemd(state: sd_notify::NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        warn!("cannot notify systemd: {e}");
    }
}

/// Serves `config` until SIGTERM or SIGINT, reloading it from `path` on SIGHUP and when
/// the file changes.
///
/// # Errors
/// When the state directory, the listening address or the signal handlers cannot be
/// set up, or the HTTP server fails.
pub fn run(
    path: &Path,
    mut config: Config,
    listen: Option<SocketAddr>,
    state_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let store = if let Some(dir) = &state_dir {
        OverrideStore::open(dir).map_err(anyhow::Error::msg)?
    } else {
        warn!("no state directory: control changes will not survive a restart; pass --state-dir");
        OverrideStore::in_memory()
    };
    if let Some(what) = store.moved_aside() {
        error!("{what}");
    }
    if matches!(config.auth, crate::auth::Auth::Open { explicit: true }) {
        warn!(
            "auth: none: anyone who can reach {} may watch every camera and change its \
             settings",
            config.server.listen
        );
    }
    let (tls, swap) = match &config.server.tls {
        Some(settings) => {
            let cert = crate::tls::load(settings, state_dir.as_deref(), config.server.listen)
                .map_err(anyhow::Error::msg)?;
            info!(
                "HTTPS certificate fingerprint (SHA-256): {}; check it against what the \
                 browser shows before trusting the certificate",
                cert.fingerprint
            );
            let (server_config, swap) =
                crate::tls::server_config(&cert).map_err(anyhow::Error::msg)?;
            (Some(server_config), Some(swap))
        }
        None => (None, None),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let path = path.to_path_buf();
    actix_web::rt::System::new().block_on(async move {
        let addr = config.server.listen;
        let mqtt = config.mqtt.clone();
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr}: {e}; pass another address with --listen")
        })?;
        let (reload_tx, mut asked) = tokio::sync::mpsc::unbounded_channel();
        let server = crate::app::start_serving(
            config,
            listener,
            store,
            crate::camera::actor::Timing::default(),
            tls,
            Some(reload_tx),
        )?;
        info!("camfleet serving on {scheme}://{}/", server.local_addr);
        let reloading = Reloading {
            path: path.clone(),
            listen: addr,
            state_dir: state_dir.clone(),
            certificate: swap,
            mqtt,
        };
        let (stopper, http) = (server.stopper, server.http);
        let hub = stopper.hub.clone();
        if let Some(dir) = &state_dir {
            info!(
                "control changes are kept in {}",
                dir.join(crate::overrides::FILE_NAME).display()
            );
        }

        let (changed_tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
        watch_file(&path, changed_tx);
        let mut hangup = signal(SignalKind::hangup())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        // The server runs as its own task: stopping it needs it polled to take commands.
        let mut http = actix_web::rt::spawn(http);
        notify_systemd(sd_notify::NotifyState::Ready);
        loop {
            tokio::select! {
                _ = hangup.recv() => { let _ = reload(&reloading, &hub).await; }
                Some(answer) = asked.recv() => {
                    let outcome = reload(&reloading, &hub).await;
                    let _ = answer.send(outcome);
                }
                Some(()) = changed.recv() => {
                    tokio::time::sleep(RELOAD_SETTLE).await;
                    while changed.try_recv().is_ok() {}
                    let _ = reload(&reloading, &hub).await;
                }
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                result = &mut http => {
                    return match result {
                        Ok(served) => served.map_err(anyhow::Error::from),
                        Err(e) => Err(anyhow::anyhow!("the HTTP server failed: {e}")),
                    };
                }
            }
        }
        info!("stopping");
        notify_systemd(sd_notify::NotifyState::Stopping);
        stopper.stop().await;
        let _ = http.await;
        info!("stopped");
        anyhow::Ok(())
    })
}

/// Reads the configuration again and hands it to the hub. The file is read on a thread of
/// the blocking pool, within [`RELOAD_READ_TIMEOUT`]: a file that hangs (a stuck network
/// file system) never holds up the thread that runs the hub and relays the cameras.
async fn reload(how: &Reloading, hub: &actix::Addr<crate::hub::Hub>) -> Result<(), String> {
    let path = &how.path;
    info!("reloading {}", path.display());
    let file = path.clone();
    let (listen, state_dir) = (how.listen, how.state_dir.clone());
    // The certificate is read again too, off the hub's thread, within the same bound.
    let read = actix_web::rt::task::spawn_blocking(move || {
        let config = Config::load(&file).map_err(|e| e.to_string())?;
        let cert = match &config.server.tls {
            Some(settings) => Some(crate::tls::load(settings, state_dir.as_deref(), listen)?),
            None => None,
        };
        Ok::<_, String>((config, cert))
    });
    let problem = match tokio::time::timeout(RELOAD_READ_TIMEOUT, read).await {
        Ok(Ok(Ok((config, cert)))) => match crate::config::exposure_problem(&config.auth, listen) {
            None => {
                if let (Some(cert), Some(swap)) = (cert, &how.certificate) {
                    info!(
                        "HTTPS certificate fingerprint (SHA-256): {}",
                        cert.fingerprint
                    );
                    swap.send_replace(cert.key);
                }
                if config.mqtt != how.mqtt {
                    warn!(
                        "the `mqtt:` section changed; the MQTT link keeps its settings until \
                         camfleet restarts (systemctl restart camfleet)"
                    );
                }
                let _ = hub.send(Reload(config)).await;
                return Ok(());
            }
            Some(problem) => problem,
        },
        Ok(Ok(Err(problem))) => problem,
        Ok(Err(e)) => format!("reading it failed: {e}"),
        Err(_) => format!(
            "reading it took longer than {} s (is it on a file system that hangs?)",
            RELOAD_READ_TIMEOUT.as_secs()
        ),
    };
    error!(
        "{} was not reloaded; the running fleet is unchanged:\n{problem}",
        path.display()
    );
    hub.do_send(Broadcast(format!(
        "{} was not reloaded; the running fleet is unchanged: {problem}",
        path.display()
    )));
    Err(problem)
}

/// What a reload needs besides the hub.
struct Reloading {
    path: PathBuf,
    listen: SocketAddr,
    state_dir: Option<PathBuf>,
    /// Where a re-read certificate goes, when the server speaks HTTPS.
    certificate: Option<tokio::sync::watch::Sender<std::sync::Arc<rustls::sign::CertifiedKey>>>,
    /// The `mqtt:` section the server started with; the link keeps it until a restart.
    mqtt: Option<crate::config::MqttSettings>,
}

/// Watches the directory holding `path` (editors often save by writing a new file and
/// renaming it over the old one) and sends `()` whenever the file may have changed.
fn watch_file(path: &Path, changed: tokio::sync::mpsc::UnboundedSender<()>) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let Some(name) = path.file_name().map(std::ffi::OsStr::to_os_string) else {
        return;
    };
    let cannot = |e: std::io::Error| {
        warn!(
            "cannot watch {} for changes ({e}); reload with SIGHUP instead",
            dir.display()
        );
    };
    let mut inotify = match inotify::Inotify::init() {
        Ok(i) => i,
        Err(e) => return cannot(e),
    };
    let mask = inotify::WatchMask::CLOSE_WRITE
        | inotify::WatchMask::MOVED_TO
        | inotify::WatchMask::CREATE
        | inotify::WatchMask::DELETE;
    if let Err(e) = inotify.watches().add(&dir, mask) {
        return cannot(e);
    }
    let spawned = std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(events) = inotify.read_events_blocking(&mut buf) {
                for event in events {
                    if event.name == Some(name.as_os_str()) && changed.send(()).is_err() {
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        warn!("cannot watch the configuration file: {e}");
    }
}
