//! The demo's shard nodes: child processes on 127.0.0.1, each in its own
//! folder under one work directory with a redis.conf-syntax file
//! (`cluster-enabled yes`, no persistence), its output in `node.log` there.
//!
//! Each child runs in its own process group, so a Ctrl-C in the terminal
//! reaches only `slotway`, which then stops the children itself, in order:
//! SIGTERM to each pid it started, a bounded wait, SIGKILL for any left,
//! each reaped. A child that exits on its own is reported with the end of
//! its log. Dropping [`Nodes`] without [`Nodes::stop`] (a panic) still
//! kills the children (`kill_on_drop`).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long the children get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often the children are checked for an unexpected exit.
const WATCH_EVERY: Duration = Duration::from_millis(200);
/// Lines of a dead node's log shown in the error.
const LOG_TAIL: usize = 8;

pub struct Node {
    pub port: u16,
    pub pid: u32,
    dir: PathBuf,
    child: Child,
    /// Set once the child has been reaped; its pid is no longer ours then.
    exited: Option<ExitStatus>,
}

impl Node {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        let log = self.dir.join("node.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n  ");
        if tail.is_empty() {
            "(its log is empty)".to_owned()
        } else {
            format!("end of its log:\n  {tail}")
        }
    }

    /// `Some(error)` once the child has exited.
    fn check(&mut self) -> Option<anyhow::Error> {
        if self.exited.is_none() {
            match self.child.try_wait() {
                Ok(Some(status)) => self.exited = Some(status),
                Ok(None) => return None,
                Err(e) => {
                    return Some(anyhow::anyhow!("node {} (pid {}): cannot check it: {e}", self.addr(), self.pid))
                }
            }
        }
        let status = self.exited.map(|s| s.to_string()).unwrap_or_default();
        Some(anyhow::anyhow!("node {} (pid {}) exited ({status}); {}", self.addr(), self.pid, self.log_tail()))
    }
}

pub struct Nodes {
    /// The work directory, removed by [`Nodes::stop`].
    pub root: PathBuf,
    pub list: Vec<Node>,
}

impl Nodes {
    /// Nodes under a fresh `root` (created here).
    pub fn new(root: PathBuf) -> anyhow::Result<Nodes> {
        if root.exists() {
            // A leftover of an earlier run that had our pid: ours to reuse.
            std::fs::remove_dir_all(&root).with_context(|| format!("cannot clear {}", root.display()))?;
        }
        std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
        Ok(Nodes { root, list: Vec::new() })
    }

    pub fn addrs(&self) -> Vec<String> {
        self.list.iter().map(Node::addr).collect()
    }

    /// Starts `bin` as a cluster node on `port`, in `<root>/<port>`.
    pub fn spawn(&mut self, bin: &Path, port: u16) -> anyhow::Result<()> {
        let dir = self.root.join(port.to_string());
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let conf = dir.join("node.conf");
        std::fs::write(&conf, node_conf(port, &dir)?).with_context(|| format!("cannot write {}", conf.display()))?;
        let log = std::fs::File::create(dir.join("node.log")).context("cannot create a node log")?;
        let log2 = log.try_clone().context("cannot share a node log")?;
        let child = Command::new(bin)
            .arg(&conf)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("a started child without a pid")?;
        self.list.push(Node { port, pid, dir, child, exited: None });
        Ok(())
    }

    /// An error for the first node that has exited.
    pub fn check(&mut self) -> anyhow::Result<()> {
        match self.list.iter_mut().find_map(Node::check) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until every node answers PING, failing early when one exits.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let every = Duration::from_millis(50);
        for node in 0..self.list.len() {
            let addr = self.list[node].addr();
            let mut client = slotway_ctl::Client::new(addr.as_str(), Duration::from_secs(1));
            let mut ready = false;
            for _ in 0..timeout.as_millis() / every.as_millis() + 2 {
                if client.ok(&["PING"]).await.is_ok() {
                    ready = true;
                    break;
                }
                self.check()?;
                if Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(every).await;
            }
            if !ready {
                anyhow::bail!("node {addr} did not answer PING within {} s", timeout.as_secs());
            }
        }
        Ok(())
    }

    /// Returns (the error) once a node exits; meanwhile checks them now and
    /// then.
    pub async fn watch(&mut self) -> anyhow::Error {
        loop {
            if let Err(e) = self.check() {
                return e;
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
    }

    /// Stops every child this process started (by its pid) and removes the
    /// work directory.
    pub async fn stop(&mut self) {
        for node in &mut self.list {
            if node.check().is_none() {
                // The child is not reaped yet, so the pid is still ours.
                if let Ok(pid) = i32::try_from(node.pid) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for node in &mut self.list {
            if node.exited.is_some() {
                continue;
            }
            match tokio::time::timeout_at(deadline, node.child.wait()).await {
                Ok(Ok(status)) => node.exited = Some(status),
                _ => {
                    tracing::warn!("node {} (pid {}) ignored SIGTERM; killing it", node.addr(), node.pid);
                    let _ = node.child.start_kill();
                    if let Ok(Ok(status)) = tokio::time::timeout(STOP_GRACE, node.child.wait()).await {
                        node.exited = Some(status);
                    }
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            tracing::warn!("cannot remove {}: {e}", self.root.display());
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        // Normally gone already (`stop`); after a panic the children are
        // killed by `kill_on_drop` and only the folder is left to remove.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A node's configuration file: a cluster node on loopback, nothing
/// persisted but the cluster's own `nodes.conf`.
fn node_conf(port: u16, dir: &Path) -> anyhow::Result<String> {
    let dir = dir.to_str().context("the work directory's path is not UTF-8")?;
    // The path goes between double quotes; refuse what would need escaping.
    if dir.contains(['"', '\\', '\n', '\r']) {
        anyhow::bail!("the work directory's path {dir:?} has characters a config file cannot quote simply");
    }
    Ok(format!(
        "# Written by `slotway demo`; removed when the demo stops.\n\
         port {port}\n\
         bind 127.0.0.1\n\
         dir \"{dir}\"\n\
         daemonize no\n\
         logfile \"\"\n\
         cluster-enabled yes\n\
         cluster-config-file nodes.conf\n\
         cluster-node-timeout 5000\n\
         save \"\"\n\
         appendonly no\n\
         repl-diskless-sync-delay 0\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_quotes_the_folder() {
        let text = node_conf(7001, Path::new("/tmp/slotway demo/7001")).unwrap();
        assert!(text.contains("\nport 7001\n"));
        assert!(text.contains("\ndir \"/tmp/slotway demo/7001\"\n"));
        assert!(text.contains("\ncluster-enabled yes\n"));
        assert!(node_conf(7001, Path::new("/tmp/a\"b")).is_err());
    }
}
