//! The server's maximum deadline, for every call: a tower layer that clamps the
//! client's `grpc-timeout` to `max` (so handlers reading the header see at most
//! `max`), drops a header that is not valid gRPC (more than 8 digits, unknown
//! unit: handlers then apply their own default), and answers `DEADLINE_EXCEEDED`
//! if the response has not started a grace period after the effective deadline.
//!
//! The grace period lets handlers that track the deadline themselves (Infer)
//! answer first with their own details and bookkeeping; the layer is the backstop
//! for those that do not. No arithmetic here can overflow: the parser accepts at
//! most 8 digits (the gRPC wire spec) and instants are added with `checked_add`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::Status;

/// How long after the effective deadline the layer answers for a handler that
/// has not.
pub const GRACE: Duration = Duration::from_secs(1);

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit of `H M S m u
/// n` (PROTOCOL-HTTP2). Anything else is `None`.
pub fn parse_grpc_timeout(v: &[u8]) -> Option<Duration> {
    let (&unit, digits) = v.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // At most 99,999,999: no overflow in u64 even times 3600.
    let n: u64 = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Formats `d` as a `grpc-timeout` value in milliseconds (rounded up, at most 8
/// digits).
fn format_grpc_timeout(d: Duration) -> http::HeaderValue {
    let ms = d.as_nanos().div_ceil(1_000_000).min(99_999_999);
    http::HeaderValue::try_from(format!("{ms}m"))
        .unwrap_or_else(|_| http::HeaderValue::from_static("99999999m"))
}

/// The deadline a call gets: the client's `grpc-timeout` clamped to `max`, or
/// `max` when it sent none (or an invalid one).
pub fn effective_timeout(header: Option<&[u8]>, max: Duration) -> Duration {
    header
        .and_then(parse_grpc_timeout)
        .map_or(max, |t| t.min(max))
}

/// The tower layer; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    max: Duration,
}

impl DeadlineLayer {
    /// Caps every call's deadline at `max`.
    pub fn new(max: Duration) -> Self {
        Self { max }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            max: self.max,
        }
    }
}

/// The service [`DeadlineLayer`] produces.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    max: Duration,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Deadline<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        let headers = req.headers_mut();
        let client = headers
            .get("grpc-timeout")
            .map(|v| parse_grpc_timeout(v.as_bytes()));
        let timeout = match client {
            None => self.max,
            Some(None) => {
                // Not valid gRPC: as if absent (the handler's default applies).
                headers.remove("grpc-timeout");
                self.max
            }
            Some(Some(t)) if t > self.max => {
                headers.insert("grpc-timeout", format_grpc_timeout(self.max));
                self.max
            }
            Some(Some(t)) => t,
        };
        let now = tokio::time::Instant::now();
        let at = now
            .checked_add(timeout.saturating_add(GRACE))
            .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
            .unwrap_or(now);
        DeadlineFuture {
            inner: self.inner.call(req),
            sleep: tokio::time::sleep_until(at),
            timeout,
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`Deadline`].
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: tokio::time::Sleep,
        timeout: Duration,
    }
}

impl<F, B, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Default,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(r) = this.inner.poll(cx) {
            return Poll::Ready(r);
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ok(Status::deadline_exceeded(format!(
                "the call did not answer within its deadline of {} ms (the server caps \
                 deadlines at its max_deadline_ms)",
                this.timeout.as_millis()
            ))
            .into_http())),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::{Layer, ServiceExt};

    #[test]
    fn parses_the_spec_and_refuses_the_rest() {
        assert_eq!(
            parse_grpc_timeout(b"100m"),
            Some(Duration::from_millis(100))
        );
        assert_eq!(parse_grpc_timeout(b"5S"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_grpc_timeout(b"99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        for bad in [
            &b"18446744073709551615S"[..],
            b"123456789m",
            b"S",
            b"",
            b"10x",
            b"-1S",
            b"1 S",
        ] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn effective_timeout_is_clamped() {
        let max = Duration::from_secs(300);
        assert_eq!(effective_timeout(Some(b"3600S"), max), max);
        assert_eq!(effective_timeout(Some(b"2S"), max), Duration::from_secs(2));
        assert_eq!(effective_timeout(Some(b"18446744073709551615S"), max), max);
        assert_eq!(effective_timeout(None, max), max);
    }

    fn echo_header() -> impl tower::Service<
        http::Request<()>,
        Response = http::Response<String>,
        Error = Infallible,
        Future = impl Send,
    > + Clone {
        tower::service_fn(|req: http::Request<()>| async move {
            let h = req
                .headers()
                .get("grpc-timeout")
                .map(|v| v.to_str().unwrap_or("?").to_owned())
                .unwrap_or_default();
            Ok::<_, Infallible>(http::Response::new(h))
        })
    }

    fn with_timeout(v: &str) -> http::Request<()> {
        http::Request::builder()
            .uri("/x.Y/Z")
            .header("grpc-timeout", v)
            .body(())
            .unwrap()
    }

    #[tokio::test]
    async fn handlers_see_the_clamped_header() {
        let svc = DeadlineLayer::new(Duration::from_millis(2500)).layer(echo_header());
        let r = svc.clone().oneshot(with_timeout("1H")).await.unwrap();
        assert_eq!(r.into_body(), "2500m");
        let r = svc.clone().oneshot(with_timeout("2S")).await.unwrap();
        assert_eq!(r.into_body(), "2S");
        let r = svc
            .clone()
            .oneshot(with_timeout("18446744073709551615S"))
            .await
            .unwrap();
        assert_eq!(r.into_body(), "", "an invalid header is dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_handler_that_ignores_its_deadline_is_answered_for() {
        let svc = DeadlineLayer::new(Duration::from_secs(2)).layer(tower::service_fn(
            |_req: http::Request<()>| async {
                std::future::pending::<()>().await;
                Ok::<_, Infallible>(http::Response::new(String::new()))
            },
        ));
        let r = svc.oneshot(with_timeout("1H")).await.unwrap();
        let s = Status::from_header_map(r.headers()).unwrap();
        assert_eq!(s.code(), tonic::Code::DeadlineExceeded);
        assert!(s.message().contains("2000 ms"), "{}", s.message());
    }
}
