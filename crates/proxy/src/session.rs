//! One client connection: decode requests, route each, and write the
//! replies back strictly in request order.
//!
//! Every request becomes a future in an ordered queue (`FuturesOrdered`):
//! all of them progress at once, but their replies leave in the order the
//! requests came, even when they come from different nodes. The queue is
//! bounded by `limits.max_pipeline`: while it is full the session stops
//! reading, which pushes back on the client. Each future carries its own
//! deadline (`timeouts.request_ms`); past it the client gets the timeout
//! error in that request's place and later replies flow on. A client's
//! requests to one node share one upstream connection (its lane), so they
//! stay in order there too.

mod local;
mod resp3;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesOrdered, StreamExt};
use futures_util::FutureExt;
use slotway_resp::{Request, RequestDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use crate::fanout;
use crate::redirect::{self, errors, Part, Target};
use crate::router::{self, Route};
use crate::state::Proxy;

/// What the proxy remembers about a client.
pub struct Client {
    pub id: u64,
    pub name: Option<Bytes>,
    pub authenticated: bool,
    /// Said HELLO 3: replies are translated from the nodes' RESP2.
    pub resp3: bool,
    /// The address the client reached the proxy at: what CLUSTER SLOTS
    /// presents (a wildcard listen address would mean nothing to it).
    pub local_addr: String,
    /// QUIT: close once the queued replies are written.
    pub closing: bool,
}

/// Tells a client over `limits.max_clients` why it is turned away.
pub async fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
}

pub async fn run(proxy: Arc<Proxy>, stream: TcpStream, id: u64) {
    let _ = stream.set_nodelay(true);
    let local_addr = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
    proxy.metrics.client_connections.inc();
    let (mut rd, mut wr) = stream.into_split();
    let config = proxy.config.load_full();
    let limits = slotway_resp::Limits { max_bulk_len: config.limits.max_bulk_len, ..Default::default() };
    let mut decoder = RequestDecoder::new(limits);
    let max_pipeline = config.limits.max_pipeline.max(1);
    let mut client = Client {
        id,
        name: None,
        authenticated: config.client_password.is_none(),
        resp3: false,
        local_addr,
        closing: false,
    };
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut pending: FuturesOrdered<Pending> = FuturesOrdered::new();
    let mut eof = false;
    decoder.limits.authenticated = client.authenticated;
    loop {
        while pending.len() < max_pipeline && !client.closing {
            match decoder.decode(&mut inbuf) {
                Ok(Some(req)) => {
                    let reply = dispatch(&proxy, &mut client, req).await;
                    pending.push_back(reply);
                    // Before AUTH, requests are held to Redis's tight size bounds.
                    decoder.limits.authenticated = client.authenticated;
                }
                Ok(None) => break,
                Err(e) => {
                    let msg = Bytes::from(format!("-ERR Protocol error: {e}\r\n"));
                    pending.push_back(ready(msg));
                    client.closing = true;
                }
            }
        }
        if (client.closing || eof) && pending.is_empty() {
            break;
        }
        let reading = pending.len() < max_pipeline && !client.closing && !eof;
        if inbuf.capacity() - inbuf.len() < 4096 {
            inbuf.reserve(16 * 1024);
        }
        tokio::select! {
            Some(reply) = pending.next(), if !pending.is_empty() => {
                out.extend_from_slice(&reply);
                while let Some(Some(reply)) = pending.next().now_or_never() {
                    out.extend_from_slice(&reply);
                }
                if wr.write_all(&out).await.is_err() {
                    break;
                }
                proxy.metrics.bytes_out.inc_by(out.len() as u64);
                out.clear();
            }
            n = rd.read_buf(&mut inbuf), if reading => match n {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => proxy.metrics.bytes_in.inc_by(n as u64),
            },
            _ = proxy.shutdown.cancelled(), if reading => client.closing = true,
        }
    }
    proxy.metrics.client_connections.dec();
}

/// Routes one request and queues it on its nodes; returns the future of
/// its reply.
async fn dispatch(proxy: &Arc<Proxy>, client: &mut Client, req: Request) -> Pending {
    let Some((spec, route)) = router::route(&req.args) else {
        proxy.metrics.errors.with_label_values(&["unknown_command"]).inc();
        return ready(local::unknown_command(&req.args));
    };
    proxy.metrics.requests.with_label_values(&[spec.name]).inc();
    if !client.authenticated && !matches!(spec.name, "auth" | "hello" | "quit") {
        proxy.metrics.errors.with_label_values(&["noauth"]).inc();
        return ready(Bytes::from_static(errors::NOAUTH.as_bytes()));
    }
    let started = tokio::time::Instant::now();
    let latency = proxy.metrics.latency.with_label_values(&[spec.name]);
    if let Route::Local(l) = route {
        let mut reply = local::answer(proxy, client, l, spec, &req.args);
        if client.resp3 && l != router::Local::Hello {
            reply = resp3::translate(resp3::Shape::Plain, reply);
        }
        latency.observe(started.elapsed().as_secs_f64());
        return ready(reply);
    }
    if let Route::Refused(why) = route {
        proxy.metrics.errors.with_label_values(&["unsupported"]).inc();
        return ready(Bytes::from(format!(
            "-ERR slotway does not support {}: {why}\r\n",
            spec.full_name().to_uppercase()
        )));
    }
    let route = match route {
        Route::ByKeyUnlessBlock if req.args.iter().skip(1).any(|a| a.eq_ignore_ascii_case(b"BLOCK")) => {
            proxy.metrics.errors.with_label_values(&["unsupported"]).inc();
            let name = spec.full_name().to_uppercase();
            return ready(Bytes::from(format!("-ERR slotway does not support {name} BLOCK: {}\r\n", router::BLOCKING)));
        }
        Route::ByKeyUnlessBlock => Route::ByKey,
        r => r,
    };
    let raw = if req.inline { fanout::encode_command(&req.args) } else { req.raw };
    let lane = client.id as usize;
    let is_write = spec.is_write();
    // An odd MSET would split into parts that look valid.
    let malformed = matches!(route, Route::Split(router::Shape::KeyValuePairs, _)) && req.args.len() & 1 == 0;
    let work = if !spec.arity_ok(req.args.len()) || malformed {
        // The node answers with Redis's exact arity error.
        Work::One(Target::AnyMaster(lane))
    } else {
        match route {
            Route::ByKey | Route::Split(..) => match spec.keys(&req.args) {
                Err(_) => Work::One(Target::AnyMaster(lane)),
                Ok(keys) => {
                    let mut slots = keys.iter().map(|&k| slotway_slots::key_slot(&req.args[k]));
                    let first = slots.next();
                    let one_slot = first.is_none_or(|f| slots.all(|s| s == f));
                    match (route, first) {
                        (_, Some(slot)) if one_slot => Work::One(Target::Slot(slot)),
                        (_, None) => Work::One(Target::AnyMaster(rand::random())),
                        (Route::Split(shape, merge), _) => Work::Split(keys, shape, merge),
                        _ => {
                            proxy.metrics.errors.with_label_values(&["crossslot"]).inc();
                            return ready(Bytes::from_static(errors::CROSSSLOT.as_bytes()));
                        }
                    }
                }
            },
            Route::AllMasters(merge) => Work::All(merge),
            Route::Scan => Work::Scan,
            Route::RandomKey => Work::RandomKey,
            Route::Info => Work::Info,
            _ => Work::One(Target::AnyMaster(rand::random())),
        }
    };
    let deadline = redirect::deadline(proxy);
    let shape = client.resp3.then(|| resp3::shape(spec.name, &req.args));
    let args = req.args;
    // Queued here, at the request's turn, so a client's requests reach
    // each node in the order they came; waiting for queue space is the
    // backpressure.
    let queue = async {
        match work {
            Work::One(target) => Queued::One(Part::queue(proxy, target, raw, lane).await),
            Work::Split(keys, shape, merge) => {
                let split = fanout::split_queue(proxy, &args, &keys, shape, lane).await;
                Queued::Split(split, keys, merge)
            }
            Work::All(merge) => Queued::All(fanout::all_queue(proxy, &raw, lane).await, merge),
            Work::Scan => match fanout::scan_queue(proxy, args, lane).await {
                Ok(scan) => Queued::Scan(scan),
                Err(reply) => Queued::Done(reply),
            },
            Work::RandomKey => {
                let first = fanout::random_key_queue(proxy, raw.clone(), lane).await;
                Queued::RandomKey(first, raw)
            }
            Work::Info => Queued::Info(args),
        }
    };
    let Ok(queued) = tokio::time::timeout_at(deadline, queue).await else {
        proxy.metrics.errors.with_label_values(&["timeout"]).inc();
        latency.observe(started.elapsed().as_secs_f64());
        return ready(Bytes::from_static(errors::TIMEOUT.as_bytes()));
    };
    let p = proxy.clone();
    // One allocation per forwarded request: the wait for its reply.
    Pending::Running(Box::pin(async move {
        let fut = async {
            match queued {
                Queued::One(part) => part.reply(&p, is_write, lane, deadline).await,
                Queued::Split(split, keys, merge) => {
                    fanout::split_reply(&p, split, &keys, merge, is_write, lane, deadline).await
                }
                Queued::All(parts, merge) => fanout::all_reply(&p, parts, merge, is_write, lane, deadline).await,
                Queued::Scan(scan) => fanout::scan_reply(&p, scan, lane, deadline).await,
                Queued::RandomKey(first, raw) => fanout::random_key_reply(&p, first, raw, lane, deadline).await,
                Queued::Info(args) => local::info(p.clone(), args, lane).await,
                Queued::Done(reply) => reply,
            }
        };
        let reply = match tokio::time::timeout_at(deadline, fut).await {
            Ok(reply) => {
                if reply.first() == Some(&b'-') {
                    p.metrics.errors.with_label_values(&["reply"]).inc();
                }
                reply
            }
            Err(_) => {
                p.metrics.errors.with_label_values(&["timeout"]).inc();
                Bytes::from_static(errors::TIMEOUT.as_bytes())
            }
        };
        latency.observe(started.elapsed().as_secs_f64());
        match shape {
            Some(shape) => resp3::translate(shape, reply),
            None => reply,
        }
    }))
}

/// A forwarded request once its first attempt is on the nodes' queues.
enum Queued {
    One(Part),
    Split(fanout::Split, Vec<usize>, router::Merge),
    All(Option<Vec<Part>>, router::Merge),
    Scan(fanout::Scan),
    RandomKey((usize, Part), Bytes),
    Info(Vec<Bytes>),
    Done(Bytes),
}

/// What a forwarded request does, decided before its future is built.
enum Work {
    One(Target),
    Split(Vec<usize>, router::Shape, router::Merge),
    All(router::Merge),
    Scan,
    RandomKey,
    Info,
}

/// A reply in the ordered queue: already known (local answers cost no
/// allocation) or still being fetched.
pub enum Pending {
    Ready(Option<Bytes>),
    Running(Pin<Box<dyn Future<Output = Bytes> + Send>>),
}

impl Future for Pending {
    type Output = Bytes;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Bytes> {
        match self.get_mut() {
            Pending::Ready(b) => std::task::Poll::Ready(b.take().unwrap_or_default()),
            Pending::Running(f) => f.as_mut().poll(cx),
        }
    }
}

fn ready(b: Bytes) -> Pending {
    Pending::Ready(Some(b))
}

#[cfg(test)]
#[path = "session/tests.rs"]
mod tests;
