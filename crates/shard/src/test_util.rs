//! Running commands in-process for unit tests: no sockets, the real
//! dispatch path.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use slotway_resp::ReplyBuf;

use crate::client::Client;
use crate::command::{Ctx, Mode};
use crate::config::Config;
use crate::server::{unix_ms, Shared};

/// A server without listeners and one client connected to it.
pub struct TestServer {
    pub shared: Arc<Shared>,
    pub client: Client,
}

impl TestServer {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(mut config: Config) -> Self {
        // No save rules: FLUSHALL and SHUTDOWN would write dump.rdb into
        // the test's working directory.
        config.save.clear();
        let shared = Shared::new(config);
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let client = Client::new(shared.new_client(addr, addr), true);
        TestServer { shared, client }
    }

    /// Runs one command (split on spaces) and returns the raw reply.
    pub fn cmd(&mut self, line: &str) -> String {
        let args: Vec<Bytes> = line.split_whitespace().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        self.cmd_args(&args)
    }

    /// Runs one command given as separate arguments (which may hold spaces).
    pub fn cmd_args(&mut self, args: &[Bytes]) -> String {
        String::from_utf8_lossy(&self.cmd_raw(args)).into_owned()
    }

    /// Runs one command and returns the reply's exact bytes (binary safe).
    pub fn cmd_raw(&mut self, args: &[Bytes]) -> Vec<u8> {
        let shared = self.shared.clone();
        let config = shared.config.load_full();
        let mut store = shared.store.lock();
        let mut out = ReplyBuf::new(self.client.proto);
        let mut ctx = Ctx::new(&mut store, &shared, &config, &mut self.client, &mut out, unix_ms(), Mode::Normal);
        crate::dispatch::execute(&mut ctx, args);
        if !store.ready.is_empty() {
            crate::dispatch::serve_blocked(&mut store, &shared);
        }
        out.buf.to_vec()
    }
}

impl Default for TestServer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_roundtrip() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("SET a b"), "+OK\r\n");
        assert_eq!(t.cmd("get a"), "$1\r\nb\r\n");
        assert_eq!(t.cmd("del a nope"), ":1\r\n");
        assert_eq!(t.cmd("GET a"), "$-1\r\n");
        assert_eq!(t.cmd("get"), "-ERR wrong number of arguments for 'get' command\r\n");
        assert_eq!(t.cmd("nope x"), "-ERR unknown command 'nope', with args beginning with: 'x' \r\n");
    }
}

#[cfg(test)]
mod rename_tests {
    use super::*;

    #[test]
    fn rename_command_moves_and_disables() {
        let config = Config {
            renames: vec![("GET".into(), "fetch".into()), ("flushall".into(), String::new())],
            ..Config::default()
        };
        let mut t = TestServer::with_config(config);
        t.cmd("SET a 1");
        assert_eq!(t.cmd("FETCH a"), "$1\r\n1\r\n");
        assert_eq!(t.cmd("GET a"), "-ERR unknown command 'GET', with args beginning with: 'a' \r\n");
        assert_eq!(t.cmd("FLUSHALL"), "-ERR unknown command 'FLUSHALL', with args beginning with: \r\n");
    }
}
