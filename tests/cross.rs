//! camfleet builds for 32-bit Raspberry Pi OS (armhf): `cargo check --target
//! armv7-unknown-linux-gnueabihf` of the library and the binary, with the V4L2 bindings
//! committed for that architecture. Adds the target's standard library with rustup and
//! Debian's ARM cross compilers (for the C inside `ring` and the C++ inside `OpenH264`) on
//! first use.

use std::path::Path;
use std::process::{exit, Command, Stdio};

const TARGET: &str = "armv7-unknown-linux-gnueabihf";

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let outcome = check(repo);
    match &outcome {
        Ok(()) => println!("cross: cargo check --target {TARGET} ok"),
        Err(why) => eprintln!("cross: {why}"),
    }
    let failed = u8::from(outcome.is_err());
    println!("{} passed, {failed} failed", 1 - failed);
    exit(i32::from(failed));
}

fn check(repo: &Path) -> Result<(), String> {
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| {
            format!("rustup, which adds the {TARGET} standard library, did not run: {e}")
        })?;
    if !added.success() {
        return Err(format!("`rustup target add {TARGET}` failed"));
    }
    let deps = Command::new(repo.join("tests/deps.sh"))
        .arg("cross")
        .status()
        .map_err(|e| format!("tests/deps.sh did not run: {e}"))?;
    if !deps.success() {
        return Err("tests/deps.sh cross failed".into());
    }
    let checked = Command::new(env!("CARGO"))
        .args(["check", "--locked", "--lib", "--bins", "--target", TARGET])
        // Nothing is run, so the C and C++ inside dependencies are compiled unoptimised:
        // OpenH264 takes minutes at the dev profile's -O3.
        .args(["--config", "profile.dev.package.\"*\".opt-level=0"])
        .arg("--manifest-path")
        .arg(repo.join("Cargo.toml"))
        // Its own directory, so that it never waits on the lock of the tests' build.
        .arg("--target-dir")
        .arg(repo.join("target/cross"))
        .env(
            "CC_armv7_unknown_linux_gnueabihf",
            "arm-linux-gnueabihf-gcc",
        )
        .env(
            "CXX_armv7_unknown_linux_gnueabihf",
            "arm-linux-gnueabihf-g++",
        )
        .env("AR_armv7_unknown_linux_gnueabihf", "arm-linux-gnueabihf-ar")
        .status()
        .map_err(|e| format!("cargo check did not run: {e}"))?;
    if checked.success() {
        Ok(())
    } else {
        Err(format!("cargo check --target {TARGET} failed (above)"))
    }
}
