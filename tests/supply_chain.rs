//! `cargo deny` over the dependency tree with the repository's `deny.toml`: licences,
//! banned and duplicate crates, and where crates come from; and the `RustSec` advisories
//! when their database can be fetched (it lives on GitHub). Installs cargo-deny on first
//! use from crates.io.

use std::path::Path;
use std::process::{exit, Command};

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let have = Command::new(env!("CARGO"))
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("supply chain: installing cargo-deny from crates.io");
        let installed = Command::new(env!("CARGO"))
            .args(["install", "--locked", "cargo-deny@0.20.2"])
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            eprintln!("supply chain: cargo-deny did not install");
            println!("0 passed, 1 failed");
            exit(1);
        }
    }
    let deny = |checks: &[&str]| {
        Command::new(env!("CARGO"))
            .arg("deny")
            .arg("--manifest-path")
            .arg(repo.join("Cargo.toml"))
            // deny.toml beside Cargo.toml is its configuration.
            .arg("check")
            .args(checks)
            .output()
            .expect("cargo deny runs")
    };
    let (mut passed, mut failed) = (0, 0);
    let offline = deny(&["licenses", "bans", "sources"]);
    let said = String::from_utf8_lossy(&offline.stderr);
    if offline.status.success() {
        // The verdict goes to stdout, the findings (duplicate versions) to stderr.
        println!(
            "supply chain: {}",
            String::from_utf8_lossy(&offline.stdout).trim()
        );
        passed += 1;
    } else {
        eprintln!("{said}");
        failed += 1;
    }
    let advisories = deny(&["advisories"]);
    let said = String::from_utf8_lossy(&advisories.stderr);
    if advisories.status.success() {
        println!("supply chain: advisories ok");
        passed += 1;
    } else if said.contains("failed to fetch advisory database") {
        // Not a pass: the check could not be made here. See docs/SUPPLY-CHAIN.md.
        println!(
            "supply chain: advisories NOT CHECKED: the RustSec database could not be fetched \
             from github.com"
        );
    } else {
        eprintln!("{said}");
        failed += 1;
    }
    println!("{passed} passed, {failed} failed");
    exit(i32::from(failed > 0));
}
