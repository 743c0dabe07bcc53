//! A real Redis Cluster of `redis-server` processes on loopback, built the
//! way an operator builds one: nodes started with `--cluster-enabled yes`,
//! joined by `redis-cli --cluster create`, and used only once every node
//! reports `cluster_state:ok`. Every process is killed by its pid on drop.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::wait::{wait_for, with_patience};
use crate::{scratch_dir, RawClient};

/// One `redis-server` of the cluster; `child` is `None` once killed.
pub struct Node {
    pub port: u16,
    child: Option<Child>,
    pid: u32,
    dir: PathBuf,
    /// How it was started, to restart it in place.
    bin: PathBuf,
    args: Vec<String>,
}

pub struct RedisCluster {
    pub nodes: Vec<Node>,
}

/// Ports handed out by this process, so two clusters built at once in one
/// test binary never race for the same pair.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static NEXT: AtomicU16 = AtomicU16::new(0);

/// A free client port whose cluster bus port (port + 10000) is free too.
/// Ports come from 20000..30000, below Linux's ephemeral range, so the bus
/// port stays valid; the start differs per process to keep parallel test
/// binaries apart.
pub fn free_cluster_port() -> u16 {
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = (std::process::id() % 400) as u16 * 25;
        let _ = NEXT.compare_exchange(0, 20000 + seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..10_000 {
        let mut port = NEXT.fetch_add(1, Ordering::Relaxed);
        if port >= 30000 {
            NEXT.store(20000, Ordering::Relaxed);
            port = 20000;
        }
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        let taken = taken.get_or_insert_with(HashSet::new);
        if taken.contains(&port) {
            continue;
        }
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            taken.insert(port);
            return port;
        }
    }
    panic!("no free port pair (port, port+10000) in 20000..30000");
}

/// `n` consecutive free client ports whose bus ports (+10000) are free too,
/// for a program that takes a base port (`slotway demo --base-port`);
/// returns the first. The ports stay reserved for this test process.
pub fn free_cluster_port_block(n: u16) -> u16 {
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = (std::process::id() % 400) as u16 * 25;
        let _ = NEXT.compare_exchange(0, 20000 + seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..10_000 {
        let mut base = NEXT.fetch_add(n, Ordering::Relaxed);
        if base.saturating_add(n) > 30000 {
            NEXT.store(20000, Ordering::Relaxed);
            base = 20000;
        }
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        let taken = taken.get_or_insert_with(HashSet::new);
        let free = |p: u16| !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p)).is_ok();
        if (base..base + n).all(|p| free(p) && free(p + 10000)) {
            taken.extend(base..base + n);
            return base;
        }
    }
    panic!("no {n} free consecutive port pairs (port, port+10000) in 20000..30000");
}

impl RedisCluster {
    /// Starts `masters * (1 + replicas_per_master)` nodes, creates the
    /// cluster and waits until every node says `cluster_state:ok` and every
    /// replica has finished its first sync. `extra` goes to every
    /// redis-server (`--cluster-node-timeout 2000`, ...).
    /// Nodes are `redis-server`, or `slotway-shard` when the environment
    /// says `SLOTWAY_CLUSTER_NODES=slotway-shard` (how CI runs the proxy's
    /// suite a second time over our own shards).
    pub fn start(masters: usize, replicas_per_master: usize, extra: &[&str]) -> RedisCluster {
        if std::env::var("SLOTWAY_CLUSTER_NODES").is_ok_and(|v| v == "slotway-shard") {
            return Self::start_shards(masters, replicas_per_master, extra);
        }
        Self::start_with(Path::new("redis-server"), masters, replicas_per_master, extra)
    }

    /// The same cluster made of `slotway-shard` nodes.
    pub fn start_shards(masters: usize, replicas_per_master: usize, extra: &[&str]) -> RedisCluster {
        Self::start_with(&crate::workspace_bin("slotway-shard"), masters, replicas_per_master, extra)
    }

    /// The same cluster of any server binary that takes redis-server's
    /// flags.
    pub fn start_with(bin: &Path, masters: usize, replicas_per_master: usize, extra: &[&str]) -> RedisCluster {
        assert!(masters >= 3, "redis-cli --cluster create needs at least 3 masters");
        let count = masters * (1 + replicas_per_master);
        let mut cluster = RedisCluster { nodes: Vec::with_capacity(count) };
        for _ in 0..count {
            let node = start_node(bin, extra);
            cluster.nodes.push(node);
        }
        for node in &cluster.nodes {
            let port = node.port;
            if wait_for(Duration::from_secs(10), || ping(port)).is_err() {
                panic!("cluster node on port {port} did not answer PING");
            }
        }
        let addrs: Vec<String> = cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create").args(&addrs);
        create.args(["--cluster-replicas", &replicas_per_master.to_string(), "--cluster-yes"]);
        let out = run_bounded(create, None, Duration::from_secs(60));
        assert!(out.ok, "redis-cli --cluster create failed:\n{}\n{}", out.stdout, out.stderr);
        let ports = cluster.ports();
        let ok = wait_for(Duration::from_secs(30), || ports.iter().all(|&p| cluster_state_ok(p)));
        assert!(ok.is_ok(), "cluster did not reach cluster_state:ok on every node");
        let ok = wait_for(Duration::from_secs(30), || cluster.masters().len() == masters);
        assert!(ok.is_ok(), "expected {masters} masters, have {:?}", cluster.masters());
        cluster.wait_replicas_synced(Duration::from_secs(30));
        cluster
    }

    /// Ports of every node still running.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.port).collect()
    }

    /// Ports of the running masters, by `ROLE`.
    pub fn masters(&self) -> Vec<u16> {
        self.ports().into_iter().filter(|&p| role(p).as_deref() == Some("master")).collect()
    }

    /// Ports of the running replicas, by `ROLE`.
    pub fn replicas(&self) -> Vec<u16> {
        self.ports().into_iter().filter(|&p| role(p).as_deref() == Some("slave")).collect()
    }

    pub fn pid(&self, port: u16) -> Option<u32> {
        self.nodes.iter().find(|n| n.port == port && n.child.is_some()).map(|n| n.pid)
    }

    pub fn client(&self, port: u16) -> RawClient {
        RawClient::connect(port).unwrap_or_else(|e| panic!("connect to cluster node {port}: {e}"))
    }

    /// `kill -9` of one node (its own pid), reaped before returning.
    pub fn kill_node(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|n| n.port == port).expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again, same flags, same folder (so the same
    /// `nodes.conf`).
    pub fn restart_node(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|n| n.port == port).expect("a node of this cluster");
        assert!(node.child.is_none(), "node {port} is still running");
        let child = spawn(&node.bin, &node.args);
        node.pid = child.id();
        node.child = Some(child);
        let ok = wait_for(Duration::from_secs(10), || ping(port));
        assert!(ok.is_ok(), "restarted node {port} did not answer PING");
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to one node, by its pid.
    pub fn signal(&self, port: u16, sig: &str) {
        let pid = self.pid(port).expect("a running node");
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {pid}");
    }

    /// The node's 40-character id.
    pub fn node_id(&self, port: u16) -> String {
        let reply = self.client(port).cmd(&["CLUSTER", "MYID"]).expect("CLUSTER MYID");
        crate::Reply::parse(&reply)
            .and_then(|r| r.bulk().map(|b| String::from_utf8_lossy(b).into_owned()))
            .unwrap_or_else(|| panic!("CLUSTER MYID on {port}: {}", String::from_utf8_lossy(&reply)))
    }

    /// `CLUSTER NODES` as seen by `port`.
    pub fn cluster_nodes(&self, port: u16) -> String {
        let reply = self.client(port).cmd(&["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        crate::Reply::parse(&reply)
            .and_then(|r| r.bulk().map(|b| String::from_utf8_lossy(b).into_owned()))
            .unwrap_or_default()
    }

    /// Port of the master serving `slot`, as `via` sees it.
    pub fn slot_owner(&self, via: u16, slot: u16) -> Option<u16> {
        parse_nodes(&self.cluster_nodes(via))
            .into_iter()
            .find(|n| n.master && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            .map(|n| n.port)
    }

    /// The master port serving each of the 16384 slots, as `via` sees it.
    pub fn slot_map(&self, via: u16) -> Vec<Option<u16>> {
        let mut map = vec![None; 16384];
        for node in parse_nodes(&self.cluster_nodes(via)).into_iter().filter(|n| n.master) {
            for (a, b) in node.slots {
                for slot in a..=b.min(16383) {
                    map[usize::from(slot)] = Some(node.port);
                }
            }
        }
        map
    }

    /// How many slots the master on `port` serves, as `via` sees it.
    pub fn slot_count(&self, via: u16, port: u16) -> usize {
        parse_nodes(&self.cluster_nodes(via))
            .into_iter()
            .filter(|n| n.port == port)
            .flat_map(|n| n.slots)
            .map(|(a, b)| usize::from(b - a) + 1)
            .sum()
    }

    /// Sum of DBSIZE over the masters.
    pub fn dbsize(&self) -> i64 {
        self.masters()
            .iter()
            .map(|&p| {
                crate::Reply::parse(&self.client(p).cmd(&["DBSIZE"]).expect("DBSIZE"))
                    .and_then(|r| r.int())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// FLUSHALL on every master, then waits for the replicas to follow.
    pub fn flushall(&self) {
        for p in self.masters() {
            let r = self.client(p).cmd_str(&["FLUSHALL"]);
            assert_eq!(r, "+OK\r\n", "FLUSHALL on {p}");
        }
        self.wait_replicas_synced(Duration::from_secs(10));
    }

    /// Waits until every running master's replicas are connected and have
    /// acknowledged its whole replication stream.
    pub fn wait_replicas_synced(&self, timeout: Duration) {
        let masters = self.masters();
        let ok = wait_for(timeout, || masters.iter().all(|&p| replicas_caught_up(p)));
        assert!(ok.is_ok(), "replicas did not catch up with their masters");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(&node.dir);
        }
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(taken) = taken.as_mut() {
            for node in &self.nodes {
                taken.remove(&node.port);
            }
        }
    }
}

/// Starts one cluster-enabled server of `bin` on a free port pair.
pub fn start_node(bin: &Path, extra: &[&str]) -> Node {
    let port = free_cluster_port();
    let dir = scratch_dir(&format!("cluster-{port}"));
    let port_s = port.to_string();
    let dir_s = dir.to_string_lossy().into_owned();
    let mut args: Vec<&str> = vec!["--port", &port_s, "--bind", "127.0.0.1", "--dir", &dir_s];
    args.extend(["--save", "", "--appendonly", "no", "--cluster-enabled", "yes"]);
    args.extend(["--cluster-config-file", "nodes.conf"]);
    // Without this, a replica's first sync waits 5 s for more replicas.
    args.extend(["--repl-diskless-sync-delay", "0"]);
    args.extend_from_slice(extra);
    let args: Vec<String> = args.into_iter().map(String::from).collect();
    let child = spawn(bin, &args);
    Node { port, pid: child.id(), child: Some(child), dir, bin: bin.to_path_buf(), args }
}

fn spawn(bin: &Path, args: &[String]) -> Child {
    Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()))
}

/// A minimal cluster client: follows MOVED and ASK, retries TRYAGAIN and
/// CLUSTERDOWN, for at most `budget`.
pub struct Follow {
    /// Where requests start (and restart after a lost connection).
    pub seed: u16,
    /// How long one call may keep retrying.
    pub budget: Duration,
}

impl Follow {
    pub fn call(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let start = Instant::now();
        let mut port = self.seed;
        let mut asking = false;
        let mut last = String::new();
        while start.elapsed() < self.budget {
            let mut c = match RawClient::connect(port) {
                Ok(c) => c,
                Err(e) => {
                    last = format!("connect {port}: {e}");
                    port = self.seed;
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            if asking {
                let _ = c.cmd(&["ASKING"]);
            }
            let reply = c.cmd(args).map_err(|e| e.to_string());
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    last = e;
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let text = String::from_utf8_lossy(&reply).into_owned();
            let redirect =
                |t: &str| t.split(' ').nth(2).and_then(|a| a.trim().rsplit_once(':')).map(|(_, p)| p.parse::<u16>());
            if text.starts_with("-MOVED ") || text.starts_with("-ASK ") {
                asking = text.starts_with("-ASK ");
                port = redirect(&text).and_then(Result::ok).unwrap_or(self.seed);
                continue;
            }
            asking = false;
            if text.starts_with("-TRYAGAIN") || text.starts_with("-CLUSTERDOWN") {
                last = text;
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            return Ok(reply);
        }
        Err(format!("no answer within {:?}: {last}", self.budget))
    }
}

/// What a bounded command run produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exited with status 0 before the deadline.
    pub ok: bool,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command with `stdin` (if any) and a deadline. A command still
/// running at the deadline is killed by its pid.
pub fn run_bounded(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let dir = scratch_dir(&format!("cmd-{}", free_cluster_port_tag()));
    let (out_path, err_path, in_path) = (dir.join("out"), dir.join("err"), dir.join("in"));
    std::fs::write(&in_path, stdin.unwrap_or_default()).expect("stdin file");
    let file = |p: &PathBuf| std::fs::File::create(p).expect("output file");
    let input = std::fs::File::open(&in_path).expect("stdin file");
    let mut child = cmd
        .stdin(input)
        .stdout(file(&out_path))
        .stderr(file(&err_path))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let budget = with_patience(timeout);
    let deadline = Instant::now() + budget;
    let mut status = None;
    for _ in 0..(budget.as_millis() / 10 + 2) {
        if let Ok(Some(s)) = child.try_wait() {
            status = Some(s);
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let out = Output {
        ok: status.is_some_and(|s| s.success()),
        timed_out: status.is_none(),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn free_cluster_port_tag() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn ping(port: u16) -> bool {
    RawClient::connect(port).ok().and_then(|mut c| c.cmd(&["PING"]).ok()).is_some_and(|r| r == b"+PONG\r\n")
}

fn bulk_text(port: u16, args: &[&str]) -> Option<String> {
    let mut c = RawClient::connect(port).ok()?;
    let reply = crate::Reply::parse(&c.cmd(args).ok()?)?;
    reply.bulk().map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Whether `CLUSTER INFO` on `port` says `cluster_state:ok`.
pub fn cluster_state_ok(port: u16) -> bool {
    bulk_text(port, &["CLUSTER", "INFO"]).is_some_and(|t| t.lines().any(|l| l.trim() == "cluster_state:ok"))
}

fn role(port: u16) -> Option<String> {
    let mut c = RawClient::connect(port).ok()?;
    let reply = crate::Reply::parse(&c.cmd(&["ROLE"]).ok()?)?;
    reply.array()?.first()?.bulk().map(|b| String::from_utf8_lossy(b).into_owned())
}

fn replicas_caught_up(master: u16) -> bool {
    let Some(info) = bulk_text(master, &["INFO", "replication"]) else { return false };
    let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned());
    let Some(offset) = field("master_repl_offset:").and_then(|v| v.parse::<i64>().ok()) else { return false };
    let want: usize = field("connected_slaves:").and_then(|v| v.parse().ok()).unwrap_or(0);
    let slaves: Vec<&str> = info.lines().filter(|l| l.starts_with("slave") && l.contains("state=")).collect();
    slaves.len() == want
        && slaves.iter().all(|l| {
            l.contains("state=online")
                && l.split(',').find_map(|kv| kv.strip_prefix("offset=")).and_then(|v| v.parse::<i64>().ok())
                    == Some(offset)
        })
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// Inclusive slot ranges (migrating/importing markers left out).
    pub slots: Vec<(u16, u16)>,
}

pub fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let addr = f.get(1)?;
            let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let flags = f.get(2)?;
            let slots = f
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|a| (a, a)),
                })
                .collect();
            Some(NodeLine {
                id: f.first()?.to_string(),
                port,
                master: flags.contains("master"),
                failed: flags.contains("fail"),
                slots,
            })
        })
        .collect()
}
