//! One span and one set of metrics per RPC, as a tower layer over the gRPC server.
//!
//! The span follows the OpenTelemetry RPC semantic conventions (`rpc.system`,
//! `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, span kind server) and is
//! parented on the W3C `traceparent` the client sent, so a client's trace continues
//! into ours. The status code is read where gRPC puts it: in the response headers
//! for trailers-only (error) responses, else in the trailers at the end of the body.
//! A body dropped before its end (client went away) counts as CANCELLED. tonic's
//! OUT_OF_RANGE for an oversized message is rewritten here to RESOURCE_EXHAUSTED,
//! the code of the error model, since no handler sees such a message.
//!
//! Without an OTLP exporter the span is created at DEBUG level and the
//! `traceparent` is not parsed: formatting span fields for nobody cost about 6 % of
//! a trivial Infer call's CPU.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame};
use opentelemetry::propagation::Extractor;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::metrics::RpcMetrics;

/// Reads propagation headers from an HTTP/2 header map.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The layer; see the module docs.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    metrics: Arc<RpcMetrics>,
}

impl RpcLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<RpcMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service [`RpcLayer`] produces.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

/// What is recorded when a call ends; recording happens exactly once (on trailers,
/// on a trailers-only response, on a body error, or on drop).
struct Pending {
    metrics: Arc<RpcMetrics>,
    method: String,
    start: Instant,
    span: tracing::Span,
    done: bool,
}

impl Pending {
    fn finish(&mut self, code: i32) {
        if self.done {
            return;
        }
        self.done = true;
        self.metrics
            .finish(&self.method, code, self.start.elapsed());
        self.span.record("rpc.grpc.status_code", code);
        if code != 0 {
            self.span.record("otel.status_code", "ERROR");
            self.span
                .record("otel.status_description", super::metrics::code_name(code));
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Dropped before the end of the response: the client cancelled.
        self.finish(1);
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

/// Bytes of `grpc-message` plus `grpc-status-details-bin` a status may use: common
/// clients refuse response metadata over 8–16 KiB, and then see only a protocol
/// error instead of our status.
const STATUS_HEADER_BYTES: usize = 8 * 1024;

/// Bytes of a status message kept when a status is too large.
const STATUS_MESSAGE_BYTES: usize = 2 * 1024;

/// Shrinks a status whose message and details would not fit a client's metadata
/// limit (a message or field violation that echoes a large input): the message is
/// cut, each field violation truncated, at most 20 kept. Code and reason stay.
fn fit_status(headers: &mut http::HeaderMap) {
    let size = |h: &http::HeaderMap, k: &str| h.get(k).map_or(0, |v| v.len());
    if size(headers, "grpc-message") + size(headers, "grpc-status-details-bin")
        <= STATUS_HEADER_BYTES
    {
        return;
    }
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    use tonic_types::{ErrorDetail, StatusExt as _};
    let cut = |s: &str, max: usize| -> String {
        if s.len() <= max {
            return s.to_owned();
        }
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes in all)", &s[..end], s.len())
    };
    let details: Vec<ErrorDetail> = status
        .get_error_details_vec()
        .into_iter()
        .map(|d| match d {
            ErrorDetail::BadRequest(mut br) => {
                br.field_violations.truncate(20);
                for v in &mut br.field_violations {
                    v.field = cut(&v.field, 128);
                    v.description = cut(&v.description, 256);
                }
                ErrorDetail::BadRequest(br)
            }
            ErrorDetail::PreconditionFailure(mut pf) => {
                pf.violations.truncate(20);
                for v in &mut pf.violations {
                    v.subject = cut(&v.subject, 128);
                    v.description = cut(&v.description, 256);
                }
                ErrorDetail::PreconditionFailure(pf)
            }
            other => other,
        })
        .collect();
    let fitted = tonic::Status::with_error_details_vec(
        status.code(),
        cut(status.message(), STATUS_MESSAGE_BYTES),
        details,
    );
    let mut fresh = http::HeaderMap::new();
    if fitted.add_header(&mut fresh).is_ok() {
        for k in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
            headers.remove(k);
            if let Some(v) = fresh.remove(k) {
                headers.insert(k, v);
            }
        }
    }
}

/// `grpc-message` is percent-encoded (tonic encodes spaces too).
fn percent_decode(raw: &[u8]) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let (Some(h), Some(l)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits: at most 0xff.
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The messages tonic's framing gives a message over `max_message_bytes`.
const OVERSIZED: [&str; 2] = [
    "Error, decoded message length too large",
    "Error, encoded message length too large",
];

/// tonic's own codec (health, reflection) answers INTERNAL for a request that does
/// not decode; it is the client's mistake: INVALID_ARGUMENT with the field, as our
/// services answer. `None` for any other INTERNAL.
fn undecodable_status(headers: &mut http::HeaderMap) -> Option<i32> {
    let message = headers
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()))?;
    if !message.starts_with("failed to decode Protobuf message") {
        return None;
    }
    let status = probserve_proto::codec::undecodable_text(&message);
    headers.remove("grpc-message");
    headers.remove("grpc-status-details-bin");
    status.add_header(headers).ok()?;
    Some(tonic::Code::InvalidArgument as i32)
}

/// The status code of a response (headers or trailers), after rewriting tonic's
/// OUT_OF_RANGE for an oversized message (its framing raises it before any of our
/// code sees the message) to what the error model says: RESOURCE_EXHAUSTED with
/// ErrorInfo(reason=MESSAGE_TOO_LARGE).
fn observed_status(headers: &mut http::HeaderMap) -> Option<i32> {
    let code = grpc_status(headers)?;
    if code != 0 {
        fit_status(headers);
    }
    if code == tonic::Code::Internal as i32 {
        return Some(undecodable_status(headers).unwrap_or(code));
    }
    if code != tonic::Code::OutOfRange as i32 {
        return Some(code);
    }
    let message = headers
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()))
        .unwrap_or_default();
    if !OVERSIZED.iter().any(|p| message.starts_with(p)) {
        return Some(code);
    }
    let status = crate::services::status::with_reason(
        tonic::Code::ResourceExhausted,
        format!("message too large (the server's max_message_bytes): {message}"),
        "MESSAGE_TOO_LARGE",
    );
    headers.remove("grpc-message");
    headers.remove("grpc-status-details-bin");
    match status.add_header(headers) {
        Ok(()) => Some(tonic::Code::ResourceExhausted as i32),
        Err(_) => Some(code),
    }
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RpcService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let method = self.metrics.method_label(&path);
        let (service, rpc_method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", ""));
        macro_rules! rpc_span {
            ($level:expr) => {
                tracing::span!(
                    $level,
                    "rpc",
                    otel.name = %path.trim_start_matches('/'),
                    otel.kind = "server",
                    otel.status_code = tracing::field::Empty,
                    otel.status_description = tracing::field::Empty,
                    rpc.system = "grpc",
                    rpc.service = %service,
                    rpc.method = %rpc_method,
                    rpc.grpc.status_code = tracing::field::Empty,
                )
            };
        }
        let span = if super::exporting_spans() {
            let span = rpc_span!(tracing::Level::INFO);
            let parent = opentelemetry::global::get_text_map_propagator(|p| {
                p.extract(&HeaderExtractor(req.headers()))
            });
            // Fails only when no OpenTelemetry layer is installed: then there is no
            // trace to join.
            let _ = span.set_parent(parent);
            span
        } else {
            // Nobody exports it: only log lines at `debug` use it (module docs).
            rpc_span!(tracing::Level::DEBUG)
        };
        self.metrics.start(&method);
        let mut pending = Pending {
            metrics: Arc::clone(&self.metrics),
            method,
            start: Instant::now(),
            span: span.clone(),
            done: false,
        };
        let fut = self.inner.call(req).instrument(span);
        Box::pin(async move {
            let mut resp = fut.await?;
            if let Some(code) = observed_status(resp.headers_mut()) {
                pending.finish(code);
            }
            Ok(resp.map(|inner| ObservedBody {
                inner,
                pending: Some(pending),
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the call's status when its trailers pass.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let mut out = std::task::ready!(this.inner.poll_frame(cx));
        if let Some(p) = this.pending.as_mut() {
            match &mut out {
                Some(Ok(frame)) => {
                    if let Some(code) = frame.trailers_mut().and_then(observed_status) {
                        p.finish(code);
                    }
                }
                Some(Err(_)) => p.finish(2),
                // The end without trailers: only trailers-only responses do that, and
                // those were recorded from the headers.
                None => p.finish(0),
            }
        }
        Poll::Ready(out)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(s: &tonic::Status) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        s.add_header(&mut h).unwrap();
        h
    }

    #[test]
    fn oversized_out_of_range_becomes_resource_exhausted() {
        let mut h = headers_of(&tonic::Status::out_of_range(
            "Error, decoded message length too large: found 100061 bytes, the limit is: 65536 bytes",
        ));
        assert_eq!(observed_status(&mut h), Some(8));
        let s = tonic::Status::from_header_map(&h).unwrap();
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert!(s.message().contains("100061 bytes"), "{}", s.message());
        let d = <tonic::Status as tonic_types::StatusExt>::get_error_details(&s);
        assert_eq!(d.error_info().unwrap().reason, "MESSAGE_TOO_LARGE");
        // Any other OUT_OF_RANGE is left alone.
        let mut h = headers_of(&tonic::Status::out_of_range("past the end"));
        assert_eq!(observed_status(&mut h), Some(11));
        assert_eq!(percent_decode(b"a%20b%zz%4"), "a b%zz%4");
    }

    #[test]
    fn a_status_echoing_a_huge_input_is_cut_to_fit_client_metadata_limits() {
        let name = "x".repeat(50_000);
        let s = crate::services::status::invalid_argument(
            format!("invalid name {name}"),
            vec![("name".into(), format!("{name} is not a name"))],
        );
        let mut h = headers_of(&s);
        assert_eq!(observed_status(&mut h), Some(3));
        let bytes: usize = ["grpc-message", "grpc-status-details-bin"]
            .iter()
            .map(|k| h.get(*k).map_or(0, |v| v.len()))
            .sum();
        assert!(bytes <= STATUS_HEADER_BYTES, "{bytes}");
        let back = tonic::Status::from_header_map(&h).unwrap();
        assert_eq!(back.code(), tonic::Code::InvalidArgument);
        assert!(
            back.message().contains("bytes in all"),
            "{}",
            back.message()
        );
        let d = <tonic::Status as tonic_types::StatusExt>::get_error_details(&back);
        assert_eq!(d.bad_request().unwrap().field_violations[0].field, "name");
    }
}
