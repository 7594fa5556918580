//! The one error type the UI sees: `{code, message}`.

use serde::Serialize;

/// An error for the UI: a stable code to branch on and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct ApiError {
    /// Stable machine-readable code (e.g. `wrong_passphrase`, `bad_invite`).
    pub code: &'static str,
    /// Human message.
    pub message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<salon_node::NodeError> for ApiError {
    fn from(e: salon_node::NodeError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
        }
    }
}
