//! Shared bytes written straight to a viewer's socket, below actix-http.
//!
//! actix-http copies every body chunk into its connection's write buffer before writing it,
//! so a frame shared by a hundred viewers would be copied a hundred times in user space. On
//! a plain TCP connection the HTTP layer is served a [`Connection`] instead of the bare
//! socket. It passes reads and writes through, and counts the HTTP layer's flushes: actix
//! flushes only once it has handed over every byte it encoded.
//!
//! A stream (MJPEG, a WebSocket) takes its connection's [`DirectWriter`] from the
//! connection's data. Its response body, once polled, waits for the flush that carries its
//! response head ([`DirectWriter::take_over`]). From then on its parts are written through the
//! writer, by the body itself or by the camera's [fan-out](super::fanout), each shared part
//! with one `send` of the bytes every viewer shares. The body never yields a byte to actix,
//! so the two never interleave.
//!
//! Bytes the socket does not take at once wait in the writer's queue, in order, until the
//! stream that owns the connection writes them ([`DirectWriter::flushed`]); a frame is
//! offered to a socket only while nothing waits ([`DirectWriter::is_clear`]), so a viewer
//! that falls behind skips frames instead of queueing them.
//!
//! HTTPS connections have no direct writer (TLS encrypts each connection's bytes anyway):
//! their streams hand their parts to actix.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll, Waker};

use actix_web::rt::net::TcpStream;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the HTTP layer has seen of a connection, as its streams need to know.
#[derive(Default)]
struct Flushes {
    /// Flushes so far; each means the HTTP layer has nothing left to write.
    count: Cell<u64>,
    /// Whether a read found the end of the client's bytes: it hung up.
    hung_up: Cell<bool>,
    /// The stream waiting for the next flush.
    waiting_flush: Cell<Option<Waker>>,
    /// The stream waiting for the hang-up. Apart from the flush's: the HTTP layer flushes
    /// whenever it runs, and waking this on each flush would run it for ever.
    waiting_hang_up: Cell<Option<Waker>>,
}

/// What streams handed over and the socket has not taken yet.
#[derive(Default)]
struct Queued {
    bytes: RefCell<VecDeque<Bytes>>,
    /// Set once a write failed: the connection is done, and nothing more is written.
    failed: Cell<bool>,
    /// The stream that writes the queue, waiting for something to be queued.
    waiting: Cell<Option<Waker>>,
}

fn wake(waiting: &Cell<Option<Waker>>) {
    if let Some(waker) = waiting.take() {
        waker.wake();
    }
}

/// A plain TCP connection as the HTTP layer sees it; see the module's documentation.
pub struct Connection {
    socket: Rc<TcpStream>,
    flushes: Rc<Flushes>,
    queued: Rc<Queued>,
}

impl Connection {
    /// Serves `socket`.
    pub fn new(socket: TcpStream) -> Self {
        // Each part ends with a short segment; it goes at once, not after the client's ACK.
        let _ = socket.set_nodelay(true);
        Connection {
            socket: Rc::new(socket),
            flushes: Rc::default(),
            queued: Rc::default(),
        }
    }

    /// The socket.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// A writer for a stream on this connection.
    pub fn writer(&self) -> DirectWriter {
        DirectWriter {
            socket: Rc::clone(&self.socket),
            flushes: Rc::clone(&self.flushes),
            queued: Rc::clone(&self.queued),
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.socket.poll_read_ready(cx))?;
            let room = buf.remaining();
            match self.socket.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    // The HTTP layer reads whenever it runs, so a hang-up is seen here at
                    // once, even while a stream has nothing to send.
                    if n == 0 && room > 0 {
                        self.flushes.hung_up.set(true);
                        wake(&self.flushes.waiting_hang_up);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.socket.poll_write_ready(cx))?;
            match self.socket.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                written => return Poll::Ready(written),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushes = &self.flushes;
        flushes.count.set(flushes.count.get() + 1);
        wake(&flushes.waiting_flush);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.socket).shutdown(std::net::Shutdown::Write))
    }
}

/// Writes a stream's bytes straight to its connection's socket; see the module's
/// documentation.
#[derive(Clone)]
pub struct DirectWriter {
    socket: Rc<TcpStream>,
    flushes: Rc<Flushes>,
    queued: Rc<Queued>,
}

impl DirectWriter {
    /// Returns once the HTTP layer has written everything it encoded before this call: the
    /// response head, when called from the response body's first poll.
    pub async fn take_over(&self) {
        let before = self.flushes.count.get();
        std::future::poll_fn(|cx| {
            if self.flushes.count.get() > before {
                Poll::Ready(())
            } else {
                self.flushes.waiting_flush.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }

    /// Returns once the client has hung up (closed its end of the connection).
    pub async fn hung_up(&self) {
        std::future::poll_fn(|cx| {
            if self.flushes.hung_up.get() {
                Poll::Ready(())
            } else {
                self.flushes.waiting_hang_up.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }

    /// Whether everything handed over so far has gone to the socket, so bytes handed over
    /// now go out at once.
    ///
    /// # Errors
    /// When the connection has failed.
    pub fn is_clear(&self) -> io::Result<bool> {
        self.check()?;
        Ok(self.queued.bytes.borrow().is_empty())
    }

    /// Hands over `bytes`, to go after everything handed over before: what the socket takes
    /// now is written at once with one `send`, the rest is queued for
    /// [`flushed`](Self::flushed).
    ///
    /// # Errors
    /// When the connection has failed.
    pub fn send(&self, bytes: &Bytes) -> io::Result<()> {
        if !self.is_clear()? {
            self.queued.bytes.borrow_mut().push_back(bytes.clone());
            return Ok(());
        }
        let written = self.write_now(bytes)?;
        if written < bytes.len() {
            self.queued
                .bytes
                .borrow_mut()
                .push_back(bytes.slice(written..));
            wake(&self.queued.waiting);
        }
        Ok(())
    }

    /// Ready once something is queued, or the connection has failed.
    pub fn poll_queued(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.queued.failed.get() || !self.queued.bytes.borrow().is_empty() {
            Poll::Ready(())
        } else {
            self.queued.waiting.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }

    /// Writes what is queued as the socket takes it; returns once nothing is.
    ///
    /// # Errors
    /// When the connection fails or the client has gone.
    pub async fn flushed(&self) -> io::Result<()> {
        loop {
            self.check()?;
            let Some(front) = self.queued.bytes.borrow_mut().pop_front() else {
                return Ok(());
            };
            let written = self.write_now(&front)?;
            if written < front.len() {
                self.queued
                    .bytes
                    .borrow_mut()
                    .push_front(front.slice(written..));
                if let Err(e) = self.socket.writable().await {
                    return Err(self.fail(e));
                }
            }
        }
    }

    /// Writes all of `bytes` after what is queued.
    ///
    /// # Errors
    /// When the connection fails or the client has gone.
    pub async fn write_all(&self, bytes: &Bytes) -> io::Result<()> {
        self.send(bytes)?;
        self.flushed().await
    }

    /// One `send` of as much of `bytes` as the socket takes now.
    fn write_now(&self, bytes: &[u8]) -> io::Result<usize> {
        match self.socket.try_write(bytes) {
            Ok(0) if !bytes.is_empty() => Err(self.fail(io::ErrorKind::WriteZero.into())),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Marks the connection failed: what is queued is dropped, and the stream writing the
    /// queue learns of it.
    fn fail(&self, e: io::Error) -> io::Error {
        self.queued.failed.set(true);
        self.queued.bytes.borrow_mut().clear();
        wake(&self.queued.waiting);
        e
    }

    fn check(&self) -> io::Result<()> {
        if self.queued.failed.get() {
            Err(io::ErrorKind::BrokenPipe.into())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    use super::Connection;

    /// A connected pair on loopback: the server's end as a [`Connection`], the client's end
    /// with a small receive buffer, so a large write is taken only in part.
    async fn pair() -> (Connection, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpSocket::new_v4().unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        let (client, accepted) = tokio::join!(
            client.connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        (Connection::new(accepted.unwrap().0), client.unwrap())
    }

    #[actix_rt::test]
    async fn bytes_the_socket_does_not_take_wait_in_order_and_nothing_is_offered_past_them() {
        let (connection, mut client) = pair().await;
        let writer = connection.writer();
        // Far more than the socket buffers of both ends hold.
        let first = Bytes::from((0..8 << 20).map(|i: u32| i as u8).collect::<Vec<u8>>());
        let second = Bytes::from_static(b"after the first, whole");
        writer.send(&first).unwrap();
        assert!(!writer.is_clear().unwrap(), "the socket took 8 MiB at once");
        writer.send(&second).unwrap();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < (8 << 20) + 22 {
                assert!(client.read_buf(&mut got).await.unwrap() > 0, "closed early");
            }
            got
        });
        writer.flushed().await.unwrap();
        assert!(writer.is_clear().unwrap());
        // Only bytes lost on the way leave the reader waiting this long.
        let got = tokio::time::timeout(std::time::Duration::from_secs(20), reader)
            .await
            .expect("every byte arrives")
            .unwrap();
        assert!(
            got[..first.len()] == first[..],
            "the first bytes came changed"
        );
        assert_eq!(&got[first.len()..], &second[..]);
    }
}
