//! Errors of the fake API server, each mapped to the HTTP status and `Status` reason that the
//! real API server would answer with.

use serde_json::{Value, json};

/// Everything that can go wrong in the fake API server, for direct store access in tests and
/// as `Status` responses over HTTP.
#[derive(Debug, thiserror::Error)]
pub enum FakeApiServerError {
    #[error(
        "the fake API server does not serve {path}: use /api/{{version}}/... or /apis/{{group}}/{{version}}/... resource paths"
    )]
    PathNotServed { path: String },
    #[error("{plural} \"{name}\" not found")]
    NotFound { plural: String, name: String },
    #[error("{plural} \"{name}\" already exists")]
    AlreadyExists { plural: String, name: String },
    #[error(
        "Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { plural: String, name: String },
    #[error(
        "Apply failed with a conflict: conflict with \"{manager}\": {fields} (apply with force to take them over)"
    )]
    ApplyConflict { manager: String, fields: String },
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "the fake API server does not model {0}: a test that needs it belongs on the control-plane tier (a real API server)"
    )]
    NotModelled(&'static str),
    #[error("the fake API server does not support {0}")]
    UnsupportedMediaType(String),
    #[error("the fake API server does not allow {0}")]
    MethodNotAllowed(String),
    #[error("injected failure for {method} {path} (status {status})")]
    Injected {
        method: String,
        path: String,
        status: u16,
    },
}

impl FakeApiServerError {
    /// The HTTP status code Kubernetes would answer with.
    pub(crate) fn code(&self) -> u16 {
        match self {
            Self::PathNotServed { .. } | Self::NotFound { .. } => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } | Self::ApplyConflict { .. } => 409,
            Self::BadRequest(_) | Self::NotModelled(_) => 400,
            Self::UnsupportedMediaType(_) => 415,
            Self::MethodNotAllowed(_) => 405,
            Self::Injected { status, .. } => *status,
        }
    }

    /// The `reason` field of the `Status` body.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Injected { status, .. } => reason_for_code(*status),
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } | Self::ApplyConflict { .. } => "Conflict",
            other => reason_for_code(other.code()),
        }
    }

    /// The `Status` object that kube parses into `kube::Error::Api`.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Self::NotFound { plural, name }
        | Self::AlreadyExists { plural, name }
        | Self::Conflict { plural, name } = self
        {
            status["details"] = json!({ "name": name, "kind": plural });
        }
        status
    }
}

/// The `StatusReason` Kubernetes uses for an HTTP status code.
fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}
