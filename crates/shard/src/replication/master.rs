//! The master's side: PSYNC/SYNC decisions, the full sync through a forked
//! snapshot, one task per replica writing its stream, ACKs, PINGs and
//! WAIT.
//!
//! A PSYNC runs under the keyspace lock. A partial resync copies the
//! backlog from the asked offset into the replica's pending output and
//! registers it in one hold of the replication lock, so no byte is lost
//! or doubled. A full resync registers the replica (its pending output
//! starts collecting the stream at that instant), resets the stream's
//! SELECT state (the replica starts in db 0 after loading) and forks a
//! child that writes the snapshot; both happen before the lock is
//! released, so the snapshot and the buffered stream meet exactly. The
//! session then hands its socket to [`serve`], which waits for the child,
//! sends `$<len>\r\n<rdb>`, then the buffered stream and everything
//! after, and reads the replica's `REPLCONF ACK`s. A replica that said
//! `capa eof` while `repl-diskless-sync` is on waits instead for the next
//! diskless snapshot ([`super::diskless`]), which does the same steps
//! (registration, SELECT reset, fork) when it starts.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use parking_lot::Mutex;
use slotway_resp::RequestDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::codec::Decoder;

use crate::client::ClientHandle;
use crate::config::Config;
use crate::server::{unix_ms, Shared};
use crate::store::Store;

const WAIT_BGSAVE: u8 = 0;
const ONLINE: u8 = 1;
/// Waiting for a diskless snapshot to start: not fed the stream yet.
const WAIT_START: u8 = 2;

/// One replica connected to us.
pub struct ReplicaConn {
    pub handle: Arc<ClientHandle>,
    /// The port it listens on (REPLCONF listening-port), for INFO/ROLE.
    pub port: u16,
    pub ip: String,
    state: AtomicU8,
    ack_offset: AtomicI64,
    ack_ms: AtomicU64,
    /// Stream bytes not yet written to it, bounded by the replica class
    /// of client-output-buffer-limit.
    out: Mutex<BytesMut>,
    wake: Notify,
}

impl std::fmt::Debug for ReplicaConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "replica {}:{}", self.ip, self.port)
    }
}

impl ReplicaConn {
    pub fn is_online(&self) -> bool {
        self.state.load(Ordering::Relaxed) == ONLINE
    }

    pub fn ack_offset(&self) -> i64 {
        self.ack_offset.load(Ordering::Relaxed)
    }

    pub fn lag_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.ack_ms.load(Ordering::Relaxed)) / 1000
    }

    pub fn state_name(&self) -> &'static str {
        if self.is_online() {
            "online"
        } else {
            "wait_bgsave"
        }
    }

    /// Stream bytes queued and not yet written to it.
    pub fn pending_bytes(&self) -> usize {
        self.out.lock().len()
    }

    /// Its snapshot starts now: the stream from here on is its to get.
    pub(super) fn start_buffering(&self) {
        self.state.store(WAIT_BGSAVE, Ordering::Relaxed);
    }

    /// Queues stream bytes; a replica over its output limit is dropped.
    pub(super) fn push(&self, data: &[u8], limit: (usize, usize, u64), now: u64) {
        if self.handle.kill.is_cancelled() || self.state.load(Ordering::Relaxed) == WAIT_START {
            return;
        }
        let used = {
            let mut out = self.out.lock();
            out.extend_from_slice(data);
            out.len()
        };
        let limit = crate::command::pubsub::output_limit(limit);
        if (limit.hard != 0 || limit.soft != 0) && limit.exceeded(used, &self.handle.obuf_soft_since, now) {
            tracing::warn!(
                client = self.handle.id,
                used,
                "Client scheduled to be closed ASAP for overcoming of output buffer limits."
            );
            self.handle.kill.cancel();
            self.out.lock().clear();
            return;
        }
        self.wake.notify_one();
    }
}

/// What REPLCONF told us before PSYNC.
#[derive(Debug, Default, Clone)]
pub struct Hello {
    pub listening_port: u16,
    pub ip_address: Option<String>,
    /// `capa eof`: it reads the diskless `$EOF:` framing.
    pub capa_eof: bool,
}

/// A replica the session hands over to [`serve`].
#[derive(Debug)]
pub struct Handover {
    conn: Arc<ReplicaConn>,
    full: Option<FullSync>,
}

#[derive(Debug)]
enum FullSync {
    /// A child writing a file, sent as `$<len>` once complete.
    Disk { pid: Pid, path: PathBuf },
    /// The next diskless snapshot (see [`super::diskless`]).
    Diskless(tokio::sync::oneshot::Receiver<super::diskless::Start>),
}

/// PSYNC (`psync` = Some((replid, offset))) or SYNC (`None`), under the
/// keyspace lock. Writes the reply line into `reply` and returns the
/// replica to hand over, or an error text.
pub fn start_sync(
    shared: &Shared,
    store: &Store,
    cfg: &Config,
    handle: &Arc<ClientHandle>,
    hello: &Hello,
    psync: Option<(&[u8], i64)>,
    reply: &mut Vec<u8>,
) -> Result<Handover, String> {
    let repl = &shared.repl;
    if repl.state.lock().failover.phase != super::failover::Phase::None {
        return Err("NOMASTERLINK Can't SYNC while failing over".into());
    }
    if repl.is_replica() {
        let up = repl.state.lock().master.as_ref().is_some_and(|m| m.is_up());
        if !up {
            return Err("NOMASTERLINK Can't SYNC while not connected with my master".into());
        }
    }
    let ip = hello.ip_address.clone().unwrap_or_else(|| handle.addr.ip().to_string());
    let conn = Arc::new(ReplicaConn {
        handle: handle.clone(),
        port: hello.listening_port,
        ip,
        state: AtomicU8::new(WAIT_BGSAVE),
        ack_offset: AtomicI64::new(0),
        ack_ms: AtomicU64::new(unix_ms()),
        out: Mutex::new(BytesMut::new()),
        wake: Notify::new(),
    });
    handle.set_flag(crate::client::FLAG_REPLICA, true);
    if let Some((id, offset)) = psync {
        let mut st = repl.state.lock();
        if let Some(data) = st.continue_from(id, offset) {
            repl.stats.partial_ok.fetch_add(1, Ordering::Relaxed);
            reply.extend_from_slice(format!("+CONTINUE {}\r\n", st.replid).as_bytes());
            conn.out.lock().extend_from_slice(&data);
            conn.state.store(ONLINE, Ordering::Relaxed);
            conn.wake.notify_one();
            st.replicas.push(conn.clone());
            tracing::info!("Partial resynchronization request from {:?} accepted", conn);
            return Ok(Handover { conn, full: None });
        }
        // `?` asks for a full resync outright; anything else failed.
        if id != b"?" {
            repl.stats.partial_err.fetch_add(1, Ordering::Relaxed);
        }
    }
    repl.stats.full.fetch_add(1, Ordering::Relaxed);
    // A full resync. A replica of ours forwards its master's stream, so
    // it may not start a new history.
    let size = cfg.int("repl-backlog-size").clamp(1, 1 << 40) as usize;
    repl.ensure_backlog(shared, size, !repl.is_replica());
    if cfg.flag("repl-diskless-sync") && hello.capa_eof {
        // Answered (`+FULLRESYNC`) when its snapshot starts.
        conn.state.store(WAIT_START, Ordering::Relaxed);
        let mut st = repl.state.lock();
        st.replicas.push(conn.clone());
        let start = super::diskless::join(&mut st, conn.clone(), psync.is_some());
        tracing::info!("Full resync requested by {:?}: waiting for a diskless snapshot", conn);
        return Ok(Handover { conn, full: Some(FullSync::Diskless(start)) });
    }
    let path = PathBuf::from(format!("temp-repl-{}-{}.rdb", std::process::id(), handle.id));
    let (offset, aux) = {
        let mut st = repl.state.lock();
        let aux = super::rdbaux::fields(st.stream_db, &st.replid, st.offset);
        st.selector.reset();
        st.replicas.push(conn.clone());
        if psync.is_some() {
            reply.extend_from_slice(format!("+FULLRESYNC {} {}\r\n", st.replid, st.offset).as_bytes());
        }
        (st.offset, aux)
    };
    let opts = crate::persist::rdb::Options {
        compress: cfg.flag("rdbcompression"),
        checksum: cfg.flag("rdbchecksum"),
        used_mem: crate::memory::used_bytes(),
        aof_base: false,
    };
    let child_path = path.clone();
    let pid = crate::persist::fork::spawn(|| {
        let write = || -> std::io::Result<()> {
            let file = std::fs::File::create(&child_path)?;
            let w = std::io::BufWriter::with_capacity(1 << 20, file);
            let mut w = super::rdbaux::AuxWriter::new(w, aux);
            crate::persist::rdb::write_rdb_with(store, &mut w, &opts)?;
            w.finish()?.into_inner().map_err(|e| e.into_error())?;
            Ok(())
        };
        i32::from(write().is_err())
    });
    match pid {
        Ok(pid) => {
            tracing::info!("Full resync requested by {:?}: snapshot for offset {offset} by pid {pid}", conn);
            Ok(Handover { conn, full: Some(FullSync::Disk { pid, path }) })
        }
        Err(e) => {
            repl.remove_replica(&conn);
            Err(format!("ERR Can't fork for the replica's snapshot: {e}"))
        }
    }
}

/// Serves one replica until its connection ends: the snapshot (for a
/// full sync), then the stream; reads its ACKs meanwhile.
pub async fn serve(
    shared: &Shared,
    stream: &mut TcpStream,
    inbuf: &mut BytesMut,
    decoder: &mut RequestDecoder,
    pending: VecDeque<Vec<Bytes>>,
    h: Handover,
) {
    let conn = h.conn.clone();
    for args in pending {
        from_replica(shared, &conn, &args);
    }
    let mut full = h.full;
    // After a diskless snapshot the stream waits for the replica's first
    // ACK: bytes right after the end mark would be read as snapshot.
    let mut hold_stream = matches!(full, Some(FullSync::Diskless(_)));
    let result: std::io::Result<()> = async {
        match &mut full {
            Some(FullSync::Disk { pid, path }) => {
                send_snapshot(shared, stream, &conn, *pid, path).await?;
            }
            Some(FullSync::Diskless(start)) => super::diskless::send(shared, stream, &conn, start).await?,
            None => {}
        }
        if full.is_some() {
            conn.ack_ms.store(unix_ms(), Ordering::Relaxed);
            conn.state.store(ONLINE, Ordering::Relaxed);
        }
        let kill = conn.handle.kill.clone();
        loop {
            tokio::select! {
                _ = kill.cancelled() => return Ok(()),
                _ = shared.shutdown.cancelled() => return Ok(()),
                _ = conn.wake.notified(), if !hold_stream => {
                    let data = std::mem::take(&mut *conn.out.lock());
                    if !data.is_empty() {
                        tokio::select! {
                            w = stream.write_all(&data) => w?,
                            _ = kill.cancelled() => return Ok(()),
                        }
                        shared.stats.net_output_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                }
                read = stream.read_buf(inbuf) => {
                    if read? == 0 {
                        return Ok(());
                    }
                    conn.handle.touch(unix_ms());
                    loop {
                        match decoder.decode(inbuf) {
                            Ok(Some(req)) => {
                                if from_replica(shared, &conn, &req.args) && hold_stream {
                                    hold_stream = false;
                                    conn.wake.notify_one();
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return Err(std::io::Error::other(format!("protocol error: {e}"))),
                        }
                    }
                    if inbuf.len() > shared.config.load().client_query_buffer_limit {
                        return Err(std::io::Error::other("query buffer limit reached"));
                    }
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        tracing::info!("Connection with replica {:?} lost: {e}", conn);
    }
    if let Some(FullSync::Disk { pid, path }) = full {
        // The child may still run if the replica left early.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
        let _ = std::fs::remove_file(&path);
    }
    shared.repl.remove_replica(&conn);
    shared.repl.acked.notify_waiters();
}

/// Waits for the snapshot child, keeping the link alive with newlines as
/// Redis does, then sends `$<len>\r\n` and the file.
async fn send_snapshot(
    shared: &Shared,
    stream: &mut TcpStream,
    conn: &ReplicaConn,
    pid: Pid,
    path: &std::path::Path,
) -> std::io::Result<()> {
    let mut polls = 0u32;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(WaitStatus::Exited(_, 0)) => break,
            other => return Err(std::io::Error::other(format!("snapshot child failed: {other:?}"))),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = conn.handle.kill.cancelled() => return Err(std::io::Error::other("replica killed")),
            _ = shared.shutdown.cancelled() => return Err(std::io::Error::other("shutdown")),
        }
        polls += 1;
        if polls.is_multiple_of(50) {
            stream.write_all(b"\n").await?;
        }
    }
    // Local reads of a file just written come from the page cache; chunks
    // keep memory bounded whatever the snapshot's size.
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let _ = std::fs::remove_file(path);
    stream.write_all(format!("${len}\r\n").as_bytes()).await?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut sent = 0u64;
    loop {
        let n = std::io::Read::read(&mut file, &mut chunk)?;
        if n == 0 {
            break;
        }
        stream.write_all(&chunk[..n]).await?;
        sent += n as u64;
    }
    if sent != len {
        return Err(std::io::Error::other("snapshot file changed while sent"));
    }
    shared.stats.net_output_bytes.fetch_add(len, Ordering::Relaxed);
    tracing::info!("Synchronization with replica {:?} succeeded", conn);
    Ok(())
}

/// What a replica sends after PSYNC: REPLCONF ACK matters (true when it
/// was one), the rest is ignored (it expects no replies).
fn from_replica(shared: &Shared, conn: &ReplicaConn, args: &[Bytes]) -> bool {
    if args.len() >= 3 && args[0].eq_ignore_ascii_case(b"replconf") && args[1].eq_ignore_ascii_case(b"ack") {
        if let Some(off) = slotway_resp::request::parse_int(&args[2]) {
            conn.ack_offset.fetch_max(off, Ordering::Relaxed);
            conn.ack_ms.store(unix_ms(), Ordering::Relaxed);
            shared.repl.acked.notify_waiters();
            return true;
        }
    }
    false
}

/// Every 100 ms (`loops` counts the calls): the replica output limit from
/// the configuration, the backlog size, PINGs every
/// `repl-ping-replica-period` seconds, and replicas silent for longer than
/// `repl-timeout` are dropped.
pub(super) fn cron(shared: &Shared, loops: u64) {
    let cfg = shared.config.load();
    let repl = &shared.repl;
    super::diskless::maybe_start(shared);
    {
        let mut st = repl.state.lock();
        st.obuf_limit = cfg.replica_limit;
        let size = cfg.int("repl-backlog-size").clamp(1, 1 << 40) as usize;
        if let Some(b) = st.backlog.as_mut() {
            b.resize(size);
        }
    }
    if !loops.is_multiple_of(10) {
        return;
    }
    let now = unix_ms();
    let timeout = cfg.int("repl-timeout").max(1) as u64;
    let period = cfg.int("repl-ping-replica-period").max(1) as u64;
    // Not while a SHUTDOWN or FAILOVER waits for the replicas to reach our
    // offset: a PING would move it.
    let ping = (loops / 10).is_multiple_of(period) && !repl.is_replica() && !shared.pause.held_by_server();
    if repl.state.lock().replicas.is_empty() {
        expire_backlog(repl, cfg.int("repl-backlog-ttl"), now);
        return;
    }
    // The keyspace lock first, so a PING never lands inside a MULTI.
    let _store = shared.store.lock();
    let mut st = repl.state.lock();
    for r in &st.replicas {
        if r.is_online() && r.lag_secs(now) > timeout {
            tracing::warn!("Disconnecting timedout replica (streaming sync): {:?}", r);
            r.handle.kill.cancel();
        }
    }
    if ping && !st.replicas.is_empty() {
        repl.push_command(&mut st, &[b"PING"]);
    }
}

/// `repl-backlog-ttl`: a master that has had no replica for longer than
/// that frees its backlog (0 keeps it forever). As Redis does, it also
/// starts a new history with no previous one: its offset stops advancing
/// without a backlog, so the old id could no longer vouch for the data
/// behind an offset. A replica keeps its backlog, ready for a promotion.
fn expire_backlog(repl: &super::Replication, ttl: i128, now: u64) {
    if ttl <= 0 || repl.is_replica() {
        return;
    }
    let mut st = repl.state.lock();
    let idle_secs = now.saturating_sub(st.no_replicas_since) / 1000;
    if st.backlog.is_none() || !st.replicas.is_empty() || idle_secs <= ttl as u64 {
        return;
    }
    st.backlog = None;
    st.replid = super::new_replid();
    st.replid2 = super::NO_REPLID.into();
    st.second_offset = -1;
    tracing::info!("Replication backlog freed after {ttl} seconds without connected replicas.");
}

/// Asks every replica for its offset now (WAIT, replica-ack-writes).
pub fn request_acks(shared: &Shared) {
    let _store = shared.store.lock();
    request_acks_locked(shared);
}

/// [`request_acks`] for a caller that holds the keyspace lock.
pub fn request_acks_locked(shared: &Shared) {
    let mut st = shared.repl.state.lock();
    if !st.replicas.is_empty() {
        shared.repl.push_command(&mut st, &[b"REPLCONF", b"GETACK", b"*"]);
    }
}

/// Waits until `want` replicas acknowledged `offset` or `deadline`
/// passes; returns how many did.
pub async fn wait_acks(shared: &Shared, want: usize, offset: i64, deadline: Option<tokio::time::Instant>) -> usize {
    let repl = &shared.repl;
    let mut asked = false;
    // Our replicas acknowledge as soon as they apply; only a replica that
    // has not answered after a moment is asked (Redis replicas ACK once a
    // second otherwise).
    let ask_at = tokio::time::Instant::now() + Duration::from_millis(10);
    loop {
        let notified = repl.acked.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let n = repl.acked_count(offset);
        if n >= want {
            return n;
        }
        let now = tokio::time::Instant::now();
        if !asked && now >= ask_at {
            request_acks(shared);
            asked = true;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(ask_at), if !asked => {}
            _ = sleep_until_or_never(deadline) => return repl.acked_count(offset),
            _ = shared.shutdown.cancelled() => return n,
        }
    }
}

async fn sleep_until_or_never(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
