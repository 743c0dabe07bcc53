//! A minimal async RESP client for admin commands: one command, one reply,
//! on one connection.
//!
//! Replies are read with `slotway-resp`'s frame codec, whose limits are
//! checked before anything is buffered past them, so a misbehaving node
//! cannot make the client grow without bound. Every call (connect, write,
//! read) is bounded by the client's timeout. After any failed exchange the
//! connection is dropped, since a late reply would otherwise be taken as
//! the answer to the next command; the next call reconnects.

use std::time::Duration;

use bytes::BytesMut;
use slotway_resp::{Frame, FrameCodec, FrameLimits, ProtocolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};

/// Admin replies are small (`CLUSTER NODES` of a large cluster is a few
/// hundred kilobytes); anything far beyond that is a wrong peer.
const LIMITS: FrameLimits = FrameLimits { max_bulk_len: 64 * 1024 * 1024, max_elements: 1 << 20, max_depth: 16 };

/// Why a command got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("{addr}: no answer to {command} within {} ms", timeout.as_millis())]
    Timeout { addr: String, command: String, timeout: Duration },
    #[error("{addr}: connection failed during {command}: {source}")]
    Io { addr: String, command: String, source: std::io::Error },
    #[error("{addr}: connection closed during {command}")]
    Closed { addr: String, command: String },
    #[error("{addr}: malformed reply to {command}: {source}")]
    Protocol { addr: String, command: String, source: ProtocolError },
    /// The node answered with an error reply where success was required.
    #[error("{addr}: {command} failed: {message}")]
    Reply { addr: String, command: String, message: String },
    /// The node answered with a reply of the wrong kind.
    #[error("{addr}: unexpected reply to {command}: {got}")]
    Unexpected { addr: String, command: String, got: String },
}

/// One node's admin connection.
pub struct Client {
    addr: String,
    timeout: Duration,
    stream: Option<TcpStream>,
    buf: BytesMut,
    codec: FrameCodec,
}

impl Client {
    /// A client for `addr` (`host:port`) that connects on its first call.
    pub fn new(addr: impl Into<String>, timeout: Duration) -> Client {
        Client { addr: addr.into(), timeout, stream: None, buf: BytesMut::new(), codec: FrameCodec { limits: LIMITS } }
    }

    /// A client already connected to `addr`.
    pub async fn connect(addr: impl Into<String>, timeout: Duration) -> Result<Client, ClientError> {
        let mut client = Client::new(addr, timeout);
        client.stream = Some(client.open().await?);
        Ok(client)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn open(&self) -> Result<TcpStream, ClientError> {
        let connect = TcpStream::connect(self.addr.as_str());
        let stream = match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(ClientError::Connect { addr: self.addr.clone(), source }),
            Err(_) => {
                let source = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
                return Err(ClientError::Connect { addr: self.addr.clone(), source });
            }
        };
        // Admin traffic is request/response: no reason to wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Sends `args` as one command and returns its reply, error replies
    /// included (as `Frame::Error`).
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, ClientError> {
        let command = command_name(args);
        let result = match tokio::time::timeout(self.timeout, self.exchange(args, &command)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout { addr: self.addr.clone(), command, timeout: self.timeout }),
        };
        if result.is_err() {
            self.stream = None;
            self.buf.clear();
        }
        result
    }

    async fn exchange<A: AsRef<[u8]>>(&mut self, args: &[A], command: &str) -> Result<Frame, ClientError> {
        if self.stream.is_none() {
            self.stream = Some(self.open().await?);
        }
        let addr = &self.addr;
        let Some(stream) = self.stream.as_mut() else {
            return Err(ClientError::Closed { addr: addr.clone(), command: command.to_owned() });
        };
        let io = |source| ClientError::Io { addr: addr.clone(), command: command.to_owned(), source };
        let protocol = |source| ClientError::Protocol { addr: addr.clone(), command: command.to_owned(), source };
        let mut out = BytesMut::new();
        self.codec.encode(&Frame::command(args), &mut out).map_err(protocol)?;
        stream.write_all(&out).await.map_err(io)?;
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf).map_err(protocol)? {
                return Ok(frame);
            }
            if stream.read_buf(&mut self.buf).await.map_err(io)? == 0 {
                return Err(ClientError::Closed { addr: addr.clone(), command: command.to_owned() });
            }
        }
    }

    /// A command that must succeed: an error reply becomes
    /// [`ClientError::Reply`].
    pub async fn ok<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, ClientError> {
        match self.call(args).await? {
            Frame::Error(e) => Err(ClientError::Reply {
                addr: self.addr.clone(),
                command: command_name(args),
                message: String::from_utf8_lossy(&e).into_owned(),
            }),
            frame => Ok(frame),
        }
    }

    /// A command whose reply is text (a bulk, simple or verbatim string),
    /// such as `INFO` or `CLUSTER NODES`.
    pub async fn text<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<String, ClientError> {
        let frame = self.ok(args).await?;
        match frame.as_bytes() {
            Some(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            None => Err(ClientError::Unexpected {
                addr: self.addr.clone(),
                command: command_name(args),
                got: format!("{frame:?}"),
            }),
        }
    }
}

/// How a command is named in errors: its first word, or two for container
/// commands (`CLUSTER ADDSLOTS`), never the arguments (ADDSLOTS has
/// thousands).
fn command_name<A: AsRef<[u8]>>(args: &[A]) -> String {
    let word = |i: usize| args.get(i).map(|a| String::from_utf8_lossy(a.as_ref()).to_ascii_uppercase());
    match (word(0), word(1)) {
        (Some(first), Some(second)) if matches!(first.as_str(), "CLUSTER" | "CONFIG" | "CLIENT") => {
            format!("{first} {second}")
        }
        (Some(first), _) => first,
        (None, _) => "(empty command)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn names_commands_without_their_arguments() {
        assert_eq!(command_name(&["cluster", "addslots", "1", "2"]), "CLUSTER ADDSLOTS");
        assert_eq!(command_name(&["info"]), "INFO");
        assert_eq!(command_name(&["set", "k", "v"]), "SET");
        assert_eq!(command_name::<&str>(&[]), "(empty command)");
    }

    /// A one-connection fake node that answers each request with the next
    /// canned bytes, split in two writes to exercise partial reads.
    async fn fake_node(replies: Vec<&'static [u8]>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            for reply in replies {
                if s.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                let (a, b) = reply.split_at(reply.len() / 2);
                s.write_all(a).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.write_all(b).await.unwrap();
            }
            // Hold the connection open without answering further.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        });
        addr
    }

    #[tokio::test]
    async fn reads_replies_and_sorts_errors() {
        let addr = fake_node(vec![b"+PONG\r\n", b"$5\r\nhello\r\n", b"-ERR nope\r\n", b":1\r\n"]).await;
        let mut c = Client::connect(&addr, Duration::from_secs(5)).await.unwrap();
        assert_eq!(c.ok(&["PING"]).await.unwrap(), Frame::Simple("PONG".into()));
        assert_eq!(c.text(&["ECHO", "hello"]).await.unwrap(), "hello");
        match c.ok(&["CLUSTER", "MEET", "x", "1"]).await {
            Err(ClientError::Reply { command, message, .. }) => {
                assert_eq!(command, "CLUSTER MEET");
                assert_eq!(message, "ERR nope");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.text(&["DBSIZE"]).await, Err(ClientError::Unexpected { .. })));
    }

    #[tokio::test]
    async fn a_silent_node_times_out() {
        let addr = fake_node(vec![]).await;
        let mut c = Client::connect(&addr, Duration::from_millis(100)).await.unwrap();
        assert!(matches!(c.call(&["PING"]).await, Err(ClientError::Timeout { .. })));
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut c = Client::new(&addr, Duration::from_secs(2));
        assert!(matches!(c.call(&["PING"]).await, Err(ClientError::Connect { .. })));
    }
}
