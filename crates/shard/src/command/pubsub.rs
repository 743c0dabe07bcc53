//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH
//! and PUBSUB's introspection subcommands.
//!
//! Standalone Redis 7.0 keeps shard channels in their own namespace: the
//! count SSUBSCRIBE replies with is the shard channels alone, the count of
//! (P)SUBSCRIBE is channels plus patterns, and patterns never match shard
//! channels.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{help, is, subcommand_syntax, Cmd, Ctx, Mode};
use crate::error::{CmdError, CmdResult};
use crate::pubsub::{OutputLimit, Publisher};

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "subscribe", run: subscribe },
    Cmd { name: "psubscribe", run: psubscribe },
    Cmd { name: "ssubscribe", run: ssubscribe },
    Cmd { name: "unsubscribe", run: unsubscribe },
    Cmd { name: "punsubscribe", run: punsubscribe },
    Cmd { name: "sunsubscribe", run: sunsubscribe },
    Cmd { name: "publish", run: publish },
    Cmd { name: "spublish", run: spublish },
    Cmd { name: "pubsub", run: pubsub },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn set<'c>(self, ctx: &'c mut Ctx<'_>) -> &'c mut indexmap::IndexSet<Bytes> {
        match self {
            Kind::Channel => &mut ctx.client.channels,
            Kind::Pattern => &mut ctx.client.patterns,
            Kind::Shard => &mut ctx.client.shard_channels,
        }
    }

    /// The count a (un)subscribe reply carries.
    fn count(self, ctx: &Ctx<'_>) -> usize {
        match self {
            Kind::Channel | Kind::Pattern => ctx.client.subscription_count(),
            Kind::Shard => ctx.client.shard_channels.len(),
        }
    }
}

/// The per-client output limit of `class` from the configuration.
pub fn output_limit((hard, soft, soft_secs): (usize, usize, u64)) -> OutputLimit {
    OutputLimit { hard, soft, soft_secs }
}

fn sync_counters(ctx: &Ctx<'_>) {
    let h = &ctx.client.handle;
    h.subscriptions.store(ctx.client.channels.len(), Ordering::Relaxed);
    h.psubscriptions.store(ctx.client.patterns.len(), Ordering::Relaxed);
    h.ssubscriptions.store(ctx.client.shard_channels.len(), Ordering::Relaxed);
}

/// One (un)subscribe confirmation: `[reply, name or null, count after]`.
fn confirm(ctx: &mut Ctx<'_>, kind: Kind, reply: &[u8], name: Option<&[u8]>) {
    let n = kind.count(ctx);
    ctx.out.push(3);
    ctx.out.bulk(reply);
    match name {
        Some(name) => ctx.out.bulk(name),
        None => ctx.out.null(),
    }
    ctx.out.int(n as i64);
}

fn do_subscribe(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind, reply: &[u8]) -> CmdResult {
    // A client created without a session (never the case for a real
    // connection) has nowhere to receive messages.
    let sub = ctx.client.subscriber().ok_or_else(|| CmdError::err("ERR this client cannot subscribe"))?;
    for ch in &args[1..] {
        if kind.set(ctx).insert(ch.clone()) {
            let mut ps = ctx.shared.pubsub.lock();
            match kind {
                Kind::Channel => ps.subscribe(ch.clone(), sub.clone(), false),
                Kind::Shard => ps.subscribe(ch.clone(), sub.clone(), true),
                Kind::Pattern => ps.psubscribe(ch.clone(), sub.clone()),
            };
        }
        confirm(ctx, kind, reply, Some(ch));
    }
    sync_counters(ctx);
    Ok(())
}

fn do_unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind, reply: &[u8]) -> CmdResult {
    let names: Vec<Bytes> = if args.len() > 1 { args[1..].to_vec() } else { kind.set(ctx).iter().cloned().collect() };
    if names.is_empty() {
        confirm(ctx, kind, reply, None);
        return Ok(());
    }
    let id = ctx.client.id();
    for ch in &names {
        if kind.set(ctx).shift_remove(ch) {
            let mut ps = ctx.shared.pubsub.lock();
            match kind {
                Kind::Channel => ps.unsubscribe(ch, id, false),
                Kind::Shard => ps.unsubscribe(ch, id, true),
                Kind::Pattern => ps.punsubscribe(ch, id),
            };
        }
        confirm(ctx, kind, reply, Some(ch));
    }
    sync_counters(ctx);
    Ok(())
}

fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    do_subscribe(ctx, args, Kind::Channel, b"subscribe")
}

fn psubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    do_subscribe(ctx, args, Kind::Pattern, b"psubscribe")
}

fn ssubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Redis 7.0 treats a client inside EXEC as one that may not block and
    // refuses SSUBSCRIBE there (SUBSCRIBE keeps an exemption for MULTI).
    if ctx.mode == Mode::Exec {
        return Err(CmdError::err("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client"));
    }
    do_subscribe(ctx, args, Kind::Shard, b"ssubscribe")
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    do_unsubscribe(ctx, args, Kind::Channel, b"unsubscribe")
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    do_unsubscribe(ctx, args, Kind::Pattern, b"punsubscribe")
}

fn sunsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    do_unsubscribe(ctx, args, Kind::Shard, b"sunsubscribe")
}

/// Drops every subscription of the client without replying (RESET and
/// disconnects).
pub fn unsubscribe_all(ctx: &mut Ctx<'_>) {
    let id = ctx.client.id();
    {
        let mut ps = ctx.shared.pubsub.lock();
        for c in ctx.client.channels.drain(..) {
            ps.unsubscribe(&c, id, false);
        }
        for p in ctx.client.patterns.drain(..) {
            ps.punsubscribe(&p, id);
        }
        for c in ctx.client.shard_channels.drain(..) {
            ps.unsubscribe(&c, id, true);
        }
    }
    sync_counters(ctx);
}

fn do_publish(ctx: &mut Ctx<'_>, args: &[Bytes], shard: bool) -> CmdResult {
    let limit = output_limit(ctx.config.pubsub_limit);
    let me = Publisher { id: ctx.client.id(), out: &mut *ctx.out };
    let n = ctx.shared.pubsub.lock().publish(&args[1], &args[2], shard, limit, ctx.now, me);
    if let Some(c) = ctx.shared.cluster.get() {
        // Subscribers on other nodes: every node for PUBLISH, the slot's
        // shard for SPUBLISH. Only local receivers are counted, as Redis.
        let body = if shard {
            slotway_cluster::msg::Body::PublishShard { channel: args[1].to_vec(), message: args[2].to_vec() }
        } else {
            slotway_cluster::msg::Body::Publish { channel: args[1].to_vec(), message: args[2].to_vec() }
        };
        c.update(ctx.shared, Some(ctx.store), |st, env| st.forward_publish(env, body));
    }
    ctx.out.int(n as i64);
    Ok(())
}

fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    do_publish(ctx, args, false)
}

fn spublish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    do_publish(ctx, args, true)
}

const HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];

fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        help(ctx, "PUBSUB", HELP);
    } else if is(sub, "channels") || is(sub, "shardchannels") {
        if args.len() > 3 {
            return Err(subcommand_syntax(args));
        }
        let names = ctx.shared.pubsub.lock().channel_names(args.get(2).map(|p| &p[..]), is(sub, "shardchannels"));
        ctx.out.array(names.len());
        for n in &names {
            ctx.out.bulk(n);
        }
    } else if is(sub, "numsub") || is(sub, "shardnumsub") {
        let shard = is(sub, "shardnumsub");
        let ps = ctx.shared.pubsub.lock();
        ctx.out.array((args.len() - 2) * 2);
        for ch in &args[2..] {
            ctx.out.bulk(ch);
            ctx.out.int(ps.numsub(ch, shard) as i64);
        }
    } else if is(sub, "numpat") {
        let n = ctx.shared.pubsub.lock().numpat();
        ctx.out.int(n as i64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;
    use slotway_resp::Proto;

    fn server() -> (TestServer, tokio::sync::mpsc::UnboundedReceiver<crate::pubsub::Message>) {
        let mut t = TestServer::new();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        t.client.pubsub_tx = Some(tx);
        (t, rx)
    }

    #[test]
    fn subscribe_and_unsubscribe_counts() {
        let (mut t, _rx) = server();
        assert_eq!(t.cmd("UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
        assert_eq!(t.cmd("PUNSUBSCRIBE"), "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
        assert_eq!(
            t.cmd("SUBSCRIBE a b a"),
            "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n"
        );
        assert_eq!(t.cmd("PSUBSCRIBE a*"), "*3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:3\r\n");
        assert_eq!(t.cmd("SSUBSCRIBE s"), "*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n");
        assert!(t.cmd("GET a").starts_with("-ERR Can't execute 'get': only (P|S)SUBSCRIBE"));
        assert_eq!(t.cmd("PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        assert_eq!(t.cmd("PUNSUBSCRIBE zz"), "*3\r\n$12\r\npunsubscribe\r\n$2\r\nzz\r\n:3\r\n");
        assert_eq!(
            t.cmd("UNSUBSCRIBE"),
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"
        );
        assert_eq!(t.cmd("SUNSUBSCRIBE"), "*3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n");
        assert_eq!(t.cmd("PUNSUBSCRIBE"), "*3\r\n$12\r\npunsubscribe\r\n$2\r\na*\r\n:0\r\n");
        assert_eq!(t.cmd("GET a"), "$-1\r\n");
        assert_eq!(t.client.handle.subscriptions.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn publish_reaches_channels_and_patterns() {
        let (mut t, _rx) = server();
        let (mut other, mut rx) = server();
        // Both clients on one server.
        other.shared = t.shared.clone();
        other.client.handle = t.shared.new_client("127.0.0.1:2".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        other.cmd("SUBSCRIBE news");
        other.cmd("PSUBSCRIBE n*");
        other.cmd("SSUBSCRIBE news");
        assert_eq!(t.cmd("PUBLISH news hi"), ":2\r\n");
        assert_eq!(t.cmd("PUBLISH nope hi"), ":1\r\n");
        assert_eq!(t.cmd("PUBLISH zzz hi"), ":0\r\n");
        assert_eq!(t.cmd("SPUBLISH news s"), ":1\r\n");
        let mut out = slotway_resp::ReplyBuf::new(Proto::Resp2);
        while let Ok(m) = rx.try_recv() {
            m.write(&mut out);
        }
        assert_eq!(
            String::from_utf8_lossy(&out.buf),
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n\
             *4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n\
             *4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnope\r\n$2\r\nhi\r\n\
             *3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$1\r\ns\r\n"
        );
        assert_eq!(other.client.handle.pending_out.load(std::sync::atomic::Ordering::Relaxed), out.buf.len());
        assert_eq!(t.cmd("PUBSUB NUMSUB news x"), "*4\r\n$4\r\nnews\r\n:1\r\n$1\r\nx\r\n:0\r\n");
        assert_eq!(t.cmd("PUBSUB SHARDNUMSUB news"), "*2\r\n$4\r\nnews\r\n:1\r\n");
        assert_eq!(t.cmd("PUBSUB NUMPAT"), ":1\r\n");
        assert_eq!(t.cmd("PUBSUB CHANNELS"), "*1\r\n$4\r\nnews\r\n");
        assert_eq!(t.cmd("PUBSUB CHANNELS x*"), "*0\r\n");
        assert_eq!(t.cmd("PUBSUB SHARDCHANNELS n*"), "*1\r\n$4\r\nnews\r\n");
        assert_eq!(
            t.cmd("PUBSUB CHANNELS a b"),
            "-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n"
        );
        assert!(t.cmd("PUBSUB HELP").starts_with("*14\r\n+PUBSUB <subcommand>"));
    }

    #[test]
    fn resp3_pushes_and_self_publish_comes_first() {
        let (mut t, _rx) = server();
        t.client.proto = Proto::Resp3;
        assert_eq!(t.cmd("UNSUBSCRIBE"), ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
        assert_eq!(t.cmd("SUBSCRIBE a"), ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(t.cmd("PUBLISH a hi"), ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n:1\r\n");
        assert_eq!(t.cmd("PING"), "+PONG\r\n");
    }

    #[test]
    fn subscriber_over_hard_limit_is_killed() {
        let cfg = crate::config::Config { pubsub_limit: (1000, 0, 0), ..Default::default() };
        let mut t = TestServer::with_config(cfg);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let sub = t.shared.new_client("127.0.0.1:2".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        let mut c = crate::client::Client::new(sub.clone(), true);
        c.pubsub_tx = Some(tx);
        let publisher = std::mem::replace(&mut t.client, c);
        t.cmd("SUBSCRIBE ch");
        t.client = publisher;
        let payload = "x".repeat(100);
        // Each message is 133 bytes encoded: the 8th reaches the limit.
        for _ in 0..7 {
            assert_eq!(t.cmd(&format!("PUBLISH ch {payload}")), ":1\r\n");
        }
        assert!(!sub.kill.is_cancelled());
        t.cmd(&format!("PUBLISH ch {payload}"));
        assert!(sub.kill.is_cancelled());
        assert!(sub.pending_out.load(std::sync::atomic::Ordering::Relaxed) < 1000);
    }
}
