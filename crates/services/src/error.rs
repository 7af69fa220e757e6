//! The one error type of every use case. Its `code` is the stable wire code of PROTOCOL §2;
//! transports (REST, MCP, CLI) render it, they never invent codes of their own.

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A refusal the caller can act on: status, stable code, human message, extra fields.
    #[error("{code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        extra: Map<String, Value>,
    },
    /// Anything else. Logged with its cause; answered as a bare 500.
    #[error("internal error: {0}")]
    Internal(#[from] ami_store::StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn refused(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Refused {
            status,
            code: code.into(),
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Error::Refused { extra, .. } = &mut self {
            extra.insert(key.to_owned(), value.into());
        }
        self
    }

    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::refused(400, code, message)
    }

    /// `invalid_<field>`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::refused(400, format!("invalid_{field}"), message)
    }

    pub fn missing_fields(fields: Vec<String>) -> Self {
        let message = format!("missing required fields: {}", fields.join(", "));
        Self::refused(400, "missing_fields", message).with("fields", fields)
    }

    /// 404 `<thing>_not_found`: identical for a missing id and another account's id.
    pub fn not_found(thing: &str) -> Self {
        Self::refused(
            404,
            format!("{thing}_not_found"),
            format!("{} not found", thing.replace('_', " ")),
        )
    }

    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::refused(409, code, message)
    }

    /// 409 `invalid_state` with what was expected and what is.
    pub fn invalid_state(expected: &str, actual: &str) -> Self {
        Self::conflict(
            "invalid_state",
            format!("expected state {expected}, found {actual}"),
        )
        .with("expected", expected)
        .with("actual", actual)
    }

    pub fn unauthorized(code: &str) -> Self {
        Self::refused(401, code, "missing or invalid credentials")
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::Refused { status, .. } => *status,
            Error::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Error::Refused { code, .. } => code,
            Error::Internal(_) => "internal_error",
        }
    }

    /// The §2 body: `{"error": code, "message": ..., ...extra}`. Internals never leak.
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        match self {
            Error::Refused {
                code,
                message,
                extra,
                ..
            } => {
                m.insert("error".into(), Value::String(code.clone()));
                m.insert("message".into(), Value::String(message.clone()));
                for (k, v) in extra {
                    m.insert(k.clone(), v.clone());
                }
            }
            Error::Internal(_) => {
                m.insert("error".into(), "internal_error".into());
                m.insert("message".into(), "internal error".into());
            }
        }
        Value::Object(m)
    }
}
