//! Which names a request may use to reach the server, and which pages may open its
//! WebSocket.
//!
//! A page on another site can make the user's browser send requests to camfleet in two
//! ways. With DNS rebinding, the attacker's own name comes to point at the camfleet
//! machine, so the browser treats camfleet as that site: every request then carries the
//! attacker's name in `Host`. Any request whose `Host` is not an IP address, `localhost`
//! or a name in `server.allowed_hosts` is therefore refused with 421. Without rebinding, a
//! page can still open a WebSocket to any address; the browser says which page did in
//! `Origin`, which must name this server.
//!
//! `X-Forwarded-Host` and `Forwarded` are read only from `server.trusted_proxies`.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::dev::ServiceRequest;
use actix_web::http::header;
use actix_web::HttpRequest;

/// The host names the server answers to, and the proxies it believes.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    /// Lower-case names besides IP addresses and `localhost`.
    pub allowed: Vec<String>,
    /// Proxies whose forwarding headers are read.
    pub trusted_proxies: Vec<IpAddr>,
}

/// Why a request's host or origin was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl Hosts {
    /// Whether `host` (without port, lower case) may be used to reach the server.
    fn allows(&self, host: &str) -> bool {
        host == "localhost"
            || host.parse::<IpAddr>().is_ok()
            || host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<Ipv6Addr>().is_ok())
            || self.allowed.iter().any(|a| a == host)
    }

    /// Whether a `Host` header's value (a name or address, with or without a port) names
    /// this server.
    #[must_use]
    pub fn allows_host_header(&self, value: &str) -> bool {
        self.allows(&strip_port(value).to_ascii_lowercase())
    }

    /// The host the client used: the `Host` header, HTTP/2's `:authority` (which actix
    /// keeps in the URI), or what a trusted proxy forwarded. `None` when the request names
    /// none (HTTP/1.0), which no browser sends.
    fn requested_host<'a>(
        &self,
        peer: Option<IpAddr>,
        headers: &'a header::HeaderMap,
        uri: &'a actix_web::http::Uri,
    ) -> Option<&'a str> {
        let forwarded = peer.is_some_and(|p| self.trusted_proxies.contains(&p));
        let from_proxy = forwarded
            .then(|| {
                headers
                    .get("x-forwarded-host")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(',').next().unwrap_or(v).trim())
                    .or_else(|| {
                        headers
                            .get(header::FORWARDED)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| {
                                v.split([';', ','])
                                    .find_map(|p| p.trim().strip_prefix("host="))
                                    .map(|h| h.trim_matches('"'))
                            })
                    })
            })
            .flatten();
        from_proxy
            .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
            .or_else(|| uri.authority().map(actix_web::http::uri::Authority::as_str))
    }

    /// Checks a request's host; the message names the setting that would let it in.
    ///
    /// # Errors
    /// When the host is not an IP address, `localhost` or an allowed name.
    pub fn check_request(&self, req: &ServiceRequest) -> Result<(), Refused> {
        let peer = req.peer_addr().map(|a| a.ip());
        if req
            .headers()
            .get(header::HOST)
            .is_some_and(|h| h.to_str().is_err())
        {
            return Err(Refused("the Host header is not ASCII".into()));
        }
        let Some(host) = self.requested_host(peer, req.headers(), req.uri()) else {
            return Ok(());
        };
        let name = strip_port(host).to_ascii_lowercase();
        if self.allows(&name) {
            Ok(())
        } else {
            Err(Refused(format!(
                "this server does not answer to the name `{name}`; reach it by its IP address \
                 or localhost, or add `{name}` to `server.allowed_hosts` in cameras.yaml"
            )))
        }
    }

    /// Checks a WebSocket handshake's `Origin`: absent (not a browser), or a page of this
    /// server, reached by the same name and port, or by an allowed name.
    ///
    /// # Errors
    /// When a page of another site opened the WebSocket, or the origin cannot be read.
    pub fn check_origin(&self, req: &HttpRequest, scheme: &str) -> Result<(), Refused> {
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            return Ok(());
        };
        let Ok(origin) = origin.to_str() else {
            return Err(Refused("the WebSocket's Origin is not ASCII".into()));
        };
        let Some((origin_scheme, authority)) = origin.split_once("://") else {
            return Err(Refused(format!(
                "the WebSocket's Origin `{origin}` is not a web address"
            )));
        };
        if !origin_scheme.eq_ignore_ascii_case(scheme) {
            return Err(Refused(format!(
                "WebSocket from a {origin_scheme} page ({origin}) refused; this server serves \
                 {scheme}, open the dashboard at {scheme}://{authority}/"
            )));
        }
        let authority = authority.trim_end_matches('/').to_ascii_lowercase();
        let peer = req.peer_addr().map(|a| a.ip());
        let host = self
            .requested_host(peer, req.headers(), req.uri())
            .map(str::to_ascii_lowercase);
        // An origin leaves out its scheme's default port; a Host header may write it.
        let default_port = if scheme == "https" { ":443" } else { ":80" };
        let same = host.as_deref().is_some_and(|h| {
            h == authority || h.strip_suffix(default_port) == Some(authority.as_str())
        });
        if same || self.allowed.iter().any(|a| a == strip_port(&authority)) {
            Ok(())
        } else {
            Err(Refused(format!(
                "WebSocket from another site ({origin}) refused; open the dashboard from this \
                 server, or add its name to `server.allowed_hosts`"
            )))
        }
    }
}

/// `host:port`, `[v6]:port` or a bare host, without the port.
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_ip_literals_localhost_or_allowed_names() {
        let hosts = Hosts {
            allowed: vec!["cams.example.net".into()],
            trusted_proxies: vec![],
        };
        for ok in [
            "127.0.0.1",
            "192.168.1.9",
            "[::1]",
            "localhost",
            "cams.example.net",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil",
            "cams.example.net.evil",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("host:80"), "host");
        assert_eq!(strip_port("host"), "host");
    }
}
