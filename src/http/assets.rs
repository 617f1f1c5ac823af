//! The dashboard's files, built into the binary: it needs no Node to build or run and
//! loads nothing from elsewhere.

use actix_web::{web, HttpResponse};

/// What the page may load: only this server's own files, frames as blob URLs, and this
/// server's WebSocket.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/// The same, for a server on an MQTT broker: the pictures of other hosts' cameras come
/// from those hosts, wherever they are.
const CSP_FLEET: &str = "default-src 'self'; img-src 'self' blob: data: http: https:; \
                         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                         form-action 'self'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../web/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/app.js"),
    },
    Asset {
        path: "/proto.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/proto.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/style.css"),
    },
    Asset {
        path: "/schema.json",
        content_type: "application/json",
        body: include_str!(concat!(env!("OUT_DIR"), "/schema.json")),
    },
    Asset {
        path: "/camfleet.proto",
        content_type: "text/plain; charset=utf-8",
        body: include_str!("../../proto/camfleet/v1/camfleet.proto"),
    },
];

/// Registers a route for every file but the dashboard's page, which `login` serves to
/// those signed in.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for asset in ASSETS.iter().filter(|a| a.path != "/") {
        cfg.route(
            asset.path,
            super::get().to(move || async move { serve(asset.path, false) }),
        );
    }
}

/// The file at `path`; with `fleet`, the page may show pictures from other hosts.
///
/// # Panics
/// If there is no such file (only the routes above ask).
pub fn serve(path: &str, fleet: bool) -> HttpResponse {
    let asset = ASSETS
        .iter()
        .find(|a| a.path == path)
        .expect("a file that is built in");
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((
            "Content-Security-Policy",
            if fleet { CSP_FLEET } else { CSP },
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(asset.body)
}
