//! The dashboard in real headless Chromium (`web/test/dashboard.test.mjs`, node's test
//! runner with playwright-core).
//!
//! Installs what it needs on first use: Debian's `chromium` (apt-get) and playwright-core
//! (npm, into `web/test/node_modules`, no browser download). Then runs the tests against
//! this build's camfleet binary.

use std::path::Path;
use std::process::{exit, Command};

fn run(cmd: &mut Command) -> bool {
    cmd.status().map(|s| s.success()).unwrap_or(false)
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = repo.join("web/test");
    if !Path::new("/usr/bin/chromium").exists() {
        eprintln!("browser tests: installing chromium");
        let sudo = if unsafe_is_root() {
            vec![]
        } else {
            vec!["sudo"]
        };
        let apt = |args: &[&str]| {
            let mut c = Command::new(sudo.first().copied().unwrap_or("apt-get"));
            if !sudo.is_empty() {
                c.arg("apt-get");
            }
            c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            run(&mut c)
        };
        if !(apt(&["update", "-qq"])
            && apt(&[
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "chromium",
            ]))
        {
            eprintln!("browser tests: could not install chromium");
            exit(1);
        }
    }
    if !tests.join("node_modules/playwright-core").exists() {
        eprintln!("browser tests: installing playwright-core");
        let ok = run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&tests));
        if !ok {
            eprintln!("browser tests: npm ci failed");
            exit(1);
        }
    }
    let mut node = Command::new("node");
    node.args(["--test", "--test-concurrency=1"])
        .arg(tests.join("dashboard.test.mjs"))
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

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
