//! The library's error type.

use std::path::PathBuf;

pub type Result<T, E = AnalyzeError> = std::result::Result<T, E>;

/// What can go wrong while analysing captures.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The capture could not be opened at all (not a capture, unreadable header, I/O).
    /// (The format error is part of the message, not a source: its own chain repeats itself.)
    #[error("cannot read {}: {error}", path.display())]
    Open {
        path: PathBuf,
        error: gcap_format::Error,
    },
    /// No file was given.
    #[error("no capture files given")]
    NoFiles,
    /// Writing an output failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Building or writing a table failed.
    #[error("writing {what}: {message}")]
    Export { what: String, message: String },
}

impl AnalyzeError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        AnalyzeError::Io {
            context: context.into(),
            source,
        }
    }
}
