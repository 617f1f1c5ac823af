//! Cameras: the camera actor, its sources, controls, frames and status.
//!
//! Only `actor` knows of actix. Everything under `source`, and `control`, `frame`,
//! `encode_pool`, `h264` and `status`, is plain code that can be used and tested without
//! actors.

pub mod actor;
pub mod control;
mod draw;
pub mod encode_pool;
pub mod frame;
pub mod h264;
mod id;
pub mod jpeg;
pub mod source;
pub mod status;

pub use frame::{Frame, FramePublisher, FrameWatch};
pub use id::CameraId;
