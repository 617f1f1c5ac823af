//! How many commands one WebSocket session may send: enough for any dashboard, too few for
//! one client to flood the cameras and the disk for everyone.

use std::time::Instant;

use super::ws::{COMMANDS_PER_SECOND, COMMAND_BURST};

/// A token bucket: [`COMMAND_BURST`] commands at once, refilled at
/// [`COMMANDS_PER_SECOND`].
pub(super) struct CommandBudget {
    tokens: f64,
    refilled: Instant,
}

impl CommandBudget {
    pub(super) fn new() -> Self {
        CommandBudget {
            tokens: f64::from(COMMAND_BURST),
            refilled: Instant::now(),
        }
    }

    /// Takes one command's token, if there is one.
    pub(super) fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned =
            now.duration_since(self.refilled).as_secs_f64() * f64::from(COMMANDS_PER_SECOND);
        self.tokens = (self.tokens + earned).min(f64::from(COMMAND_BURST));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
