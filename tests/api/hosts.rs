//! DNS rebinding and cross-site WebSocket handshakes: a request must name this server, and a
//! WebSocket must come from its own pages. Sent by hand on plain sockets, so the `Host`,
//! `Origin` and forwarding headers are exactly what a browser under attack would send.

use std::net::SocketAddr;

use crate::helpers::*;

/// The routes a page could reach: the dashboard, the API, a stream, a snapshot, the WebSocket.
const ROUTES: [&str; 5] = [
    "/",
    "/api/cameras",
    "/cameras/a/stream.mjpg",
    "/cameras/a/snapshot.jpg",
    "/ws",
];

async fn status(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    http_request(addr, None, "GET", path, headers, "").await
}

#[actix_rt::test]
async fn a_rebound_name_is_refused_on_every_route() {
    let server = spawn(&fleet(&["a"]));
    for path in ROUTES {
        let (code, text) = status(
            server.addr,
            path,
            &[("Host", "evil.example"), ("Origin", "http://evil.example")],
        )
        .await;
        assert_eq!(code, 421, "{path}: {text}");
        assert!(
            text.contains("server.allowed_hosts") && text.contains("wrong_host"),
            "{path}: {text}"
        );
    }
}

#[actix_rt::test]
async fn the_servers_own_names_and_addresses_are_accepted() {
    let server = spawn(&format!(
        "server:\n  allowed_hosts: [Cams.Example.NET]\n{}",
        fleet(&["a"])
    ));
    let port = server.addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("cams.example.net:{port}"),
        "cams.example.net".to_string(),
        format!("[::1]:{port}"),
    ] {
        for path in ROUTES {
            let origin = format!("http://{host}");
            let (code, text) =
                status(server.addr, path, &[("Host", &host), ("Origin", &origin)]).await;
            let expected = if path == "/ws" { 101 } else { 200 };
            assert_eq!(code, expected, "{host}{path}: {text}");
        }
    }
}

#[actix_rt::test]
async fn a_websocket_from_another_site_is_refused() {
    let server = spawn(&fleet(&["a"]));
    let host = server.addr.to_string();
    for origin in [
        "http://evil.example".to_string(),
        // Another page on another port of this machine is another site.
        format!("http://127.0.0.1:{}", server.addr.port() + 1),
        // A page served over HTTPS did not come from this plain-HTTP server.
        format!("https://{host}"),
        "null".to_string(),
    ] {
        let (code, text) =
            status(server.addr, "/ws", &[("Host", &host), ("Origin", &origin)]).await;
        assert_eq!(code, 421, "{origin}: {text}");
    }
    // An Origin that is not ASCII is refused, not skipped.
    let (code, text) = status(
        server.addr,
        "/ws",
        &[("Host", &host), ("Origin", "http://\u{e9}vil.example")],
    )
    .await;
    assert_eq!(code, 421, "{text}");
}

#[actix_rt::test]
async fn forwarded_hosts_are_believed_only_from_trusted_proxies() {
    let open = spawn(&fleet(&["a"]));
    let host = open.addr.to_string();
    // No proxy is trusted: the header is ignored, the request names this server.
    let (code, _) = status(
        open.addr,
        "/api/cameras",
        &[("Host", &host), ("X-Forwarded-Host", "evil.example")],
    )
    .await;
    assert_eq!(code, 200);

    let proxied = spawn(&format!(
        "server:\n  trusted_proxies: [127.0.0.1]\n  allowed_hosts: [cams.example.net]\n{}",
        fleet(&["a"])
    ));
    let host = proxied.addr.to_string();
    for (forwarded, expected) in [
        (("X-Forwarded-Host", "evil.example"), 421),
        (
            ("Forwarded", "for=10.0.0.2;host=evil.example;proto=http"),
            421,
        ),
        (("X-Forwarded-Host", "cams.example.net"), 200),
        (("Forwarded", "host=\"cams.example.net\""), 200),
    ] {
        let (code, text) =
            status(proxied.addr, "/api/cameras", &[("Host", &host), forwarded]).await;
        assert_eq!(code, expected, "{forwarded:?}: {text}");
    }
}
