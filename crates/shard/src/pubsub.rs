//! The pub/sub registry: who listens to which channel, pattern or shard
//! channel, and the delivery of published messages.
//!
//! Messages are handed to each subscriber's session through a channel whose
//! queued bytes are counted on the client's handle (`pending_out`) until
//! the session has written them to its socket. A subscriber that does not
//! read is disconnected once it passes `client-output-buffer-limit pubsub`
//! (hard limit at once, soft limit after its seconds), so what is queued for
//! it stays bounded by bytes even though the channel itself has no length
//! bound. Publishing runs under the keyspace lock, which is also what a
//! session holds while it runs (P)SUBSCRIBE and drains its queue: that keeps
//! messages and subscription replies in the order Redis would send them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashMap;
use indexmap::IndexMap;
use slotway_resp::ReplyBuf;
use tokio::sync::mpsc;

use crate::client::{ClientHandle, ClientId};

/// A message on its way to a subscriber.
#[derive(Debug, Clone)]
pub struct Message {
    /// The pattern that matched, for `pmessage`.
    pub pattern: Option<Bytes>,
    pub channel: Bytes,
    pub payload: Bytes,
    /// Published with SPUBLISH: sent as `smessage`.
    pub shard: bool,
}

impl Message {
    /// The bytes the message takes once encoded, which is what it costs in
    /// the subscriber's output buffer.
    pub fn size(&self) -> usize {
        let bulk = |n: usize| n + digits(n) + 5;
        let kind = match (&self.pattern, self.shard) {
            (Some(p), _) => bulk(8) + bulk(p.len()),
            (None, true) => bulk(8),
            (None, false) => bulk(7),
        };
        4 + kind + bulk(self.channel.len()) + bulk(self.payload.len())
    }

    /// Writes the message as a push frame (`*` in RESP2, `>` in RESP3).
    pub fn write(&self, out: &mut ReplyBuf) {
        match &self.pattern {
            Some(p) => {
                out.push(4);
                out.bulk(b"pmessage");
                out.bulk(p);
            }
            None => {
                out.push(3);
                out.bulk(if self.shard { b"smessage" } else { b"message" });
            }
        }
        out.bulk(&self.channel);
        out.bulk(&self.payload);
    }
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// `client-output-buffer-limit` for one class of clients, in bytes and
/// seconds; 0 disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputLimit {
    pub hard: usize,
    pub soft: usize,
    pub soft_secs: u64,
}

impl OutputLimit {
    /// Whether a client with `pending` bytes queued must be disconnected.
    /// `over_soft_since` (unix ms, 0 = not over) carries the time the client
    /// went over the soft limit between calls, as Redis's
    /// `obuf_soft_limit_reached_time`.
    pub fn exceeded(&self, pending: usize, over_soft_since: &std::sync::atomic::AtomicU64, now: u64) -> bool {
        if self.hard > 0 && pending >= self.hard {
            return true;
        }
        if self.soft > 0 && pending >= self.soft {
            let since = over_soft_since.load(Ordering::Relaxed);
            if since == 0 {
                over_soft_since.store(now.max(1), Ordering::Relaxed);
                return false;
            }
            return now.saturating_sub(since) > self.soft_secs.saturating_mul(1000);
        }
        over_soft_since.store(0, Ordering::Relaxed);
        false
    }
}

#[derive(Clone)]
pub struct Subscriber {
    pub handle: Arc<ClientHandle>,
    pub tx: mpsc::UnboundedSender<Message>,
}

type Subscribers = IndexMap<ClientId, Subscriber>;

#[derive(Default)]
pub struct PubSub {
    pub channels: HashMap<Bytes, Subscribers>,
    pub patterns: IndexMap<Bytes, Subscribers>,
    pub shard_channels: HashMap<Bytes, Subscribers>,
}

/// Who is publishing: its own subscriptions are written straight into its
/// reply, ahead of the PUBLISH reply, as Redis does.
pub struct Publisher<'a> {
    pub id: ClientId,
    pub out: &'a mut ReplyBuf,
}

impl PubSub {
    fn map(&mut self, shard: bool) -> &mut HashMap<Bytes, Subscribers> {
        if shard {
            &mut self.shard_channels
        } else {
            &mut self.channels
        }
    }

    /// True when the client was not subscribed to `channel` yet.
    pub fn subscribe(&mut self, channel: Bytes, sub: Subscriber, shard: bool) -> bool {
        self.map(shard).entry(channel).or_default().insert(sub.handle.id, sub).is_none()
    }

    pub fn unsubscribe(&mut self, channel: &[u8], id: ClientId, shard: bool) -> bool {
        let map = self.map(shard);
        let Some(subs) = map.get_mut(channel) else { return false };
        let removed = subs.shift_remove(&id).is_some();
        if subs.is_empty() {
            map.remove(channel);
        }
        removed
    }

    pub fn psubscribe(&mut self, pattern: Bytes, sub: Subscriber) -> bool {
        self.patterns.entry(pattern).or_default().insert(sub.handle.id, sub).is_none()
    }

    pub fn punsubscribe(&mut self, pattern: &[u8], id: ClientId) -> bool {
        let Some(subs) = self.patterns.get_mut(pattern) else { return false };
        let removed = subs.shift_remove(&id).is_some();
        if subs.is_empty() {
            self.patterns.shift_remove(pattern);
        }
        removed
    }

    /// Delivers `payload` to every subscriber of `channel` and, unless it is
    /// a shard channel, of matching patterns; returns how many received it
    /// (a client matching twice counts twice, as in Redis).
    pub fn publish(
        &self,
        channel: &Bytes,
        payload: &Bytes,
        shard: bool,
        limit: OutputLimit,
        now: u64,
        me: Publisher<'_>,
    ) -> usize {
        let mut n = 0;
        let map = if shard { &self.shard_channels } else { &self.channels };
        if let Some(subs) = map.get(channel) {
            for s in subs.values() {
                let msg = Message { pattern: None, channel: channel.clone(), payload: payload.clone(), shard };
                n += deliver(s, msg, limit, now, me.id, me.out);
            }
        }
        if shard {
            return n;
        }
        for (pattern, subs) in &self.patterns {
            if crate::glob::matches(pattern, channel, false) {
                for s in subs.values() {
                    let msg = Message {
                        pattern: Some(pattern.clone()),
                        channel: channel.clone(),
                        payload: payload.clone(),
                        shard: false,
                    };
                    n += deliver(s, msg, limit, now, me.id, me.out);
                }
            }
        }
        n
    }

    /// Active channels (PUBSUB CHANNELS / SHARDCHANNELS), optionally
    /// filtered by a glob pattern.
    pub fn channel_names(&self, pattern: Option<&[u8]>, shard: bool) -> Vec<Bytes> {
        let map = if shard { &self.shard_channels } else { &self.channels };
        map.keys().filter(|c| pattern.is_none_or(|p| crate::glob::matches(p, c, false))).cloned().collect()
    }

    pub fn numsub(&self, channel: &[u8], shard: bool) -> usize {
        let map = if shard { &self.shard_channels } else { &self.channels };
        map.get(channel).map_or(0, |s| s.len())
    }

    /// Distinct patterns anyone listens to (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.patterns.len()
    }
}

fn deliver(s: &Subscriber, msg: Message, limit: OutputLimit, now: u64, me: ClientId, out: &mut ReplyBuf) -> usize {
    if s.handle.id == me {
        msg.write(out);
        return 1;
    }
    if s.handle.kill.is_cancelled() {
        // Already on its way out: counted, as Redis counts a client that
        // is closing asynchronously, but nothing more is queued for it.
        return 1;
    }
    let size = msg.size();
    let pending = s.handle.pending_out.load(Ordering::Relaxed).saturating_add(size);
    if limit.exceeded(pending, &s.handle.obuf_soft_since, now) {
        tracing::warn!(
            client = s.handle.id,
            pending,
            "Client scheduled to be closed ASAP for overcoming of output buffer limits."
        );
        s.handle.kill.cancel();
        return 1;
    }
    s.handle.pending_out.fetch_add(size, Ordering::Relaxed);
    if s.tx.send(msg).is_err() {
        s.handle.pending_out.fetch_sub(size, Ordering::Relaxed);
        return 0;
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotway_resp::Proto;

    #[test]
    fn size_is_the_encoded_length() {
        for (pattern, shard) in [(None, false), (None, true), (Some(Bytes::from_static(b"n*")), false)] {
            let msg = Message {
                pattern,
                channel: Bytes::from_static(b"news"),
                payload: Bytes::from(vec![b'x'; 1234]),
                shard,
            };
            let mut out = ReplyBuf::new(Proto::Resp2);
            msg.write(&mut out);
            assert_eq!(msg.size(), out.buf.len());
        }
    }

    #[test]
    fn soft_limit_needs_its_seconds() {
        let l = OutputLimit { hard: 100, soft: 50, soft_secs: 1 };
        let since = std::sync::atomic::AtomicU64::new(0);
        assert!(!l.exceeded(10, &since, 1000));
        assert!(!l.exceeded(60, &since, 1000));
        assert!(!l.exceeded(60, &since, 2000));
        assert!(l.exceeded(60, &since, 2001));
        assert!(!l.exceeded(10, &since, 2002));
        assert_eq!(since.load(Ordering::Relaxed), 0);
        assert!(l.exceeded(100, &since, 2003));
    }
}
