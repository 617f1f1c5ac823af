//! The listening socket: HTTP/1.1, over TLS when the configuration asks for it.
//!
//! On a TLS port, a client that speaks plain HTTP (a browser given `http://`) is answered
//! in plain HTTP instead of being cut off by the handshake: a `308` to the same URL over
//! HTTPS when its `Host` is one the server answers to (see [`super::hosts`]), otherwise a
//! `400` that says to use `https://`. The first byte tells them apart: every TLS
//! connection starts with a handshake record (`0x16`), no HTTP request does.
//!
//! HTTP/2 is not offered: each viewer is one connection, and HTTP/1.1 is what MJPEG
//! clients and WebSocket handshakes speak.

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use actix_http::{HttpService, Request, Response};
use actix_server::ServerBuilder;
use actix_service::{fn_factory, fn_service, map_config, IntoServiceFactory, Service as _};
use actix_service::{ServiceFactory, ServiceFactoryExt as _};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Extensions};
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::direct::Connection;
use super::hosts::Hosts;

/// How long a new connection may stay silent before it is closed, and how long a plain
/// HTTP request on the TLS port may take to arrive.
pub const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest plain HTTP request head read on the TLS port; longer ones get the `400`.
const PLAIN_HEAD_BYTES: usize = 8 * 1024;
/// How long a closing connection may take to finish, as actix-web's `HttpServer` has it.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves the app that `app` makes (once per worker) on `listener`, over TLS with `tls`
/// when given. `on_connect` sees each new TCP connection first.
///
/// # Errors
/// When the listener cannot be registered.
pub fn serve<F, I, S, B>(
    builder: ServerBuilder,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
    hosts: Hosts,
    on_connect: fn(&TcpStream, &mut Extensions),
    app: F,
) -> io::Result<ServerBuilder>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    // camfleet's handlers take the scheme from their own state, not from `AppConfig`.
    let http1 = move || {
        map_config(
            app()
                .into_factory()
                .map_err(|err: S::Error| err.into().error_response()),
            |()| AppConfig::default(),
        )
    };
    let Some(tls) = tls else {
        // Plain connections are served as a `Connection`, so streams can write their shared
        // parts to the socket themselves.
        return builder.listen("camfleet-http", listener, move || {
            let http = HttpService::<Connection, _, _>::build()
                .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                .on_connect_ext(move |io: &Connection, ext: &mut Extensions| {
                    on_connect(io.socket(), ext);
                    ext.insert(io.writer());
                })
                .h1(http1());
            fn_service(|io: TcpStream| {
                let peer = io.peer_addr().ok();
                std::future::ready(Ok((Connection::new(io), peer)))
            })
            .and_then(http)
        });
    };
    builder.listen("camfleet-https", listener, move || {
        let over_tls = HttpService::build()
            .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
            .on_connect_ext(
                move |io: &actix_tls::accept::rustls_0_23::TlsStream<TcpStream>,
                      ext: &mut Extensions| on_connect(io.get_ref().0, ext),
            )
            .h1(http1())
            .rustls_0_23(tls.clone());
        let hosts = hosts.clone();
        fn_factory(move || {
            let over_tls = over_tls.new_service(());
            let hosts = Rc::new(hosts.clone());
            async move {
                let over_tls = Rc::new(over_tls.await?);
                Ok::<_, ()>(fn_service(move |io: TcpStream| {
                    let _ = io.set_nodelay(true);
                    let over_tls = Rc::clone(&over_tls);
                    let hosts = Rc::clone(&hosts);
                    async move {
                        match first_byte(&io).await {
                            Some(TLS_HANDSHAKE) => over_tls.call(io).await.map_err(|e| {
                                tracing::debug!("HTTPS connection ended: {e:?}");
                            }),
                            Some(_) => {
                                answer_plain_http(io, &hosts).await;
                                Ok(())
                            }
                            None => Ok(()),
                        }
                    }
                }))
            }
        })
    })
}

/// The connection's first byte, left unread; `None` when the client hangs up or stays
/// silent for [`FIRST_BYTES_TIMEOUT`].
async fn first_byte(io: &TcpStream) -> Option<u8> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(FIRST_BYTES_TIMEOUT, io.peek(&mut first)).await {
        Ok(Ok(1)) => Some(first[0]),
        _ => None,
    }
}

/// Reads a plain HTTP request's head from the TLS port and answers it in plain HTTP.
async fn answer_plain_http(mut io: TcpStream, hosts: &Hosts) {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(FIRST_BYTES_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        while head.len() < PLAIN_HEAD_BYTES && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        true
    })
    .await;
    if read != Ok(true) {
        return;
    }
    let reply = plain_http_reply(&head, hosts);
    let _ = io.write_all(reply.as_bytes()).await;
    let _ = io.shutdown().await;
}

/// The plain HTTP answer to a request `head` that reached the TLS port.
fn plain_http_reply(head: &[u8], hosts: &Hosts) -> String {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let _ = request.parse(head);
    let host = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()));
    let target = host
        .filter(|h| hosts.allows_host_header(h))
        .zip(request.path.filter(|p| p.starts_with('/')))
        .map(|(host, path)| format!("https://{host}{path}"));
    let (status, location, body) = match target {
        Some(url) => (
            "308 Permanent Redirect",
            format!("Location: {url}\r\n"),
            format!("This camfleet serves HTTPS on this port: {url}\n"),
        ),
        None => (
            "400 Bad Request",
            String::new(),
            "This camfleet serves HTTPS on this port; plain HTTP is refused. Open the same \
             address with https:// instead of http://.\n"
                .to_string(),
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\n{location}Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_for_an_allowed_host_is_sent_to_the_same_url_over_https() {
        let reply = plain_http_reply(
            b"GET /cameras/a/stream.mjpg?fps=5 HTTP/1.1\r\nHost: 192.168.1.20:8443\r\n\r\n",
            &Hosts::default(),
        );
        assert!(reply.starts_with("HTTP/1.1 308 "), "{reply}");
        assert!(
            reply.contains(
                "\r\nLocation: https://192.168.1.20:8443/cameras/a/stream.mjpg?fps=5\r\n"
            ),
            "{reply}"
        );
    }

    #[test]
    fn a_request_for_another_name_or_without_one_is_refused_with_the_fix() {
        for head in [
            &b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n"[..],
            b"GET / HTTP/1.0\r\n\r\n",
            b"\x01\x02garbage\r\n\r\n",
        ] {
            let reply = plain_http_reply(head, &Hosts::default());
            assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
            assert!(!reply.contains("Location"), "{reply}");
            assert!(reply.contains("https://"), "{reply}");
        }
    }
}
