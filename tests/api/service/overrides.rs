//! Control overrides that survive SIGKILL, `ResetControls`, and a state file that is
//! corrupt or booby-trapped.

use super::*;

/// Starts the server again on the state in `dir` and returns camera `a`'s brightness once
/// it streams with its controls applied.
async fn brightness_after_restart(dir: &Path, addr: Option<SocketAddr>) -> Option<i64> {
    let process = Process::start(dir, addr);
    let mut client = Client::connect_to(process.addr).await;
    client.subscribe(&["a"]).await;
    let s = client
        .status_where("a", |s| {
            state(s) == CameraState::Streaming && !s.controls.is_empty()
        })
        .await;
    control_value(&s, "brightness")
}

/// Sends brightness changes one after another, and SIGKILLs the server `kill_after` into
/// them; returns the last value the server acknowledged before the connection dropped.
async fn change_until_killed(process: &Process, start: i64, kill_after: Duration) -> i64 {
    let mut client = process.watcher("a").await;
    let pid = process.child.id() as libc::pid_t;
    std::thread::spawn(move || {
        std::thread::sleep(kill_after);
        // SAFETY: kills our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut acked = 0;
    for value in (start..).map(|v| v % 256) {
        let request_id = client.send_set_control("a", "brightness", value).await;
        match client.try_result(request_id).await {
            Some(r) if r.ok => acked = value,
            _ => return acked,
        }
    }
    unreachable!()
}

#[actix_rt::test]
async fn acknowledged_control_changes_survive_sigkill() {
    let dir = scratch_dir("sigkill");
    std::fs::write(
        dir.join("cameras.yaml"),
        format!("cameras:\n{}", synthetic("a", 20)),
    )
    .unwrap();
    let mut addr = None;
    for (round, kill_after_ms) in [(0, 400u64), (1, 650), (2, 900)] {
        let process = Process::start(&dir, addr);
        addr = Some(process.addr);
        let kill_after = Duration::from_millis(kill_after_ms);
        let acked = change_until_killed(&process, 1 + round * 60, kill_after).await;
        assert!(acked > 0, "no change was acknowledged before the kill");
        drop(process);

        let file = std::fs::read_to_string(dir.join("state/controls.json")).unwrap();
        let recorded: serde_json::Value = serde_json::from_str(&file)
            .unwrap_or_else(|e| panic!("controls.json is corrupt ({e}):\n{file}"));
        let kept = recorded["a"]["brightness"].as_i64().unwrap();
        // The change in flight when the process died may or may not have been recorded.
        assert!(
            kept == acked || kept == (acked + 1) % 256,
            "acked {acked}, file has {kept}"
        );

        let brightness = brightness_after_restart(&dir, addr).await;
        assert_eq!(brightness, Some(kept), "round {round}");
    }
}

#[actix_rt::test]
async fn reset_drops_the_overrides() {
    let dir = scratch_dir("reset");
    let yaml = "cameras:\n  - id: a\n    source: {kind: synthetic, width: 160, height: 120, fps: 10}\n    controls: {brightness: 100}\n";
    std::fs::write(dir.join("cameras.yaml"), yaml).unwrap();
    let process = Process::start(&dir, None);
    let mut client = process.watcher("a").await;
    assert!(client.set_control("a", "brightness", 30).await.ok);
    assert!(client.set_control("a", "contrast", 60).await.ok);
    let r = client.reset_controls("a").await;
    assert!(r.ok, "{}", r.error);
    let s = client
        .status_where("a", |s| control_value(s, "brightness") == Some(100))
        .await;
    assert_eq!(
        control_value(&s, "contrast"),
        Some(128),
        "back to the device default"
    );
    let file = std::fs::read_to_string(dir.join("state/controls.json")).unwrap();
    assert!(!file.contains("\"a\""), "still recorded: {file}");
}

/// A camera with test controls, saving overrides under `dir/state`.
fn test_camera(dir: &Path) {
    write_config(
        dir,
        "cameras:\n  - id: a\n    source: {kind: synthetic, width: 160, height: 120, fps: 10, test_controls: true}\n",
    );
}

#[actix_rt::test]
async fn a_corrupt_state_file_is_moved_aside_and_the_server_starts() {
    install_metrics_parser();
    for (case, content) in [
        ("garbage", &b"\xff\xfe not json at all"[..]),
        ("empty", b""),
        ("truncated", b"{\"a\": {\"brightness\": 2"),
        ("wrong types", b"{\"a\": {\"brightness\": \"bright\"}}"),
    ] {
        let dir = scratch_dir(&format!("corrupt-{}", case.replace(' ', "-")));
        test_camera(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("state/controls.json"), content).unwrap();
        let process = Process::start(&dir, None);
        let logged = process.log_line("could not be used");
        assert!(logged.contains("moved to"), "{case}: {logged}");
        let aside: Vec<_> = std::fs::read_dir(dir.join("state"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("controls.json.corrupt-")
            })
            .collect();
        assert_eq!(aside.len(), 1, "{case}: the file is kept aside");
        assert_eq!(std::fs::read(aside[0].path()).unwrap(), content, "{case}");
        // Every client is told, and /metrics says so.
        let mut client = Client::connect_to(process.addr).await;
        let notice = client.error().await;
        assert!(notice.message.contains("moved to"), "{case}: {notice:?}");
        client.subscribe(&["a"]).await;
        let s = client.streaming("a").await;
        assert_eq!(
            control_value(&s, "brightness"),
            Some(128),
            "{case}: the configuration's value"
        );
        let metrics = parse_metrics(&metrics_text(process.addr).await);
        assert_eq!(
            whole(sample(
                &metrics,
                "camfleet_overrides_file_moved_aside",
                "camfleet_overrides_file_moved_aside",
                &[]
            )),
            1,
            "{case}"
        );
        // Changes are saved afresh.
        assert!(client.set_control("a", "brightness", 7).await.ok);
        let file = std::fs::read_to_string(dir.join("state/controls.json")).unwrap();
        assert!(file.contains("\"brightness\": 7"), "{case}: {file}");
    }
}

#[actix_rt::test]
async fn a_symlink_where_the_temporary_file_goes_is_not_followed() {
    let dir = scratch_dir("symlink");
    test_camera(&dir);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    for name in [".controls.json.tmp", ".controls.json.new"] {
        std::os::unix::fs::symlink(&victim, dir.join("state").join(name)).unwrap();
    }
    let process = Process::start(&dir, None);
    let mut client = process.watcher("a").await;
    assert!(client.set_control("a", "brightness", 9).await.ok);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let file = std::fs::read_to_string(dir.join("state/controls.json")).unwrap();
    assert!(file.contains("\"brightness\": 9"), "{file}");
    assert!(!std::fs::symlink_metadata(dir.join("state/controls.json"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[actix_rt::test]
async fn a_reset_the_camera_did_not_carry_out_keeps_the_overrides() {
    let dir = scratch_dir("reset-timeout");
    test_camera(&dir);
    let process = Process::start(&dir, None);
    let mut client = process.watcher("a").await;
    assert!(client.set_control("a", "brightness", 33).await.ok);
    // The camera hangs past the hub's wait, so the reset does not happen.
    let hang = camfleet::COMMAND_TIMEOUT + MARGIN;
    client.hang("a", hang).await;
    let r = client.reset_controls("a").await;
    assert_eq!(code(r.code), proto::ErrorCode::Timeout, "{}", r.error);
    let file = std::fs::read_to_string(dir.join("state/controls.json")).unwrap();
    assert!(
        file.contains("\"brightness\": 33"),
        "the override went before the camera reset: {file}"
    );
}

/// The brightness saved for camera `a` in `dir/state/controls.json`.
fn saved_brightness(dir: &Path) -> Option<i64> {
    let file = std::fs::read_to_string(dir.join("state/controls.json")).ok()?;
    let saved: serde_json::Value = serde_json::from_str(&file).ok()?;
    saved["a"]["brightness"].as_i64()
}

#[actix_rt::test]
async fn overlapping_changes_are_saved_in_the_order_the_camera_applied_them() {
    let dir = scratch_dir("overlapping");
    test_camera(&dir);
    let mut addr = None;
    for round in 0..20i64 {
        let process = Process::start(&dir, addr);
        addr = Some(process.addr);
        let mut client = process.watcher("a").await;
        // 16 changes in flight at once on one connection, then every answer.
        let values: Vec<i64> = (0..16).map(|i| (round * 16 + i) % 256).collect();
        let mut ids = Vec::new();
        for value in &values {
            let request_id = client.request_id();
            ids.push(request_id);
            client
                .send(C::SetControl(proto::SetControl {
                    request_id,
                    camera_id: "a".into(),
                    control: "brightness".into(),
                    value: *value,
                }))
                .await;
        }
        for request_id in ids {
            let r = client.result(request_id).await;
            assert!(r.ok, "round {round}: {}", r.error);
        }
        let last = *values.last().unwrap();
        assert_eq!(
            saved_brightness(&dir),
            Some(last),
            "round {round}: the file"
        );
        drop(client);
        drop(process);
        // The restart brings the camera back with the last value.
        let brightness = brightness_after_restart(&dir, addr).await;
        assert_eq!(brightness, Some(last), "round {round}: after a restart");
    }
}

#[actix_rt::test]
async fn a_change_that_cannot_be_saved_is_not_acknowledged_and_is_saved_later() {
    install_metrics_parser();
    let dir = scratch_dir("unwritable");
    test_camera(&dir);
    let process = Process::start(&dir, None);
    let mut client = process.watcher("a").await;
    assert!(client.set_control("a", "brightness", 40).await.ok);

    // The state directory becomes unusable (root ignores permissions, so it is replaced
    // by a plain file: nothing can be created in it).
    let state = dir.join("state");
    let kept = dir.join("state.kept");
    std::fs::rename(&state, &kept).unwrap();
    std::fs::write(&state, "not a directory").unwrap();
    let r = client.set_control("a", "brightness", 50).await;
    assert_eq!(code(r.code), proto::ErrorCode::NotSaved, "{}", r.error);
    assert!(
        r.error.contains("live") && r.error.contains("will not survive a restart"),
        "{}",
        r.error
    );
    // The change is live on the camera all the same.
    client
        .status_where("a", |s| control_value(s, "brightness") == Some(50))
        .await;
    let metrics = parse_metrics(&metrics_text(process.addr).await);
    let failures = whole(sample(
        &metrics,
        "camfleet_overrides_write_failures",
        "camfleet_overrides_write_failures_total",
        &[],
    ));
    assert!(failures >= 1, "{failures} failed writes counted");
    let saving = sample(
        &metrics,
        "camfleet_overrides_saving",
        "camfleet_overrides_saving",
        &[],
    );
    assert_eq!(whole(saving), 0);

    // Once the directory is back, the next write carries every change, the unsaved one too.
    std::fs::remove_file(&state).unwrap();
    std::fs::rename(&kept, &state).unwrap();
    assert!(client.set_control("a", "contrast", 70).await.ok);
    let file = std::fs::read_to_string(state.join("controls.json")).unwrap();
    assert!(
        file.contains("\"brightness\": 50") && file.contains("\"contrast\": 70"),
        "{file}"
    );
}
