//! Wiring: starts the hub (which starts the cameras) and the HTTP server.

use std::io;
use std::net::{SocketAddr, TcpListener};

use actix::{Actor, Addr};
use actix_web::{web, App, HttpServer};

use crate::config::Config;
use crate::http::{self, AppState};
use crate::hub::Hub;
use crate::shutdown::{self, Shutdown};

/// HTTP worker threads. Sessions are light; two keep one busy client from stalling others.
pub const HTTP_WORKERS: usize = 2;
/// How long stopping waits for open connections before closing them.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 2;

/// A running camfleet.
pub struct Server {
    /// Where it listens.
    pub local_addr: SocketAddr,
    /// The HTTP server; await it to run until stopped, or use its handle to stop it.
    pub http: actix_web::dev::Server,
    /// The hub.
    pub hub: Addr<Hub>,
    /// Ends streams and sessions; raise it before stopping `http`.
    pub shutdown: Shutdown,
}

/// Starts camfleet on `listener`. Must be called inside an actix `System`; OS signals are
/// left to the caller.
pub fn start(config: Config, listener: TcpListener) -> io::Result<Server> {
    let local_addr = listener.local_addr()?;
    let (shutdown, signal) = shutdown::signal();
    let max_message_bytes = config.server.max_message_bytes;
    let hub = Hub::new(config.server, config.cameras).start();
    let state = web::Data::new(AppState {
        hub: hub.clone(),
        max_message_bytes,
        shutdown: signal,
    });
    let http = HttpServer::new(move || App::new().app_data(state.clone()).configure(http::routes))
        .workers(HTTP_WORKERS)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen(listener)?
        .run();
    Ok(Server {
        local_addr,
        http,
        hub,
        shutdown,
    })
}
