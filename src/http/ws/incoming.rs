//! What a session does with each message from its client, and how it closes a connection
//! whose client broke the protocol.

use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;
use tracing::{debug, warn};

use super::WsSession;
use crate::http::frame_guard::Violation;
use crate::http::wire;
use crate::hub::CommandError;

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        self.served();
        match item {
            Ok(ws::Message::Binary(bytes)) => self.command(&bytes, ctx),
            Ok(ws::Message::Text(_)) => self.send(
                ctx,
                wire::error(&CommandError::InvalidMessage(
                    "text messages are not understood; send each camfleet.v1.ClientMessage \
                     as a binary WebSocket message"
                        .into(),
                )),
            ),
            Ok(ws::Message::Continuation(_)) => self.send(
                ctx,
                wire::error(&CommandError::InvalidMessage(
                    "fragmented messages are not supported; send each ClientMessage in one \
                     WebSocket frame"
                        .into(),
                )),
            ),
            Ok(ws::Message::Ping(payload)) => self.pong(ctx, &payload),
            Ok(ws::Message::Pong(_) | ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => self.close(ctx, reason),
            Err(ws::ProtocolError::Overflow) => self.close_oversized(ctx),
            Err(ws::ProtocolError::Io(_)) if self.verdict.get().is_some() => {
                let violation = self.verdict.get().expect("checked in the guard above");
                self.close_for(violation, ctx);
            }
            // A client that vanishes without a close frame (a closed tab, a lost link) is
            // ordinary; only a client that breaks the protocol is worth a warning.
            Err(ws::ProtocolError::Io(e)) => {
                debug!(session = ?self.id, "client went away: {e}");
                ctx.stop();
            }
            Err(e) => {
                warn!(session = ?self.id, "WebSocket protocol error: {e}");
                self.close(
                    ctx,
                    Some(ws::CloseReason {
                        code: ws::CloseCode::Protocol,
                        description: Some(e.to_string()),
                    }),
                );
            }
        }
    }
}

impl WsSession {
    /// Closes with 1009: the client sent, or announced, a message over the limit.
    fn close_oversized(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.close(
            ctx,
            Some(ws::CloseReason {
                code: ws::CloseCode::Size,
                description: Some(format!(
                    "message larger than {} bytes; split it into smaller commands",
                    self.max_message_bytes
                )),
            }),
        );
    }

    /// Closes with the code for what the frame guard found.
    fn close_for(&mut self, violation: Violation, ctx: &mut ws::WebsocketContext<Self>) {
        let (code, why) = match violation {
            Violation::TooLong => return self.close_oversized(ctx),
            Violation::ReservedBits => (
                ws::CloseCode::Protocol,
                "a frame has reserved bits set, and no extension is in use; send frames with \
                 RSV1-3 clear",
            ),
            Violation::NotUtf8 => (
                ws::CloseCode::Invalid,
                "a text message is not valid UTF-8; send each ClientMessage as a binary message",
            ),
        };
        warn!(session = ?self.id, "WebSocket protocol error: {why}");
        self.close(
            ctx,
            Some(ws::CloseReason {
                code,
                description: Some(why.into()),
            }),
        );
    }
}
