//! Connections to the cluster nodes: per node a few pipelined connections
//! that every client shares.
//!
//! Each connection is owned by one task fed by a bounded `mpsc` of
//! [`Job`]s. The task writes whatever jobs are queued in one batch, keeps
//! the sent jobs in a FIFO, and splits the replies off its read buffer with
//! `frame_len`: the n-th reply belongs to the n-th job written. Replies are
//! handed back as raw bytes, never parsed into trees.
//!
//! When a connection is lost every job in its FIFO fails as
//! [`UpstreamError::Written`] (the node may have run it) and every job not
//! yet written as [`UpstreamError::NotWritten`]; the caller decides from
//! that whether a retry is safe. The task then reconnects with backoff,
//! failing new jobs at once as [`UpstreamError::Unreachable`] while the
//! node cannot be reached, so requests can be retried elsewhere: on the
//! refreshed table, or (reads) on a replica.
//!
//! Besides the links every request uses, a node can have replica-read
//! links ([`Upstreams::send_replica_read`]): connections that said
//! `READONLY`, used only to serve reads while a master is unreachable.
//!
//! Each worker thread has its own pool of links, running on its own event
//! loop, so a request never crosses threads: the thread-local worker index
//! ([`enter_worker`]) picks the pool.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use slotway_resp::{frame_len, Frame, FrameLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::config::ProxyConfig;
use crate::metrics::Metrics;

/// `*1\r\n$6\r\nASKING\r\n`, sent just before a command redirected by ASK.
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";
/// How much queued work one write batches.
const BATCH_BYTES: usize = 64 * 1024;

/// Why a job got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// The bytes never left the proxy: retrying cannot run the command twice.
    NotWritten(String),
    /// The connection died after the bytes were written: the node may or may
    /// not have run the command.
    Written(String),
    /// The node cannot be reached at all (connect failed): nothing was
    /// written, and the node is likely down rather than slow.
    Unreachable(String),
}

pub type Reply = Result<Bytes, UpstreamError>;

/// A job on a connection's queue (its reply to come), or why it is not.
pub type Queued = Result<oneshot::Receiver<Reply>, UpstreamError>;

/// The reply of a job queued toward `addr`.
pub async fn wait(queued: Queued, addr: &str) -> Reply {
    match queued {
        Ok(rx) => rx.await.unwrap_or_else(|_| Err(UpstreamError::Written(format!("connection to {addr} lost")))),
        Err(e) => Err(e),
    }
}

/// One request toward a node.
pub struct Job {
    /// The complete RESP request.
    pub bytes: Bytes,
    /// Send `ASKING` first (its `+OK` is swallowed).
    pub asking: bool,
    pub reply: oneshot::Sender<Reply>,
}

/// The connections of one node.
struct NodeConns {
    senders: Vec<mpsc::Sender<Job>>,
    up: Vec<Arc<AtomicBool>>,
}

thread_local! {
    /// The worker this thread serves as: which pool its requests use.
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as worker `i` (see [`Upstreams::attach`]).
pub fn enter_worker(i: usize) {
    WORKER.with(|w| w.set(i));
}

/// Every worker's connections to every node, created on first use.
pub struct Upstreams {
    pools: Box<[Pool]>,
}

/// One worker's connections.
#[derive(Default)]
struct Pool {
    /// The worker's event loop, where this pool's link tasks run; unset
    /// until the worker starts (then links are made on first use).
    runtime: OnceLock<Handle>,
    nodes: RwLock<HashMap<String, Arc<NodeConns>>>,
    /// Links that said READONLY, for reads served by a replica while its
    /// master is unreachable; apart from `nodes` so the hot path never
    /// builds a composite key.
    replica_reads: RwLock<HashMap<String, Arc<NodeConns>>>,
}

impl Pool {
    /// Where new links of this pool run: the worker's loop, or the caller's
    /// when no worker is attached (a single-loop proxy, tests).
    fn runtime(&self) -> Handle {
        self.runtime.get().cloned().unwrap_or_else(Handle::current)
    }
}

impl Default for Upstreams {
    fn default() -> Self {
        Upstreams::new(1)
    }
}

impl Upstreams {
    pub fn new(workers: usize) -> Self {
        Upstreams { pools: (0..workers.max(1)).map(|_| Pool::default()).collect() }
    }

    pub fn workers(&self) -> usize {
        self.pools.len()
    }

    /// Binds worker `i`'s pool to the calling event loop; call it on the
    /// worker's thread, after [`enter_worker`].
    pub fn attach(&self, i: usize) {
        let _ = self.pools[i].runtime.set(Handle::current());
    }

    /// The calling worker's pool.
    fn pool(&self) -> &Pool {
        &self.pools[WORKER.with(Cell::get) % self.pools.len()]
    }

    /// Sends `bytes` to `addr` on the connection chosen by `lane` (a client
    /// keeps one lane, so its requests to one node stay in order), and waits
    /// for the raw reply.
    pub async fn send(
        &self,
        config: &Arc<ProxyConfig>,
        metrics: &Arc<Metrics>,
        addr: &str,
        lane: usize,
        bytes: Bytes,
        asking: bool,
    ) -> Reply {
        let queued = self.enqueue(config, metrics, addr, lane, bytes, asking).await;
        wait(queued, addr).await
    }

    /// Puts `bytes` on the lane's queue toward `addr`, waiting only for
    /// queue space (the backpressure); the receiver then yields the reply.
    /// Jobs queued one after another on a lane are written in that order.
    pub async fn enqueue(
        &self,
        config: &Arc<ProxyConfig>,
        metrics: &Arc<Metrics>,
        addr: &str,
        lane: usize,
        bytes: Bytes,
        asking: bool,
    ) -> Queued {
        queue_on(self.sender(config, metrics, addr, lane), addr, bytes, asking).await
    }

    /// Sends a read-only request to the replica at `addr` on a link that
    /// said READONLY, and waits for the raw reply.
    pub async fn send_replica_read(
        &self,
        config: &Arc<ProxyConfig>,
        metrics: &Arc<Metrics>,
        addr: &str,
        lane: usize,
        bytes: Bytes,
    ) -> Reply {
        let pool = self.pool();
        let sender = pick(&pool.replica_reads, pool, config, metrics, addr, lane, true);
        wait(queue_on(sender, addr, bytes, false).await, addr).await
    }

    fn sender(&self, config: &Arc<ProxyConfig>, metrics: &Arc<Metrics>, addr: &str, lane: usize) -> mpsc::Sender<Job> {
        let pool = self.pool();
        pick(&pool.nodes, pool, config, metrics, addr, lane, false)
    }

    /// Opens connections to `addr` now (after discovery) in every running
    /// worker, so readiness does not wait for the first request.
    pub fn warm(&self, config: &Arc<ProxyConfig>, metrics: &Arc<Metrics>, addr: &str) {
        for pool in self.pools.iter().filter(|p| p.runtime.get().is_some()) {
            let _ = pick(&pool.nodes, pool, config, metrics, addr, 0, false);
        }
    }

    /// Whether at least one connection to `addr` is established.
    pub fn is_up(&self, addr: &str) -> bool {
        self.pools
            .iter()
            .any(|p| p.nodes.read().get(addr).is_some_and(|n| n.up.iter().any(|u| u.load(Ordering::Relaxed))))
    }

    /// Drops the connections of nodes no longer in `keep`; their tasks end
    /// once the jobs already queued are answered.
    pub fn retain(&self, keep: &[&str]) {
        for pool in self.pools.iter() {
            pool.nodes.write().retain(|addr, _| keep.contains(&addr.as_str()));
            pool.replica_reads.write().retain(|addr, _| keep.contains(&addr.as_str()));
        }
    }
}

/// The lane's link toward `addr` in `links` (one of `pool`'s maps),
/// spawning the node's links on the pool's loop on first use.
fn pick(
    links: &RwLock<HashMap<String, Arc<NodeConns>>>,
    pool: &Pool,
    config: &Arc<ProxyConfig>,
    metrics: &Arc<Metrics>,
    addr: &str,
    lane: usize,
    readonly: bool,
) -> mpsc::Sender<Job> {
    if let Some(n) = links.read().get(addr) {
        return n.senders[lane % n.senders.len()].clone();
    }
    let mut links = links.write();
    let n = links
        .entry(addr.to_string())
        .or_insert_with(|| Arc::new(spawn_node(&pool.runtime(), config, metrics, addr, readonly)));
    n.senders[lane % n.senders.len()].clone()
}

/// Puts a job on `sender`'s queue, waiting only for queue space.
async fn queue_on(sender: mpsc::Sender<Job>, addr: &str, bytes: Bytes, asking: bool) -> Queued {
    let Ok(permit) = sender.reserve().await else {
        return Err(UpstreamError::NotWritten(format!("connection to {addr} closed")));
    };
    let (tx, rx) = oneshot::channel();
    permit.send(Job { bytes, asking, reply: tx });
    Ok(rx)
}

fn spawn_node(
    runtime: &Handle,
    config: &Arc<ProxyConfig>,
    metrics: &Arc<Metrics>,
    addr: &str,
    readonly: bool,
) -> NodeConns {
    let n = config.pool.connections_per_node.max(1);
    let mut conns = NodeConns { senders: Vec::with_capacity(n), up: Vec::with_capacity(n) };
    for _ in 0..n {
        let (tx, rx) = mpsc::channel(config.pool.queue_depth.max(1));
        let up = Arc::new(AtomicBool::new(false));
        let link =
            Link { addr: addr.to_string(), config: config.clone(), metrics: metrics.clone(), up: up.clone(), readonly };
        runtime.spawn(link.run(rx));
        conns.senders.push(tx);
        conns.up.push(up);
    }
    conns
}

/// The owner task of one connection.
struct Link {
    addr: String,
    config: Arc<ProxyConfig>,
    metrics: Arc<Metrics>,
    up: Arc<AtomicBool>,
    /// Says READONLY after connecting: a replica-read link.
    readonly: bool,
}

impl Link {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let mut backoff = Duration::from_millis(20);
        loop {
            match self.connect().await {
                Ok(stream) => {
                    let since = tokio::time::Instant::now();
                    self.up.store(true, Ordering::Relaxed);
                    let gauge = self.metrics.backend_connections.with_label_values(&[&self.addr]);
                    gauge.inc();
                    let open = self.serve(stream, &mut rx).await;
                    gauge.dec();
                    self.up.store(false, Ordering::Relaxed);
                    if !open {
                        return;
                    }
                    // A node that accepts and drops at once (maxclients,
                    // shutting down) must not make this a busy loop.
                    if since.elapsed() < Duration::from_secs(1) {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    } else {
                        backoff = Duration::from_millis(20);
                    }
                }
                Err(e) => {
                    // While the node is unreachable, jobs fail at once: the
                    // caller may find the slot elsewhere after a refresh.
                    let sleep = tokio::time::sleep(backoff);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            _ = &mut sleep => break,
                            job = rx.recv() => match job {
                                Some(job) => {
                                    let _ = job.reply.send(Err(UpstreamError::Unreachable(e.clone())));
                                }
                                None => return,
                            },
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Connects (and authenticates); a replica-read link then says READONLY.
    async fn connect(&self) -> Result<TcpStream, String> {
        let mut stream = connect(&self.addr, &self.config).await?;
        if self.readonly {
            let timeout = Duration::from_millis(self.config.timeouts.connect_ms.max(1));
            match tokio::time::timeout(timeout, call(&mut stream, &Frame::command(&["READONLY"]))).await {
                Ok(Ok(Frame::Simple(_))) => {}
                Ok(Ok(other)) => return Err(format!("READONLY to {}: unexpected reply {other:?}", self.addr)),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(format!("READONLY to {}: timed out", self.addr)),
            }
        }
        Ok(stream)
    }

    /// Pipelines jobs on `stream` until it fails; false once every sender
    /// is gone and the FIFO is empty.
    async fn serve(&self, mut stream: TcpStream, rx: &mut mpsc::Receiver<Job>) -> bool {
        let inflight = self.metrics.inflight.with_label_values(&[&self.addr]);
        let limits = FrameLimits::default();
        // (reply sender, whether an ASKING reply comes first)
        let mut fifo: VecDeque<(oneshot::Sender<Reply>, bool)> = VecDeque::new();
        let mut wbuf = BytesMut::new();
        let mut rbuf = BytesMut::with_capacity(16 * 1024);
        let mut open = true;
        let fail = |fifo: &mut VecDeque<(oneshot::Sender<Reply>, bool)>, why: String| {
            inflight.sub(fifo.len() as i64);
            for (tx, _) in fifo.drain(..) {
                let _ = tx.send(Err(UpstreamError::Written(why.clone())));
            }
        };
        loop {
            if !open && fifo.is_empty() {
                return false;
            }
            // Read in large chunks: a pipelined burst of replies is split
            // off this buffer without copying.
            if rbuf.capacity() - rbuf.len() < 4096 {
                rbuf.reserve(16 * 1024);
            }
            tokio::select! {
                job = rx.recv(), if open => {
                    let Some(job) = job else { open = false; continue };
                    let mut next = Some(job);
                    while let Some(job) = next.take() {
                        if job.asking {
                            wbuf.extend_from_slice(ASKING);
                        }
                        wbuf.extend_from_slice(&job.bytes);
                        fifo.push_back((job.reply, job.asking));
                        inflight.inc();
                        if wbuf.len() < BATCH_BYTES {
                            next = rx.try_recv().ok();
                        }
                    }
                    if let Err(e) = stream.write_all(&wbuf).await {
                        fail(&mut fifo, format!("write to {} failed: {e}", self.addr));
                        return open;
                    }
                    wbuf.clear();
                }
                n = stream.read_buf(&mut rbuf) => {
                    match n {
                        Ok(0) | Err(_) => {
                            fail(&mut fifo, format!("connection to {} lost", self.addr));
                            return open;
                        }
                        Ok(_) => {}
                    }
                    loop {
                        let Some(&(_, asking)) = fifo.front() else {
                            // A reply nobody asked for: the stream is out of
                            // step, so it cannot be trusted any more.
                            if !rbuf.is_empty() {
                                return open;
                            }
                            break;
                        };
                        let len = match frame_len(&rbuf, &limits) {
                            Ok(Some(len)) => len,
                            Ok(None) => break,
                            Err(e) => {
                                fail(&mut fifo, format!("bad reply from {}: {e}", self.addr));
                                return open;
                            }
                        };
                        if asking {
                            // The command's reply follows ASKING's +OK.
                            let Ok(Some(len2)) = frame_len(&rbuf[len..], &limits) else { break };
                            let _ = rbuf.split_to(len);
                            let reply = rbuf.split_to(len2).freeze();
                            let (tx, _) = fifo.pop_front().expect("front checked");
                            inflight.dec();
                            let _ = tx.send(Ok(reply));
                            continue;
                        }
                        let reply = rbuf.split_to(len).freeze();
                        let (tx, _) = fifo.pop_front().expect("front checked");
                        inflight.dec();
                        let _ = tx.send(Ok(reply));
                    }
                }
            }
        }
    }
}

/// Connects with the configured timeout and authenticates.
pub async fn connect(addr: &str, config: &ProxyConfig) -> Result<TcpStream, String> {
    let timeout = Duration::from_millis(config.timeouts.connect_ms.max(1));
    let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect to {addr}: {e}")),
        Err(_) => return Err(format!("connect to {addr}: timed out")),
    };
    let _ = stream.set_nodelay(true);
    if let Some(auth) = &config.upstream_auth {
        let cmd = match &auth.user {
            Some(user) => Frame::command(&[b"AUTH".as_slice(), user.as_bytes(), auth.password.as_bytes()]),
            None => Frame::command(&[b"AUTH".as_slice(), auth.password.as_bytes()]),
        };
        match tokio::time::timeout(timeout, call(&mut stream, &cmd)).await {
            Ok(Ok(Frame::Simple(_))) => {}
            Ok(Ok(Frame::Error(e))) => return Err(format!("AUTH to {addr}: {}", String::from_utf8_lossy(&e))),
            Ok(Ok(_)) => return Err(format!("AUTH to {addr}: unexpected reply")),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(format!("AUTH to {addr}: timed out")),
        }
    }
    Ok(stream)
}

/// One request and its parsed reply on a private connection (discovery,
/// AUTH).
pub async fn call(stream: &mut TcpStream, cmd: &Frame) -> Result<Frame, String> {
    use tokio_util::codec::{Decoder, Encoder};
    let mut codec = slotway_resp::FrameCodec::default();
    let mut buf = BytesMut::new();
    codec.encode(cmd, &mut buf).map_err(|e| e.to_string())?;
    stream.write_all(&buf).await.map_err(|e| e.to_string())?;
    buf.clear();
    loop {
        if let Some(f) = codec.decode(&mut buf).map_err(|e| e.to_string())? {
            return Ok(f);
        }
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".into());
        }
    }
}

#[cfg(test)]
#[path = "upstream/tests.rs"]
pub(crate) mod tests;
