//! The server: state shared by every connection, the listeners and the
//! background cycles.
//!
//! Shutdown protocol: cancelling [`Shared::shutdown`] stops the accept loops
//! and every session's `select!`; [`run`] returns once the listeners are
//! closed, and `main` then exits.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use arc_swap::ArcSwap;
use bytes::Bytes;
use hashbrown::HashMap;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::client::{Client, ClientHandle, ClientId};
use crate::command::Registry;
use crate::config::Config;
use crate::pubsub::PubSub;
use crate::store::Store;

pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Server-wide counters for INFO stats.
#[derive(Default)]
pub struct Stats {
    pub commands: AtomicU64,
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub error_replies: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
}

pub struct SlowEntry {
    pub id: u64,
    pub at_secs: u64,
    pub usec: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: String,
}

#[derive(Default)]
pub struct SlowLog {
    pub entries: VecDeque<SlowEntry>,
    pub next_id: u64,
}

pub struct Shared {
    /// Ourselves, for handlers that start tasks (REPLICAOF).
    me: std::sync::Weak<Shared>,
    pub store: Mutex<Store>,
    pub config: ArcSwap<Config>,
    pub commands: Registry,
    pub pubsub: Mutex<PubSub>,
    pub clients: Mutex<HashMap<ClientId, Arc<ClientHandle>>>,
    next_client_id: AtomicU64,
    pub stats: Stats,
    pub started: Instant,
    pub started_ms: u64,
    /// 40 hex characters, new at every start (INFO `run_id`).
    pub run_id: String,
    pub shutdown: CancellationToken,
    /// A SHUTDOWN waiting for replicas (`crate::shutdown`).
    pub shutdown_state: crate::shutdown::Shutdown,
    pub slowlog: Mutex<SlowLog>,
    /// The port actually bound (the config may say 0 in tests).
    pub port: AtomicU64,
    /// Clients in MONITOR mode.
    pub monitors: crate::command::server::Monitors,
    /// CLIENT PAUSE state.
    pub pause: crate::command::client::Pause,
    /// Failed authentications (ACL LOG).
    pub acl_log: crate::command::server::AclLog,
    /// RDB snapshots: the running child, last save, INFO persistence.
    pub persist: crate::persist::snapshot::State,
    /// The stream of writes for the AOF (and replication).
    pub propagator: crate::propagate::Propagator,
    pub aof: crate::aof::AofControl,
    /// Replication: our replicas, or the master we follow.
    pub repl: Arc<crate::replication::Replication>,
    /// MIGRATE's open connections to its targets.
    pub migrate_conns: crate::command::migrate::Connections,
    /// Cluster mode's state, set once at start when `cluster-enabled yes`.
    pub cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let mut commands = Registry::new();
        commands.rename(&config.renames);
        let run_id: String = (0..40).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect();
        Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            store: Mutex::new(Store::new(config.databases)),
            port: AtomicU64::new(config.port as u64),
            config: ArcSwap::from_pointee(config),
            commands,
            pubsub: Mutex::new(PubSub::default()),
            clients: Mutex::new(HashMap::new()),
            next_client_id: AtomicU64::new(1),
            stats: Stats::default(),
            started: Instant::now(),
            started_ms: unix_ms(),
            run_id,
            shutdown: CancellationToken::new(),
            shutdown_state: Default::default(),
            slowlog: Mutex::new(SlowLog::default()),
            monitors: Default::default(),
            pause: Default::default(),
            acl_log: Default::default(),
            persist: crate::persist::snapshot::State::new(unix_ms() / 1000),
            propagator: Default::default(),
            aof: Default::default(),
            repl: Default::default(),
            migrate_conns: Default::default(),
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// Records a slow command, keeping at most `max_len` entries.
    pub fn slowlog_push(&self, args: &[Bytes], usec: u64, client: &Client, max_len: usize) {
        let mut log = self.slowlog.lock();
        let id = log.next_id;
        log.next_id += 1;
        // As Redis: at most 32 arguments, each cut at 128 bytes.
        let mut shown: Vec<Bytes> = args.iter().take(32).map(|a| a.slice(..a.len().min(128))).collect();
        if args.len() > 32 {
            shown[31] = Bytes::from(format!("... ({} more arguments)", args.len() - 31));
        }
        let name =
            client.handle.name.lock().as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        log.entries.push_front(SlowEntry {
            id,
            at_secs: unix_ms() / 1000,
            usec,
            args: shown,
            addr: client.handle.addr.to_string(),
            name,
        });
        while log.entries.len() > max_len {
            log.entries.pop_back();
        }
    }

    pub fn new_client(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientHandle> {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let now = unix_ms();
        let handle = Arc::new(ClientHandle::new(id, addr, laddr, now));
        self.clients.lock().insert(id, handle.clone());
        handle
    }

    /// The `Arc` this lives in (always alive while `&self` is).
    pub fn arc(&self) -> Arc<Shared> {
        self.me.upgrade().expect("Shared is only reached through its Arc")
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A `bind` entry as (may fail quietly, host to bind): a leading `-`
/// makes it optional, `*` and `::*` mean every address.
pub fn bind_host(addr: &str) -> (bool, &str) {
    let (optional, addr) = match addr.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, addr),
    };
    let host = match addr {
        "*" => "0.0.0.0",
        "::*" => "::",
        a => a,
    };
    (optional, host)
}

/// Binds every `bind` address and serves until shutdown.
pub async fn run(shared: Arc<Shared>) -> anyhow::Result<()> {
    let cfg = shared.config.load_full();
    let mut listeners = Vec::new();
    for addr in &cfg.bind {
        let (optional, host) = bind_host(addr);
        let port = shared.port.load(Ordering::Relaxed) as u16;
        match TcpListener::bind((host, port)).await {
            Ok(l) => {
                shared.port.store(l.local_addr()?.port() as u64, Ordering::Relaxed);
                listeners.push(l);
            }
            Err(_) if optional => {}
            Err(e) => {
                return Err(e).with_context(|| format!("Could not create server TCP listening socket {host}:{port}"))
            }
        }
    }
    anyhow::ensure!(!listeners.is_empty(), "no listening socket could be bound");
    tracing::info!(port = shared.port.load(Ordering::Relaxed), "Ready to accept connections tcp");
    if cfg.cluster_enabled {
        crate::cluster::start(&shared).await?;
    }
    tokio::spawn(crate::expire::active_cycle(shared.clone()));
    tokio::spawn(persist_cron(shared.clone()));
    tokio::spawn(crate::replication::cron(shared.clone()));
    crate::replication::start(&shared);
    let mut accepts = Vec::new();
    for l in listeners {
        accepts.push(tokio::spawn(accept_loop(shared.clone(), l)));
    }
    for a in accepts {
        let _ = a.await;
    }
    Ok(())
}

/// The next connection on `listener`, or `None` once the server shuts
/// down; failed accepts (out of file descriptors and the like) back off
/// instead of spinning on the error. `what` names the listener in logs.
pub async fn accept_next(shared: &Shared, listener: &TcpListener, what: &str) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return None,
            a = listener.accept() => a,
        };
        match accepted {
            Ok(s) => return Some(s),
            Err(e) => {
                tracing::warn!(error = %e, listener = what, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    while let Some((stream, addr)) = accept_next(&shared, &listener, "clients").await {
        shared.stats.connections_received.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let keepalive = shared.config.load().tcp_keepalive;
        if keepalive > 0 {
            // As Redis: probes start after `tcp-keepalive` idle seconds, so
            // a peer that vanished without a FIN is noticed.
            let idle = Duration::from_secs(keepalive);
            let ka = socket2::TcpKeepalive::new().with_time(idle).with_interval(idle / 3);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
        }
        if shared.clients.lock().len() >= shared.config.load().maxclients {
            shared.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(stream));
            continue;
        }
        let laddr = stream.local_addr().unwrap_or(addr);
        let handle = shared.new_client(addr, laddr);
        tokio::spawn(crate::session::run(shared.clone(), stream, handle));
    }
}

/// Reaps background saves and applies the save rules, ten times a second.
async fn persist_cron(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => crate::persist::snapshot::cron(&shared),
        }
    }
}

async fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
}
