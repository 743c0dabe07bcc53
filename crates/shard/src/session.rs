//! One client connection, from accept to close, in one task.
//!
//! The loop reads what the socket has, decodes every complete request,
//! runs them all under one acquisition of the keyspace lock, and writes the
//! replies in one go: pipelined clients pay for the lock and the syscalls
//! once per batch, not per command. A blocking command that must wait ends
//! the batch: the lock is released, the client waits for its keys, and the
//! requests behind it run afterwards, in order.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use slotway_resp::{Limits, ReplyBuf, RequestDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Decoder;

use crate::client::{Client, ClientHandle};
use crate::command::{Action, Ctx, Mode};
use crate::dispatch;
use crate::pubsub::Message;
use crate::server::{unix_ms, Shared};
use crate::store::Waiter;

/// Pipelined requests whose keys are prefetched together.
const PREFETCH_WINDOW: usize = crate::store::db::PREFETCH_MAX;

/// Output buffers above this are released after a write instead of kept
/// for reuse, so one huge reply does not pin memory for the connection's
/// lifetime.
const KEEP_OUTPUT_CAPACITY: usize = 1 << 20;

/// The reply of a write no replica acknowledged within
/// `replica-ack-timeout` (`replica-ack-writes yes`).
const NOT_REPLICATED: &[u8] =
    b"-NOTREPLICATED The write was applied but no replica acknowledged it in time (replica-ack-writes)\r\n";

pub async fn run(shared: Arc<Shared>, stream: TcpStream, handle: Arc<ClientHandle>) {
    handle.fd.store(std::os::fd::AsRawFd::as_raw_fd(&stream) as i64, Ordering::Relaxed);
    let mut session = Session::new(shared.clone(), handle.clone());
    if let Err(e) = session.serve(stream).await {
        tracing::debug!(client = handle.id, error = %e, "client connection ended");
    }
    session.cleanup();
}

struct Session {
    shared: Arc<Shared>,
    client: Client,
    decoder: RequestDecoder,
    out: ReplyBuf,
    pending: VecDeque<Vec<Bytes>>,
    pubsub_rx: mpsc::UnboundedReceiver<Message>,
    /// Bytes of pub/sub messages moved into `out` and not yet written: they
    /// stay counted in the handle's `pending_out` until the write is done.
    drained: usize,
    /// `replica-ack-writes`: where the replies of writes no replica has
    /// acknowledged yet sit in `out`; they go out once one has.
    held: Vec<(usize, usize)>,
}

enum Next {
    Continue,
    Close,
    Block {
        rx: oneshot::Receiver<BytesMut>,
        timeout: Option<Duration>,
    },
    /// CLIENT PAUSE holds the next request until then.
    Paused(std::time::Instant),
    /// The client turned into a replica (PSYNC/SYNC).
    Replicate(Box<crate::replication::master::Handover>),
    /// WAIT: answer after enough replica ACKs or the timeout.
    WaitAcks {
        numreplicas: usize,
        offset: i64,
        timeout: Option<Duration>,
    },
    /// SHUTDOWN waiting for replicas: the server stops, or the receiver
    /// changes when the shutdown fails or is aborted.
    ShutdownWait(tokio::sync::watch::Receiver<u64>),
}

impl Session {
    fn new(shared: Arc<Shared>, handle: Arc<ClientHandle>) -> Self {
        let cfg = shared.config.load();
        let authenticated = cfg.requirepass.is_none();
        let mut client = Client::new(handle, authenticated);
        let (tx, pubsub_rx) = mpsc::unbounded_channel();
        client.pubsub_tx = Some(tx);
        let limits = Limits { max_bulk_len: cfg.proto_max_bulk_len, authenticated, ..Limits::default() };
        Session {
            shared,
            client,
            decoder: RequestDecoder::new(limits),
            out: ReplyBuf::default(),
            pending: VecDeque::new(),
            pubsub_rx,
            drained: 0,
            held: Vec::new(),
        }
    }

    async fn serve(&mut self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut inbuf = BytesMut::with_capacity(16 * 1024);
        let handle = self.client.handle.clone();
        let shared = self.shared.clone();
        // Created once, not per loop turn: each fresh `cancelled()` future
        // registers with its token under the token's lock, and the
        // shutdown token is shared by every connection.
        let killed = handle.kill.cancelled();
        let shutdown = shared.shutdown.cancelled();
        tokio::pin!(killed, shutdown);
        loop {
            let idle = self.idle_timeout();
            tokio::select! {
                biased;
                _ = &mut killed => return Ok(()),
                _ = &mut shutdown => return Ok(()),
                Some(line) = next_monitor_line(&mut self.client.monitor_rx) => {
                    self.write_monitor_line(&line);
                    while let Some(Ok(line)) = self.client.monitor_rx.as_mut().map(|rx| rx.try_recv()) {
                        self.write_monitor_line(&line);
                    }
                    self.flush(&mut stream).await?;
                }
                Some(msg) = self.pubsub_rx.recv() => {
                    self.push_message(msg);
                    self.drain_messages();
                    if self.over_output_limit() {
                        return Ok(());
                    }
                    self.flush(&mut stream).await?;
                }
                read = stream.read_buf(&mut inbuf) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.shared.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let mut protocol_error = self.decode(&mut inbuf);
                    if self.run_pending(&mut stream, &mut inbuf, &mut protocol_error).await? {
                        return Ok(());
                    }
                    if let Some(e) = protocol_error {
                        self.out.error(&format!("ERR Protocol error: {e}"));
                        self.flush(&mut stream).await?;
                        return Ok(());
                    }
                    if inbuf.len() > self.shared.config.load().client_query_buffer_limit {
                        tracing::warn!(client = handle.id, "closing client that reached max query buffer length");
                        return Ok(());
                    }
                }
                _ = sleep_or_never(idle) => return Ok(()),
            }
        }
    }

    /// Decodes every complete request in `inbuf` into `pending`; a protocol
    /// error is returned after the requests before it.
    fn decode(&mut self, inbuf: &mut BytesMut) -> Option<slotway_resp::ProtocolError> {
        loop {
            match self.decoder.decode(inbuf) {
                Ok(Some(req)) => self.pending.push_back(req.args),
                Ok(None) => return None,
                Err(e) => return Some(e),
            }
        }
    }

    /// Runs queued requests in order. Returns true when the connection must
    /// close. What arrives while a command is blocked lands in `inbuf` and is
    /// decoded once it is answered, so those requests run after it.
    async fn run_pending(
        &mut self,
        stream: &mut TcpStream,
        inbuf: &mut BytesMut,
        protocol_error: &mut Option<slotway_resp::ProtocolError>,
    ) -> std::io::Result<bool> {
        while !self.pending.is_empty() {
            let next = self.run_batch();
            if self.over_output_limit() {
                return Ok(true);
            }
            match next {
                Next::Continue => {}
                Next::Close => {
                    self.flush(stream).await?;
                    return Ok(true);
                }
                Next::Paused(until) => {
                    self.flush(stream).await?;
                    let handle = self.client.handle.clone();
                    tokio::select! {
                        _ = self.shared.pause.wait(until) => {}
                        _ = handle.kill.cancelled() => return Ok(true),
                        _ = self.shared.shutdown.cancelled() => return Ok(true),
                    }
                }
                Next::Replicate(handover) => {
                    self.flush(stream).await?;
                    let pending = std::mem::take(&mut self.pending);
                    let shared = self.shared.clone();
                    crate::replication::master::serve(&shared, stream, inbuf, &mut self.decoder, pending, *handover)
                        .await;
                    return Ok(true);
                }
                Next::WaitAcks { numreplicas, offset, timeout } => {
                    self.flush(stream).await?;
                    let deadline = timeout.and_then(|t| tokio::time::Instant::now().checked_add(t));
                    let handle = self.client.handle.clone();
                    let shared = self.shared.clone();
                    let n = tokio::select! {
                        n = crate::replication::master::wait_acks(&shared, numreplicas, offset, deadline) => n,
                        _ = handle.kill.cancelled() => return Ok(true),
                    };
                    self.out.int(n as i64);
                }
                Next::ShutdownWait(mut rx) => {
                    self.flush(stream).await?;
                    let handle = self.client.handle.clone();
                    let shared = self.shared.clone();
                    tokio::select! {
                        _ = rx.changed() => {}
                        _ = shared.shutdown.cancelled() => return Ok(true),
                        _ = handle.kill.cancelled() => return Ok(true),
                    }
                    self.out.error(crate::command::server::SHUTDOWN_FAILED);
                }
                Next::Block { rx, timeout } => {
                    self.flush(stream).await?;
                    if self.wait_blocked(stream, inbuf, rx, timeout).await? {
                        return Ok(true);
                    }
                    if protocol_error.is_none() {
                        *protocol_error = self.decode(inbuf);
                    }
                }
            }
        }
        self.flush(stream).await?;
        Ok(false)
    }

    /// Runs requests under one lock until the queue is empty or one of them
    /// blocks or closes the connection.
    fn run_batch(&mut self) -> Next {
        // Borrowed field by field rather than through a clone of the Arc:
        // no shared refcount to bounce between cores on every batch.
        let Session { shared, client, decoder, out, pending, pubsub_rx, drained, held } = self;
        let shared: &Shared = shared;
        // A guard, not a clone of the Arc, for the same reason.
        let config = shared.config.load();
        let mut store = shared.store.lock();
        // Messages published before this batch go out before its replies;
        // none can be published during it, since PUBLISH needs this lock.
        drain_into(pubsub_rx, out, drained);
        // One clock reading per batch, like Redis's cached time per event
        // loop iteration.
        let now = unix_ms();
        client.handle.touch(now);
        let ack_writes = config.replica_ack_writes && !shared.repl.is_replica();
        if ack_writes {
            // Offsets only count with a backlog: have one, so a write can
            // be matched to the replica ACK that covers it.
            let size = config.int("repl-backlog-size").clamp(1, 1 << 40) as usize;
            shared.repl.ensure_backlog(shared, size, true);
        }
        let mut prefetched = 0;
        while let Some(args) = pending.pop_front() {
            if prefetched == 0 && !pending.is_empty() {
                // A pipeline: warm the next requests' keys (most commands
                // name their first key right after their name).
                if let Some(db) = store.dbs.get(client.db) {
                    let next = std::iter::once(&args).chain(pending.iter()).take(PREFETCH_WINDOW);
                    db.prefetch(next.filter_map(|a| a.get(1)).map(|k| &k[..]));
                }
                prefetched = PREFETCH_WINDOW;
            }
            prefetched = prefetched.saturating_sub(1);
            if let Some(until) = shared.pause.holds_request(|| crate::command::client::may_write(shared, &args, client))
            {
                pending.push_front(args);
                return Next::Paused(until);
            }
            let (offset_before, reply_start) = (shared.repl.master_offset(), out.len());
            let mut ctx = Ctx::new(&mut store, shared, &config, &mut *client, &mut *out, now, Mode::Normal);
            dispatch::execute(&mut ctx, &args);
            let action = ctx.action.take();
            let offset = shared.repl.master_offset();
            if offset != offset_before {
                // Under the keyspace lock nobody else feeds the stream: the
                // change is this command's.
                client.woff = offset;
                if ack_writes {
                    held.push((reply_start, out.len()));
                }
            }
            if !store.ready.is_empty() {
                dispatch::serve_blocked(&mut store, shared);
            }
            // AUTH and HELLO may have changed what the decoder must allow.
            decoder.limits.authenticated = client.authenticated;
            out.proto = client.proto;
            match action {
                None => {}
                Some(Action::Close) => return Next::Close,
                Some(Action::Shutdown { .. }) => {
                    shared.shutdown.cancel();
                    return Next::Close;
                }
                Some(Action::ShutdownWait(rx)) => return Next::ShutdownWait(rx),
                Some(Action::Replicate(h)) => return Next::Replicate(h),
                Some(Action::WaitAcks { numreplicas, offset, timeout }) => {
                    return Next::WaitAcks { numreplicas, offset, timeout }
                }
                Some(Action::Block { keys, timeout }) => {
                    let (tx, rx) = oneshot::channel();
                    store.block(Waiter {
                        client: client.id(),
                        db: client.db,
                        keys,
                        args,
                        proto: client.proto,
                        handle: client.handle.clone(),
                        tx,
                    });
                    return Next::Block { rx, timeout };
                }
            }
        }
        Next::Continue
    }

    /// Waits for a blocked command to be served, time out, or the client to
    /// go away. Returns true when the connection must close.
    async fn wait_blocked(
        &mut self,
        stream: &mut TcpStream,
        inbuf: &mut BytesMut,
        mut rx: oneshot::Receiver<BytesMut>,
        timeout: Option<Duration>,
    ) -> std::io::Result<bool> {
        let handle = self.client.handle.clone();
        let deadline = timeout.and_then(|t| tokio::time::Instant::now().checked_add(t));
        let outcome = loop {
            tokio::select! {
                served = &mut rx => break served.ok(),
                _ = sleep_until_or_never(deadline) => break None,
                _ = handle.kill.cancelled() => { self.unblock(); return Ok(true) }
                _ = self.shared.shutdown.cancelled() => { self.unblock(); return Ok(true) }
                // A RESP3 client may be subscribed and blocked at once;
                // its messages keep flowing while it waits.
                Some(msg) = self.pubsub_rx.recv() => {
                    self.push_message(msg);
                    if let Err(e) = self.flush(stream).await {
                        self.unblock();
                        return Err(e);
                    }
                }
                // Watching the socket is how a client that hangs up while
                // blocked is noticed (and stops waiting for elements).
                // Anything it pipelines meanwhile waits in `inbuf`.
                read = stream.read_buf(inbuf) => {
                    let n = match read {
                        Ok(n) => n,
                        Err(e) => { self.unblock(); return Err(e) }
                    };
                    if n == 0 {
                        self.unblock();
                        return Ok(true);
                    }
                    self.shared.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    if inbuf.len() > self.shared.config.load().client_query_buffer_limit {
                        self.unblock();
                        return Ok(true);
                    }
                }
            }
        };
        let reply = match outcome {
            Some(reply) => reply,
            None => match self.shared.store.lock().unblock(self.client.id()) {
                Some(_) => dispatch::timeout_reply(self.client.proto),
                // Served in the instant between the timeout and the lock.
                None => rx.try_recv().unwrap_or_else(|_| dispatch::timeout_reply(self.client.proto)),
            },
        };
        self.out.raw(&reply);
        self.flush(stream).await?;
        Ok(false)
    }

    fn unblock(&mut self) {
        self.shared.store.lock().unblock(self.client.id());
    }

    fn write_monitor_line(&mut self, line: &[u8]) {
        self.client.handle.pending_out.fetch_sub(line.len(), Ordering::Relaxed);
        self.out.raw(line);
    }

    fn push_message(&mut self, msg: Message) {
        self.drained += msg.size();
        msg.write(&mut self.out);
    }

    fn drain_messages(&mut self) {
        drain_into(&mut self.pubsub_rx, &mut self.out, &mut self.drained);
    }

    /// `client-output-buffer-limit` for what this client has waiting: the
    /// unwritten replies plus, for subscribers, the queued messages.
    fn over_output_limit(&self) -> bool {
        let cfg = self.shared.config.load();
        let handle = &self.client.handle;
        let (limit, queued) = if self.client.is_subscriber() {
            let queued = handle.pending_out.load(Ordering::Relaxed).saturating_sub(self.drained);
            (crate::command::pubsub::output_limit(cfg.pubsub_limit), queued)
        } else {
            (crate::command::pubsub::output_limit(cfg.normal_limit), 0)
        };
        if limit.hard == 0 && limit.soft == 0 {
            return false;
        }
        let used = self.out.buf.len().saturating_add(queued);
        if limit.exceeded(used, &handle.obuf_soft_since, unix_ms()) {
            tracing::warn!(
                client = handle.id,
                used,
                "Client scheduled to be closed ASAP for overcoming of output buffer limits."
            );
            handle.kill.cancel();
            return true;
        }
        false
    }

    async fn flush(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        if self.out.buf.is_empty() {
            return Ok(());
        }
        // Nothing is acknowledged before it is in the AOF.
        crate::aof::before_reply(&self.shared).await;
        if !self.held.is_empty() {
            self.await_replication().await;
        }
        // A client that stops reading must still be killable (output limits,
        // CLIENT KILL) while its write waits.
        let handle = self.client.handle.clone();
        tokio::select! {
            written = stream.write_all(&self.out.buf) => written?,
            _ = handle.kill.cancelled() => {
                return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "client killed"));
            }
        }
        if self.drained > 0 {
            handle.pending_out.fetch_sub(std::mem::take(&mut self.drained), Ordering::Relaxed);
        }
        self.shared.stats.net_output_bytes.fetch_add(self.out.buf.len() as u64, Ordering::Relaxed);
        if self.out.buf.capacity() > KEEP_OUTPUT_CAPACITY {
            self.out.buf = BytesMut::with_capacity(4096);
        } else {
            self.out.buf.clear();
        }
        Ok(())
    }

    /// `replica-ack-writes`: holds the replies until a replica acknowledged
    /// this client's last write; past `replica-ack-timeout` each held write
    /// answers with an error instead (it was applied here, but nothing says
    /// a replica has it).
    async fn await_replication(&mut self) {
        let ranges = std::mem::take(&mut self.held);
        let timeout = Duration::from_millis(self.shared.config.load().replica_ack_timeout);
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let handle = self.client.handle.clone();
        let shared = self.shared.clone();
        let acked = tokio::select! {
            n = crate::replication::master::wait_acks(&shared, 1, self.client.woff, deadline) => n >= 1,
            _ = handle.kill.cancelled() => return,
        };
        if acked {
            return;
        }
        let old = std::mem::take(&mut self.out.buf);
        let mut pos = 0;
        // An empty range is a write whose reply CLIENT REPLY dropped.
        for (start, end) in ranges {
            if start < pos || start >= end || end > old.len() {
                continue;
            }
            self.out.buf.extend_from_slice(&old[pos..start]);
            self.out.buf.extend_from_slice(NOT_REPLICATED);
            pos = end;
        }
        self.out.buf.extend_from_slice(&old[pos..]);
    }

    /// `timeout` closes idle clients, except subscribers and blocked ones.
    fn idle_timeout(&self) -> Option<Duration> {
        let secs = self.shared.config.load().timeout;
        (secs > 0 && !self.client.is_subscriber()).then(|| Duration::from_secs(secs))
    }

    fn cleanup(&mut self) {
        let id = self.client.id();
        {
            let mut store = self.shared.store.lock();
            store.unblock(id);
            store.unwatch(id, &self.client.watched);
        }
        {
            let mut ps = self.shared.pubsub.lock();
            for c in &self.client.channels {
                ps.unsubscribe(c, id, false);
            }
            for p in &self.client.patterns {
                ps.punsubscribe(p, id);
            }
            for c in &self.client.shard_channels {
                ps.unsubscribe(c, id, true);
            }
        }
        self.shared.monitors.remove(id);
        self.shared.clients.lock().remove(&id);
    }
}

/// Moves queued pub/sub messages into `out`, counting them in `drained`.
fn drain_into(rx: &mut mpsc::UnboundedReceiver<Message>, out: &mut ReplyBuf, drained: &mut usize) {
    while let Ok(msg) = rx.try_recv() {
        *drained += msg.size();
        msg.write(out);
    }
}

/// The next MONITOR line, or never for a client that is not monitoring.
async fn next_monitor_line(rx: &mut Option<mpsc::UnboundedReceiver<Bytes>>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_or_never(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn sleep_or_never(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
