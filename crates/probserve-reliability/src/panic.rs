//! Panic isolation for handlers: a tower layer that turns a panic anywhere in a
//! call (building the future or polling it) into `INTERNAL` with an ErrorInfo
//! reason `PANIC`, and a process panic hook that logs every panic as one tracing
//! line instead of the default multi-line report with backtrace.
//!
//! Without the layer a panicking handler kills hyper's stream task: the client
//! sees `CANCELLED` (indistinguishable from giving up) and the RPC metrics count
//! no error. Place the layer inside the RPC metrics layer so the `INTERNAL` is
//! recorded.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// The ErrorInfo domain of statuses built here (the server's error domain).
pub const ERROR_DOMAIN: &str = "probserve.dev";

/// Longest panic message quoted back to the client, in bytes.
const MAX_MESSAGE: usize = 200;

/// The message of a panic payload (`&str` or `String`; anything else is "unknown").
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

fn truncated(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// The `INTERNAL` status a caught panic is answered with.
pub fn panic_status(payload: &(dyn std::any::Any + Send)) -> Status {
    let details = ErrorDetails::with_error_info(
        "PANIC",
        ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    Status::with_error_details(
        Code::Internal,
        format!(
            "internal error: the handler panicked ({}); this is a server bug",
            truncated(panic_message(payload))
        ),
        details,
    )
}

/// Replaces the process panic hook with one that logs each panic as one `error`
/// line (message, location, thread) through `tracing`. Panics stay panics: the
/// unwinding and whatever catches it are unchanged.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = truncated(panic_message(info.payload()));
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            target: "probserve::panic",
            panic = %message,
            location = %location,
            thread = thread.name().unwrap_or("unnamed"),
            "panic"
        );
    }));
}

/// The tower layer; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct CatchPanicLayer {
    caught: Arc<AtomicU64>,
}

impl CatchPanicLayer {
    /// A layer with its own panic counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Panics caught since start.
    pub fn caught(&self) -> u64 {
        self.caught.load(Ordering::Relaxed)
    }
}

impl<S> tower::Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic {
            inner,
            caught: Arc::clone(&self.caught),
        }
    }
}

/// The service [`CatchPanicLayer`] produces.
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
    caught: Arc<AtomicU64>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for CatchPanic<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = CatchPanicFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let caught = Arc::clone(&self.caught);
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(inner) => CatchPanicFuture {
                inner: Some(inner),
                ready: None,
                caught,
            },
            Err(payload) => {
                caught.fetch_add(1, Ordering::Relaxed);
                CatchPanicFuture {
                    inner: None,
                    ready: Some(panic_status(payload.as_ref()).into_http()),
                    caught,
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`CatchPanic`].
    pub struct CatchPanicFuture<F, B> {
        #[pin]
        inner: Option<F>,
        ready: Option<http::Response<B>>,
        caught: Arc<AtomicU64>,
    }
}

impl<F, B, E> Future for CatchPanicFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Default,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(inner) = this.inner.as_mut().as_pin_mut() {
            return match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                Ok(p) => p,
                Err(payload) => {
                    // The inner future is poisoned: drop it, never poll it again.
                    this.inner.set(None);
                    this.caught.fetch_add(1, Ordering::Relaxed);
                    Poll::Ready(Ok(panic_status(payload.as_ref()).into_http()))
                }
            };
        }
        match this.ready.take() {
            Some(r) => Poll::Ready(Ok(r)),
            None => Poll::Ready(Ok(Status::internal(
                "catch-panic future polled after completion",
            )
            .into_http())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::{Layer, ServiceExt};

    fn status_of(r: &http::Response<String>) -> Status {
        Status::from_header_map(r.headers()).expect("a grpc-status header")
    }

    #[tokio::test]
    async fn a_panic_while_polling_becomes_internal_with_reason_panic() {
        let layer = CatchPanicLayer::new();
        let svc = layer.layer(tower::service_fn(|req: http::Request<()>| async move {
            if req.uri().path().ends_with("/Boom") {
                let d = std::time::Duration::from_secs(u64::MAX);
                // The overflow that issue 12 found in the Infer path.
                let _ = std::time::Instant::now() + d;
            }
            Ok::<_, Infallible>(http::Response::new(String::from("ok")))
        }));
        let req = |p: &str| http::Request::builder().uri(p).body(()).unwrap();
        let r = svc.clone().oneshot(req("/x.Y/Boom")).await.unwrap();
        let s = status_of(&r);
        assert_eq!(s.code(), Code::Internal);
        assert!(s.message().contains("panicked"), "{}", s.message());
        let info = s.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "PANIC");
        assert_eq!(layer.caught(), 1);
        // The next call is served normally.
        let ok = svc.oneshot(req("/x.Y/Fine")).await.unwrap();
        assert!(ok.headers().get("grpc-status").is_none());
        assert_eq!(ok.into_body(), "ok");
        assert_eq!(layer.caught(), 1);
    }

    #[derive(Clone)]
    struct PanicsInCall;
    impl tower::Service<http::Request<()>> for PanicsInCall {
        type Response = http::Response<String>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            panic!("{}", "x".repeat(5000))
        }
    }

    #[tokio::test]
    async fn a_panic_in_call_is_caught_and_its_message_capped() {
        let layer = CatchPanicLayer::new();
        let r = layer
            .layer(PanicsInCall)
            .oneshot(http::Request::new(()))
            .await
            .unwrap();
        let s = status_of(&r);
        assert_eq!(s.code(), Code::Internal);
        assert!(s.message().len() < 400, "{}", s.message().len());
        assert_eq!(layer.caught(), 1);
    }
}
