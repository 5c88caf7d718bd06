//! The one error type of the format crate.
//!
//! Every variant says what was wrong with the file (or the call) and, where it helps, what to
//! do about it; readers of hostile files get one of these, never a panic.

use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while writing or reading a capture.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error, with the path or operation it came from.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The file does not start with the `.gcap` magic.
    #[error("not a gcap capture: the file does not start with the gcap magic bytes")]
    NotACapture,
    /// The file was written by a newer, incompatible format version.
    #[error("capture format version {found} is newer than this reader supports ({supported}): upgrade ganalyze")]
    UnsupportedVersion { found: u16, supported: u16 },
    /// The file header sets flags for features this reader does not know.
    #[error("the capture uses features this reader does not know (header flags {flags:#06x}, known {known:#06x}): upgrade ganalyze")]
    UnsupportedFlags { flags: u16, known: u16 },
    /// A structure failed its checksum or bounds checks.
    #[error("corrupt capture at byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    /// A declared size exceeds the reader's hard limits (decompression bomb or garbage).
    #[error("block at byte {offset} declares {declared} bytes, more than the limit of {limit}: the file is damaged or hostile")]
    TooLarge {
        offset: u64,
        declared: u64,
        limit: u64,
    },
    /// The target file exists and `force` was not given.
    #[error("{path} already exists: choose another name or pass --force to overwrite it")]
    Exists { path: String },
    /// The target path is a symbolic link, which captures are never written through.
    #[error("{path} is a symbolic link: refusing to write a capture through it")]
    Symlink { path: String },
    /// The writer was used after a previous write failed.
    #[error(
        "the capture writer failed earlier ({0}); the file holds every block written before that"
    )]
    Poisoned(String),
    /// An argument to a writer call was out of range.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// An error and its causes on one line, skipping a cause whose text the message before it
/// already includes (many errors quote their source). Both command-line tools print their
/// errors with it, so every user-facing error is one line.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
        cur = err.source();
    }
    out
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn corrupt(offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt {
            offset,
            what: what.into(),
        }
    }
}
