//! Wiring: starts the hub (which starts the cameras) and the HTTP server, and stops them
//! in order.

use std::io;
use std::net::{SocketAddr, TcpListener};

use actix::{Actor, Addr};
use actix_web::{web, App};

use crate::camera::actor::Timing;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::hub::{CloseSessions, Hub, StopCameras};
use crate::mqtt::{MqttLink, StopLink};
use crate::overrides::OverrideStore;
use crate::shutdown::{self, Shutdown};

/// HTTP worker threads. Sessions are light; two keep one busy client from stalling others.
pub const HTTP_WORKERS: usize = 2;
/// How long stopping waits for connections to finish closing before cutting them.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 1;
/// Most bytes the kernel may hold unsent for one connection. Video goes stale while it
/// waits in a buffer; with this cap a slow viewer pushes back after about one frame, so
/// camfleet skips frames for it instead of queueing seconds of video.
pub const UNSENT_BYTES_PER_CONNECTION: u32 = 64 * 1024;

/// Caps the unsent bytes of a new connection (`TCP_NOTSENT_LOWAT`), and keeps a handle on
/// its socket.
fn on_connect(tcp: &actix_web::rt::net::TcpStream, data: &mut actix_web::dev::Extensions) {
    use std::os::fd::AsRawFd;
    // Kept for the watchdog of a WebSocket session on this connection.
    if let Some(socket) = crate::http::ConnectionSocket::of(tcp) {
        data.insert(socket);
    }
    let value: libc::c_int = UNSENT_BYTES_PER_CONNECTION as libc::c_int;
    // SAFETY: the descriptor is an open TCP socket owned by `tcp` for this whole call,
    // and the option value is a c_int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!("TCP_NOTSENT_LOWAT not set: {}", io::Error::last_os_error());
    }
}

/// A running camfleet.
pub struct Server {
    /// Where it listens.
    pub local_addr: SocketAddr,
    /// The HTTP server; await it to run until stopped.
    pub http: actix_web::dev::Server,
    /// Stops everything in order.
    pub stopper: Stopper,
}

/// What stopping needs: the HTTP server's handle, the hub and the stop signal.
#[derive(Clone)]
pub struct Stopper {
    /// The HTTP server.
    pub handle: actix_web::dev::ServerHandle,
    /// The hub.
    pub hub: Addr<Hub>,
    /// Ends long-lived responses.
    pub shutdown: Shutdown,
    /// The MQTT link, when configured.
    pub mqtt: Option<Addr<MqttLink>>,
}

/// Starts camfleet on `listener` with the control overrides saved in `overrides`. Must be
/// called inside an actix `System`; OS signals are left to the caller.
///
/// # Errors
/// When the listener cannot be served (its address cannot be read, or the HTTP server
/// cannot take it).
pub fn start(
    config: Config,
    listener: TcpListener,
    overrides: OverrideStore,
) -> io::Result<Server> {
    start_with_timing(config, listener, overrides, Timing::default())
}

/// [`start`], with the cameras on another clock (tests make recovery fast).
///
/// # Errors
/// As [`start`].
pub fn start_with_timing(
    config: Config,
    listener: TcpListener,
    overrides: OverrideStore,
    timing: Timing,
) -> io::Result<Server> {
    start_serving(config, listener, overrides, timing, None, None)
}

/// How an admin's `POST /api/reload` reaches whoever reloads the configuration file, and
/// hears back how it went.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<(), String>>;

/// [`start_with_timing`], serving HTTPS with `tls` when given, and sending an admin's
/// reload requests to `reloads` when given.
///
/// # Errors
/// As [`start`].
pub fn start_serving(
    config: Config,
    listener: TcpListener,
    overrides: OverrideStore,
    timing: Timing,
    tls: Option<rustls::ServerConfig>,
    reloads: Option<tokio::sync::mpsc::UnboundedSender<ReloadRequest>>,
) -> io::Result<Server> {
    let local_addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mqtt = config.mqtt.as_ref().map(|settings| {
        let name = settings.account.as_deref().unwrap_or("mqtt");
        // Validation made sure the account exists; without it the link could do nothing.
        let access = config.auth.account(name).unwrap_or(crate::auth::Access {
            name: name.to_string(),
            role: crate::auth::Role::Viewer,
            cameras: Some(Vec::new()),
        });
        let base_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| public_url(scheme, local_addr));
        (settings.clone(), access, base_url)
    });
    let (shutdown, signal) = shutdown::signal();
    let max_message_bytes = config.server.max_message_bytes;
    let rtsp_listener = config
        .server
        .rtsp_listen
        .map(|addr| {
            TcpListener::bind(addr).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot serve RTSP on {addr}: {e}; set server.rtsp_listen to a free \
                         address, or to `off`"
                    ),
                )
            })
        })
        .transpose()?;
    let rtsp = rtsp_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let (auth_tx, auth) = tokio::sync::watch::channel(std::sync::Arc::new(config.auth));
    let hosts = http::hosts::Hosts {
        allowed: config.server.allowed_hosts.clone(),
        trusted_proxies: config.server.trusted_proxies.clone(),
    };
    let hub = Hub::new(config.server, config.cameras, overrides)
        .with_timing(timing)
        .with_auth(auth_tx)
        .start();
    let mqtt = mqtt.map(|(settings, access, base_url)| {
        MqttLink::start_link(settings, access, base_url, hub.clone())
    });
    let state = web::Data::new(AppState {
        hub: hub.clone(),
        max_message_bytes,
        shutdown: signal,
        auth,
        cookie_key: crate::auth::CookieKey::default(),
        gate: http::caller::Gate::default().start(),
        scheme,
        mqtt: mqtt.clone(),
        reloads,
        hosts,
        rtsp,
    });
    if let Some(listener) = rtsp_listener {
        crate::rtsp::serve(listener, state.clone())?;
    }
    let hosts = state.hosts.clone();
    let builder = actix_server::Server::build()
        .workers(HTTP_WORKERS)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
    let http = http::listener::serve(builder, listener, tls, hosts, on_connect, move || {
        App::new()
            .app_data(state.clone())
            .app_data(http::error::query_errors())
            .wrap(actix_web::middleware::from_fn(http::check_host))
            .configure(http::routes)
    })?
    .run();
    Ok(Server {
        local_addr,
        stopper: Stopper {
            handle: http.handle(),
            hub,
            shutdown,
            mqtt: mqtt.map(|link| link.actor),
        },
        http,
    })
}

/// Where browsers reach a server listening on `addr`: its address, or this host's name
/// when it listens on every interface.
fn public_url(scheme: &str, addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        crate::config::this_host_name().unwrap_or_else(|| "localhost".into())
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("{scheme}://{host}:{}", addr.port())
}

impl Stopper {
    /// Stops in this order, without waiting for viewers to hang up:
    /// 1. stop accepting connections (and publish `offline` over MQTT);
    /// 2. close every WebSocket with code 1001 (going away);
    /// 3. end every MJPEG stream;
    /// 4. stop every camera, releasing its device;
    /// 5. close what connections remain (after at most [`SHUTDOWN_TIMEOUT_SECS`]).
    ///
    /// The caller then exits.
    pub async fn stop(&self) {
        tracing::debug!("stopping: no new connections");
        self.handle.pause().await;
        if let Some(link) = &self.mqtt {
            tracing::debug!("stopping: telling the MQTT broker this host goes offline");
            let _ = link.send(StopLink).await;
        }
        tracing::debug!("stopping: closing WebSockets");
        let _ = self.hub.send(CloseSessions).await;
        tracing::debug!("stopping: ending MJPEG streams");
        self.shutdown.trigger();
        tracing::debug!("stopping: releasing cameras");
        let _ = self.hub.send(StopCameras).await;
        tracing::debug!("stopping: closing connections");
        self.handle.stop(true).await;
    }
}
