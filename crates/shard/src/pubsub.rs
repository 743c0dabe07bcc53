//! The pub/sub registry: who listens to which channel or pattern.
//!
//! Messages are handed to each subscriber's session through an unbounded
//! channel whose queued bytes are counted on the client's handle; a
//! subscriber that does not read is disconnected once it passes
//! `client-output-buffer-limit pubsub`, so the queue stays bounded.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashMap;
use indexmap::IndexMap;
use tokio::sync::mpsc;

use crate::client::{ClientHandle, ClientId};

/// A message on its way to a subscriber.
#[derive(Debug, Clone)]
pub struct Message {
    /// The pattern that matched, for `pmessage`.
    pub pattern: Option<Bytes>,
    pub channel: Bytes,
    pub payload: Bytes,
}

impl Message {
    pub fn size(&self) -> usize {
        self.pattern.as_ref().map_or(0, |p| p.len()) + self.channel.len() + self.payload.len() + 64
    }
}

#[derive(Clone)]
pub struct Subscriber {
    pub handle: Arc<ClientHandle>,
    pub tx: mpsc::UnboundedSender<Message>,
}

#[derive(Default)]
pub struct PubSub {
    pub channels: HashMap<Bytes, IndexMap<ClientId, Subscriber>>,
    pub patterns: IndexMap<Bytes, IndexMap<ClientId, Subscriber>>,
}

impl PubSub {
    /// True when the client was not subscribed to `channel` yet.
    pub fn subscribe(&mut self, channel: Bytes, sub: Subscriber) -> bool {
        self.channels.entry(channel).or_default().insert(sub.handle.id, sub).is_none()
    }

    pub fn unsubscribe(&mut self, channel: &Bytes, id: ClientId) -> bool {
        let Some(subs) = self.channels.get_mut(channel) else { return false };
        let removed = subs.shift_remove(&id).is_some();
        if subs.is_empty() {
            self.channels.remove(channel);
        }
        removed
    }

    pub fn psubscribe(&mut self, pattern: Bytes, sub: Subscriber) -> bool {
        self.patterns.entry(pattern).or_default().insert(sub.handle.id, sub).is_none()
    }

    pub fn punsubscribe(&mut self, pattern: &Bytes, id: ClientId) -> bool {
        let Some(subs) = self.patterns.get_mut(pattern) else { return false };
        let removed = subs.shift_remove(&id).is_some();
        if subs.is_empty() {
            self.patterns.shift_remove(pattern);
        }
        removed
    }

    /// Delivers `payload` to every subscriber of `channel` and of matching
    /// patterns; returns how many received it. `hard_limit` is the pubsub
    /// output limit in bytes (0 = none).
    pub fn publish(&self, channel: &Bytes, payload: &Bytes, hard_limit: usize) -> usize {
        let mut n = 0;
        if let Some(subs) = self.channels.get(channel) {
            for s in subs.values() {
                n += deliver(
                    s,
                    Message { pattern: None, channel: channel.clone(), payload: payload.clone() },
                    hard_limit,
                );
            }
        }
        for (pattern, subs) in &self.patterns {
            if crate::glob::matches(pattern, channel, false) {
                for s in subs.values() {
                    let msg =
                        Message { pattern: Some(pattern.clone()), channel: channel.clone(), payload: payload.clone() };
                    n += deliver(s, msg, hard_limit);
                }
            }
        }
        n
    }
}

fn deliver(s: &Subscriber, msg: Message, hard_limit: usize) -> usize {
    let size = msg.size();
    let pending = s.handle.pending_out.fetch_add(size, Ordering::Relaxed) + size;
    if hard_limit > 0 && pending > hard_limit {
        tracing::info!(client = s.handle.id, pending, "closing pub/sub client over its output buffer limit");
        s.handle.kill.cancel();
        return 1;
    }
    if s.tx.send(msg).is_err() {
        s.handle.pending_out.fetch_sub(size, Ordering::Relaxed);
        return 0;
    }
    1
}
