//! Accounts and roles over real sockets: who may watch, who may change, who sees which
//! camera, and how each kind of client signs in (Bearer and Basic at the handshake or on a
//! stream, the dashboard's cookie, `Authenticate` in the protocol).

use std::net::{IpAddr, Ipv4Addr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use camfleet::auth::{hash_password, new_token};
use camfleet::proto::{self, ErrorCode};

use crate::helpers::*;
use crate::mjpeg_client::MjpegClient;

/// A fleet of `a` and `b` with one account or token of each kind.
struct Fleet {
    server: TestServer,
    /// A viewer of every camera.
    viewer_token: String,
    /// An operator of camera `b` only.
    b_operator_token: String,
}

const ALICE: (&str, &str) = ("alice", "alice-long-password");
const ROOT: (&str, &str) = ("root", "root-long-password");

fn fleet_with_accounts() -> Fleet {
    let (viewer_token, viewer_hash) = new_token();
    let (b_operator_token, b_operator_hash) = new_token();
    let yaml = format!(
        "auth:\n  users:\n    \
         - {{name: {}, role: operator, cameras: [a], password_hash: \"{}\"}}\n    \
         - {{name: {}, role: admin, password_hash: \"{}\"}}\n  \
         tokens:\n    \
         - {{name: dashboard-tv, role: viewer, token_hash: \"{viewer_hash}\"}}\n    \
         - {{name: b-robot, role: operator, cameras: [b], token_hash: \"{b_operator_hash}\"}}\n{}",
        ALICE.0,
        hash_password(ALICE.1),
        ROOT.0,
        hash_password(ROOT.1),
        fleet(&["a", "b"])
    );
    Fleet {
        server: spawn(&yaml),
        viewer_token,
        b_operator_token,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn basic((name, password): (&str, &str)) -> String {
    format!("Basic {}", STANDARD.encode(format!("{name}:{password}")))
}

/// A loopback address of this machine other than 127.0.0.1, to send from.
fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn get(f: &Fleet, path: &str, authorization: &str) -> (u16, String) {
    http_request(
        f.server.addr,
        None,
        "GET",
        path,
        &[("Authorization", authorization)],
        "",
    )
    .await
}

#[actix_rt::test]
async fn a_viewer_watches_but_every_change_is_refused_naming_the_role() {
    let f = fleet_with_accounts();
    let auth = bearer(&f.viewer_token);
    let mut viewer = Client::connect_with(f.server.addr, Some(("Authorization", &auth))).await;
    assert_eq!(
        (viewer.hello.account.as_str(), viewer.hello.role.as_str()),
        ("dashboard-tv", "viewer")
    );
    assert!(!viewer.hello.sign_in_required);
    viewer.subscribe(&["a", "b"]).await;
    viewer.streaming("a").await;
    let r = viewer.set_control("a", "brightness", 10).await;
    assert_eq!(code(r.code), ErrorCode::NotPermitted, "{}", r.error);
    assert!(
        r.error.contains("operator role") && r.error.contains("dashboard-tv"),
        "{}",
        r.error
    );
    let r = viewer.reset_controls("b").await;
    assert_eq!(code(r.code), ErrorCode::NotPermitted, "{}", r.error);
    let brightness = viewer
        .controls("a")
        .await
        .into_iter()
        .find(|c| c.name == "brightness")
        .unwrap();
    assert_eq!(brightness.value, Some(128), "nothing changed");
    // Every camera is the viewer's to watch, over HTTP too.
    assert_eq!(get(&f, "/cameras/b/snapshot.jpg", &auth).await.0, 200);
}

#[actix_rt::test]
async fn an_operator_of_one_camera_cannot_see_or_touch_another() {
    let f = fleet_with_accounts();
    let auth = bearer(&f.b_operator_token);
    let mut robot = Client::connect_with(f.server.addr, Some(("Authorization", &auth))).await;
    robot
        .send(proto::client_message::Kind::ListCameras(
            proto::ListCameras {},
        ))
        .await;
    let listed = robot
        .recv_until(|k| match k {
            proto::server_message::Kind::CameraList(l) => Some(l.clone()),
            _ => None,
        })
        .await;
    let ids: Vec<&str> = listed
        .cameras
        .iter()
        .map(|c| c.camera_id.as_str())
        .collect();
    assert_eq!(ids, ["b"]);
    // Subscribing to "every camera" is every camera it may see.
    robot.subscribe(&[]).await;
    robot.streaming("b").await;
    for r in [
        robot.set_control("a", "brightness", 10).await,
        robot.reset_controls("a").await,
    ] {
        assert_eq!(code(r.code), ErrorCode::UnknownCamera, "{}", r.error);
        assert!(r.error.contains("the cameras are: b"), "{}", r.error);
    }
    assert!(robot.set_control("b", "brightness", 10).await.ok);

    let (status, body) = get(&f, "/api/cameras", &auth).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("\"camera_id\":\"b\"") && !body.contains("\"camera_id\":\"a\""),
        "{body}"
    );
    for path in ["/cameras/a/stream.mjpg", "/cameras/a/snapshot.jpg"] {
        let (status, body) = get(&f, path, &auth).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains("unknown_camera"), "{body}");
    }
    assert_eq!(get(&f, "/cameras/b/snapshot.jpg", &auth).await.0, 200);
    // Alice is the operator of `a` only: the same, the other way round.
    let (status, body) = get(&f, "/api/cameras", &basic(ALICE)).await;
    assert!(
        status == 200 && !body.contains("\"camera_id\":\"b\""),
        "{body}"
    );
}

#[actix_rt::test]
async fn without_credentials_only_the_health_check_and_the_login_page_answer() {
    let f = fleet_with_accounts();
    for path in [
        "/api/cameras",
        "/cameras/a/stream.mjpg",
        "/cameras/a/snapshot.jpg",
        "/metrics",
        "/api/viewers",
    ] {
        let (status, reply) = http_request(f.server.addr, None, "GET", path, &[], "").await;
        assert_eq!(status, 401, "{path}: {reply}");
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("www-authenticate: basic realm=\"camfleet\""),
            "{path}: {reply}"
        );
        assert!(reply.contains("not_signed_in"), "{reply}");
    }
    let (status, reply) = http_request(f.server.addr, None, "GET", "/", &[], "").await;
    assert!(
        status == 303 && reply.to_ascii_lowercase().contains("location: login"),
        "{reply}"
    );
    assert_eq!(
        http_request(f.server.addr, None, "GET", "/login", &[], "")
            .await
            .0,
        200
    );
    assert_eq!(
        http_request(f.server.addr, None, "GET", "/healthz", &[], "")
            .await
            .0,
        200
    );

    // A WebSocket without credentials may do nothing until it presents a token.
    let mut client = Client::connect_to(f.server.addr).await;
    assert!(client.hello.sign_in_required && client.hello.account.is_empty());
    let r = client.set_control("a", "brightness", 1).await;
    assert_eq!(code(r.code), ErrorCode::NotSignedIn, "{}", r.error);
    let r = client.authenticate("cf_guessed").await;
    assert_eq!(code(r.code), ErrorCode::NotSignedIn, "{}", r.error);
    assert!(client.authenticate(&f.b_operator_token).await.ok);
    client.subscribe(&["b"]).await;
    client.streaming("b").await;
}

#[actix_rt::test]
async fn wrong_passwords_are_slowed_per_address_and_others_get_in_at_once() {
    let f = fleet_with_accounts();
    let wrong = basic((ROOT.0, "not-the-password"));
    let attempt = |from: u8, authorization: String| {
        let addr = f.server.addr;
        async move {
            http_request(
                addr,
                Some(loopback(from)),
                "GET",
                "/cameras/a/snapshot.jpg",
                &[("Authorization", &authorization)],
                "",
            )
            .await
        }
    };
    assert_eq!(attempt(1, wrong.clone()).await.0, 401);
    // The next try from that address, even with the right password, must wait.
    let (status, reply) = attempt(1, basic(ROOT)).await;
    assert_eq!(status, 503, "{reply}");
    assert!(
        reply.contains("too many wrong sign-ins from 127.0.0.1"),
        "{reply}"
    );
    // Another address is not held up by the first one's guesses.
    assert_eq!(attempt(2, basic(ROOT)).await.0, 200);
    let (_, metrics) = http_request(
        f.server.addr,
        Some(loopback(3)),
        "GET",
        "/metrics",
        &[("Authorization", &basic(ROOT))],
        "",
    )
    .await;
    assert!(
        metrics.contains("camfleet_sign_ins_failed_total 1"),
        "{metrics}"
    );
}

#[actix_rt::test]
async fn the_dashboard_signs_in_with_a_cookie_and_out_again() {
    let f = fleet_with_accounts();
    let host = f.server.addr.to_string();
    let origin = format!("http://{host}");
    let form = format!("name={}&password={}", ALICE.0, ALICE.1);
    let post = |path: &'static str, origin: String, body: String| {
        let (addr, host) = (f.server.addr, host.clone());
        async move {
            http_request(
                addr,
                None,
                "POST",
                path,
                &[
                    ("Host", &host),
                    ("Origin", &origin),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                &body,
            )
            .await
        }
    };
    let (status, reply) = post("/login", origin.clone(), form.clone()).await;
    assert_eq!(status, 303, "{reply}");
    let set_cookie = reply
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {reply}"))
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (status, page) =
        http_request(f.server.addr, None, "GET", "/", &[("Cookie", &cookie)], "").await;
    assert!(
        status == 200 && page.contains("<title>camfleet</title>"),
        "{page}"
    );
    let (_, me) = http_request(
        f.server.addr,
        None,
        "GET",
        "/api/me",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert!(
        me.contains("\"name\":\"alice\"") && me.contains("\"role\":\"operator\""),
        "{me}"
    );
    let client = Client::connect_with(f.server.addr, Some(("Cookie", &cookie))).await;
    assert_eq!(
        (client.hello.account.as_str(), client.hello.role.as_str()),
        ("alice", "operator")
    );

    // A wrong password, and a form posted by another site, sign nobody in.
    let (status, page) = post(
        "/login",
        origin.clone(),
        "name=alice&password=nope".to_string(),
    )
    .await;
    assert!(
        status == 401
            && page.contains("wrong")
            && !page.to_ascii_lowercase().contains("set-cookie"),
        "{page}"
    );
    let (status, page) = post("/login", "http://evil.example".into(), form).await;
    assert!(
        status == 421 && !page.to_ascii_lowercase().contains("set-cookie"),
        "{page}"
    );
    // Signing out removes the cookie.
    let (status, reply) = post("/logout", origin, String::new()).await;
    assert!(
        status == 303 && reply.contains("camfleet_session=;") && reply.contains("Max-Age=0"),
        "{reply}"
    );
    // A forged cookie is nobody.
    let (name, rest) = cookie.split_once('.').unwrap();
    let forged = format!(
        "camfleet_session={}.{rest}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("root")
    );
    assert_ne!(name, forged.split_once('.').unwrap().0);
    let (status, _) = http_request(
        f.server.addr,
        None,
        "GET",
        "/api/me",
        &[("Cookie", &forged)],
        "",
    )
    .await;
    assert_eq!(status, 401);
}

#[actix_rt::test]
async fn one_client_at_its_limits_keeps_no_one_else_from_watching() {
    let (token, hash) = new_token();
    let server = spawn(&format!(
        "server:\n  max_streams_per_client: 2\n  max_sessions_per_account: 1\n\
         auth:\n  tokens:\n    - {{name: tv, role: viewer, token_hash: \"{hash}\"}}\n{}",
        fleet(&["a"])
    ));
    let auth = bearer(&token);
    let path = "/cameras/a/stream.mjpg";
    let mut held = Vec::new();
    for _ in 0..2 {
        let stream = MjpegClient::get_as(server.addr, loopback(5), path, &auth).await;
        assert_eq!(stream.status, 200);
        held.push(stream);
    }
    let (status, reply) = http_request(
        server.addr,
        Some(loopback(5)),
        "GET",
        path,
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert!(
        status == 503 && reply.contains("server.max_streams_per_client"),
        "{reply}"
    );
    let other = MjpegClient::get_as(server.addr, loopback(6), path, &auth).await;
    assert_eq!(other.status, 200, "another address still gets a stream");
    drop(held);

    let first = Client::connect_with(server.addr, Some(("Authorization", &auth))).await;
    let mut second = Client::connect_with(server.addr, Some(("Authorization", &auth))).await;
    match second.next().await {
        Some(Err(awc::ws::Frame::Close(Some(reason)))) => {
            assert_eq!(reason.code, awc::ws::CloseCode::Again);
            let said = reason.description.unwrap_or_default();
            assert!(said.contains("server.max_sessions_per_account"), "{said}");
        }
        other => panic!("expected close 1013, got {other:?}"),
    }
    drop(first);
}

#[actix_rt::test]
async fn each_control_says_who_changed_it_and_when() {
    let f = fleet_with_accounts();
    let auth = bearer(&f.b_operator_token);
    let mut robot = Client::connect_with(f.server.addr, Some(("Authorization", &auth))).await;
    robot.subscribe(&["b"]).await;
    robot.streaming("b").await;
    let before = std::time::SystemTime::now();
    let r = robot.set_control("b", "brightness", 99).await;
    assert!(r.ok, "{}", r.error);
    let answered = r.control.unwrap();
    assert_eq!(answered.changed_by, "b-robot");
    let listed = robot.controls("b").await;
    let brightness = listed.iter().find(|c| c.name == "brightness").unwrap();
    assert_eq!(brightness.changed_by, "b-robot");
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(brightness.changed_at_unix_ms);
    assert!(at >= before - MARGIN && at <= std::time::SystemTime::now() + MARGIN);
    // Controls nobody changed, and every control after a reset, say nothing.
    let contrast = listed.iter().find(|c| c.name == "contrast").unwrap();
    assert!(contrast.changed_by.is_empty());
    assert!(robot.reset_controls("b").await.ok);
    let listed = robot.controls("b").await;
    assert!(listed.iter().all(|c| c.changed_by.is_empty()));
}
