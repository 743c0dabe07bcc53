//! Sending one request to the node that owns its slot, following the
//! cluster's redirections so the client never sees them.
//!
//! The decision after each attempt is a function of what came back
//! ([`Outcome`]): a normal reply ends the request; MOVED patches the slot
//! table, triggers a refresh and resends to the new owner; ASK resends to
//! the target behind `ASKING` without touching the table; TRYAGAIN and
//! CLUSTERDOWN are retried with backoff until `timeouts.retry_ms`; a lost
//! connection is retried on the refreshed table until the request deadline
//! when the request was never written, or when it was written but cannot
//! modify data (a failover takes seconds). Meanwhile a read whose master
//! cannot be reached at all is served by one of the slot's replicas.
//!
//! A request's first attempt is queued by the session itself, in request
//! order ([`Part::queue`]); only the reply and any resend are awaited in
//! the request's future ([`Part::reply`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::config::ProxyConfig;
use crate::state::Proxy;
use crate::topology::Topology;
use crate::upstream::{self, Queued, UpstreamError};

/// Every error text the proxy itself produces, in one place.
pub mod errors {
    pub const TIMEOUT: &str = "-ERR slotway request timeout\r\n";
    pub const UNKNOWN_OUTCOME: &str = "-ERR upstream connection lost; the outcome of this write is unknown\r\n";
    pub const NOT_SERVED: &str = "-CLUSTERDOWN Hash slot not served\r\n";
    pub const CROSSSLOT: &str = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    pub const NOAUTH: &str = "-NOAUTH Authentication required.\r\n";
    pub const TOO_MANY_REDIRECTS: &str = "-ERR slotway: too many redirections\r\n";
}

/// Redirections followed before giving up (a slot bouncing between nodes).
const MAX_REDIRECTS: usize = 5;

/// What one attempt's reply means for the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    Done,
    Moved {
        slot: u16,
        addr: &'a str,
    },
    Ask {
        addr: &'a str,
    },
    /// TRYAGAIN, CLUSTERDOWN: the cluster is busy; wait and retry.
    Busy(&'static str),
}

/// Reads an error reply's redirection, if any. Malformed MOVED/ASK
/// replies are passed to the client as they are.
pub fn outcome(reply: &[u8]) -> Outcome<'_> {
    if reply.first() != Some(&b'-') {
        return Outcome::Done;
    }
    let line = reply.strip_suffix(b"\r\n").unwrap_or(reply);
    let Ok(line) = std::str::from_utf8(&line[1..]) else { return Outcome::Done };
    let mut words = line.split(' ');
    match words.next() {
        Some("MOVED") => {
            let (Some(slot), Some(addr), None) = (words.next(), words.next(), words.next()) else {
                return Outcome::Done;
            };
            match slot.parse::<u16>() {
                Ok(slot) if slot < slotway_slots::SLOTS && addr.contains(':') => Outcome::Moved { slot, addr },
                _ => Outcome::Done,
            }
        }
        Some("ASK") => {
            let (Some(slot), Some(addr), None) = (words.next(), words.next(), words.next()) else {
                return Outcome::Done;
            };
            if slot.parse::<u16>().is_ok_and(|s| s < slotway_slots::SLOTS) && addr.contains(':') {
                Outcome::Ask { addr }
            } else {
                Outcome::Done
            }
        }
        Some("TRYAGAIN") => Outcome::Busy("tryagain"),
        Some("CLUSTERDOWN") => Outcome::Busy("clusterdown"),
        _ => Outcome::Done,
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The master of this slot.
    Slot(u16),
    /// Any master (keyless commands); `n` picks which, modulo their count.
    AnyMaster(usize),
    /// The n-th master in shard order (fan-out, SCAN).
    Master(usize),
}

/// The master `target` names in `topo`.
fn resolve(topo: &Topology, target: Target) -> Option<&str> {
    match target {
        Target::Slot(slot) => topo.master_addr(slot),
        Target::AnyMaster(n) | Target::Master(n) => {
            let count = topo.shards.len();
            let n = if matches!(target, Target::AnyMaster(_)) && count > 0 { n % count } else { n };
            topo.shards.get(n).and_then(|s| topo.nodes.get(s.master)).map(|n| n.addr.as_str())
        }
    }
}

/// A request whose first attempt is on its node's queue: the session
/// queues requests in the order they came, and only the wait for the reply
/// (and any resend) happens later, in [`Part::reply`].
pub struct Part {
    target: Target,
    bytes: Bytes,
    /// The table the first attempt was routed with, and what queueing gave;
    /// `None` when no node served the target.
    first: Option<(Arc<Topology>, Queued)>,
}

impl Part {
    /// Routes `bytes` on the current table and queues it on the lane's
    /// connection to that node.
    pub async fn queue(proxy: &Arc<Proxy>, target: Target, bytes: Bytes, lane: usize) -> Part {
        let topo = proxy.topology.load_full();
        let first = match resolve(&topo, target) {
            Some(addr) => {
                let config = proxy.config.load_full();
                let q = proxy.upstreams.enqueue(&config, &proxy.metrics, addr, lane, bytes.clone(), false).await;
                Some(q)
            }
            None => None,
        };
        Part { target, bytes, first: first.map(|q| (topo, q)) }
    }

    /// The reply the client should see, following redirections; a lost or
    /// unreachable node is retried on the refreshed table until `deadline`
    /// when running the request again cannot apply a write twice.
    pub async fn reply(self, proxy: &Arc<Proxy>, is_write: bool, lane: usize, deadline: Instant) -> Bytes {
        let Part { target, bytes, mut first } = self;
        let config = proxy.config.load_full();
        let retry_until = Instant::now() + Duration::from_millis(config.timeouts.retry_ms);
        let mut backoff = Duration::from_millis(10);
        let mut redirect: Option<(String, bool)> = None;
        let mut redirects = 0;
        loop {
            // The table is held (not copied) while its node address is in use.
            let topo;
            let addr: &str;
            let reply = match (first.take(), &redirect) {
                (Some((t, queued)), _) => {
                    topo = t;
                    addr = resolve(&topo, target).unwrap_or_default();
                    upstream::wait(queued, addr).await
                }
                (None, Some((to, asking))) => {
                    addr = to;
                    proxy.upstreams.send(&config, &proxy.metrics, addr, lane, bytes.clone(), *asking).await
                }
                (None, None) => {
                    topo = proxy.topology.load_full();
                    match resolve(&topo, target) {
                        Some(a) => {
                            addr = a;
                            proxy.upstreams.send(&config, &proxy.metrics, addr, lane, bytes.clone(), false).await
                        }
                        None => {
                            proxy.trigger_refresh();
                            if Instant::now() + backoff < retry_until {
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_millis(200));
                                continue;
                            }
                            return Bytes::from_static(errors::NOT_SERVED.as_bytes());
                        }
                    }
                }
            };
            let retry_connection = match reply {
                Ok(reply) => match outcome(&reply) {
                    Outcome::Done => return reply,
                    Outcome::Moved { slot, addr: to } => {
                        proxy.metrics.redirections.with_label_values(&["moved", to]).inc();
                        proxy.slot_moved(slot, to);
                        redirects += 1;
                        if redirects > MAX_REDIRECTS {
                            return Bytes::from_static(errors::TOO_MANY_REDIRECTS.as_bytes());
                        }
                        redirect = Some((to.to_string(), false));
                        proxy.metrics.retries.inc();
                        continue;
                    }
                    Outcome::Ask { addr: to } => {
                        proxy.metrics.redirections.with_label_values(&["ask", to]).inc();
                        redirects += 1;
                        if redirects > MAX_REDIRECTS {
                            return Bytes::from_static(errors::TOO_MANY_REDIRECTS.as_bytes());
                        }
                        redirect = Some((to.to_string(), true));
                        proxy.metrics.retries.inc();
                        continue;
                    }
                    Outcome::Busy(kind) => {
                        proxy.metrics.redirections.with_label_values(&[kind, addr]).inc();
                        if Instant::now() + backoff >= retry_until {
                            return reply;
                        }
                        false
                    }
                },
                Err(UpstreamError::Unreachable(_)) if !is_write => {
                    if let Target::Slot(slot) = target {
                        if let Some(reply) = replica_read(proxy, &config, slot, lane, &bytes).await {
                            return reply;
                        }
                    }
                    true
                }
                Err(UpstreamError::NotWritten(_) | UpstreamError::Unreachable(_)) => true,
                Err(UpstreamError::Written(_)) if !is_write => true,
                Err(UpstreamError::Written(_)) => {
                    proxy.metrics.errors.with_label_values(&["unknown_outcome"]).inc();
                    proxy.trigger_refresh();
                    return Bytes::from_static(errors::UNKNOWN_OUTCOME.as_bytes());
                }
            };
            if retry_connection {
                // A failover takes the cluster's node timeout plus an
                // election: keep trying while the client still waits.
                proxy.trigger_refresh();
                if Instant::now() + backoff >= deadline {
                    proxy.metrics.errors.with_label_values(&["upstream"]).inc();
                    return Bytes::from(format!("-ERR slotway: upstream {addr} unavailable\r\n"));
                }
            }
            // Busy or connection trouble: ask the (maybe refreshed) table again.
            redirect = None;
            proxy.metrics.retries.inc();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }
}

/// A read whose master cannot be reached, served by one of the slot's
/// replicas instead: while the cluster fails the master over, the replica
/// holds what the promotion will keep, so the client need not wait for it.
/// `None` when no replica gives a usable answer.
async fn replica_read(
    proxy: &Arc<Proxy>,
    config: &Arc<ProxyConfig>,
    slot: u16,
    lane: usize,
    bytes: &Bytes,
) -> Option<Bytes> {
    let topo = proxy.topology.load_full();
    let shard = topo.shard_for(slot)?;
    for node in shard.replicas.iter().filter_map(|&r| topo.nodes.get(r)) {
        let Ok(reply) =
            proxy.upstreams.send_replica_read(config, &proxy.metrics, &node.addr, lane, bytes.clone()).await
        else {
            continue;
        };
        // A replica still loading, or one that no longer follows this
        // slot's master (MOVED), has nothing to say for it.
        let unusable = reply.starts_with(b"-LOADING") || reply.starts_with(b"-MASTERDOWN");
        if outcome(&reply) == Outcome::Done && !unusable {
            proxy.metrics.replica_reads.with_label_values(&[&node.addr]).inc();
            return Some(reply);
        }
    }
    None
}

/// The request deadline for a request starting now.
pub fn deadline(proxy: &Proxy) -> Instant {
    Instant::now() + Duration::from_millis(proxy.config.load().timeouts.request_ms.max(1))
}

/// Sends `bytes` and returns the reply the client should see.
pub async fn execute(proxy: &Arc<Proxy>, target: Target, bytes: Bytes, is_write: bool, lane: usize) -> Bytes {
    let deadline = deadline(proxy);
    Part::queue(proxy, target, bytes, lane).await.reply(proxy, is_write, lane, deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirections_are_read_from_error_replies() {
        assert_eq!(outcome(b"-MOVED 3999 127.0.0.1:6381\r\n"), Outcome::Moved { slot: 3999, addr: "127.0.0.1:6381" });
        assert_eq!(outcome(b"-ASK 3999 127.0.0.1:6381\r\n"), Outcome::Ask { addr: "127.0.0.1:6381" });
        assert_eq!(outcome(b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"), Outcome::Busy("tryagain"));
        assert_eq!(outcome(b"-CLUSTERDOWN The cluster is down\r\n"), Outcome::Busy("clusterdown"));
        assert_eq!(outcome(b"$5\r\nMOVED\r\n"), Outcome::Done);
        assert_eq!(outcome(b"-ERR x\r\n"), Outcome::Done);
        // Malformed redirections reach the client untouched.
        assert_eq!(outcome(b"-MOVED 3999\r\n"), Outcome::Done);
        assert_eq!(outcome(b"-MOVED 99999 1.2.3.4:5\r\n"), Outcome::Done);
        assert_eq!(outcome(b"-MOVED x 1.2.3.4:5\r\n"), Outcome::Done);
        assert_eq!(outcome(b"-ASK 1 nohost\r\n"), Outcome::Done);
        assert_eq!(outcome(b"-MOVED 1 a:1 extra\r\n"), Outcome::Done);
    }
}
