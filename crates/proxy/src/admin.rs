//! The admin HTTP/1 listener on `metrics_listen`, for operators and
//! orchestrators:
//!
//! - `GET /metrics`: every collector, Prometheus text format 0.0.4;
//! - `GET /healthz`: `200 ok` while the process is up (liveness);
//! - `GET /readyz`: `200` when the proxy can serve clients, else `503` and
//!   why (readiness: no slot table yet, uncovered slots, shutting down);
//! - `GET /topology`: the slot table in force as JSON;
//! - `POST /reload`: re-read the configuration, `200` with what changed or
//!   `400` with why it was refused.
//!
//! Anything else is `404` (`405` for a known path with the wrong method).
//! The listener stops accepting when the proxy's shutdown token is
//! cancelled; open connections are asked to close after their current
//! response. Requests come from whoever can reach the port, so nothing here
//! may panic on what they send: hyper answers malformed requests itself.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::config::Reloader;
use crate::metrics;
use crate::state::Proxy;

#[cfg(test)]
mod tests;
mod topology;

/// Scrapers and probes need a handful; the cap keeps a flood of idle
/// connections from costing the data path memory and file descriptors.
const MAX_CONNECTIONS: usize = 64;
/// A client that sends no complete request head within this is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// After shutdown, how long an open connection may finish its response.
const DRAIN: Duration = Duration::from_secs(1);

struct Admin {
    proxy: Arc<Proxy>,
    reloader: Arc<Reloader>,
}

type Reply = Response<Full<Bytes>>;

/// Serves the admin endpoints on `listener` until `proxy.shutdown` is
/// cancelled.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>, reloader: Arc<Reloader>) {
    let shutdown = proxy.shutdown.clone();
    let admin = Arc::new(Admin { proxy, reloader });
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let tracker = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: back off rather
                    // than spin.
                    tracing::debug!("admin: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tracker.spawn(connection(admin.clone(), stream, permit));
    }
    drop(listener);
    tracker.close();
    let _ = tokio::time::timeout(DRAIN, tracker.wait()).await;
}

async fn connection(admin: Arc<Admin>, stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let shutdown = admin.proxy.shutdown.clone();
    let service = service_fn(move |req| {
        let admin = admin.clone();
        async move { Ok::<_, Infallible>(admin.handle(req).await) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("admin: connection ended: {e}");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}

impl Admin {
    async fn handle(&self, req: Request<Incoming>) -> Reply {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/metrics") => reply(StatusCode::OK, metrics::CONTENT_TYPE, self.proxy.metrics.render()),
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
            (&Method::GET, "/readyz") => match self.not_ready() {
                None => text(StatusCode::OK, "ready"),
                Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
            },
            (&Method::GET, "/topology") => {
                let json = topology::to_json(&self.proxy.topology.load(), SystemTime::now());
                reply(StatusCode::OK, "application/json", format!("{json}\n"))
            }
            (&Method::POST, "/reload") => self.reload().await,
            (_, "/metrics" | "/healthz" | "/readyz" | "/topology") => not_allowed("GET"),
            (_, "/reload") => not_allowed("POST"),
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// Why the proxy is not ready, or `None` when it is. `Proxy::ready` is
    /// the verdict; the reason is read from the slot table for operators.
    fn not_ready(&self) -> Option<String> {
        if self.proxy.shutdown.is_cancelled() {
            return Some("shutting down".into());
        }
        if self.proxy.ready() {
            return None;
        }
        let table = self.proxy.topology.load();
        let uncovered = table.slots.iter().filter(|&&s| s == crate::topology::UNASSIGNED).count();
        Some(if table.version == 0 {
            "no slot table yet (no seed has answered CLUSTER SLOTS)".into()
        } else if uncovered > 0 {
            format!("{uncovered} of {} slots are served by no node", table.slots.len())
        } else {
            "the cluster nodes are not reachable yet".into()
        })
    }

    async fn reload(&self) -> Reply {
        let reloader = self.reloader.clone();
        // Reading the file and applying the configuration are blocking
        // work; keep them off the runtime's worker threads.
        match tokio::task::spawn_blocking(move || reloader.reload()).await {
            Ok(Ok(report)) => text(StatusCode::OK, report.to_string()),
            Ok(Err(e)) => text(StatusCode::BAD_REQUEST, format!("reload refused: {e}")),
            Err(e) => {
                tracing::error!("reload failed: {e}");
                text(StatusCode::INTERNAL_SERVER_ERROR, "reload failed")
            }
        }
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    reply(status, "text/plain; charset=utf-8", body.into())
}

fn not_allowed(allow: &'static str) -> Reply {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    r
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
