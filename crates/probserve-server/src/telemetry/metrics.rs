//! Prometheus metrics: per-method RPC counters and latency histograms, admission
//! (load shedding) counters, process metrics read from /proc, and the `/metrics`
//! HTTP endpoint on its own port.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use probserve_reliability::Admission;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-method metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// Full gRPC method path, or `other` for unknown paths.
    pub method: String,
}

/// Labels of per-method, per-status metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// Full gRPC method path.
    pub method: String,
    /// gRPC status code name, e.g. `OK`, `NOT_FOUND`.
    pub code: String,
}

/// Calls and errors of one method, for the diagnostics report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MethodCount {
    /// Finished calls.
    pub calls: u64,
    /// Finished calls with a non-OK status.
    pub errors: u64,
    /// Finished calls that failed by the server's fault (see [`is_server_fault`]).
    pub server_faults: u64,
}

/// Codes that mean the server failed, as opposed to the caller's mistake.
pub fn is_server_fault(code: i32) -> bool {
    matches!(code, 2 | 4 | 13 | 14 | 15)
}

/// RPC metrics, shared by the RPC layer (writes) and `/metrics` (reads).
#[derive(Debug)]
pub struct RpcMetrics {
    started: Family<MethodLabels, Counter>,
    handled: Family<CodeLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    in_flight: Gauge,
    known_methods: HashSet<String>,
    counts: Mutex<BTreeMap<String, MethodCount>>,
}

/// gRPC status code names as in the gRPC spec.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

impl RpcMetrics {
    /// Metrics for the given method paths (others are labelled `other`, keeping
    /// label cardinality bounded whatever clients send).
    pub fn new(known_methods: impl IntoIterator<Item = String>) -> Self {
        let histogram = || Histogram::new(exponential_buckets(0.000_05, 2.0, 20));
        Self {
            started: Family::default(),
            handled: Family::default(),
            latency: Family::new_with_constructor(histogram),
            in_flight: Gauge::default(),
            known_methods: known_methods.into_iter().collect(),
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// The label for a request path.
    pub fn method_label(&self, path: &str) -> String {
        if self.known_methods.contains(path) {
            path.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// A call started.
    pub fn start(&self, method: &str) {
        self.started
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .inc();
        self.in_flight.inc();
    }

    /// A call finished with `code` after `elapsed`.
    pub fn finish(&self, method: &str, code: i32, elapsed: Duration) {
        self.in_flight.dec();
        self.handled
            .get_or_create(&CodeLabels {
                method: method.to_owned(),
                code: code_name(code).to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
        let mut counts = self.counts.lock();
        let c = counts.entry(method.to_owned()).or_default();
        c.calls += 1;
        if code != 0 {
            c.errors += 1;
        }
        if is_server_fault(code) {
            c.server_faults += 1;
        }
    }

    /// Per-method counts since start.
    pub fn counts(&self) -> BTreeMap<String, MethodCount> {
        self.counts.lock().clone()
    }

    /// Registers the metrics in `registry`.
    pub fn register(self: &Arc<Self>, registry: &mut Registry) {
        registry.register(
            "probserve_rpc_started",
            "RPCs started, by method",
            self.started.clone(),
        );
        registry.register(
            "probserve_rpc_handled",
            "RPCs finished, by method and gRPC status code",
            self.handled.clone(),
        );
        registry.register(
            "probserve_rpc_duration_seconds",
            "RPC latency from request to end of response, by method",
            self.latency.clone(),
        );
        registry.register(
            "probserve_rpc_in_flight",
            "RPCs running now",
            self.in_flight.clone(),
        );
    }
}

/// Admission counters as Prometheus metrics, read at scrape time.
#[derive(Debug)]
struct AdmissionCollector(Arc<Admission>);

impl Collector for AdmissionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let shed = ConstCounter::new(self.0.shed_count());
        shed.encode(encoder.encode_descriptor(
            "probserve_load_shed",
            "calls refused with RESOURCE_EXHAUSTED because the in-flight limit was reached",
            None,
            shed.metric_type(),
        )?)?;
        let drained = ConstCounter::new(self.0.refused_draining_count());
        drained.encode(encoder.encode_descriptor(
            "probserve_refused_draining",
            "calls refused with UNAVAILABLE while draining",
            None,
            drained.metric_type(),
        )?)?;
        let draining = ConstGauge::new(i64::from(self.0.is_draining()));
        draining.encode(encoder.encode_descriptor(
            "probserve_draining",
            "1 while the server drains",
            None,
            draining.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Process metrics (`process_*`, the Prometheus client conventions) from /proc/self.
#[derive(Debug)]
struct ProcessCollector {
    start_time_seconds: f64,
}

fn proc_stat() -> Option<(f64, u64)> {
    // /proc/self/stat: fields 14 and 15 are utime and stime in clock ticks; 24 is RSS pages.
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    // Linux reports USER_HZ = 100 and 4 KiB pages on the platforms we run on.
    Some(((utime + stime) / 100.0, rss_pages * 4096))
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some((cpu, rss)) = proc_stat() {
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "user and system CPU time spent, seconds",
                None,
                c.metric_type(),
            )?)?;
            let g = ConstGauge::new(rss as f64);
            g.encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "resident memory",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let g = ConstGauge::new(dir.count() as i64);
            g.encode(encoder.encode_descriptor(
                "process_open_fds",
                "open file descriptors",
                None,
                g.metric_type(),
            )?)?;
        }
        let g = ConstGauge::new(self.start_time_seconds);
        g.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "start time since the unix epoch, seconds",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Builds the registry with RPC, admission and process metrics.
pub fn registry(rpc: &Arc<RpcMetrics>, admission: &Arc<Admission>) -> Registry {
    let mut registry = Registry::default();
    rpc.register(&mut registry);
    registry.register_collector(Box::new(AdmissionCollector(Arc::clone(admission))));
    let start_time_seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    registry.register_collector(Box::new(ProcessCollector { start_time_seconds }));
    registry.register_collector(Box::new(DispatchCollector));
    registry
}

/// Where inference runs were dispatched (see `crate::run_cost`), read at scrape time.
#[derive(Debug)]
struct DispatchCollector;

impl Collector for DispatchCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (inline, pool) = crate::run_cost::dispatch_counts();
        for (name, help, n) in [
            (
                "probserve_inference_inline",
                "inference runs predicted tiny and run inline on an async worker",
                inline,
            ),
            (
                "probserve_inference_pool",
                "inference runs dispatched to the CPU pool",
                pool,
            ),
        ] {
            let c = ConstCounter::new(n);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}

/// Serves `GET /metrics` (Prometheus text format) on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = Arc::clone(&registry);
            async move {
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => (
                        http::StatusCode::OK,
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    ),
                    Err(_) => (
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                        "encoding metrics failed".to_owned(),
                    ),
                }
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The bound address of a listener, for logs.
pub fn local(listener: &tokio::net::TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
