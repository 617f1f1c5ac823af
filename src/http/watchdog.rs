//! Watching connections from outside the code that serves them: a watchdog for each
//! WebSocket session, which cuts a connection whose session has not been served for
//! [`CLIENT_TIMEOUT`], and a hang-up signal for MJPEG streams, which otherwise notice a
//! viewer that left only when they next write, never while the camera is down.
//!
//! A session runs only when its connection can take what it writes. A client that stops
//! reading fills the socket's buffers, the HTTP layer stops polling the session, and its
//! own heartbeat never fires: without the watchdog it would hold its slot for good. The
//! watchdog is a task of its own on the same thread, so it runs whatever the socket's
//! state, and it shuts the socket down, which ends the connection and so the session,
//! which then unregisters from the hub as always.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tracing::debug;

use super::ws::{CLIENT_TIMEOUT, HEARTBEAT_INTERVAL};

/// A connection's socket, kept for its watchdog. It holds its own descriptor (a `dup`), so
/// it always names this connection's socket, never one that took over a closed number.
#[derive(Clone)]
pub struct ConnectionSocket(Arc<OwnedFd>);

impl ConnectionSocket {
    /// A handle on the socket behind `fd`, if it can be duplicated.
    pub fn of(fd: &impl AsRawFd) -> Option<Self> {
        // SAFETY: `fd` is open for this call; `dup` returns a new descriptor or -1.
        let raw = unsafe { libc::dup(fd.as_raw_fd()) };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        Some(ConnectionSocket(Arc::new(unsafe {
            std::os::fd::FromRawFd::from_raw_fd(raw)
        })))
    }

    /// Returns once the client has closed its end of the connection (or it failed). A
    /// stream with nothing to send notices a viewer that left only this way.
    pub async fn closed_by_peer(self) {
        use tokio::io::unix::AsyncFd;
        use tokio::io::Interest;
        let Some(own) = ConnectionSocket::of(&*self.0) else {
            return std::future::pending().await;
        };
        let Ok(own) = Arc::try_unwrap(own.0) else {
            return std::future::pending().await;
        };
        // SAFETY: `own` is an open descriptor that the AsyncFd owns, unchanged, until it is
        // dropped.
        let Ok(watched) = (unsafe { AsyncFd::register_with_interest(own, Interest::READABLE) })
        else {
            return std::future::pending().await;
        };
        loop {
            let Ok(mut ready) = watched.ready(Interest::READABLE).await else {
                return;
            };
            let state = ready.ready();
            if state.is_read_closed() || state.is_error() {
                return;
            }
            // Bytes from the client (a pipelined request): not a close; wait on.
            ready.clear_ready();
        }
    }

    fn shut_down(&self) {
        // SAFETY: a plain call on a descriptor this handle owns.
        unsafe { libc::shutdown(self.0.as_raw_fd(), libc::SHUT_RDWR) };
    }
}

/// One session's watchdog; dropping it (when the session ends) ends the watch.
pub struct Watchdog {
    start: Instant,
    /// Milliseconds after `start` at which the session was last served.
    served_at: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
}

impl Watchdog {
    /// Starts watching `socket`; call [`Watchdog::served`] whenever the session runs.
    pub fn start(socket: ConnectionSocket) -> Self {
        let start = Instant::now();
        let served_at = Arc::new(AtomicU64::new(0));
        let alive = Arc::new(AtomicBool::new(true));
        let (served, running) = (Arc::clone(&served_at), Arc::clone(&alive));
        actix_web::rt::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT_INTERVAL).await;
                if !running.load(Ordering::Relaxed) {
                    return;
                }
                let idle = start
                    .elapsed()
                    .saturating_sub(std::time::Duration::from_millis(
                        served.load(Ordering::Relaxed),
                    ));
                if idle > CLIENT_TIMEOUT {
                    debug!(
                        "a WebSocket session was not served for {idle:?}; closing its connection"
                    );
                    socket.shut_down();
                    return;
                }
            }
        });
        Watchdog {
            start,
            served_at,
            alive,
        }
    }

    /// Notes that the session runs now.
    pub fn served(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.served_at.store(now, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}
