//! Test harness shared by the integration tests and benchmarks.
//!
//! - [`Server`]: a `slotway-shard` or `redis-server` child process on a free
//!   loopback port, killed by its pid when dropped.
//! - [`RawClient`]: a blocking RESP client that returns each reply's exact
//!   bytes, for byte-for-byte comparisons between servers.
//! - [`require_tool!`]: skips a test when an external tool is missing, but
//!   only outside CI; under `CI` a missing tool fails the test.
//! - [`RedisCluster`] (`cluster`): a real Redis Cluster of redis-server
//!   processes; [`Proxy`] (`proxy`): the `slotway` binary in front of one.
//! - [`wait_until!`] (`wait`): bounded polling with tunable patience.
//! - [`Reply`] (`reply`): decoded replies, for tests that look inside them.

pub mod cluster;
pub mod proxy;
pub mod relay;
pub mod reply;
pub mod wait;

pub use cluster::RedisCluster;
pub use proxy::Proxy;
pub use reply::Reply;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Skips the calling test (returns early) when `tool` is not on PATH,
/// unless the `CI` environment variable is set, in which case it panics.
#[macro_export]
macro_rules! require_tool {
    ($tool:expr) => {
        if !$crate::have_tool($tool) {
            if std::env::var_os("CI").is_some() {
                panic!("{} is required in CI but is not installed", $tool);
            }
            eprintln!("skipping: {} is not installed", $tool);
            return;
        }
    };
}

pub fn have_tool(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The directory holding this build's binaries (`target/<profile>`),
/// derived from the running test executable (`target/<profile>/deps/x`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("profile dir").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// Path to one of the workspace's binaries, built on first use if the test
/// run did not build it (a test package cannot depend on another package's
/// binary).
pub fn workspace_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let path = bin_dir().join(name);
    if !path.exists() {
        BUILT.get_or_init(|| {
            let release = bin_dir().file_name().is_some_and(|n| n == "release");
            // The test runs in its own package's folder, so name the
            // workspace: a bare `--bins` builds only that package's (none).
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args(["build", "--workspace", "--bins", "--manifest-path"]).arg(&manifest);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build");
            assert!(status.success(), "cargo build --bins failed");
        });
    }
    assert!(path.exists(), "{} not found at {}", name, path.display());
    path
}

/// A server process on 127.0.0.1, killed when dropped.
pub struct Server {
    pub port: u16,
    pub child: Child,
    pub dir: PathBuf,
}

impl Server {
    /// Starts `slotway-shard` with extra `--directive value` arguments.
    pub fn shard(extra: &[&str]) -> Server {
        Server::start(&workspace_bin("slotway-shard"), extra)
    }

    /// Starts the real `redis-server` with persistence off.
    pub fn redis(extra: &[&str]) -> Server {
        Server::start(Path::new("redis-server"), extra)
    }

    pub fn start(bin: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let dir = scratch_dir(&format!("srv-{port}"));
        let port_s = port.to_string();
        let mut args: Vec<&str> = vec!["--port", &port_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
        let dir_s = dir.to_string_lossy().into_owned();
        args.extend(["--dir", &dir_s]);
        args.extend_from_slice(extra);
        let child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let server = Server { port, child, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = RawClient::connect(self.port) {
                if c.cmd(&["PING"]).is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server on port {} did not become ready", self.port);
    }

    pub fn client(&self) -> RawClient {
        RawClient::connect(self.port).expect("connect")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `python3 <args...> <port>`, a redis-py script against a server.
/// Without the redis package installed it only skips, outside CI; any other
/// failure panics with the script's output, prefixed by `what`.
pub fn run_redis_py(args: &[&str], port: u16, what: &str) {
    let out = Command::new("python3").args(args).arg(port.to_string()).output().expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'redis'") && std::env::var_os("CI").is_none() {
        eprintln!("skipping: the python redis package is not installed");
        return;
    }
    assert!(out.status.success(), "{what} failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), stderr);
}

/// A fresh directory under the system temp dir.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slotway-test-{}-{}", std::process::id(), tag));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A blocking RESP client that hands back each reply's raw bytes.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub fn connect(port: u16) -> std::io::Result<RawClient> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(RawClient { stream, buf: Vec::new() })
    }

    /// Sends one command as a multibulk request and reads one reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<Vec<u8>> {
        self.send(args)?;
        self.read_reply()
    }

    /// Sends a command without waiting for its reply (pipelining).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<()> {
        let mut req = Vec::new();
        encode_command(&mut req, args);
        self.stream.write_all(&req)
    }

    /// Writes raw bytes (malformed input, inline commands).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads exactly one complete reply and returns its bytes.
    pub fn read_reply(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(n) = reply_len(&self.buf, 0) {
                return Ok(self.buf.drain(..n).collect());
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = match self.stream.read(&mut chunk) {
                // A signal to the test process is no reason to fail a read.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Like [`RawClient::cmd`], returning the reply as (lossy) text.
    pub fn cmd_str<A: AsRef<[u8]>>(&mut self, args: &[A]) -> String {
        String::from_utf8_lossy(&self.cmd(args).expect("reply")).into_owned()
    }

    /// Like [`RawClient::cmd`], decoded.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<Reply> {
        let raw = self.cmd(args)?;
        Reply::parse(&raw).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "undecodable reply"))
    }

    /// Sends every command from a second thread while this one reads the
    /// replies, so a long pipeline cannot deadlock on full socket buffers;
    /// returns one raw reply per command, in order.
    pub fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> std::io::Result<Vec<Vec<u8>>> {
        let mut writer = self.stream.try_clone()?;
        let mut bytes = Vec::new();
        for args in cmds {
            encode_command(&mut bytes, args);
        }
        let sender = std::thread::spawn(move || writer.write_all(&bytes));
        let mut replies = Vec::with_capacity(cmds.len());
        let mut failure = None;
        for _ in 0..cmds.len() {
            match self.read_reply() {
                Ok(r) => replies.push(r),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_some() {
            // Unblock the sender if the peer stopped reading.
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
        let sent = sender.join().map_err(|_| std::io::Error::other("pipeline writer panicked"))?;
        match failure {
            Some(e) => Err(e),
            None => sent.map(|_| replies),
        }
    }

    /// Sets how long a read may wait for a reply (10 s by default).
    pub fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    /// Reads until the server closes the connection; returns what came.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        let _ = self.stream.read_to_end(&mut out);
        out
    }
}

/// Appends `args` as one multibulk request.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Length of the complete RESP2/RESP3 reply at `at`, or `None` if it has
/// not fully arrived.
pub fn reply_len(buf: &[u8], at: usize) -> Option<usize> {
    let line_end = buf.get(at..)?.windows(2).position(|w| w == b"\r\n")? + at;
    let header = std::str::from_utf8(&buf[at + 1..line_end]).ok()?;
    let after = line_end + 2;
    match buf[at] {
        b'$' | b'=' | b'!' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                return Some(after - at);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end - at)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = header.parse().ok()?;
            let items = if matches!(buf[at], b'%' | b'|') { n * 2 } else { n };
            let mut pos = after;
            for _ in 0..items.max(0) {
                pos += reply_len(buf, pos)?;
            }
            let total = pos - at;
            if buf[at] == b'|' {
                // An attribute precedes the real reply.
                return Some(total + reply_len(buf, pos)?);
            }
            Some(total)
        }
        _ => Some(after - at),
    }
}

/// Splits a reply line the way redis-cli's prompt does (quotes, escapes).
pub fn split_command(line: &str) -> Vec<Vec<u8>> {
    slotway_resp::split_args(line.as_bytes()).expect("balanced quotes").into_iter().map(|b| b.to_vec()).collect()
}

#[cfg(test)]
mod tests {
    use super::reply_len;

    #[test]
    fn reply_lengths() {
        assert_eq!(reply_len(b"+OK\r\n", 0), Some(5));
        assert_eq!(reply_len(b"$3\r\nabc\r\n", 0), Some(9));
        assert_eq!(reply_len(b"$3\r\nab", 0), None);
        assert_eq!(reply_len(b"*2\r\n:1\r\n$-1\r\n", 0), Some(13));
        assert_eq!(reply_len(b"%1\r\n+a\r\n:1\r\n", 0), Some(12));
        assert_eq!(reply_len(b"*-1\r\n", 0), Some(5));
    }
}
