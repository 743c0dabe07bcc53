//! Per-connection state: what a session knows about its client, and the
//! small shared handle other tasks use to list or kill it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use slotway_resp::Proto;
use tokio_util::sync::CancellationToken;

use crate::store::Blob;

pub type ClientId = u64;

/// The part of a client other tasks can see (CLIENT LIST, CLIENT KILL,
/// INFO clients). Updated by the session without holding any other lock.
pub struct ClientHandle {
    pub id: ClientId,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created_ms: u64,
    pub last_interaction_ms: AtomicU64,
    pub name: Mutex<Option<Bytes>>,
    pub db: AtomicUsize,
    pub last_cmd: Mutex<&'static str>,
    /// Cancelled to disconnect the client (CLIENT KILL, output limits).
    pub kill: CancellationToken,
    /// Bytes of pub/sub messages queued for this client but not yet
    /// written; bounded by `client-output-buffer-limit pubsub`.
    pub pending_out: AtomicUsize,
    pub subscriptions: AtomicUsize,
    pub psubscriptions: AtomicUsize,
    pub in_multi: std::sync::atomic::AtomicBool,
    pub resp: AtomicUsize,
    pub ssubscriptions: AtomicUsize,
    /// When the client went over its output buffer soft limit (unix ms,
    /// 0 = under it).
    pub obuf_soft_since: AtomicU64,
    /// The socket's descriptor (CLIENT LIST `fd`); -1 until the session
    /// starts.
    pub fd: AtomicI64,
    /// Commands queued in MULTI, -1 outside one (CLIENT LIST `multi`).
    pub multi_len: AtomicI64,
    /// `FLAG_*` bits for CLIENT LIST `flags`.
    pub flags: AtomicU32,
}

/// The client is in MONITOR mode.
pub const FLAG_MONITOR: u32 = 1 << 0;
/// CLIENT NO-EVICT ON.
pub const FLAG_NO_EVICT: u32 = 1 << 1;
/// The link to the master we replicate (CLIENT LIST TYPE master).
pub const FLAG_MASTER: u32 = 1 << 2;
/// A replica of ours (CLIENT LIST TYPE replica).
pub const FLAG_REPLICA: u32 = 1 << 3;

impl ClientHandle {
    pub fn touch(&self, now_ms: u64) {
        self.last_interaction_ms.store(now_ms, Ordering::Relaxed);
    }

    pub fn new(id: ClientId, addr: SocketAddr, laddr: SocketAddr, now_ms: u64) -> ClientHandle {
        ClientHandle {
            id,
            addr,
            laddr,
            created_ms: now_ms,
            last_interaction_ms: AtomicU64::new(now_ms),
            name: Mutex::new(None),
            db: Default::default(),
            last_cmd: Mutex::new("NULL"),
            kill: CancellationToken::new(),
            pending_out: Default::default(),
            subscriptions: Default::default(),
            psubscriptions: Default::default(),
            in_multi: Default::default(),
            resp: AtomicUsize::new(2),
            ssubscriptions: Default::default(),
            obuf_soft_since: Default::default(),
            fd: AtomicI64::new(-1),
            multi_len: AtomicI64::new(-1),
            flags: AtomicU32::new(0),
        }
    }

    pub fn set_flag(&self, flag: u32, on: bool) {
        if on {
            self.flags.fetch_or(flag, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!flag, Ordering::Relaxed);
        }
    }

    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & flag != 0
    }
}

/// CLIENT REPLY: whether replies are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Set by CLIENT REPLY SKIP: the next command's reply is dropped.
    SkipNext,
    /// Dropping the reply of the command being run.
    Skip,
}

/// Session-local client state.
pub struct Client {
    pub handle: Arc<ClientHandle>,
    pub db: usize,
    pub proto: Proto,
    pub authenticated: bool,
    /// Commands queued after MULTI; `None` outside a transaction.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was refused: EXEC must abort.
    pub multi_error: bool,
    pub watched: Vec<(usize, Blob)>,
    pub channels: indexmap::IndexSet<Bytes>,
    pub patterns: indexmap::IndexSet<Bytes>,
    pub shard_channels: indexmap::IndexSet<Bytes>,
    /// Where published messages for this client go (its session reads the
    /// other end).
    pub pubsub_tx: Option<tokio::sync::mpsc::UnboundedSender<crate::pubsub::Message>>,
    pub reply: ReplyMode,
    /// MONITOR lines for this client; its session writes them out.
    pub monitor_rx: Option<tokio::sync::mpsc::UnboundedReceiver<Bytes>>,
    /// The last command name written to the handle, so the shared copy is
    /// locked only when it changes.
    pub last_cmd: &'static str,
    /// The master's stream: obeyed even on a read-only replica.
    pub is_master: bool,
    /// `master_repl_offset` right after this client's last write that
    /// reached the stream (WAIT, replica-ack-writes).
    pub woff: i64,
    /// What REPLCONF told us before a PSYNC.
    pub hello: crate::replication::master::Hello,
    /// ASKING: the next command may touch an importing slot.
    pub asking: bool,
    /// READONLY: reads of our master's slots are served here (replica).
    pub readonly: bool,
}

impl Client {
    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Self {
        Client {
            handle,
            db: 0,
            proto: Proto::Resp2,
            authenticated,
            multi: None,
            multi_error: false,
            watched: Vec::new(),
            channels: Default::default(),
            patterns: Default::default(),
            shard_channels: Default::default(),
            pubsub_tx: None,
            reply: ReplyMode::On,
            monitor_rx: None,
            last_cmd: "",
            is_master: false,
            woff: 0,
            hello: Default::default(),
            asking: false,
            readonly: false,
        }
    }

    pub fn id(&self) -> ClientId {
        self.handle.id
    }

    pub fn subscriber(&self) -> Option<crate::pubsub::Subscriber> {
        Some(crate::pubsub::Subscriber { handle: self.handle.clone(), tx: self.pubsub_tx.clone()? })
    }

    /// Channels and patterns: the count (P)SUBSCRIBE replies carry.
    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Subscribed to anything, shard channels included (Redis's
    /// `CLIENT_PUBSUB` flag: pub/sub output limits, no idle timeout).
    pub fn is_subscriber(&self) -> bool {
        self.subscription_count() + self.shard_channels.len() > 0
    }

    /// RESP2 clients with subscriptions may only run pub/sub commands.
    pub fn in_pubsub_mode(&self) -> bool {
        self.proto == Proto::Resp2 && self.is_subscriber()
    }
}
