//! INFO: the sections and fields of Redis 7.0.15, in its order, with this
//! server's real figures where it has them and Redis's idle values for the
//! subsystems that are not built yet (persistence, replication, modules).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Cmd, Ctx};
use crate::error::CmdResult;
use crate::server::unix_ms;

mod counters;
mod system;

pub const COMMANDS: &[Cmd] = &[Cmd { name: "info", run: info }];

/// Every section in output order, and whether plain `INFO` includes it.
pub const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut wanted = [false; SECTIONS.len()];
    if args.len() == 1 {
        wanted.iter_mut().zip(SECTIONS).for_each(|(w, s)| *w = s.1);
    }
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "all" | "everything" => wanted = [true; SECTIONS.len()],
            "default" => wanted.iter_mut().zip(SECTIONS).for_each(|(w, s)| *w |= s.1),
            name => {
                if let Some(i) = SECTIONS.iter().position(|s| s.0 == name) {
                    wanted[i] = true;
                }
            }
        }
    }
    let text = render(ctx, &wanted);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// The INFO text for the chosen sections (indexed like [`SECTIONS`]).
pub fn render(ctx: &Ctx<'_>, wanted: &[bool]) -> String {
    let mut out = String::with_capacity(4096);
    for (i, (name, _)) in SECTIONS.iter().enumerate() {
        if !wanted.get(i).copied().unwrap_or(false) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = name.to_string();
        title[..1].make_ascii_uppercase();
        if *name == "cpu" {
            title = "CPU".into();
        }
        let _ = write!(out, "# {title}\r\n");
        let mut s = Section(&mut out);
        match *name {
            "server" => server(ctx, &mut s),
            "clients" => clients(ctx, &mut s),
            "memory" => counters::memory(ctx, &mut s),
            "persistence" => counters::persistence(ctx, &mut s),
            "stats" => counters::stats(ctx, &mut s),
            "replication" => super::replication::info(ctx, &mut s),
            "cpu" => system::cpu(&mut s),
            "commandstats" => commandstats(ctx, &mut s),
            "cluster" => s.f("cluster_enabled", ctx.config.cluster_enabled as u8),
            "keyspace" => keyspace(ctx, &mut s),
            // Modules, errorstats (not counted per error code yet) and
            // latencystats (no histograms yet) are printed empty.
            _ => {}
        }
    }
    out
}

pub struct Section<'a>(&'a mut String);

impl Section<'_> {
    pub fn f(&mut self, name: &str, v: impl std::fmt::Display) {
        let _ = write!(self.0, "{name}:{v}\r\n");
    }
}

/// Redis's `bytesToHuman`.
pub fn human(n: u64) -> String {
    let n = n as f64;
    const K: f64 = 1024.0;
    match n {
        n if n < K => format!("{n}B"),
        n if n < K * K => format!("{:.2}K", n / K),
        n if n < K * K * K => format!("{:.2}M", n / (K * K)),
        n if n < K * K * K * K => format!("{:.2}G", n / (K * K * K)),
        n if n < K * K * K * K * K => format!("{:.2}T", n / (K * K * K * K)),
        n => format!("{:.2}P", n / (K * K * K * K * K)),
    }
}

fn server(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    let cfg = ctx.config;
    let up = ctx.shared.uptime().as_secs();
    s.f("redis_version", "7.0.15");
    s.f("redis_git_sha1", "00000000");
    s.f("redis_git_dirty", 0);
    s.f("redis_build_id", "5107e2a4f3d8c6b1");
    s.f("redis_mode", if cfg.cluster_enabled { "cluster" } else { "standalone" });
    s.f("os", system::os());
    s.f("arch_bits", usize::BITS);
    s.f("monotonic_clock", "POSIX clock_gettime");
    s.f("multiplexing_api", "epoll");
    s.f("atomicvar_api", "c11-builtin");
    s.f("gcc_version", "0.0.0");
    s.f("process_id", std::process::id());
    s.f("process_supervised", "no");
    s.f("run_id", &ctx.shared.run_id);
    s.f("tcp_port", ctx.shared.port.load(Ordering::Relaxed));
    s.f("server_time_usec", ctx.now * 1000);
    s.f("uptime_in_seconds", up);
    s.f("uptime_in_days", up / 86400);
    s.f("hz", cfg.hz);
    s.f("configured_hz", cfg.hz);
    s.f("lru_clock", (ctx.now / 1000) & ((1 << 24) - 1));
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    s.f("executable", exe);
    s.f("config_file", cfg.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
    s.f("io_threads_active", 0);
}

fn clients(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    s.f("connected_clients", ctx.shared.clients.lock().len());
    s.f("cluster_connections", 0);
    s.f("maxclients", ctx.config.maxclients);
    s.f("client_recent_max_input_buffer", 0);
    s.f("client_recent_max_output_buffer", 0);
    s.f("blocked_clients", ctx.store.blocked_clients());
    s.f("tracking_clients", 0);
    s.f("clients_in_timeout_table", 0);
}

fn commandstats(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    let mut rows: Vec<_> = ctx
        .shared
        .commands
        .iter()
        .filter(|r| {
            r.calls.load(Ordering::Relaxed) + r.failed.load(Ordering::Relaxed) + r.rejected.load(Ordering::Relaxed) > 0
        })
        .collect();
    rows.sort_by_key(|r| r.spec.name);
    for r in rows {
        let calls = r.calls.load(Ordering::Relaxed);
        let usec = r.usec.load(Ordering::Relaxed);
        let per = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
        s.f(
            &format!("cmdstat_{}", r.spec.name),
            format!(
                "calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={},failed_calls={}",
                r.rejected.load(Ordering::Relaxed),
                r.failed.load(Ordering::Relaxed)
            ),
        );
    }
}

/// Entries looked at per database for `avg_ttl`: Redis estimates it by
/// sampling too, and INFO must not scan a large keyspace.
const TTL_SAMPLE: usize = 10_000;

fn keyspace(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    let now = unix_ms();
    for (i, db) in ctx.store.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        let expires = db.volatile_len();
        let (mut sum, mut n) = (0u128, 0u128);
        if expires > 0 {
            for (_, e) in db.iter(now).take(TTL_SAMPLE).filter(|(_, e)| e.expire() != 0) {
                sum += e.expire().saturating_sub(now) as u128;
                n += 1;
            }
        }
        let avg = sum.checked_div(n).unwrap_or(0);
        s.f(&format!("db{i}"), format!("keys={},expires={expires},avg_ttl={avg}", db.len()));
    }
}

#[cfg(test)]
mod tests;
