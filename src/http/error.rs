//! HTTP errors: every refusal of the REST, MJPEG and snapshot routes goes through
//! [`ApiError`], which gives the status code for each [`ErrorCode`] in one place and
//! answers `{"error": "...", "code": "..."}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::hub::{CommandError, ErrorCode};

/// Seconds a client is asked to wait before trying again after a 503.
pub const RETRY_AFTER_SECS: u32 = 5;

/// A refused HTTP request: what was wrong and its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The code, which decides the status.
    pub code: ErrorCode,
    /// What was wrong and how to fix it.
    pub message: String,
}

impl ApiError {
    /// An error with this code and text.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// The server is stopping.
    pub fn stopping() -> Self {
        CommandError::Stopping.into()
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            ErrorCode::UnknownCamera | ErrorCode::UnknownControl => StatusCode::NOT_FOUND,
            ErrorCode::OutOfRange | ErrorCode::InvalidMessage => StatusCode::BAD_REQUEST,
            ErrorCode::NotPermitted => StatusCode::FORBIDDEN,
            ErrorCode::DeviceRefused => StatusCode::CONFLICT,
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::NotSaved => StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::WrongHost => StatusCode::MISDIRECTED_REQUEST,
            ErrorCode::NotSignedIn => StatusCode::UNAUTHORIZED,
            ErrorCode::CameraNotRunning | ErrorCode::LimitReached => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()));
        }
        if self.code == ErrorCode::NotSignedIn {
            // Players, ffmpeg and browsers then ask for a name and password.
            response.insert_header((
                "WWW-Authenticate",
                "Basic realm=\"camfleet\", charset=\"UTF-8\"",
            ));
        }
        response.json(ErrorBody {
            error: self.message.clone(),
            code: self.code.name(),
        })
    }
}

/// The body of every refusal of the REST, MJPEG and snapshot routes.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What was wrong and how to fix it.
    pub error: String,
    /// Why, as a code to branch on: the wire's `ErrorCode` in lower case without its
    /// prefix, e.g. `unknown_camera`, `out_of_range`, `not_signed_in`, `limit_reached`;
    /// `not_found` for a path nothing is served at.
    #[schema(value_type = String, example = "unknown_camera")]
    pub code: &'static str,
}

/// Query strings that do not parse (a parameter given twice, say) get the JSON error every
/// other bad request gets, saying what was wrong.
pub fn query_errors() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::new(
            ErrorCode::OutOfRange,
            format!("the query string does not parse: {err}; give each parameter once, e.g. ?width=320&fps=5"),
        )
        .into()
    })
}
