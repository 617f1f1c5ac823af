//! The server-wide stop signal that long-lived responses watch, so that stopping never
//! waits for a viewer to hang up.

use tokio::sync::watch;

/// Raises the stop signal.
#[derive(Clone)]
pub struct Shutdown(std::sync::Arc<watch::Sender<bool>>);

/// Waits for the stop signal.
#[derive(Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

/// A new, lowered signal.
pub fn signal() -> (Shutdown, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    (Shutdown(std::sync::Arc::new(tx)), ShutdownSignal(rx))
}

impl Shutdown {
    /// Raises the signal; every waiter wakes.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl ShutdownSignal {
    /// Returns once the signal is raised (at once if it already is).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}
