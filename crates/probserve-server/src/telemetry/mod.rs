//! Telemetry: logs to stderr (human or JSON), OpenTelemetry traces over OTLP when
//! the standard `OTEL_EXPORTER_OTLP_ENDPOINT` variable is set, W3C trace-context
//! propagation, and Prometheus metrics.
//!
//! - [`init`] installs the tracing subscriber and, if configured, the OTLP pipeline;
//!   its [`TelemetryGuard`] flushes spans on shutdown.
//! - [`rpc_layer`] is the tower layer giving every RPC one span (rpc.* semantic
//!   conventions, parented on the caller's `traceparent`) and its metrics.
//! - [`metrics`] holds the Prometheus registry, process metrics and `/metrics`.

pub mod metrics;
pub mod rpc_layer;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Keeps the trace pipeline alive; [`TelemetryGuard::shutdown`] flushes it.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// True when spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes buffered spans and stops the exporter.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.force_flush() {
                tracing::warn!(error = %e, "flushing spans failed");
            }
            if let Err(e) = p.shutdown() {
                tracing::warn!(error = %e, "stopping the span exporter failed");
            }
        }
    }
}

/// Set once by [`init`] when spans are exported. Without an exporter the per-RPC
/// span is created at DEBUG level (so it costs nothing under the default `info`
/// filter and still gives log lines their RPC context at `debug`), and the
/// `traceparent` is not parsed.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// True when [`init`] installed an OTLP span exporter.
pub fn exporting_spans() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// Installs logging and tracing. Must run inside the tokio runtime (the OTLP
/// exporter's gRPC channel lives on it).
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let otel_enabled = (env_set("OTEL_EXPORTER_OTLP_ENDPOINT")
        || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let provider = if otel_enabled {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .context("building the OTLP span exporter")?;
        let mut resource = Resource::builder();
        if !env_set("OTEL_SERVICE_NAME") {
            resource = resource.with_service_name("probserve");
        }
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource.build())
                .build(),
        )
    } else {
        None
    };
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("probserve")));
    let filter = EnvFilter::try_new(filter).context("log filter")?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let human = (format == LogFormat::Human).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
    });
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(human)
        .with(json)
        .with(otel_layer)
        .try_init()
        .context("installing the tracing subscriber")?;
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    Ok(TelemetryGuard { provider })
}

/// The W3C trace id of the current span, hex, or empty when tracing is off.
pub fn current_trace_id() -> String {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !exporting_spans() {
        return String::new();
    }
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        sc.trace_id().to_string()
    } else {
        String::new()
    }
}
