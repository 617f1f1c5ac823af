//! RTSP/1.0 messages as a client sends them (RFC 2326): requests, and the interleaved
//! binary packets (RTCP over TCP) between them. Plain code with no I/O; it takes bytes
//! from the network and never panics on them.

/// Largest request head (request line and headers) the server reads.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The URL as written, e.g. `rtsp://host:8554/lobby/trackID=0`.
    pub url: String,
    /// Headers in order, names as written.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of header `name` (case-insensitive), if present.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The camera the URL names: the first segment of its path.
    #[must_use]
    pub fn camera(&self) -> Option<&str> {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |x| x.1);
        let path = rest.split_once('/').map(|x| x.1)?;
        let path = path.split(['?', '#']).next().unwrap_or_default();
        path.split('/').next().filter(|s| !s.is_empty())
    }
}

/// What the start of a client's bytes holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// A whole request, which took `len` bytes (its body, which no method here needs, included).
    Request { request: Request, len: usize },
    /// An interleaved binary packet (`$`, channel, length), `len` bytes in all, to skip.
    Interleaved { len: usize },
}

/// The first message in `buf`: `Ok(None)` when more bytes are needed.
///
/// # Errors
/// When the bytes are not RTSP, or a request head is larger than [`MAX_REQUEST_BYTES`];
/// the text says which.
pub fn parse(buf: &[u8]) -> Result<Option<Message>, String> {
    if buf.first() == Some(&b'$') {
        let Some(header) = buf.get(..4) else {
            return Ok(None);
        };
        let len = 4 + usize::from(u16::from_be_bytes([header[2], header[3]]));
        return Ok((buf.len() >= len).then_some(Message::Interleaved { len }));
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_REQUEST_BYTES {
            return Err(format!(
                "the request head is over {MAX_REQUEST_BYTES} bytes without its blank line"
            ));
        }
        return Ok(None);
    };
    if end > MAX_REQUEST_BYTES {
        return Err(format!(
            "the request head is over {MAX_REQUEST_BYTES} bytes"
        ));
    }
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| "the request head is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut words = first.split(' ');
    let (Some(method), Some(url), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(format!(
            "`{first}` is not a request line (METHOD URL RTSP/1.0)"
        ));
    };
    if version != "RTSP/1.0" {
        return Err(format!("`{version}` is not RTSP/1.0"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return Err(format!("`{method}` is not a method"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("`{line}` is not a header (Name: value)"));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let request = Request {
        method: method.to_string(),
        url: url.to_string(),
        headers,
    };
    let body = match request.header("Content-Length") {
        None => 0,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_REQUEST_BYTES)
            .ok_or_else(|| {
                format!("Content-Length `{n}` is not a size up to {MAX_REQUEST_BYTES}")
            })?,
    };
    let len = end + 4 + body;
    Ok((buf.len() >= len).then_some(Message::Request { request, len }))
}

/// How a client asked to receive the packets, from its `Transport` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// On the RTSP connection, in interleaved channel `channel` (RTCP on the next).
    Tcp { channel: u8 },
    /// Over UDP to the client's port `rtp` (RTCP on `rtcp`).
    Udp { rtp: u16, rtcp: u16 },
}

/// The first transport in a `Transport` header that the server offers.
#[must_use]
pub fn transport(header: &str) -> Option<Transport> {
    header.split(',').find_map(|spec| {
        let mut parts = spec.split(';').map(str::trim);
        let profile = parts.next()?;
        let params: Vec<&str> = parts.collect();
        let value = |key: &str| {
            params
                .iter()
                .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
        };
        let pair = |text: &str| -> Option<(u16, Option<u16>)> {
            let mut it = text.split('-');
            let a = it.next()?.parse().ok()?;
            Some((a, it.next().and_then(|b| b.parse().ok())))
        };
        match profile {
            "RTP/AVP/TCP" => {
                let channel = value("interleaved")
                    .and_then(pair)
                    .map_or(Some(0), |(a, _)| u8::try_from(a).ok())?;
                Some(Transport::Tcp { channel })
            }
            "RTP/AVP" | "RTP/AVP/UDP" => {
                let (rtp, rtcp) = pair(value("client_port")?)?;
                Some(Transport::Udp {
                    rtp,
                    rtcp: rtcp.unwrap_or(rtp.wrapping_add(1)),
                })
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        match parse(text.as_bytes()) {
            Ok(Some(Message::Request { request, len })) => {
                assert_eq!(len, text.len());
                request
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_describe_names_its_camera_and_sequence() {
        let r = request(
            "DESCRIBE rtsp://10.0.0.2:8554/lobby RTSP/1.0\r\nCSeq: 2\r\naccept: application/sdp\r\n\r\n",
        );
        assert_eq!(r.method, "DESCRIBE");
        assert_eq!(r.camera(), Some("lobby"));
        assert_eq!(r.header("cseq"), Some("2"));
        assert_eq!(r.header("Accept"), Some("application/sdp"));
        let setup = request("SETUP rtsp://h/lobby/trackID=0 RTSP/1.0\r\nCSeq: 3\r\n\r\n");
        assert_eq!(setup.camera(), Some("lobby"));
        let bare = request("OPTIONS rtsp://h:8554 RTSP/1.0\r\nCSeq: 1\r\n\r\n");
        assert_eq!(bare.camera(), None);
    }

    #[test]
    fn halves_wait_and_interleaved_packets_are_skipped_whole() {
        let text = b"OPTIONS rtsp://h/a RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        assert_eq!(parse(&text[..10]), Ok(None));
        assert_eq!(parse(&[b'$', 1, 0]), Ok(None));
        assert_eq!(parse(&[b'$', 1, 0, 2, 9]), Ok(None));
        assert_eq!(
            parse(&[b'$', 1, 0, 2, 9, 9, b'O']),
            Ok(Some(Message::Interleaved { len: 6 }))
        );
        let with_body = b"SET_PARAMETER rtsp://h/a RTSP/1.0\r\nContent-Length: 3\r\n\r\nab";
        assert_eq!(parse(with_body), Ok(None));
    }

    #[test]
    fn garbage_is_an_error_that_says_why() {
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap_err()
            .contains("RTSP/1.0"));
        assert!(parse(b"hello\r\n\r\n")
            .unwrap_err()
            .contains("request line"));
        let long = vec![b'a'; MAX_REQUEST_BYTES + 1];
        assert!(parse(&long).unwrap_err().contains("bytes"));
        assert!(parse(b"OPTIONS x RTSP/1.0\r\nno colon\r\n\r\n")
            .unwrap_err()
            .contains("header"));
        assert!(
            parse(b"OPTIONS x RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n")
                .unwrap_err()
                .contains("Content-Length")
        );
    }

    #[test]
    fn transports_as_ffmpeg_and_vlc_ask() {
        assert_eq!(
            transport("RTP/AVP/TCP;unicast;interleaved=0-1"),
            Some(Transport::Tcp { channel: 0 })
        );
        assert_eq!(
            transport("RTP/AVP/UDP;unicast;client_port=5000-5001"),
            Some(Transport::Udp {
                rtp: 5000,
                rtcp: 5001
            })
        );
        // The first one offered that the server serves: unicast with a client port.
        assert_eq!(
            transport("RTP/AVP;multicast,RTP/AVP;unicast;client_port=6000"),
            Some(Transport::Udp {
                rtp: 6000,
                rtcp: 6001
            })
        );
        assert_eq!(transport("RAW/RAW/UDP;unicast"), None);
    }
}
