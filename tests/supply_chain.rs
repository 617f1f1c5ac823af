//! `cargo deny` over the dependency tree with the repository's `deny.toml`: licences,
//! banned and duplicate crates, where crates come from, and the `RustSec` advisories. The
//! advisory database is fetched from GitHub; where GitHub cannot be reached, the snapshot
//! in `tests/supply-chain/` is used and its date printed. Installs cargo-deny on first use
//! from crates.io.

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
        println!("supply chain: advisories ok (RustSec database fetched from github.com)");
        passed += 1;
    } else if said.contains("failed to fetch advisory database") {
        // github.com cannot be reached: check against the snapshot kept in the repository.
        match check_against_snapshot(repo) {
            Ok(verdict) => {
                println!("supply chain: {verdict}");
                passed += 1;
            }
            Err(why) => {
                eprintln!("{why}");
                failed += 1;
            }
        }
    } else {
        eprintln!("{said}");
        failed += 1;
    }
    println!("{passed} passed, {failed} failed");
    exit(i32::from(failed > 0));
}

/// `cargo deny check advisories` against the database snapshot in `tests/supply-chain/`,
/// unpacked into a git repository where cargo-deny looks for its database.
fn check_against_snapshot(repo: &Path) -> Result<String, String> {
    let snapshot = repo.join("tests/supply-chain");
    let stamp = std::fs::read_to_string(snapshot.join("rustsec-advisory-db.commit"))
        .map_err(|e| format!("supply chain: no snapshot stamp: {e}"))?;
    let (commit, date) = stamp
        .split_once(' ')
        .map(|(c, d)| (c.trim(), d.trim()))
        .ok_or("supply chain: the snapshot stamp is not `COMMIT DATE`")?;
    let work = repo.join("target/supply-chain");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let config = std::fs::read_to_string(repo.join("deny.toml"))
        .map_err(|e| e.to_string())?
        .replace(
            "\n[advisories]\n",
            &format!(
                "\n[advisories]\ndb-path = \"{}\"\n",
                work.join("dbs").display()
            ),
        );
    let config_path = work.join("deny.toml");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let offline = |level: &str| {
        Command::new(env!("CARGO"))
            .args(["deny", "-L", level, "--offline", "--manifest-path"])
            .arg(repo.join("Cargo.toml"))
            .arg("--config")
            .arg(&config_path)
            .args(["check", "advisories"])
            .output()
            .map_err(|e| format!("cargo deny: {e}"))
    };
    // cargo-deny names the directory it reads the database from.
    let probe = offline("debug")?;
    let log = String::from_utf8_lossy(&probe.stderr);
    let db = log
        .lines()
        .find_map(|l| l.split("Opening advisory database at '").nth(1))
        .and_then(|rest| rest.split('\'').next())
        .ok_or_else(|| {
            format!("supply chain: cargo deny did not say where its database goes:\n{log}")
        })?;
    let db = Path::new(db);
    std::fs::create_dir_all(db).map_err(|e| e.to_string())?;
    let run = |program: &str, args: &[&str]| -> Result<(), String> {
        let ok = Command::new(program)
            .args(args)
            .current_dir(db)
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(())
            .ok_or_else(|| format!("supply chain: `{program} {}` failed", args.join(" ")))
    };
    let tarball = snapshot.join("rustsec-advisory-db.tar.gz");
    run(
        "tar",
        &["-xzf", &tarball.to_string_lossy(), "--strip-components=1"],
    )?;
    run("git", &["init", "-q", "-b", "main"])?;
    run("git", &["add", "-A"])?;
    run(
        "git",
        &[
            "-c",
            "user.name=camfleet",
            "-c",
            "user.email=camfleet@localhost",
            "commit",
            "-q",
            "-m",
            &format!("RustSec advisory-db {commit}"),
        ],
    )?;
    let checked = offline("warn")?;
    if checked.status.success() {
        Ok(format!(
            "advisories ok against the RustSec database snapshot of {date} (advisory-db \
             {commit}); github.com could not be reached"
        ))
    } else {
        Err(String::from_utf8_lossy(&checked.stderr).into_owned())
    }
}
