//! The Python client package (clients/python) installed with pip into the test venv and
//! its pytest suite run against two real servers: the repository's cameras.yaml, and one
//! with accounts.

use super::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_python_client_against_real_servers() {
    let python = deps("python");
    let python = python.trim();
    // As a user installs it; the tests then import the installed copy.
    let install = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("{REPO}/clients/python[test]"),
        ])
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    assert!(install.success(), "pip install ./clients/python failed");

    let open = scratch_dir("python-open");
    write_config(
        &open,
        &std::fs::read_to_string(format!("{REPO}/cameras.yaml")).unwrap(),
    );
    let open = Process::start(&open, None);
    let (yaml, viewer_token) = super::accounts::accounts_yaml();
    let accounts = scratch_dir("python-accounts");
    write_config(&accounts, &yaml);
    let accounts = Process::start(&accounts, None);

    // pytest prints to this test's own output, and its last line ("N passed, M failed")
    // is counted by .ci/run with the other runners'.
    let status = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE"])
        .arg(format!("{REPO}/clients/python/tests"))
        .env("CAMFLEET_URL", format!("http://{}", open.addr))
        .env("CAMFLEET_ACCOUNTS_URL", format!("http://{}", accounts.addr))
        .env("CAMFLEET_VIEWER_TOKEN", viewer_token)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    assert!(status.success(), "the Python client's tests failed (above)");
}
