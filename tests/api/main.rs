//! camfleet over real sockets: a server on port 0, a real WebSocket client.

mod accounts;
mod compat;
mod errors;
mod helpers;
mod hosts;
mod mjpeg_client;
mod protocol;
mod recovery;
mod service;
mod video;
