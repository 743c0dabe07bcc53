//! Differential tests: the same command scripts go to a real `redis-server`
//! and to `slotway-shard`, and every reply must be byte-for-byte equal.
//!
//! Scripts live in `tests/scripts/*.redis`, one command per line in
//! redis-cli's quoting. A line starting with `~ ` compares its reply as an
//! unordered collection (set members come back in hash order), `! ` only
//! checks that both reply with the same type (first byte), and `#` starts a
//! comment.

use std::path::Path;

use slotway_testkit::{require_tool, split_command, RawClient, Server};

/// Sorts the elements of a flat aggregate reply so unordered replies can be
/// compared.
fn normalize_unordered(reply: &[u8]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut pos = match reply.iter().position(|&b| b == b'\n') {
        Some(p) if matches!(reply[0], b'*' | b'~' | b'%') => p + 1,
        _ => return vec![reply.to_vec()],
    };
    while pos < reply.len() {
        let n = slotway_testkit::reply_len(reply, pos).expect("complete reply");
        items.push(reply[pos..pos + n].to_vec());
        pos += n;
    }
    items.sort();
    items
}

fn run_script(name: &str, redis: &mut RawClient, shard: &mut RawClient) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name);
    let text = std::fs::read_to_string(&path).expect("read script");
    let mut failures = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (mode, cmd) = match line.split_at(2) {
            ("~ ", rest) => ('~', rest),
            ("! ", rest) => ('!', rest),
            _ => ('=', line),
        };
        let args = split_command(cmd);
        let want = redis.cmd(&args).expect("redis reply");
        let got = shard.cmd(&args).expect("shard reply");
        let same = match mode {
            '~' => normalize_unordered(&want) == normalize_unordered(&got),
            '!' => want.first() == got.first(),
            _ => want == got,
        };
        if !same {
            failures.push(format!(
                "{}:{}: {}\n  redis-server: {:?}\n  slotway-shard: {:?}",
                name,
                no + 1,
                cmd,
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    failures
}

fn compare(script: &str) {
    require_tool!("redis-server");
    let redis = Server::redis(&[]);
    let shard = Server::shard(&[]);
    let failures = run_script(script, &mut redis.client(), &mut shard.client());
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn strings() {
    compare("strings.redis");
}

#[test]
fn bitmaps() {
    compare("bitmaps.redis");
}

#[test]
fn keys() {
    compare("keys.redis");
}

#[test]
fn persistence() {
    compare("persistence.redis");
}

#[test]
fn hashes() {
    compare("hashes.redis");
}

#[test]
fn lists() {
    compare("lists.redis");
}

#[test]
fn sets() {
    compare("sets.redis");
}

#[test]
fn sorted_sets() {
    compare("zsets.redis");
}

#[test]
fn connection_and_server() {
    compare("server.redis");
}

#[test]
fn transactions() {
    compare("multi.redis");
}

#[test]
fn protocol_errors() {
    require_tool!("redis-server");
    let redis = Server::redis(&[]);
    let shard = Server::shard(&[]);
    let cases: &[&[u8]] = &[
        b"*1\r\n$4\r\nPING\r\n*x\r\n",
        b"*1\r\n$-5\r\n",
        b"*2\r\n:1\r\n",
        b"*1\r\n$999999999999\r\n",
        b"set a \"unbalanced\r\n",
        b"\r\n\r\nPING\r\n",
        b"*0\r\n*1\r\n$4\r\nPING\r\n",
    ];
    for case in cases {
        let mut r = redis.client();
        let mut s = shard.client();
        r.send_raw(case).unwrap();
        s.send_raw(case).unwrap();
        // Both close after a protocol error, or keep the connection; read
        // what arrives until close or a short timeout, then compare.
        r.send_raw(b"*1\r\n$4\r\nQUIT\r\n").ok();
        s.send_raw(b"*1\r\n$4\r\nQUIT\r\n").ok();
        let (want, got) = (r.read_to_close(), s.read_to_close());
        assert_eq!(
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got),
            "input {:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn config() {
    compare("config.redis");
}
