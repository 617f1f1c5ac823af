//! Configuration reload: only what changed restarts; a broken file changes nothing.

use super::*;
#[actix_rt::test]
async fn reload_touches_only_what_changed() {
    let dir = scratch_dir("reload");
    let before = format!(
        "cameras:\n{}{}{}",
        synthetic("a", 20),
        synthetic("b", 20),
        synthetic("c", 30)
    );
    std::fs::write(dir.join("cameras.yaml"), &before).unwrap();
    let process = Process::start(&dir, None);
    let mut client = Client::connect_to(process.addr).await;
    client.subscribe(&[]).await;
    for id in ["a", "b", "c"] {
        client
            .status_where(id, |s| state(s) == CameraState::Streaming)
            .await;
    }

    // A viewer of c's frames stays attached while c restarts.
    let mut viewer = Client::connect_to(process.addr).await;
    viewer.watch(&["c"], 0).await;
    client.status_where("c", |s| s.frames_captured > 60).await;

    // c changes, d is new; a and b are as they were.
    let after = format!(
        "cameras:\n{}{}{}{}",
        synthetic("a", 20),
        synthetic("b", 20),
        synthetic("c", 10),
        synthetic("d", 10)
    );
    write_config(&dir, &after);
    let mut last = std::collections::HashMap::<String, u64>::new();
    let mut c_restarted = false;
    let mut fleet_seen = false;
    let deadline = Instant::now() + WAIT;
    while !(c_restarted && fleet_seen && last.get("d").is_some_and(|n| *n > 0)) {
        assert!(
            Instant::now() < deadline,
            "reload did not finish: {last:?} c:{c_restarted} fleet:{fleet_seen}"
        );
        match client.next().await {
            Some(Ok(S::CameraStatus(s))) => {
                if s.camera_id == "a" || s.camera_id == "b" {
                    let prev = last.get(&s.camera_id).copied().unwrap_or(0);
                    assert!(
                        s.frames_captured >= prev,
                        "{} was restarted: {prev} -> {}",
                        s.camera_id,
                        s.frames_captured
                    );
                    assert_eq!(
                        state(&s),
                        CameraState::Streaming,
                        "{} was disturbed",
                        s.camera_id
                    );
                    assert_eq!(s.reconnects, 0);
                }
                if s.camera_id == "c"
                    && (s.requested_fps - 10.0).abs() < f64::EPSILON
                    && state(&s) == CameraState::Streaming
                {
                    c_restarted = true;
                }
                last.insert(s.camera_id.clone(), s.frames_captured);
            }
            Some(Ok(S::CameraList(l))) => {
                let ids: Vec<_> = l.cameras.iter().map(|c| c.camera_id.as_str()).collect();
                assert_eq!(ids, ["a", "b", "c", "d"]);
                fleet_seen = true;
            }
            _ => {}
        }
    }
    process.log_line("configuration reloaded");
    // The restarted camera's new frames reach the viewer that was already watching.
    let restarted = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let waited = Instant::now();
    viewer
        .recv_until(|k| match k {
            S::Frame(f) if f.capture_timestamp > restarted => Some(()),
            _ => None,
        })
        .await;
    // The restarted camera opens at once and the viewer is already attached to its slot:
    // its first frame comes within one capture wait and one frame interval (10 fps).
    let bound = camfleet::camera::actor::CAPTURE_WAIT + Duration::from_millis(100) + MARGIN;
    assert!(
        waited.elapsed() < bound,
        "the restarted camera's first frame took {:?} to reach its viewer, more than {bound:?}",
        waited.elapsed()
    );

    // A broken file changes nothing, and every client hears why.
    write_config(
        &dir,
        &after.replace(
            "id: c\n    source: {kind: synthetic, width: 160, height: 120, fps: 10",
            "id: c\n    source: {kind: synthetic, width: 160, height: 120, fps: 0",
        ),
    );
    let error = client.error().await.message;
    assert!(
        error.contains("was not reloaded") && error.contains("fps 0 is out of range"),
        "{error}"
    );
    process.log_line("was not reloaded");
    let a = client.status_where("a", |_| true).await.frames_captured;
    client
        .status_where("a", |s| {
            s.frames_captured > a && state(s) == CameraState::Streaming
        })
        .await;
    client.streaming("d").await;

    // SIGHUP reloads too.
    process.signal(libc::SIGHUP);
    process.log_line("reloading");
}

#[actix_rt::test]
async fn a_fifo_renamed_over_the_configuration_is_refused_and_the_fleet_runs_on() {
    let dir = scratch_dir("fifo");
    write_config(&dir, &format!("cameras:\n{}", synthetic("a", 10)));
    let process = Process::start(&dir, None);
    let mut client = process.watcher("a").await;

    // A FIFO with no writer: reading it would block for ever.
    let fifo = dir.join(".cameras.yaml.fifo");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a plain call with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    std::fs::rename(&fifo, dir.join("cameras.yaml")).unwrap();
    process.log_line("was not reloaded");
    let logged = process.log_line("not a regular file");
    assert!(logged.contains("a FIFO"), "{logged}");
    let notice = client.error().await;
    assert!(notice.message.contains("not a regular file"), "{notice:?}");

    // The fleet runs on, and /healthz says so honestly.
    let at = client.status_where("a", |_| true).await.frames_captured;
    client.status_where("a", |s| s.frames_captured > at).await;
    let health = awc::Client::new()
        .get(format!("http://{}/healthz", process.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // A regular file again is read as usual.
    write_config(
        &dir,
        &format!("cameras:\n{}{}", synthetic("a", 10), synthetic("b", 10)),
    );
    process.log_line("configuration reloaded");
    client
        .recv_until(|k| match k {
            S::CameraList(l) if l.cameras.iter().any(|c| c.camera_id == "b") => Some(()),
            _ => None,
        })
        .await;
}
