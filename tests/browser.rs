//! The dashboard in real headless Chromium (`web/test/*.test.mjs`, node's test runner with
//! playwright-core): `dashboard.test.mjs` against one camfleet, `fleet.test.mjs` against
//! three, each in a network namespace of its own, sharing one mosquitto.
//!
//! `tests/deps.sh browser` installs what it needs on first use: Debian's `chromium`, Node.js
//! and npm, and playwright-core (into `web/test/node_modules`, no browser download). Then
//! the tests run against this build's camfleet binary.

use std::path::Path;
use std::process::{exit, Command};

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = repo.join("web/test");
    // Chromium and Node.js; mosquitto and `ip` for the dashboard over several hosts.
    let installed = ["browser", "mqtt", "netns"].iter().all(|group| {
        Command::new(repo.join("tests/deps.sh"))
            .arg(group)
            .status()
            .is_ok_and(|s| s.success())
    });
    if !installed {
        eprintln!("browser tests: tests/deps.sh browser, mqtt or netns failed");
        exit(1);
    }
    let mut node = Command::new("node");
    node.args(["--test", "--test-concurrency=1"])
        .arg(tests.join("dashboard.test.mjs"))
        .arg(tests.join("fleet.test.mjs"))
        .env("CAMFLEET_BIN", env!("CARGO_BIN_EXE_camfleet"))
        .env("CAMFLEET_REPO", repo)
        .current_dir(&tests);
    if let Ok(path) = std::env::var("CAMFLEET_SCREENSHOT") {
        node.env("SCREENSHOT", path);
    }
    exit(match node.status() {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("browser tests: node did not run: {e}");
            1
        }
    });
}
