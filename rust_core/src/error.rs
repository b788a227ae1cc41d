//! The engine's error type. The PyO3 layer converts it to Python exceptions in one place
//! (`python.rs`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The body could not be decoded (HTTP 400).
    BadRequest(String),
    /// The body, after decompression, exceeds the limit (HTTP 413).
    TooLarge { limit: usize },
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IngestError::BadRequest(m) => write!(f, "undecodable request body: {m}"),
            IngestError::TooLarge { limit } => {
                write!(f, "request body exceeds {limit} bytes after decompression")
            }
        }
    }
}

impl std::error::Error for IngestError {}

/// A rule expression that failed to compile or check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleError {
    pub rule: String,
    /// Which field of the rule: `match`, `when`, ...
    pub field: String,
    /// 1-based line and column inside the expression.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule {}: {} {}:{}: {}",
            self.rule, self.field, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for RuleError {}
