//! `camfleet status`, `controls` and `set` against the real server, over its WebSocket.

use super::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn cli(args: &[&str], url: &str, token: Option<&str>) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_camfleet"));
    command
        .args(args)
        .env("CAMFLEET_URL", url)
        .env_remove("CAMFLEET_TOKEN");
    if let Some(token) = token {
        command.env("CAMFLEET_TOKEN", token);
    }
    let out = run_with_input(&mut command, "");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn status_controls_and_set_on_the_default_fleet() {
    let dir = scratch_dir("cli");
    write_config(
        &dir,
        &std::fs::read_to_string(format!("{REPO}/cameras.yaml")).unwrap(),
    );
    let server = Process::start(&dir, None);
    let url = format!("http://{}", server.addr);

    let (ok, out, err) = cli(&["status", "--once"], &url, None);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("CAMERA") && lines[0].contains("STATE"),
        "{out}"
    );
    for camera in ["lobby", "loading-dock", "server-room"] {
        let row = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(camera))
            .unwrap_or_else(|| panic!("{camera} missing from\n{out}"));
        let state = row.split_whitespace().nth(1).unwrap();
        assert!(
            ["Opening", "Streaming", "Reconnecting", "Idle", "Stopped"].contains(&state),
            "{row}"
        );
    }
    assert_eq!(lines.len(), 4, "{out}");

    let (ok, out, err) = cli(&["controls", "lobby"], &url, None);
    assert!(ok, "{err}");
    assert!(
        out.contains("brightness") && out.contains("0 to 255"),
        "{out}"
    );
    assert!(out.contains("3=noise"), "{out}");

    let (ok, out, err) = cli(&["set", "lobby", "brightness", "77"], &url, None);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .take(2)
            .eq(["brightness", "77"]),
        "{out}"
    );
    let (ok, out, err) = cli(&["set", "lobby", "test_pattern", "checkers"], &url, None);
    assert!(ok, "{err}");
    assert!(out.contains("test_pattern") && out.contains(" 2 "), "{out}");
    // The change is the server's: another client reads it back.
    let (_, out, _) = cli(&["controls", "lobby"], &url, None);
    let brightness = out.lines().find(|l| l.starts_with("brightness ")).unwrap();
    assert_eq!(brightness.split_whitespace().nth(1), Some("77"), "{out}");

    // Refusals say what is wrong, with the wire's code, and exit non-zero.
    let (ok, _, err) = cli(&["set", "lobby", "brightness", "999"], &url, None);
    assert!(
        !ok && err.contains("OUT_OF_RANGE") && err.contains("0 to 255"),
        "{err}"
    );
    let (ok, _, err) = cli(&["set", "lobby", "brightnes", "1"], &url, None);
    assert!(
        !ok && err.contains("UNKNOWN_CONTROL") && err.contains("did you mean"),
        "{err}"
    );
    let (ok, _, err) = cli(&["controls", "attic"], &url, None);
    assert!(
        !ok && err.contains("UNKNOWN_CAMERA") && err.contains("lobby"),
        "{err}"
    );
    let (ok, _, err) = cli(&["status", "--once"], "http://127.0.0.1:1", None);
    assert!(!ok && err.contains("cannot open"), "{err}");
}

#[test]
fn the_cli_takes_the_same_credentials_as_other_clients() {
    let (yaml, token) = super::accounts::accounts_yaml();
    let dir = scratch_dir("cli-accounts");
    write_config(&dir, &yaml);
    let server = Process::start(&dir, None);
    let url = format!("http://{}", server.addr);
    let (ok, _, err) = cli(&["status", "--once"], &url, None);
    assert!(!ok && err.contains("--token"), "{err}");
    // The viewer token sees camera `a` only.
    let (ok, out, err) = cli(&["status", "--once"], &url, Some(&token));
    assert!(ok, "{err}");
    assert!(out.contains("\na ") && !out.contains("\nb "), "{out}");
    let (ok, _, err) = cli(&["set", "a", "brightness", "10"], &url, Some(&token));
    assert!(!ok && err.contains("NOT_PERMITTED"), "{err}");
    // An account's name and password in the URL, as in a browser.
    let with_user = format!("http://ada:ada-password@{}", server.addr);
    let (ok, out, err) = cli(&["set", "b", "brightness", "10"], &with_user, None);
    assert!(ok && out.contains("brightness"), "{out}{err}");
}
