//! Command errors and the exact Redis text each one is sent as.

use thiserror::Error;

/// Why a command failed. `Display` is the reply text without the leading
/// `-`; the first word is the error code clients match on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR index out of range")]
    IndexOutOfRange,
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    #[error("ERR timeout is not a float or out of range")]
    TimeoutNotFloat,
    #[error("ERR timeout is negative")]
    TimeoutNegative,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    #[error("ERR DB index is out of range")]
    DbIndex,
    #[error("ERR unknown subcommand '{0}'. Try {1} HELP.")]
    UnknownSubcommand(String, String),
    /// Any other error; the text carries its own code (`ERR ...`).
    #[error("{0}")]
    Other(String),
}

impl CmdError {
    pub fn err(msg: impl Into<String>) -> CmdError {
        CmdError::Other(msg.into())
    }
}

pub type CmdResult = Result<(), CmdError>;
