//! SLOWLOG, LATENCY and MEMORY: what the server knows about its own speed
//! and size.
//!
//! The latency monitor is off (Redis's default threshold is 0), so LATENCY
//! reports no events; LATENCY HISTOGRAM gives each command's call count
//! with an empty histogram, since per-call latencies are not bucketed.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::super::{help, is, subcommand_syntax, Ctx};
use super::int_fields;
use crate::error::{CmdError, CmdResult};
use crate::store::{Entry, Value};

const SLOWLOG_HELP: &[&str] = &[
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
];

pub fn slowlog(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match &sub[..] {
        b"get" => {
            if args.len() > 3 {
                return Err(subcommand_syntax(args));
            }
            let count = match args.get(2) {
                None => 10,
                Some(a) => super::super::parse_i64(a)
                    .ok()
                    .filter(|&n| n >= -1)
                    .ok_or_else(|| CmdError::err("ERR count should be greater than or equal to -1"))?,
            };
            let log = ctx.shared.slowlog.lock();
            let n = if count == -1 { log.entries.len() } else { log.entries.len().min(count as usize) };
            ctx.out.array(n);
            for e in log.entries.iter().take(n) {
                ctx.out.array(6);
                ctx.out.int(e.id as i64);
                ctx.out.int(e.at_secs as i64);
                ctx.out.int(e.usec as i64);
                ctx.out.array(e.args.len());
                for a in &e.args {
                    ctx.out.bulk(a);
                }
                ctx.out.bulk(e.addr.as_bytes());
                ctx.out.bulk(e.name.as_bytes());
            }
        }
        b"len" => {
            let n = ctx.shared.slowlog.lock().entries.len();
            ctx.out.int(n as i64);
        }
        b"reset" => {
            ctx.shared.slowlog.lock().entries.clear();
            ctx.out.ok();
        }
        b"help" => help(ctx, "SLOWLOG", SLOWLOG_HELP),
        _ => return Err(subcommand_syntax(args)),
    }
    Ok(())
}

const LATENCY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
];

const LATENCY_DISABLED: &str = "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n";

pub fn latency(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match &sub[..] {
        b"latest" | b"history" => ctx.out.array(0),
        b"reset" => ctx.out.int(0),
        b"doctor" => ctx.out.verbatim(LATENCY_DISABLED.as_bytes()),
        b"graph" => {
            return Err(CmdError::err(format!(
                "ERR No samples available for event '{}'",
                String::from_utf8_lossy(&args[2])
            )))
        }
        b"histogram" => {
            let mut rows = Vec::new();
            let wanted = &args[2..];
            for reg in ctx.shared.commands.iter() {
                let calls = reg.calls.load(Ordering::Relaxed);
                let named = wanted.is_empty() || wanted.iter().any(|w| is(w, reg.spec.name));
                if calls > 0 && named {
                    rows.push((reg.spec.name, calls));
                }
            }
            ctx.out.map(rows.len());
            for (name, calls) in rows {
                ctx.out.bulk(name.as_bytes());
                ctx.out.map(2);
                ctx.out.bulk(b"calls");
                ctx.out.int(calls as i64);
                ctx.out.bulk(b"histogram_usec");
                ctx.out.map(0);
            }
        }
        b"help" => help(ctx, "LATENCY", LATENCY_HELP),
        _ => return Err(subcommand_syntax(args)),
    }
    Ok(())
}

const MEMORY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

const MEMORY_DOCTOR_EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n";
const MEMORY_DOCTOR_OK: &str =
    "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n";

pub fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match &sub[..] {
        b"usage" => {
            let mut samples = 5usize;
            let mut j = 3;
            while j < args.len() {
                if is(&args[j], "samples") && j + 1 < args.len() {
                    let n = super::super::parse_i64(&args[j + 1])?;
                    samples = if n == 0 { usize::MAX } else { n.max(1) as usize };
                    j += 2;
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            let now = ctx.now;
            let (db, out) = ctx.split();
            match db.get(&args[2], now) {
                Some(e) => out.int(key_footprint(&args[2], e, samples) as i64),
                None => out.null(),
            }
        }
        b"stats" => stats(ctx),
        b"doctor" => {
            // Redis has nothing to say below 5 MB of data.
            let used = crate::memory::used_bytes();
            ctx.out.verbatim(if used < 5 << 20 { MEMORY_DOCTOR_EMPTY } else { MEMORY_DOCTOR_OK }.as_bytes());
        }
        b"malloc-stats" => {
            let text = format!(
                "___ Begin jemalloc statistics ___\nallocated: {}\nresident: {}\n--- End jemalloc statistics ---\n",
                crate::memory::used_bytes(),
                crate::memory::resident_bytes()
            );
            ctx.out.verbatim(text.as_bytes());
        }
        b"purge" => ctx.out.ok(),
        b"help" => help(ctx, "MEMORY", MEMORY_HELP),
        _ => return Err(subcommand_syntax(args)),
    }
    Ok(())
}

/// Bytes held by one allocated buffer of `len` bytes: jemalloc rounds
/// small sizes up to 8-byte (then 16-byte) classes.
fn alloc(len: usize) -> usize {
    if len == 0 {
        0
    } else if len <= 128 {
        len.div_ceil(8) * 8
    } else {
        len.div_ceil(16) * 16
    }
}

/// An estimate of what `key` and its value occupy: the key and the entry
/// in its slot map, the value's container, and its elements, of which up to
/// `samples` are measured and the average is taken for the rest (as Redis
/// samples nested values).
fn key_footprint(key: &[u8], e: &Entry, samples: usize) -> usize {
    const FAT_PTR: usize = 16;
    // Slot map bucket: key pointer, entry, one control byte.
    let base = alloc(key.len()) + FAT_PTR + std::mem::size_of::<Entry>() + 1;
    fn sampled<'a>(n: usize, samples: usize, sizes: impl Iterator<Item = usize> + 'a) -> usize {
        let (mut seen, mut total) = (0usize, 0usize);
        for s in sizes.take(samples) {
            seen += 1;
            total += s;
        }
        total.checked_div(seen).map_or(0, |avg| avg.saturating_mul(n))
    }
    let value = match &e.value {
        Value::Str(s) => alloc(s.len()),
        Value::List(l) => l.capacity() * FAT_PTR + sampled(l.len(), samples, l.iter().map(|v| alloc(v.len()))),
        Value::Hash(h) => {
            // Per entry: key and value pointers, the hash, the index slot.
            let per = 2 * FAT_PTR + 8 + 8;
            64 + h.capacity() * per + sampled(h.len(), samples, h.iter().map(|(k, v)| alloc(k.len()) + alloc(v.len())))
        }
        Value::Set(s) => {
            64 + s.capacity() * (FAT_PTR + 16) + sampled(s.len(), samples, s.iter().map(|m| alloc(m.len())))
        }
        Value::ZSet(z) => {
            // A hash entry (member, score) and a tree entry (score, member)
            // per member, each member stored twice.
            let per = (FAT_PTR + 8 + 1) + (8 + FAT_PTR + 8);
            96 + z.len() * per + sampled(z.len(), samples, z.iter().map(|(m, _)| 2 * alloc(m.len())))
        }
    };
    base + value
}

fn stats(ctx: &mut Ctx<'_>) {
    let used = crate::memory::used_bytes();
    let resident = crate::memory::resident_bytes();
    let clients = ctx.shared.clients.lock().len() as u64;
    let clients_mem = clients * 20 * 1024;
    let nonempty: Vec<(usize, usize)> =
        ctx.store.dbs.iter().enumerate().filter(|(_, d)| !d.is_empty()).map(|(i, d)| (i, d.len())).collect();
    let keys: usize = nonempty.iter().map(|(_, n)| n).sum();
    let overhead = clients_mem + nonempty.iter().map(|(_, n)| *n as u64 * 24).sum::<u64>();
    let dataset = used.saturating_sub(overhead);
    let pct = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 * 100.0 / b as f64 };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let out = &mut *ctx.out;
    out.map(27 + nonempty.len());
    int_fields(
        out,
        &[
            ("peak.allocated", used as i64),
            ("total.allocated", used as i64),
            ("startup.allocated", 0),
            ("replication.backlog", 0),
            ("clients.slaves", 0),
            ("clients.normal", clients_mem as i64),
            ("cluster.links", 0),
            ("aof.buffer", 0),
            ("lua.caches", 0),
            ("functions.caches", 0),
        ],
    );
    for (i, n) in &nonempty {
        out.bulk(format!("db.{i}").as_bytes());
        out.map(3);
        int_fields(
            out,
            &[
                ("overhead.hashtable.main", *n as i64 * 24),
                ("overhead.hashtable.expires", 0),
                ("overhead.hashtable.slot-to-keys", 0),
            ],
        );
    }
    int_fields(
        out,
        &[
            ("overhead.total", overhead as i64),
            ("keys.count", keys as i64),
            ("keys.bytes-per-key", if keys == 0 { 0 } else { (used / keys as u64) as i64 }),
            ("dataset.bytes", dataset as i64),
        ],
    );
    out.bulk(b"dataset.percentage");
    out.double(pct(dataset, used));
    out.bulk(b"peak.percentage");
    out.double(100.0);
    int_fields(
        out,
        &[
            ("allocator.allocated", used as i64),
            ("allocator.active", used as i64),
            ("allocator.resident", resident as i64),
        ],
    );
    out.bulk(b"allocator-fragmentation.ratio");
    out.double(1.0);
    out.bulk(b"allocator-fragmentation.bytes");
    out.int(0);
    out.bulk(b"allocator-rss.ratio");
    out.double(ratio(resident, used));
    out.bulk(b"allocator-rss.bytes");
    out.int(resident.saturating_sub(used) as i64);
    out.bulk(b"rss-overhead.ratio");
    out.double(1.0);
    out.bulk(b"rss-overhead.bytes");
    out.int(0);
    out.bulk(b"fragmentation");
    out.double(ratio(resident, used));
    out.bulk(b"fragmentation.bytes");
    out.int(resident.saturating_sub(used) as i64);
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn slowlog_records_and_resets() {
        let mut t = TestServer::with_config(crate::config::Config { slowlog_log_slower_than: 0, ..Default::default() });
        t.cmd("SLOWLOG RESET");
        t.cmd("CLIENT SETNAME nm");
        let r = t.cmd("SLOWLOG GET 1");
        assert!(r.starts_with("*1\r\n*6\r\n:"), "{r}");
        assert!(
            r.ends_with("*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$2\r\nnm\r\n$11\r\n127.0.0.1:1\r\n$2\r\nnm\r\n"),
            "{r}"
        );
        assert_eq!(t.cmd("SLOWLOG GET -2"), "-ERR count should be greater than or equal to -1\r\n");
        assert_eq!(t.cmd("SLOWLOG RESET"), "+OK\r\n");
        // SLOWLOG RESET itself is logged after the reset.
        assert_eq!(t.cmd("SLOWLOG LEN"), ":1\r\n");
        assert!(t.cmd("SLOWLOG GET 1 2").starts_with("-ERR unknown subcommand or wrong number of arguments for 'GET'"));
    }

    #[test]
    fn latency_is_empty() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("LATENCY LATEST"), "*0\r\n");
        assert_eq!(t.cmd("LATENCY HISTORY x"), "*0\r\n");
        assert_eq!(t.cmd("LATENCY RESET"), ":0\r\n");
        assert_eq!(t.cmd("LATENCY GRAPH x"), "-ERR No samples available for event 'x'\r\n");
        assert!(t.cmd("LATENCY DOCTOR").starts_with("$288\r\nI'm sorry, Dave"));
        t.cmd("PING");
        assert!(t.cmd("LATENCY HISTOGRAM ping").contains("$4\r\nping\r\n*4\r\n$5\r\ncalls\r\n:1\r\n"));
    }

    #[test]
    fn memory_usage_grows_with_the_value() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("MEMORY USAGE nokey"), "$-1\r\n");
        t.cmd("SET small x");
        let big = "x".repeat(10_000);
        t.cmd(&format!("SET big {big}"));
        let n = |r: String| r.trim_start_matches(':').trim_end().parse::<usize>().expect("int");
        let small = n(t.cmd("MEMORY USAGE small"));
        let large = n(t.cmd("MEMORY USAGE big SAMPLES 0"));
        assert!(small > 16 && small < 200, "{small}");
        assert!((10_000..10_300).contains(&large), "{large}");
        assert_eq!(t.cmd("MEMORY USAGE small FOO"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("MEMORY USAGE small SAMPLES x"), "-ERR value is not an integer or out of range\r\n");
        assert!(t.cmd("MEMORY STATS").starts_with("*56\r\n$14\r\npeak.allocated\r\n"));
        assert_eq!(t.cmd("MEMORY PURGE"), "+OK\r\n");
        assert!(t.cmd("MEMORY DOCTOR").starts_with("$268\r\nHi Sam"));
    }
}
