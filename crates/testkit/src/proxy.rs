//! The `slotway` proxy as a child process in front of a cluster, plus a
//! tiny blocking HTTP client for its admin endpoints (`/metrics`,
//! `/readyz`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait::wait_for;
use crate::{free_port, scratch_dir, workspace_bin, RawClient};

pub struct Proxy {
    /// Where clients connect.
    pub port: u16,
    /// Where `/metrics`, `/readyz` are served.
    pub metrics_port: u16,
    child: Child,
    log: PathBuf,
}

impl Proxy {
    /// Starts `slotway --listen 127.0.0.1:<free> --seeds 127.0.0.1:<seed>,...
    /// --metrics-listen 127.0.0.1:<free> <extra...>` and waits until it
    /// answers PING. Its stderr goes to a scratch file shown by [`Proxy::log`].
    /// `SLOTWAY_PROXY_BIN` runs another binary instead (a release build, or
    /// a stand-in when checking the tests themselves).
    pub fn start(seeds: &[u16], extra: &[&str]) -> Proxy {
        let bin = std::env::var_os("SLOTWAY_PROXY_BIN").map(PathBuf::from).unwrap_or_else(|| workspace_bin("slotway"));
        Proxy::start_bin(bin, seeds, extra)
    }

    pub fn start_bin(bin: PathBuf, seeds: &[u16], extra: &[&str]) -> Proxy {
        let port = free_port();
        let metrics_port = free_port();
        let dir = scratch_dir(&format!("proxy-{port}"));
        let log = dir.join("slotway.log");
        let seeds: Vec<String> = seeds.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let stderr = std::fs::File::create(&log).expect("proxy log file");
        let child = Command::new(&bin)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--seeds")
            .arg(seeds.join(","))
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut proxy = Proxy { port, metrics_port, child, log };
        let up = wait_for(Duration::from_secs(15), || {
            if let Ok(Some(_)) = proxy.child.try_wait() {
                return true;
            }
            RawClient::connect(port).ok().and_then(|mut c| c.cmd(&["PING"]).ok()).is_some_and(|r| r == b"+PONG\r\n")
        });
        if let Ok(Some(status)) = proxy.child.try_wait() {
            panic!("slotway exited ({status}) before answering PING:\n{}", proxy.log());
        }
        assert!(up.is_ok(), "slotway on port {port} did not answer PING:\n{}", proxy.log());
        proxy
    }

    pub fn client(&self) -> RawClient {
        RawClient::connect(self.port).unwrap_or_else(|e| panic!("connect to slotway: {e}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the proxy is still running (it must never exit on its own).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the proxy wrote to stderr so far (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` on the admin port: (status, body).
    pub fn http_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.metrics_port, path)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.log.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A one-shot HTTP/1.1 GET on 127.0.0.1 (`Connection: close`); chunked
/// bodies are decoded.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body).ok_or_else(bad)? } else { body.to_owned() };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    for _ in 0..100_000 {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size + 2..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(super::dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_deref(), Some("abcde"));
        assert_eq!(super::dechunk("3\r\nab"), None);
    }
}
