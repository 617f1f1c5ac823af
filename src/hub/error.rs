//! Why a command failed: one error type for every client command, and the one place that
//! gives each failure its code. The wire (`ErrorCode` in `proto/`) and HTTP (a status
//! code) both start from [`ErrorCode`]; clients branch on it, never on the text.

use crate::camera::control::ControlError;
use crate::camera::CameraId;

/// Why a command failed, as a code to branch on. Mirrors `camfleet.v1.ErrorCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No camera has the id given.
    UnknownCamera,
    /// The camera has no control by that name.
    UnknownControl,
    /// The value does not fit the control.
    OutOfRange,
    /// The client may not do this.
    NotPermitted,
    /// The device refused the value, or cannot take one now.
    DeviceRefused,
    /// The camera is not streaming.
    CameraNotRunning,
    /// The camera did not answer in time.
    Timeout,
    /// The client's message could not be understood.
    InvalidMessage,
    /// A limit is reached.
    LimitReached,
    /// The change is live but could not be saved.
    NotSaved,
    /// The request named a host the server does not answer to, or came from another site.
    WrongHost,
    /// The request carries no valid credentials.
    NotSignedIn,
}

impl ErrorCode {
    /// Lower-case name with underscores, as the JSON API writes it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::UnknownCamera => "unknown_camera",
            ErrorCode::UnknownControl => "unknown_control",
            ErrorCode::OutOfRange => "out_of_range",
            ErrorCode::NotPermitted => "not_permitted",
            ErrorCode::DeviceRefused => "device_refused",
            ErrorCode::CameraNotRunning => "camera_not_running",
            ErrorCode::Timeout => "timeout",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::LimitReached => "limit_reached",
            ErrorCode::NotSaved => "not_saved",
            ErrorCode::WrongHost => "wrong_host",
            ErrorCode::NotSignedIn => "not_signed_in",
        }
    }
}

/// Why a client's command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No camera has that id.
    #[error("no camera has id `{id}`; the cameras are: {known}")]
    UnknownCamera {
        /// The id asked for.
        id: String,
        /// The ids there are, comma-separated.
        known: String,
    },
    /// The text given is not a camera id at all.
    #[error("no camera has id `{id}`: {why}")]
    BadCameraId {
        /// The text given.
        id: String,
        /// What is wrong with it.
        why: String,
    },
    /// The camera exists but its actor is not running (disabled or stopping).
    #[error("camera `{0}` is not running; enable it in the configuration")]
    NotRunning(CameraId),
    /// The camera did not answer in time.
    #[error("camera `{0}` did not answer within {1:?}; its device may be hanging; try again")]
    Timeout(CameraId, std::time::Duration),
    /// A limit on commands, viewers or clients is reached; the text names it.
    #[error("{0}")]
    LimitReached(String),
    /// The client may not do this; the text says what would allow it.
    #[error("{0}")]
    NotPermitted(String),
    /// The client's message could not be understood; the text says how to fix it.
    #[error("{0}")]
    InvalidMessage(String),
    /// The client has not signed in; the text says how.
    #[error("{0}")]
    NotSignedIn(String),
    /// The server is stopping.
    #[error("the server is shutting down; reconnect once it is back")]
    Stopping,
    /// The camera is on another host that cannot be reached now; the text says why.
    #[error("{0}")]
    Unreachable(String),
    /// The camera made the change, but it could not be saved for restarts.
    #[error("camera `{camera}`: {why}")]
    NotSaved {
        /// The camera.
        camera: CameraId,
        /// What went wrong, and that the change is live.
        why: String,
    },
    /// The camera refused the control change or read.
    #[error("camera `{camera}`: {error}")]
    Control {
        /// The camera.
        camera: CameraId,
        /// What it said.
        error: ControlError,
    },
}

impl CommandError {
    /// The failure's code: the one mapping from errors to codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            CommandError::UnknownCamera { .. } | CommandError::BadCameraId { .. } => {
                ErrorCode::UnknownCamera
            }
            // The hub is gone only while the server stops, cameras included.
            CommandError::NotRunning(_) | CommandError::Stopping | CommandError::Unreachable(_) => {
                ErrorCode::CameraNotRunning
            }
            CommandError::Timeout(..) => ErrorCode::Timeout,
            CommandError::LimitReached(_) => ErrorCode::LimitReached,
            CommandError::NotPermitted(_) => ErrorCode::NotPermitted,
            CommandError::InvalidMessage(_) => ErrorCode::InvalidMessage,
            CommandError::NotSignedIn(_) => ErrorCode::NotSignedIn,
            CommandError::NotSaved { .. } => ErrorCode::NotSaved,
            CommandError::Control { error, .. } => match error {
                ControlError::Unknown { .. } => ErrorCode::UnknownControl,
                ControlError::Invalid { .. } | ControlError::NoSuchItem { .. } => {
                    ErrorCode::OutOfRange
                }
                ControlError::NotSettable { .. } | ControlError::Refused { .. } => {
                    ErrorCode::DeviceRefused
                }
                ControlError::Unavailable { .. } => ErrorCode::CameraNotRunning,
            },
        }
    }
}
