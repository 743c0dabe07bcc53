use thiserror::Error;

/// A request or reply that breaks the protocol. The connection cannot be
/// resynchronised after one of these: the server answers
/// `-ERR Protocol error: <display>` and closes, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("invalid bulk length")]
    InvalidBulkLength,
    #[error("unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    #[error("too big mbulk count string")]
    TooBigMultibulkCount,
    #[error("too big bulk count string")]
    TooBigBulkCount,
    #[error("too big inline request")]
    TooBigInline,
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// Reply-side errors: a frame type byte nobody knows, a malformed number,
    /// or a value nested deeper than the decoder allows.
    #[error("invalid frame type byte '{0}'")]
    InvalidFrameType(char),
    #[error("invalid {0}")]
    InvalidValue(&'static str),
    #[error("frame nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("frame larger than {0} bytes")]
    TooLarge(usize),
    #[error("io error: {0}")]
    Io(String),
}

impl From<std::io::Error> for ProtocolError {
    fn from(e: std::io::Error) -> Self {
        ProtocolError::Io(e.to_string())
    }
}
