//! `slotway demo` as a user runs it: six nodes start as its children, a
//! 3+3 cluster forms, `redis-cli` without `-c` reads and writes keys of all
//! three masters through the proxy, `/metrics` answers, and SIGINT stops
//! the proxy and exactly the six children it started, removing its work
//! directory. A taken port or a node that dies ends the demo with a message
//! naming it, and nothing left running.
//!
//! The same run with `redis-server` as the shard binary
//! (`--shard-bin`) checks that the demo forms a cluster as redis-cli does.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use slotway_testkit::cluster::{free_cluster_port_block, run_bounded};
use slotway_testkit::proxy::http_get;
use slotway_testkit::wait::with_patience;
use slotway_testkit::{free_port, require_tool, scratch_dir, workspace_bin};

/// A `slotway demo` child and what it printed.
struct Demo {
    child: Child,
    base: u16,
    port: u16,
    metrics_port: u16,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: PathBuf,
    /// The nodes' pids, from the banner, once it was printed.
    pids: Vec<u32>,
}

impl Demo {
    fn spawn(shard_bin: &Path, base: u16) -> Demo {
        let (port, metrics_port) = (free_port(), free_port());
        let dir = scratch_dir(&format!("demo-{base}"));
        let stderr = dir.join("stderr");
        let mut child = Command::new(workspace_bin("slotway"))
            .arg("demo")
            .arg("--shard-bin")
            .arg(shard_bin)
            .args(["--base-port", &base.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start slotway demo");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Demo { child, base, port, metrics_port, lines, stdout: Vec::new(), stderr, pids: Vec::new() }
    }

    /// Reads stdout until a line contains `marker`; `false` if stdout ends
    /// (the demo exited) or `timeout` passes first.
    fn read_until(&mut self, marker: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + with_patience(timeout);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(marker);
                    self.stdout.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Starts the demo and waits for its banner; records the nodes' pids.
    fn start(shard_bin: &Path) -> Demo {
        let mut demo = Demo::spawn(shard_bin, free_cluster_port_block(6));
        assert!(demo.read_until("Ctrl-C stops", Duration::from_secs(90)), "no banner:\n{}", demo.output());
        demo.pids = demo
            .stdout
            .iter()
            .filter(|l| l.trim_start().starts_with("127.0.0.1:"))
            .filter_map(|l| l.rsplit(" pid ").next()?.trim().parse().ok())
            .collect();
        assert_eq!(demo.pids.len(), 6, "six nodes in the banner:\n{}", demo.output());
        demo
    }

    fn output(&self) -> String {
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("stdout:\n{}\nstderr:\n{stderr}", self.stdout.join("\n"))
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{sig}");
    }

    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + with_patience(within);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // What it printed last (stdout ends when it exits).
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.stdout.push(line);
                }
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The work directory the demo announced.
    fn work_dir(&self) -> PathBuf {
        let line = self.stdout.iter().find_map(|l| l.split_once("work directory ")).map(|(_, d)| d.trim());
        PathBuf::from(line.unwrap_or_else(|| panic!("no work directory line:\n{}", self.output())))
    }

    /// Pids of the running processes whose parent is the demo.
    fn children(&self) -> Vec<u32> {
        let demo = self.child.id();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").map_while(Result::ok) {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after `)`.
            let Some((_, rest)) = stat.rsplit_once(')') else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(demo) && fields[0] != "Z" {
                pids.push(pid);
            }
        }
        pids.sort();
        pids
    }

    /// Runs `redis-cli -p <port> args...` with a deadline; its stdout.
    fn cli(port: u16, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &port.to_string()]).args(args);
        let out = run_bounded(cmd, None, Duration::from_secs(10));
        assert!(out.ok, "redis-cli -p {port} {args:?}: {}{}", out.stdout, out.stderr);
        out.stdout.trim().to_owned()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // A failed test must not leave nodes behind: ask the demo to stop
        // them, and if it cannot, kill them by the pids it announced.
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal("TERM");
            if self.wait_exit(Duration::from_secs(15)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
                for pid in &self.pids {
                    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                }
            }
        }
        if let Some(dir) = self.stderr.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The path of a program on PATH.
fn which(tool: &str) -> PathBuf {
    let out = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().expect("sh");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A key whose slot is in `first..=last`.
fn key_in(first: u16, last: u16) -> String {
    (0..100_000)
        .map(|i| format!("demo:{i}"))
        .find(|k| (first..=last).contains(&slotway_slots::key_slot(k.as_bytes())))
        .expect("a key in the range")
}

/// The whole user story with `shard_bin` as the node server.
fn demo_serves_and_stops(shard_bin: &Path) {
    let mut demo = Demo::start(shard_bin);
    let out = demo.output();
    assert!(out.contains(&format!("redis-cli -p {}", demo.port)), "{out}");
    assert!(out.contains(&format!("curl -s http://127.0.0.1:{}/metrics", demo.metrics_port)), "{out}");

    // Exactly the announced nodes are the demo's children.
    let mut announced = demo.pids.clone();
    announced.sort();
    assert_eq!(demo.children(), announced, "{out}");

    // One key per master's range, written and read through the proxy, and
    // found on that master (ports base..base+2 are the masters, as the
    // banner says).
    let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
    for (i, &(first, last)) in ranges.iter().enumerate() {
        let master = demo.base + i as u16;
        let line = demo.stdout.iter().find(|l| l.trim_start().starts_with(&format!("127.0.0.1:{master} ")));
        assert!(line.is_some_and(|l| l.contains(&format!("master   slots {first}-{last} "))), "{out}");
        let key = key_in(first, last);
        let value = format!("value-{i}");
        assert_eq!(Demo::cli(demo.port, &["SET", &key, &value]), "OK");
        assert_eq!(Demo::cli(demo.port, &["GET", &key]), value);
        assert_eq!(Demo::cli(master, &["EXISTS", &key]), "1", "{key} on its master {master}");
    }
    let (status, body) = http_get(demo.metrics_port, "/metrics").expect("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("slotway_"), "{body}");

    let work_dir = demo.work_dir();
    assert!(work_dir.is_dir(), "{}", work_dir.display());
    demo.signal("INT");
    let status = demo.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}\n{}", demo.output());
    assert_eq!(demo.stdout.last().map(String::as_str), Some("stopped"), "{}", demo.output());
    for pid in &demo.pids {
        assert!(!alive(*pid), "node pid {pid} still running after the demo stopped");
    }
    assert!(!work_dir.exists(), "{} left behind", work_dir.display());
    // Nothing listens on the node ports any more.
    for port in demo.base..demo.base + 6 {
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} still taken");
    }
}

#[test]
fn demo_with_redis_server() {
    require_tool!("redis-server");
    require_tool!("redis-cli");
    demo_serves_and_stops(&which("redis-server"));
}

#[test]
fn demo_with_slotway_shard() {
    require_tool!("redis-cli");
    demo_serves_and_stops(&workspace_bin("slotway-shard"));
}

#[test]
fn demo_refuses_a_taken_port_before_starting_anything() {
    require_tool!("redis-server");
    let base = free_cluster_port_block(6);
    let _holder = TcpListener::bind(("127.0.0.1", base + 2)).expect("hold a node port");
    let mut demo = Demo::spawn(&which("redis-server"), base);
    let status = demo.wait_exit(Duration::from_secs(20));
    assert!(status.is_some_and(|s| !s.success()), "exit {status:?}\n{}", demo.output());
    let out = demo.output();
    assert!(out.contains(&format!("port 127.0.0.1:{} is taken", base + 2)), "{out}");
    assert!(!out.contains("starting 6 nodes"), "{out}");
}

#[test]
fn demo_stops_everything_when_a_node_dies() {
    require_tool!("redis-server");
    require_tool!("redis-cli");
    let mut demo = Demo::start(&which("redis-server"));
    let victim = demo.pids[4];
    let ok = Command::new("kill").arg("-9").arg(victim.to_string()).status().unwrap();
    assert!(ok.success());
    let status = demo.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| !s.success()), "exit {status:?}\n{}", demo.output());
    let out = demo.output();
    let dead = format!("node 127.0.0.1:{} (pid {victim}) exited", demo.base + 4);
    assert!(out.contains(&dead), "{out}");
    for pid in &demo.pids {
        assert!(!alive(*pid), "node pid {pid} still running after the demo stopped");
    }
}
