//! Cluster mode (`cluster-enabled yes`): this node's membership in a
//! Redis Cluster, driven by the `slotway-cluster` state machine.
//!
//! [`Cluster`] owns the [`ClusterState`] behind one short-held lock and
//! does the IO the state asks for. Three things feed the state: the
//! CLUSTER commands (`crate::command::cluster`), the cluster bus
//! ([`bus`]: one outbound link per known node, plus the connections other
//! nodes open to us) and the cron, ten times a second. After each change
//! [`Cluster::update`] rewrites `nodes.conf` in place (crash-safe, see
//! `ConfFile::write`) when the state says so, republishes the [`routes::Routes`]
//! snapshot that `dispatch` reads on every keyed command without a lock,
//! and carries out the effects: messages to links, links to open or drop,
//! replication to start or stop, keys of lost slots to delete, writes to
//! pause for a manual failover, messages to publish.
//!
//! Locks: the keyspace lock is taken before the cluster lock, never after;
//! effects run after the cluster lock is released.

pub mod bus;
pub mod routes;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use bytes::Bytes;
use hashbrown::HashMap;
use parking_lot::Mutex;
use slotway_cluster::{ClusterState, Effect, Env, NodeId, Settings};

use crate::config::Config;
use crate::server::{unix_ms, Shared};
use crate::store::Store;

pub use routes::Routes;

pub struct Cluster {
    pub state: Mutex<ClusterState>,
    /// Who serves what, for `dispatch`'s redirections.
    pub routes: ArcSwap<Routes>,
    links: Mutex<HashMap<NodeId, bus::LinkHandle>>,
    /// Connections other nodes opened to us, by serial: who (once a
    /// message said) and since when (CLUSTER LINKS).
    pub inbound: Mutex<HashMap<u64, (Option<NodeId>, u64)>>,
    conf_path: PathBuf,
    /// The state version `routes` was built from.
    published: AtomicU64,
    /// Save numbers: the next to hand out (under the state lock), and the
    /// newest written. Saves run outside the state lock, from any task,
    /// one at a time, and an older text never replaces a newer one.
    save_seq: AtomicU64,
    saved: Mutex<ConfFile>,
}

/// `nodes.conf`, kept open between saves.
struct ConfFile {
    /// The newest save number written.
    seq: u64,
    file: Option<std::fs::File>,
}

fn settings(cfg: &Config) -> Settings {
    Settings {
        node_timeout: cfg.cluster_node_timeout.max(1),
        replica_validity_factor: cfg.int("cluster-replica-validity-factor").max(0) as u64,
        require_full_coverage: cfg.flag("cluster-require-full-coverage"),
        replica_no_failover: cfg.flag("cluster-replica-no-failover"),
        allow_replica_migration: cfg.flag("cluster-allow-replica-migration"),
        migration_barrier: cfg.int("cluster-migration-barrier").max(0) as usize,
        announce_ip: cfg.string("cluster-announce-ip"),
    }
}

/// Loads (or creates) our identity, binds the bus and starts the tasks.
pub async fn start(shared: &Arc<Shared>) -> anyhow::Result<()> {
    let cfg = shared.config.load_full();
    let port = shared.port.load(Ordering::Relaxed) as u16;
    let cport = if cfg.cluster_port != 0 { cfg.cluster_port } else { port.wrapping_add(10000) };
    let conf_path = PathBuf::from(&cfg.cluster_config_file);
    let now = unix_ms();
    let mut state = match std::fs::read_to_string(&conf_path) {
        Ok(text) if !text.trim().is_empty() => {
            slotway_cluster::conf::load(&text, settings(&cfg), now).with_context(|| {
                format!("Unrecoverable error: corrupted cluster config file \"{}\"", conf_path.display())
            })?
        }
        Ok(_) => ClusterState::new(settings(&cfg), port, cport, now),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClusterState::new(settings(&cfg), port, cport, now),
        Err(e) => return Err(e).with_context(|| format!("reading {}", conf_path.display())),
    };
    {
        // The file may come from another port (a copied setup); behind NAT
        // or a relay, peers must use the announced ports instead.
        let announced = |name: &str, real: u16| u16::try_from(cfg.int(name)).ok().filter(|&p| p != 0).unwrap_or(real);
        let me = state.myself;
        let n = state.nodes.get_mut(&me).expect("myself");
        n.port = announced("cluster-announce-port", port);
        n.cport = announced("cluster-announce-bus-port", cport);
        if !state.settings.announce_ip.is_empty() {
            n.ip = state.settings.announce_ip.clone();
        }
    }
    let replica_of = state.me().master.and_then(|m| state.nodes.get(&m)).map(|m| (m.ip.clone(), m.port));
    tracing::info!(id = %state.myself, "cluster node id");
    let cluster = Arc::new(Cluster {
        routes: ArcSwap::from_pointee(Routes::build(&state)),
        published: AtomicU64::new(state.version),
        save_seq: AtomicU64::new(0),
        saved: Mutex::new(ConfFile { seq: 0, file: None }),
        state: Mutex::new(state),
        links: Mutex::new(HashMap::new()),
        inbound: Mutex::new(HashMap::new()),
        conf_path,
    });
    cluster.save().context("writing the cluster config file")?;
    let _ = shared.cluster.set(cluster.clone());
    bus::listen(shared, &cfg.bind, cport).await?;
    if let Some((ip, port)) = replica_of {
        crate::replication::replica::set_master(shared, ip, port);
    }
    tokio::spawn(cron(shared.clone(), cluster));
    Ok(())
}

async fn cron(shared: Arc<Shared>, cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => {
                cluster.links.lock().drain().for_each(|(_, l)| l.cancel.cancel());
                return;
            }
            _ = tick.tick() => {}
        }
        let s = settings(&shared.config.load());
        cluster.update(&shared, None, |st, env| {
            st.settings = s;
            st.cron(env);
        });
    }
}

impl Cluster {
    /// What the state needs to know about this node right now.
    pub fn env(shared: &Shared) -> Env {
        let now = unix_ms();
        let down = shared.repl.state.lock().master.as_ref().map_or(0, |m| {
            if m.is_up() {
                0
            } else if m.down_since_ms > 0 {
                now.saturating_sub(m.down_since_ms)
            } else {
                0
            }
        });
        Env { now, offset: shared.repl.master_offset(), master_link_down_ms: down }
    }

    /// Runs `f` on the state, then persists, republishes and carries out
    /// what it asked for. `store` is the keyspace when the caller holds it.
    pub fn update<R>(
        &self,
        shared: &Shared,
        store: Option<&mut Store>,
        f: impl FnOnce(&mut ClusterState, &Env) -> R,
    ) -> R {
        let env = Self::env(shared);
        let (r, effects, conf, routes) = {
            let mut st = self.state.lock();
            let epochs = |st: &ClusterState| (st.current_epoch, st.last_vote_epoch, st.me().config_epoch);
            let before = epochs(&st);
            let r = f(&mut st, &env);
            let effects = st.take_effects();
            // As Redis: epochs and votes reach the disk before anyone
            // hears of them; other changes need only survive the process.
            let durable = epochs(&st) != before;
            let conf = st.take_save().then(|| {
                let seq = self.save_seq.fetch_add(1, Ordering::Relaxed) + 1;
                (slotway_cluster::render::nodes_conf(&st), durable, seq)
            });
            let routes = (st.version != self.published.load(Ordering::Relaxed)).then(|| {
                self.published.store(st.version, Ordering::Relaxed);
                Routes::build(&st)
            });
            (r, effects, conf, routes)
        };
        if let Some(routes) = routes {
            self.routes.store(Arc::new(routes));
        }
        if let Some((text, durable, seq)) = conf {
            let mut saved = self.saved.lock();
            let written = if seq > saved.seq {
                saved.write(&self.conf_path, text.as_bytes(), durable).map(|()| saved.seq = seq)
            } else if durable {
                // A newer text is on disk already; make sure it is synced.
                saved.sync(&self.conf_path)
            } else {
                Ok(())
            };
            if let Err(e) = written {
                tracing::warn!(error = %e, path = %self.conf_path.display(), "could not save the cluster config file");
            }
        }
        if !effects.is_empty() {
            self.apply(shared, effects, store);
        }
        r
    }

    /// Our outbound links: (node, created ms, messages waiting).
    pub fn outbound_links(&self) -> Vec<(NodeId, u64, usize)> {
        let links = self.links.lock();
        links.iter().map(|(id, l)| (*id, l.created, l.tx.max_capacity() - l.tx.capacity())).collect()
    }

    /// CLUSTER SAVECONFIG, and the first write at start.
    pub fn save(&self) -> std::io::Result<()> {
        let (text, seq) = {
            let st = self.state.lock();
            (slotway_cluster::render::nodes_conf(&st), self.save_seq.fetch_add(1, Ordering::Relaxed) + 1)
        };
        let mut saved = self.saved.lock();
        if seq > saved.seq {
            saved.write(&self.conf_path, text.as_bytes(), true)?;
            saved.seq = seq;
        }
        Ok(())
    }

    fn apply(&self, shared: &Shared, effects: Vec<Effect>, mut store: Option<&mut Store>) {
        for e in effects {
            match e {
                Effect::Send(to, msg) => {
                    if let Some(link) = self.links.lock().get(&to) {
                        // A link that cannot keep up loses messages, not
                        // memory: gossip repeats, and a dead link is
                        // noticed by failure detection.
                        let _ = link.tx.try_send(msg);
                    }
                }
                Effect::Reply(_) => {}
                Effect::Connect(id) => {
                    let addr = self.state.lock().nodes.get(&id).map(|n| (n.ip.clone(), n.cport));
                    if let Some((ip, cport)) = addr {
                        let handle = bus::connect(shared.arc(), id, ip, cport);
                        if let Some(old) = self.links.lock().insert(id, handle) {
                            old.cancel.cancel();
                        }
                    }
                }
                Effect::Disconnect(id) => {
                    if let Some(old) = self.links.lock().remove(&id) {
                        old.cancel.cancel();
                    }
                }
                Effect::Rename(from, to) => {
                    let mut links = self.links.lock();
                    if let Some(l) = links.remove(&from) {
                        *l.node.lock() = to;
                        links.insert(to, l);
                    }
                }
                Effect::Replicate { ip, port } => {
                    crate::replication::replica::set_master(&shared.arc(), ip, port);
                }
                Effect::Promote => crate::replication::replica::unset_master(shared, "cluster failover"),
                Effect::DropSlots(slots) => with_store(shared, store.as_deref_mut(), |s| drop_slots(shared, s, &slots)),
                Effect::FlushAll => with_store(shared, store.as_deref_mut(), |s| {
                    for db in s.dbs.iter_mut() {
                        db.clear();
                    }
                }),
                Effect::PauseWrites(0) => shared.pause.stop(),
                Effect::PauseWrites(until) => {
                    let ms = until.saturating_sub(unix_ms());
                    shared.pause.start(Instant::now() + Duration::from_millis(ms), false);
                }
                Effect::Publish { channel, message, shard } => {
                    let cfg = shared.config.load();
                    let limit = crate::command::pubsub::output_limit(cfg.pubsub_limit);
                    let mut scratch = slotway_resp::ReplyBuf::new(slotway_resp::Proto::Resp2);
                    let me = crate::pubsub::Publisher { id: 0, out: &mut scratch };
                    let (channel, message) = (Bytes::from(channel), Bytes::from(message));
                    shared.pubsub.lock().publish(&channel, &message, shard, limit, unix_ms(), me);
                }
            }
        }
    }
}

fn with_store(shared: &Shared, store: Option<&mut Store>, f: impl FnOnce(&mut Store)) {
    match store {
        Some(s) => f(s),
        None => f(&mut shared.store.lock()),
    }
}

/// Keys of slots another master now serves: deleted, and the deletions
/// propagated so replicas and the AOF agree.
fn drop_slots(shared: &Shared, store: &mut Store, slots: &[u16]) {
    let db = &mut store.dbs[0];
    let mut gone = Vec::new();
    for &slot in slots {
        for key in db.keys_in_slot(slot, usize::MAX) {
            db.remove(&key);
            gone.push(key);
        }
    }
    if !gone.is_empty() {
        tracing::info!(keys = gone.len(), "deleted keys of slots now served by another master");
        store.dirty += gone.len() as u64;
        crate::propagate::expired(shared, 0, &gone);
    }
}

impl ConfFile {
    /// Rewrites the file in place, as Redis does: the new text, padded
    /// with newlines to the old length, in one write from offset 0, then
    /// truncated. A crash of the process between the two leaves the new
    /// text followed by blank lines, which the reader skips, so the file
    /// always reads as the old or the new state. `durable` syncs it too.
    /// (A temporary file renamed over it would do the same at the cost of
    /// a new inode and, on ext4, an immediate writeback on every SETSLOT.)
    fn write(&mut self, path: &std::path::Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let file = self.open(path)?;
        let old_len = file.metadata()?.len() as usize;
        let result = if old_len > bytes.len() {
            let mut padded = bytes.to_vec();
            padded.resize(old_len, b'\n');
            file.write_all_at(&padded, 0)
        } else {
            file.write_all_at(bytes, 0)
        }
        .and_then(|()| file.set_len(bytes.len() as u64))
        .and_then(|()| if durable { file.sync_all() } else { Ok(()) });
        if result.is_err() {
            // Reopen next time: the file may have been replaced or removed.
            self.file = None;
        }
        result
    }

    fn sync(&mut self, path: &std::path::Path) -> std::io::Result<()> {
        self.open(path)?.sync_all()
    }

    fn open(&mut self, path: &std::path::Path) -> std::io::Result<&std::fs::File> {
        if self.file.is_none() {
            let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
            self.file = Some(f);
        }
        Ok(self.file.as_ref().expect("just opened"))
    }
}
