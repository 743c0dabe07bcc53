//! RESP, the Redis serialization protocol, with no sockets in sight.
//!
//! Data flows through three pieces:
//! - [`request`]: bytes from a client become a [`Request`] (multibulk or
//!   inline, as Redis accepts both). A request keeps the exact bytes it was
//!   parsed from, so a proxy can forward it without re-encoding, and its
//!   arguments are zero-copy slices of those bytes.
//! - [`reply`]: a server writes replies straight into an output buffer with
//!   [`ReplyBuf`], in RESP2 or RESP3 as the client negotiated.
//! - [`frame`]: a full RESP2/RESP3 value tree ([`Frame`]) with a
//!   `tokio_util` codec, for the client side of a connection (reading
//!   replies) and for tests.
//!
//! Every limit Redis enforces (bulk length, multibulk count, inline size,
//! nesting depth) is checked before anything is allocated; a violation is a
//! [`ProtocolError`] whose `Display` is the text Redis sends after
//! `-ERR Protocol error: `. Incomplete input is never an error: decoders
//! return `Ok(None)` and wait for more bytes.

mod error;
pub mod frame;
mod inline;
pub mod reply;
pub mod request;

pub use error::ProtocolError;
pub use frame::{frame_len, Frame, FrameCodec, FrameLimits};
pub use inline::split_args;
pub use reply::{Proto, ReplyBuf};
pub use request::{Limits, Request, RequestDecoder};
