//! Runs each fuzz target in `fuzz/` for `FUZZ_SECONDS` (20 unless set), starting from the
//! seed corpus kept in the repository, and fails on the first crash, with the input that
//! caused it kept under `target/fuzz/artifacts/TARGET/`.
//!
//! The targets are built with libFuzzer's coverage instrumentation on the stable toolchain
//! (`-Cpasses=sancov-module` and LLVM's sanitizer-coverage options, which need no nightly
//! features), in release mode, under `target/fuzz`. Each run prints libFuzzer's totals.

use std::path::Path;
use std::process::{exit, Command};

const TARGETS: [&str; 5] = ["wire", "config", "jpeg", "h264", "rtsp"];

const COVERAGE_FLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    -Cdebug-assertions -Coverflow-checks \
    --cfg fuzzing";

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = repo.join("target/fuzz");
    let seconds: u32 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(repo.join("fuzz/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // A target of its own, so build scripts and proc macros are not instrumented.
        .args(["--target", &host])
        .env("RUSTFLAGS", COVERAGE_FLAGS)
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        eprintln!("fuzz: the targets did not build");
        println!("0 passed, {} failed", TARGETS.len());
        exit(1);
    }
    let (mut passed, mut failed) = (0, 0);
    for name in TARGETS {
        let binary = target_dir.join(&host).join("release").join(name);
        // A scratch corpus: what the run finds stays out of the repository's seeds.
        let corpus = target_dir.join("corpus").join(name);
        let artifacts = target_dir.join("artifacts").join(name);
        std::fs::create_dir_all(&corpus).unwrap();
        std::fs::create_dir_all(&artifacts).unwrap();
        let out = Command::new(&binary)
            .arg(&corpus)
            .arg(repo.join("fuzz/corpus").join(name))
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .args([
                "-max_len=65536",
                "-timeout=10",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ])
            .output();
        let Ok(out) = out else {
            eprintln!("fuzz: {} did not run", binary.display());
            failed += 1;
            continue;
        };
        let log = String::from_utf8_lossy(&out.stderr);
        let runs = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map_or("?", str::trim)
            .to_string();
        if out.status.success() {
            println!("fuzz {name}: {runs} executions in {seconds} s, no crash");
            passed += 1;
        } else {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "fuzz {name}: FAILED after {runs} executions; the input is in {}\n{}",
                artifacts.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    exit(i32::from(failed > 0));
}
