//! What every task of the proxy shares: the configuration and slot table
//! snapshots, the upstream connections, the metrics, and the shutdown
//! signal; plus the accept loop and the topology refresh task.
//!
//! Threads: with `workers: 1` everything runs on the caller's event loop,
//! as twemproxy does. With more, each worker thread runs its own
//! single-threaded event loop that accepts from the same listening socket
//! and keeps its clients and its upstream links to itself, so a request
//! never crosses threads (Envoy's worker model); the caller's loop keeps
//! the topology refresh. What workers share is read through snapshots and
//! atomics: the configuration and slot table, the metrics, the client cap.
//!
//! Shutdown protocol: cancelling [`Proxy::shutdown`] stops the accept loops
//! and every session's reads; sessions finish the requests they have in
//! flight (bounded by `timeouts.shutdown_ms` in `main`), then close, and
//! [`Proxy::run`] returns once they all have.
//!
//! Topology protocol: one refresh task owns discovery. Periodic refreshes
//! run every `topology.interval_ms`; [`Proxy::trigger_refresh`] wakes it
//! early, and the wake-ups it gets meanwhile collapse into one (a MOVED
//! storm is one refresh), at most one per `topology.min_interval_ms`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use slotway_resp::Frame;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::topology::Topology;
use crate::upstream::{self, Upstreams};

pub struct Proxy {
    /// The configuration in force; a reload swaps in a validated new one.
    pub config: ArcSwap<ProxyConfig>,
    /// The slot table in force; the refresh task swaps in new ones.
    pub topology: ArcSwap<Topology>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    pub upstreams: Upstreams,
    /// Wakes the refresh task early; `Notify` keeps one permit, which is
    /// what coalesces a burst of triggers into one refresh.
    refresh: Notify,
    /// Hands out client ids (CLIENT ID, and the upstream lane).
    next_client: AtomicU64,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Arc<Proxy> {
        let upstreams = Upstreams::new(config.workers);
        Arc::new(Proxy {
            config: ArcSwap::from_pointee(config),
            topology: ArcSwap::from_pointee(Topology::empty()),
            metrics: Arc::new(Metrics::new()),
            shutdown: CancellationToken::new(),
            upstreams,
            refresh: Notify::new(),
            next_client: AtomicU64::new(1),
        })
    }

    /// Accepts clients until [`Proxy::shutdown`] is cancelled, then waits for
    /// the sessions to drain. Runs the topology refresh task meanwhile.
    pub async fn run(self: Arc<Self>, listener: tokio::net::TcpListener) {
        let refresher = tokio::spawn(self.clone().refresh_loop());
        let max = self.config.load().limits.max_clients.max(1);
        let permits = Arc::new(Semaphore::new(max));
        let workers = self.upstreams.workers();
        if workers == 1 {
            self.upstreams.attach(0);
            self.serve(listener, permits).await;
        } else {
            match listener.into_std() {
                Ok(socket) => {
                    let threads: Vec<_> =
                        (0..workers).filter_map(|i| self.clone().start_worker(i, &socket, permits.clone())).collect();
                    // Joined off the event loop: the refresh task runs on it.
                    let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
                }
                Err(e) => tracing::error!("cannot hand the listener to the workers: {e}"),
            }
        }
        refresher.abort();
    }

    /// Worker `i`: a thread with its own event loop serving clients accepted
    /// from (a handle on) `socket`, until shutdown and its sessions drained.
    fn start_worker(
        self: Arc<Self>,
        i: usize,
        socket: &std::net::TcpListener,
        permits: Arc<Semaphore>,
    ) -> Option<std::thread::JoinHandle<()>> {
        let proxy = self.clone();
        let started = socket.try_clone().and_then(|socket| {
            std::thread::Builder::new().name(format!("slotway-worker-{i}")).spawn(move || {
                let this = proxy;
                crate::upstream::enter_worker(i);
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("worker {i}: cannot start its event loop: {e}");
                        this.shutdown.cancel();
                        return;
                    }
                };
                runtime.block_on(async move {
                    this.upstreams.attach(i);
                    match tokio::net::TcpListener::from_std(socket) {
                        Ok(listener) => this.serve(listener, permits).await,
                        Err(e) => {
                            tracing::error!("worker {i}: cannot use the listener: {e}");
                            this.shutdown.cancel();
                        }
                    }
                });
            })
        });
        match started {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!("cannot start worker {i}: {e}");
                self.shutdown.cancel();
                None
            }
        }
    }

    /// One event loop's accept loop; returns once shutdown is asked and the
    /// sessions it started have closed.
    async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener, permits: Arc<Semaphore>) {
        let tracker = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((stream, _peer)) = accepted else {
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tokio::spawn(crate::session::refuse(stream));
                continue;
            };
            let id = self.next_client.fetch_add(1, Ordering::Relaxed);
            let proxy = self.clone();
            tracker.spawn(async move {
                crate::session::run(proxy, stream, id).await;
                drop(permit);
            });
        }
        tracker.close();
        tracker.wait().await;
    }

    /// Every slot has a master with an established connection.
    pub fn ready(&self) -> bool {
        let topo = self.topology.load();
        topo.all_slots_assigned() && topo.masters().all(|m| self.upstreams.is_up(&m.addr))
    }

    /// Swaps in a new configuration: pool sizes, timeouts and seeds apply to
    /// work started after the swap.
    pub fn apply_config(&self, new: ProxyConfig) {
        let old = self.config.swap(Arc::new(new));
        let new = self.config.load();
        if old.pool != new.pool
            || old.upstream_auth != new.upstream_auth
            || old.timeouts.connect_ms != new.timeouts.connect_ms
        {
            // Links are rebuilt with the new settings; requests already
            // queued on the old ones finish there.
            self.upstreams.retain(&[]);
        }
        self.trigger_refresh();
    }

    /// Asks for a topology refresh soon (coalesced, rate-limited).
    pub fn trigger_refresh(&self) {
        self.refresh.notify_one();
    }

    /// A MOVED reply: the slot's new owner is used at once, and a full
    /// refresh is triggered for the rest.
    pub fn slot_moved(&self, slot: u16, addr: &str) {
        let current = self.topology.load();
        if current.master_addr(slot) != Some(addr) {
            self.topology.rcu(|t| {
                if t.master_addr(slot) == Some(addr) {
                    (**t).clone()
                } else {
                    t.with_slot_moved(slot, addr)
                }
            });
            self.publish_metrics(&self.topology.load());
        }
        self.trigger_refresh();
    }

    async fn refresh_loop(self: Arc<Self>) {
        let mut failures: u32 = 0;
        loop {
            let result = self.refresh_now().await;
            let last = tokio::time::Instant::now();
            if let Err(e) = result {
                failures += 1;
                // Say it when it starts and now and then while it lasts,
                // not on every retry.
                if failures == 1 || failures.is_multiple_of(50) {
                    tracing::warn!(failures, "topology refresh failed: {e}");
                } else {
                    tracing::debug!(failures, "topology refresh failed: {e}");
                }
                // Try again soon rather than at the period, backing off to
                // two seconds while nothing answers.
                let delay = 100u64.saturating_mul(1 << failures.min(5)).min(2000);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                    _ = self.shutdown.cancelled() => return,
                }
                continue;
            }
            if failures > 0 {
                tracing::info!(failures, "topology refresh recovered");
                failures = 0;
            }
            let cfg = self.config.load_full();
            let period = Duration::from_millis(cfg.topology.interval_ms.max(1));
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = self.refresh.notified() => {
                    let min = Duration::from_millis(cfg.topology.min_interval_ms);
                    tokio::time::sleep_until(last + min).await;
                }
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// CLUSTER SLOTS from the seeds and the known nodes in turn; the first
    /// good answer becomes the new table.
    pub async fn refresh_now(&self) -> Result<(), String> {
        let started = tokio::time::Instant::now();
        let config = self.config.load_full();
        let current = self.topology.load_full();
        let mut candidates: Vec<String> = config.seeds.clone();
        candidates.extend(current.nodes.iter().map(|n| n.addr.clone()).filter(|a| !config.seeds.contains(a)));
        let mut last_err = "no seeds configured".to_string();
        for addr in &candidates {
            match fetch_slots(addr, &config).await {
                Ok(reply) => match Topology::from_cluster_slots(&reply, addr, 0) {
                    Ok(mut t) => {
                        t.version = self.topology.load().version + 1;
                        let keep: Vec<&str> = t.nodes.iter().map(|n| n.addr.as_str()).collect();
                        self.upstreams.retain(&keep);
                        for m in t.masters() {
                            self.upstreams.warm(&config, &self.metrics, &m.addr);
                        }
                        let t = Arc::new(t);
                        self.topology.store(t.clone());
                        self.metrics.topology_refreshes.inc();
                        self.metrics.topology_refresh_seconds.observe(started.elapsed().as_secs_f64());
                        self.publish_metrics(&t);
                        return Ok(());
                    }
                    Err(e) => last_err = e,
                },
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn publish_metrics(&self, t: &Topology) {
        self.metrics.slot_table_version.set(t.version as i64);
        let secs = t.fetched_at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        self.metrics.slot_table_timestamp.set(secs as i64);
    }
}

async fn fetch_slots(addr: &str, config: &ProxyConfig) -> Result<Frame, String> {
    let mut stream = upstream::connect(addr, config).await?;
    let timeout = Duration::from_millis(config.timeouts.request_ms.max(1));
    match tokio::time::timeout(timeout, upstream::call(&mut stream, &Frame::command(&["CLUSTER", "SLOTS"]))).await {
        Ok(Ok(Frame::Error(e))) => Err(format!("CLUSTER SLOTS from {addr}: {}", String::from_utf8_lossy(&e))),
        Ok(r) => r,
        Err(_) => Err(format!("CLUSTER SLOTS from {addr}: timed out")),
    }
}
