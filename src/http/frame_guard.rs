//! A guard on a WebSocket client's bytes, ahead of actix's decoder: it follows the frame
//! boundaries and refuses, from the header on, what the decoder would take too long to
//! refuse or would not name.
//!
//! - **A frame longer than the largest message.** actix-http checks a frame's size only
//!   once the whole frame has arrived, and actix-web-actors reads every chunk that is ready
//!   before it decodes any, so a client that announces a huge frame and streams its payload
//!   would be buffered without limit. The guard refuses it at its header: close 1009.
//! - **Reserved bits set** (no extension is negotiated): close 1002.
//! - **A text message that is not UTF-8**: close 1007.
//!
//! actix reports the last two as plain I/O errors, the same as a client that vanished; the
//! guard names them so the session answers with the right close code.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// What the client did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A frame announced more than the largest message.
    TooLong,
    /// A frame had reserved bits set.
    ReservedBits,
    /// A text message was not UTF-8.
    NotUtf8,
}

/// Where the guard raises what it found, for the session to read.
pub type Verdict = Rc<Cell<Option<Violation>>>;

/// The payload of the frame being passed.
struct Payload {
    /// Bytes still to pass.
    left: u64,
    /// The client's mask and how far into the payload we are, to read text.
    mask: [u8; 4],
    at: usize,
    /// Whether the frame is part of a text message, and ends it.
    text: bool,
    fin: bool,
}

/// The guard; see the module's documentation.
pub struct FrameGuard<S> {
    inner: S,
    max: u64,
    payload: Option<Payload>,
    /// The header being read, when one is cut across chunks.
    header: Vec<u8>,
    /// The text message being received (unmasked), while one is.
    text: Option<Vec<u8>>,
    verdict: Verdict,
}

impl<S> FrameGuard<S> {
    /// Guards `inner`, refusing frames over `max` bytes; raises `verdict` on a violation.
    pub fn new(inner: S, max: u32, verdict: Verdict) -> Self {
        FrameGuard {
            inner,
            max: u64::from(max),
            payload: None,
            header: Vec::with_capacity(14),
            text: None,
            verdict,
        }
    }

    /// Follows frame boundaries through `chunks` as they would arrive; the first violation
    /// found, if any. For the fuzz targets.
    #[cfg(fuzzing)]
    pub fn check_chunks<'a>(
        &mut self,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<Violation> {
        chunks.into_iter().find_map(|chunk| self.check(chunk))
    }

    /// Follows frame boundaries through `bytes`; the first violation found, if any.
    fn check(&mut self, mut bytes: &[u8]) -> Option<Violation> {
        while !bytes.is_empty() {
            if let Some(payload) = &mut self.payload {
                let n = bytes
                    .len()
                    .min(usize::try_from(payload.left).unwrap_or(usize::MAX));
                if payload.text {
                    let text = self.text.get_or_insert_with(Vec::new);
                    text.extend(
                        bytes[..n]
                            .iter()
                            .enumerate()
                            .map(|(i, b)| b ^ payload.mask[(payload.at + i) % 4]),
                    );
                }
                payload.left -= n as u64;
                payload.at += n;
                bytes = &bytes[n..];
                if payload.left == 0 {
                    let ends_text = payload.text && payload.fin;
                    self.payload = None;
                    if ends_text && self.finish_text().is_err() {
                        return Some(Violation::NotUtf8);
                    }
                }
                continue;
            }
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            if let Some(violation) = self.read_header() {
                return Some(violation);
            }
        }
        None
    }

    /// Takes a header from `self.header` once it is complete.
    /// Each violation is named as soon as the bytes that show it have arrived.
    fn read_header(&mut self) -> Option<Violation> {
        let first = self.header[0];
        if first & 0x70 != 0 {
            return Some(Violation::ReservedBits);
        }
        let (len, payload_len) = frame_header(&self.header)?;
        // A continuation adds to the message it continues.
        let opcode = first & 0x0f;
        let so_far = if opcode == 0x0 {
            self.text.as_ref().map_or(0, Vec::len) as u64
        } else {
            0
        };
        if payload_len > self.max || so_far + payload_len > self.max {
            return Some(Violation::TooLong);
        }
        if self.header.len() < len {
            return None;
        }
        let fin = first & 0x80 != 0;
        // Text starts with opcode 1 and goes on in continuation frames (0).
        let text = opcode == 0x1 || (opcode == 0x0 && self.text.is_some());
        if opcode == 0x1 {
            self.text = Some(Vec::new());
        }
        let mask = if self.header[1] & 0x80 == 0 {
            [0; 4]
        } else {
            let m = &self.header[len - 4..len];
            [m[0], m[1], m[2], m[3]]
        };
        self.header.clear();
        if payload_len == 0 {
            if text && fin && self.finish_text().is_err() {
                return Some(Violation::NotUtf8);
            }
            return None;
        }
        self.payload = Some(Payload {
            left: payload_len,
            mask,
            at: 0,
            text,
            fin,
        });
        None
    }

    /// Ends the text message: whether it was UTF-8.
    fn finish_text(&mut self) -> Result<(), std::str::Utf8Error> {
        let text = self.text.take().unwrap_or_default();
        std::str::from_utf8(&text).map(|_| ())
    }
}

/// A frame header's length and the payload length it announces, once enough of it is known.
fn frame_header(h: &[u8]) -> Option<(usize, u64)> {
    let second = *h.get(1)?;
    let mask = if second & 0x80 == 0 { 0 } else { 4 };
    let (extended, payload) = match second & 0x7f {
        126 => (
            2,
            u64::from(u16::from_be_bytes(h.get(2..4)?.try_into().ok()?)),
        ),
        127 => (8, u64::from_be_bytes(h.get(2..10)?.try_into().ok()?)),
        n => (0, u64::from(n)),
    };
    Some((2 + extended + mask, payload))
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.verdict.get().is_some() {
            return Poll::Ready(None);
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            if let Some(violation) = self.check(chunk) {
                self.verdict.set(Some(violation));
                return Poll::Ready(Some(Err(PayloadError::Overflow)));
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> FrameGuard<futures_util::stream::Empty<Result<Bytes, PayloadError>>> {
        FrameGuard::new(futures_util::stream::empty(), 16, Rc::default())
    }

    /// A masked frame as a client sends it.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [7, 1, 9, 3];
        let mut out = vec![first, 0x80 | u8::try_from(payload.len()).unwrap()];
        out.extend(mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn frames_pass_and_violations_are_named() {
        let mut g = guard();
        let mut bytes = frame(0x82, b"binary");
        bytes.extend(frame(0x81, "héllo".as_bytes()));
        // Split anywhere, the verdict is the same.
        for piece in bytes.chunks(3) {
            assert_eq!(g.check(piece), None);
        }
        assert_eq!(
            guard().check(&frame(0x81, b"\xff\xfe")),
            Some(Violation::NotUtf8)
        );
        assert_eq!(
            guard().check(&frame(0xC2, b"x")),
            Some(Violation::ReservedBits)
        );
        assert_eq!(
            guard().check(&[0x82, 0xFE, 0x01, 0x00]),
            Some(Violation::TooLong)
        );
        // A text message cut into fragments is checked whole.
        let mut g = guard();
        let word = "é".as_bytes();
        let mut split = frame(0x01, &word[..1]);
        split.extend(frame(0x80, &word[1..]));
        assert_eq!(g.check(&split), None);
    }
}
