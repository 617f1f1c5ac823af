//! A minimal HTTP/1.1 MJPEG client over a plain TCP socket, so a test controls how fast it
//! reads and how much the kernel may buffer for it.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// One part of a multipart stream.
pub struct Part {
    pub seq: u64,
    pub jpeg: Vec<u8>,
    /// For the NO SIGNAL picture of a failed camera, the reason it gives.
    pub no_signal: Option<String>,
    /// When the frame was captured, in microseconds since the Unix epoch.
    pub captured_us: u64,
}

pub struct MjpegClient {
    stream: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
    chunked: bool,
    eof: bool,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl MjpegClient {
    /// Sends `GET path` and reads the response head. `recv_buffer` caps the kernel's
    /// receive buffer, so a slow reader pushes back on the server at once.
    pub async fn get(addr: SocketAddr, path: &str, recv_buffer: Option<u32>) -> MjpegClient {
        MjpegClient::open(addr, None, path, recv_buffer, "").await
    }

    /// Sends `GET path` from `source` (an address of this machine) with an
    /// `Authorization` header, and reads the response head.
    pub async fn get_as(
        addr: SocketAddr,
        source: std::net::IpAddr,
        path: &str,
        authorization: &str,
    ) -> MjpegClient {
        let header = format!("Authorization: {authorization}\r\n");
        MjpegClient::open(addr, Some(source), path, None, &header).await
    }

    /// Sends `METHOD path VERSION` (`HTTP/1.0` or `HTTP/1.1`) with `headers` (each ending in
    /// CRLF), and reads the response head.
    pub async fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        version: &str,
        headers: &str,
    ) -> MjpegClient {
        MjpegClient::send(
            addr,
            None,
            &format!("{method} {path} {version}"),
            headers,
            None,
        )
        .await
    }

    async fn open(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        path: &str,
        recv_buffer: Option<u32>,
        headers: &str,
    ) -> MjpegClient {
        let line = format!("GET {path} HTTP/1.1");
        MjpegClient::send(addr, source, &line, headers, recv_buffer).await
    }

    /// Sends the request `line` with a `Host` header and `headers`, and reads the response
    /// head.
    async fn send(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        line: &str,
        headers: &str,
        recv_buffer: Option<u32>,
    ) -> MjpegClient {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0)).unwrap();
        }
        let mut stream = socket.connect(addr).await.unwrap();
        let request = format!("{line}\r\nHost: {addr}\r\n{headers}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut client = MjpegClient {
            stream,
            raw: Vec::new(),
            body: Vec::new(),
            chunked: false,
            eof: false,
            status: 0,
            headers: Vec::new(),
        };
        let end = loop {
            if let Some(i) = find(&client.raw, b"\r\n\r\n") {
                break i;
            }
            assert!(
                client.read_more().await,
                "connection closed before the response head"
            );
        };
        let head = String::from_utf8_lossy(&client.raw[..end]).to_string();
        client.raw.drain(..end + 4);
        let mut lines = head.split("\r\n");
        client.status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        for line in lines {
            let (k, v) = line.split_once(':').unwrap();
            client
                .headers
                .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        client.chunked = client.header("transfer-encoding") == Some("chunked");
        client
    }

    /// Whether the body comes in HTTP/1.1 chunks.
    pub fn is_chunked(&self) -> bool {
        self.chunked
    }

    /// Every byte after the response head until the server closes the connection, as sent
    /// (chunk framing included).
    pub async fn rest_unframed(mut self) -> Vec<u8> {
        while self.read_more().await {}
        self.raw
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    async fn read_more(&mut self) -> bool {
        // Straight into the end of `raw`, which grows as needed; no buffer on the stack.
        self.raw.reserve(64 * 1024);
        let n = self.stream.read_buf(&mut self.raw).await.unwrap_or(0);
        n > 0
    }

    /// Moves complete chunks from `raw` to `body`; false once the body has ended.
    fn dechunk(&mut self) -> bool {
        if !self.chunked {
            self.body.append(&mut self.raw);
            return true;
        }
        while let Some(line_end) = find(&self.raw, b"\r\n") {
            let size_text = String::from_utf8_lossy(&self.raw[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
            if size == 0 {
                return false;
            }
            if self.raw.len() < line_end + 2 + size + 2 {
                break;
            }
            self.body
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..line_end + 2 + size + 2);
        }
        true
    }

    /// The next part, or `None` when the stream ends.
    pub async fn next_part(&mut self) -> Option<Part> {
        loop {
            if let Some(part) = self.take_part() {
                return Some(part);
            }
            if self.eof || !self.dechunk() {
                return None;
            }
            if let Some(part) = self.take_part() {
                return Some(part);
            }
            if !self.read_more().await {
                self.eof = true;
                self.dechunk();
            }
        }
    }

    fn take_part(&mut self) -> Option<Part> {
        let head_end = find(&self.body, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&self.body[..head_end]).to_string();
        assert!(
            head.starts_with("--camfleetframe\r\n"),
            "bad part head: {head}"
        );
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        assert_eq!(field("Content-Type:").as_deref(), Some("image/jpeg"));
        let len: usize = field("Content-Length:")
            .expect("part has a length")
            .parse()
            .unwrap();
        let seq = field("X-Frame-Seq:")
            .expect("part has a sequence number")
            .parse()
            .unwrap();
        let no_signal = field("X-No-Signal:");
        let captured_us = field("X-Capture-Timestamp:")
            .expect("part has a capture time")
            .parse()
            .unwrap();
        let start = head_end + 4;
        if self.body.len() < start + len + 2 {
            return None;
        }
        let jpeg = self.body[start..start + len].to_vec();
        assert_eq!(&self.body[start + len..start + len + 2], b"\r\n");
        self.body.drain(..start + len + 2);
        Some(Part {
            seq,
            jpeg,
            no_signal,
            captured_us,
        })
    }

    /// The rest of a non-streaming body.
    pub async fn body(mut self) -> Vec<u8> {
        let len: Option<usize> = self.header("content-length").map(|v| v.parse().unwrap());
        loop {
            let more = self.dechunk();
            if !more || len.is_some_and(|l| self.body.len() >= l) {
                return self.body;
            }
            if !self.read_more().await {
                self.dechunk();
                return self.body;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Width and height of a JPEG, decoding it fully (so a broken one fails).
pub fn jpeg_size(jpeg: &[u8]) -> (usize, usize) {
    let mut d = zune_jpeg::JpegDecoder::new(jpeg);
    d.decode().expect("JPEG decodes");
    d.dimensions().unwrap()
}
