//! Prometheus collectors for everything the proxy does, registered in one
//! registry that `admin` serves at `/metrics` through [`Metrics::render`].

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Latency buckets in seconds, from 25 µs to 2.5 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5];

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

pub struct Metrics {
    pub registry: Registry,
    /// Requests by command name (lowercase).
    pub requests: IntCounterVec,
    /// Request latency by command, from decode to reply written.
    pub latency: HistogramVec,
    /// Error replies by kind (`timeout`, `upstream`, `crossslot`, `unknown_outcome`, ...).
    pub errors: IntCounterVec,
    /// Redirections hidden from clients, by kind (`moved`, `ask`,
    /// `tryagain`, `clusterdown`) and node.
    pub redirections: IntCounterVec,
    pub retries: IntCounter,
    /// Reads served by a replica while their master was unreachable, by
    /// the replica that served them.
    pub replica_reads: IntCounterVec,
    pub topology_refreshes: IntCounter,
    pub topology_refresh_seconds: Histogram,
    pub slot_table_version: IntGauge,
    /// Unix time of the slot table in force.
    pub slot_table_timestamp: IntGauge,
    pub client_connections: IntGauge,
    pub backend_connections: IntGaugeVec,
    pub inflight: IntGaugeVec,
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    /// Configuration reloads by result (`applied`, `refused`).
    pub config_reloads: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            r.register(Box::new(c.clone())).expect("metric names are unique");
            c
        }
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(&r, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(&r, IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        Metrics {
            requests: counter_vec("slotway_requests_total", "Requests by command.", &["command"]),
            latency: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("slotway_request_duration_seconds", "Request latency by command.")
                        .buckets(LATENCY_BUCKETS.to_vec()),
                    &["command"],
                )
                .expect("valid metric"),
            ),
            errors: counter_vec("slotway_errors_total", "Error replies by kind.", &["kind"]),
            redirections: counter_vec(
                "slotway_redirections_total",
                "MOVED/ASK/TRYAGAIN/CLUSTERDOWN replies handled without the client seeing them.",
                &["kind", "node"],
            ),
            retries: reg(&r, IntCounter::new("slotway_retries_total", "Requests sent again.").expect("valid metric")),
            replica_reads: counter_vec(
                "slotway_replica_reads_total",
                "Reads served by a replica while their master could not be reached.",
                &["node"],
            ),
            topology_refreshes: reg(
                &r,
                IntCounter::new("slotway_topology_refreshes_total", "Slot table refreshes.").expect("valid metric"),
            ),
            topology_refresh_seconds: reg(
                &r,
                Histogram::with_opts(HistogramOpts::new(
                    "slotway_topology_refresh_duration_seconds",
                    "How long a slot table refresh took.",
                ))
                .expect("valid metric"),
            ),
            slot_table_version: reg(
                &r,
                IntGauge::new("slotway_slot_table_version", "Version of the slot table in force.")
                    .expect("valid metric"),
            ),
            slot_table_timestamp: reg(
                &r,
                IntGauge::new("slotway_slot_table_timestamp_seconds", "Unix time the slot table was fetched.")
                    .expect("valid metric"),
            ),
            client_connections: reg(
                &r,
                IntGauge::new("slotway_client_connections", "Open client connections.").expect("valid metric"),
            ),
            backend_connections: gauge_vec("slotway_backend_connections", "Open connections per node.", &["node"]),
            inflight: gauge_vec(
                "slotway_inflight_requests",
                "Requests sent and not yet answered, per node.",
                &["node"],
            ),
            bytes_in: reg(
                &r,
                IntCounter::new("slotway_client_bytes_in_total", "Bytes read from clients.").expect("valid metric"),
            ),
            bytes_out: reg(
                &r,
                IntCounter::new("slotway_client_bytes_out_total", "Bytes written to clients.").expect("valid metric"),
            ),
            config_reloads: counter_vec(
                "slotway_config_reloads_total",
                "Configuration reloads (SIGHUP, POST /reload) by result.",
                &["result"],
            ),
            registry: r,
        }
    }

    /// Every collector in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding only fails on a metric family without metrics or an
        // invalid name; neither can come out of our own registry, and a
        // scrape should still get the rest.
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::warn!("metrics: encoding failed: {e}");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_types_help_and_values() {
        let m = Metrics::new();
        m.requests.with_label_values(&["get"]).inc_by(3);
        m.latency.with_label_values(&["get"]).observe(0.0002);
        m.client_connections.set(7);
        m.config_reloads.with_label_values(&["refused"]).inc();
        let text = m.render();
        assert!(text.contains("# HELP slotway_requests_total Requests by command.\n"), "{text}");
        assert!(text.contains("# TYPE slotway_requests_total counter\n"), "{text}");
        assert!(text.contains("slotway_requests_total{command=\"get\"} 3\n"), "{text}");
        assert!(text.contains("# TYPE slotway_client_connections gauge\n"), "{text}");
        assert!(text.contains("slotway_client_connections 7\n"), "{text}");
        assert!(text.contains("# TYPE slotway_request_duration_seconds histogram\n"), "{text}");
        assert!(text.contains("slotway_request_duration_seconds_bucket{command=\"get\",le=\"0.00025\"} 1\n"), "{text}");
        assert!(text.contains("slotway_request_duration_seconds_count{command=\"get\"} 1\n"), "{text}");
        assert!(text.contains("slotway_config_reloads_total{result=\"refused\"} 1\n"), "{text}");
        // Unlabelled collectors are there from the start, at zero.
        assert!(text.contains("slotway_retries_total 0\n"), "{text}");
    }

    #[test]
    fn every_metric_name_is_prometheus_style() {
        let m = Metrics::new();
        m.requests.with_label_values(&["x"]);
        for family in m.registry.gather() {
            let name = family.name();
            assert!(name.starts_with("slotway_"), "{name}");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{name}");
            let counter = family.get_field_type() == prometheus::proto::MetricType::COUNTER;
            assert_eq!(counter, name.ends_with("_total"), "{name}");
        }
    }
}
