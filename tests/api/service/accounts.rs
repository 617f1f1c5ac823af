//! Accounts as a user sets them up: hashes and tokens from the `camfleet` command, a
//! network address refused without accounts, ffmpeg reading a stream with `user:pass@`,
//! and reload errors that only admins read.

use super::*;

/// A configuration with user `ada` (admin), user `vera` (viewer) and a viewer token for
/// camera `a`, made with the `camfleet` command; returns it and the token.
pub(super) fn accounts_yaml() -> (String, String) {
    let hash = |password: &str| {
        let (ok, out, err) = camfleet(&["hash-password"], &format!("{password}\n"));
        assert!(ok, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("$argon2id$"),
            "{out}"
        );
        lines[0].to_string()
    };
    let (ok, out, err) = camfleet(
        &["token", "new", "tv", "--role", "viewer", "--cameras", "a"],
        "",
    );
    assert!(ok, "{err}");
    let mut lines = out.lines();
    let token = lines.next().unwrap().to_string();
    let entry = lines.next().unwrap().to_string();
    assert!(token.starts_with("cf_") && !entry.contains(&token), "{out}");
    let yaml = format!(
        "auth:\n  users:\n    - {{name: ada, role: admin, password_hash: \"{}\"}}\n    \
         - {{name: vera, role: viewer, password_hash: \"{}\"}}\n  tokens:\n{entry}\n\
         cameras:\n{}{}",
        hash("ada-password"),
        hash("vera-password"),
        synthetic("a", 10),
        synthetic("b", 10)
    );
    (yaml, token)
}

#[test]
fn a_network_address_without_accounts_is_refused_with_the_fix() {
    let dir = scratch_dir("exposed");
    let open = format!(
        "server:\n  listen: 0.0.0.0:8080\ncameras:\n{}",
        synthetic("a", 10)
    );
    write_config(&dir, &open);
    let config = dir.join("cameras.yaml");
    let config = config.to_str().unwrap();
    let (ok, _, err) = camfleet(&["check", "--config", config], "");
    assert!(
        !ok && err.contains("auth:\n  users:") && err.contains("hash-password"),
        "{err}"
    );
    let (ok, _, err) = camfleet(
        &["serve", "--config", config, "--state-dir", "/nonexistent"],
        "",
    );
    assert!(!ok && err.contains("reachable from the network"), "{err}");
    // --listen decides as much as the file does.
    let local = format!("cameras:\n{}", synthetic("a", 10));
    write_config(&dir, &local);
    let (ok, _, err) = camfleet(&["serve", "--config", config, "--listen", "0.0.0.0:0"], "");
    assert!(!ok && err.contains("reachable from the network"), "{err}");
    // Accounts made by the command let it start.
    let (yaml, _) = accounts_yaml();
    write_config(
        &dir,
        &yaml.replace("cameras:\n", "server:\n  listen: 0.0.0.0:8080\ncameras:\n"),
    );
    let (ok, out, err) = camfleet(&["check", "--config", config], "");
    assert!(ok, "{out}{err}");
}

#[actix_rt::test]
async fn ffmpeg_reads_a_stream_with_a_name_and_password_in_the_url() {
    deps("players");
    let dir = scratch_dir("ffmpeg-basic");
    let (yaml, token) = accounts_yaml();
    write_config(&dir, &yaml);
    let process = Process::start(&dir, None);
    let ffmpeg = |url: String| {
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-f", "mjpeg", "-i"])
            .arg(url)
            .args(["-frames:v", "5", "-f", "null", "-"])
            .output()
            .unwrap()
    };
    let addr = process.addr;
    let with = ffmpeg(format!(
        "http://vera:vera-password@{addr}/cameras/b/stream.mjpg"
    ));
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let without = ffmpeg(format!("http://{addr}/cameras/b/stream.mjpg"));
    let said = String::from_utf8_lossy(&without.stderr);
    assert!(!without.status.success() && said.contains("401"), "{said}");
    // The token sees camera a only; b does not exist for it.
    let r = awc::Client::new()
        .get(format!("http://{addr}/cameras/b/snapshot.jpg"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[actix_rt::test]
async fn reload_errors_reach_admins_only() {
    let dir = scratch_dir("reload-admins");
    let (yaml, _) = accounts_yaml();
    write_config(&dir, &yaml);
    let process = Process::start(&dir, None);
    let basic = |who: &str| {
        format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, who)
        )
    };
    let admin_auth = basic("ada:ada-password");
    let viewer_auth = basic("vera:vera-password");
    let mut admin = Client::connect_with(process.addr, Some(("Authorization", &admin_auth))).await;
    let mut viewer =
        Client::connect_with(process.addr, Some(("Authorization", &viewer_auth))).await;
    assert_eq!(admin.hello.role, "admin");
    assert_eq!(viewer.hello.role, "viewer");
    write_config(
        &dir,
        &format!("{yaml}  - id: broken\n    source: {{kind: synthetic, fps: 0}}\n"),
    );
    let notice = admin
        .recv_until(|k| match k {
            S::Error(e) if e.message.contains("was not reloaded") => Some(e.message.clone()),
            _ => None,
        })
        .await;
    assert!(notice.contains("fps 0 is out of range"), "{notice}");
    // The viewer's connection carries on without it: the next thing it hears is the answer
    // to a command sent after the notice went out.
    viewer.send(C::ListCameras(proto::ListCameras {})).await;
    let first = viewer
        .recv_until(|k| match k {
            S::Error(e) => Some(Some(e.message.clone())),
            S::CameraList(_) => Some(None),
            _ => None,
        })
        .await;
    assert_eq!(first, None, "a viewer read a reload error");
}

#[actix_rt::test]
async fn who_changed_a_control_is_logged_and_saved_beside_its_value() {
    let dir = scratch_dir("changed-by");
    let (yaml, _) = accounts_yaml();
    write_config(
        &dir,
        &yaml.replace(
            "role: viewer, password_hash",
            "role: operator, password_hash",
        ),
    );
    let process = Process::start(&dir, None);
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "vera:vera-password"
        )
    );
    let mut vera = Client::connect_with(process.addr, Some(("Authorization", &auth))).await;
    vera.subscribe(&["a"]).await;
    vera.streaming("a").await;
    assert!(vera.set_control("a", "brightness", 77).await.ok);
    let line = process.log_line("control changed");
    for part in [
        "camera=a",
        "control=brightness",
        "old=Some(128)",
        "new=Some(77)",
        "account=vera",
        "address=Some(127.0.0.1)",
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/controls.json")).unwrap())
            .unwrap();
    assert_eq!(file["a"]["brightness"], 77);
    assert_eq!(file["$changed"]["a"]["brightness"]["by"], "vera");
    assert!(
        file["$changed"]["a"]["brightness"]["at_unix_ms"]
            .as_u64()
            .unwrap()
            > 0
    );
    // After a restart, the dashboard still says who changed it.
    drop(vera);
    let addr = process.addr;
    drop(process);
    let process = Process::start(&dir, Some(addr));
    let mut vera = Client::connect_with(process.addr, Some(("Authorization", &auth))).await;
    vera.subscribe(&["a"]).await;
    vera.streaming("a").await;
    let controls = vera.controls("a").await;
    let brightness = controls.iter().find(|c| c.name == "brightness").unwrap();
    assert_eq!(
        (brightness.value, brightness.changed_by.as_str()),
        (Some(77), "vera")
    );
}

#[actix_rt::test]
async fn admins_reload_the_configuration_over_http_and_hear_how_it_went() {
    let dir = scratch_dir("reload-over-http");
    let (yaml, _) = accounts_yaml();
    write_config(&dir, &yaml);
    let process = Process::start(&dir, None);
    let post = |who: &str, origin: Option<&str>| {
        let mut request = awc::Client::new()
            .post(format!("http://{}/api/reload", process.addr))
            .basic_auth(
                who.split(':').next().unwrap(),
                who.split(':').nth(1).unwrap(),
            );
        if let Some(origin) = origin {
            request = request.insert_header(("Origin", origin));
        }
        async move {
            let mut r = request.send().await.unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            (r.status().as_u16(), body)
        }
    };
    let (status, body) = post("vera:vera-password", None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("admin role"),
        "{body}"
    );
    let (status, body) = post("ada:ada-password", None).await;
    assert_eq!(
        (status, body["reloaded"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    process.log_line("configuration reloaded");
    let (status, _) = post("ada:ada-password", Some("http://evil.example")).await;
    assert_eq!(status, 421);
    // A broken file is answered with what is wrong, and nothing changes. (The file watcher
    // reads it too; the answer is this request's own reading.)
    std::fs::write(
        dir.join("cameras.yaml"),
        format!("{yaml}  - id: broken\n    source: {{kind: synthetic, fps: 0}}\n"),
    )
    .unwrap();
    let (status, body) = post("ada:ada-password", None).await;
    let error = body["error"].as_str().unwrap();
    assert!(
        status == 400 && error.contains("not reloaded") && error.contains("fps 0 is out of range"),
        "{body}"
    );
}
