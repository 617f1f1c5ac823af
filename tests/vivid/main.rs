//! camfleet against a real V4L2 driver: the kernel's vivid webcams and a v4l2loopback
//! MJPEG device, inside a qemu VM (`tests/vm/run-in-vm.sh`).
//!
//! Run on the host, this binary boots the VM and runs itself inside it, where
//! `CAMFLEET_IN_VM` is set. Each test starts camfleet on port 0 and talks to it over a
//! real WebSocket and HTTP, and checks the devices with `v4l2-ctl`.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod loopback;
#[path = "../api/mjpeg_client.rs"]
#[allow(dead_code)]
mod mjpeg_client;
mod tests;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{exit, Command};
use std::time::Instant;

fn main() {
    if std::env::var_os("CAMFLEET_IN_VM").is_none() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/run-in-vm.sh");
        let exe = std::env::current_exe().expect("own path");
        let status = Command::new(script)
            .arg(exe)
            .args(std::env::args().skip(1))
            .status()
            .expect("the VM harness runs");
        exit(status.code().unwrap_or(1));
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut passed = 0;
    let mut failed = Vec::new();
    let started = Instant::now();
    for (name, test) in tests::ALL {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            actix_rt::System::new().block_on(test());
        }));
        let secs = t.elapsed().as_secs_f64();
        if let Ok(()) = outcome {
            println!("test vivid::{name} ... ok ({secs:.1} s)");
            passed += 1;
        } else {
            println!("test vivid::{name} ... FAILED ({secs:.1} s)");
            failed.push(*name);
        }
    }
    println!(
        "\nV4L2 tests in the VM: {passed} passed, {} failed; finished in {:.1} s",
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {} failed", failed.len());
    exit(i32::from(!failed.is_empty()));
}
