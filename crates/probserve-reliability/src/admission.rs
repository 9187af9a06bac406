//! Admission control: load shedding and the drain gate, as one tower layer.
//!
//! Every call first asks [`Admission`] for a permit:
//! - while the server drains, new calls are refused with `UNAVAILABLE` (clients
//!   retry on another replica) — except exempt paths such as `grpc.health.v1`, so
//!   probes can see the NOT_SERVING status;
//! - when `max_in_flight` calls are already running, the call is refused at once
//!   with `RESOURCE_EXHAUSTED` and a retry hint, rather than queued: a queue in front
//!   of a saturated CPU pool only adds latency (see reliability.md on load shedding).
//!
//! The permit is held until the response future completes. The layer never touches
//! the body, so it adds one atomic operation pair per call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// Shared admission state: the in-flight limit, the draining flag and counters.
#[derive(Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    draining: AtomicBool,
    shed: AtomicU64,
    refused_draining: AtomicU64,
    exempt_prefixes: Vec<String>,
}

impl Admission {
    /// Allows at most `max_in_flight` calls at once (clamped to at least 1); calls
    /// whose path starts with one of `exempt_prefixes` are never refused.
    pub fn new(max_in_flight: usize, exempt_prefixes: &[&str]) -> Arc<Self> {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            draining: AtomicBool::new(false),
            shed: AtomicU64::new(0),
            refused_draining: AtomicU64::new(0),
            exempt_prefixes: exempt_prefixes.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// Starts draining: from now on non-exempt calls are refused.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// True once [`Admission::start_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Calls running now (admitted and not yet answered).
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.permits.available_permits()
    }

    /// The configured limit.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Calls refused because the limit was reached, since start.
    pub fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Calls refused because the server was draining, since start.
    pub fn refused_draining_count(&self) -> u64 {
        self.refused_draining.load(Ordering::Relaxed)
    }

    /// A permit for one item of a streaming call (each InferStream item is a call
    /// of its own for admission: the stream's permit ends when its headers go
    /// out). Refused with `RESOURCE_EXHAUSTED` at the limit and `UNAVAILABLE` while
    /// draining, exactly like a new call; the permit is released on drop.
    ///
    /// # Errors
    /// The status to answer the item with.
    pub fn try_acquire_item(&self) -> Result<ItemPermit, Status> {
        if self.is_draining() {
            self.refused_draining.fetch_add(1, Ordering::Relaxed);
            return Err(Status::unavailable(
                "server is draining; retry on another replica",
            ));
        }
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => Ok(ItemPermit { _permit: p }),
            Err(_) => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                Err(self.shed_status())
            }
        }
    }

    fn shed_status(&self) -> Status {
        let details = tonic_types::ErrorDetails::with_retry_info(Some(SHED_RETRY_AFTER));
        <Status as tonic_types::StatusExt>::with_error_details(
            tonic::Code::ResourceExhausted,
            format!(
                "load shed: {} calls already in flight (limit {}); retry with back-off",
                self.max_in_flight, self.max_in_flight
            ),
            details,
        )
    }

    fn is_exempt(&self, path: &str) -> bool {
        self.exempt_prefixes
            .iter()
            .any(|p| path.starts_with(p.as_str()))
    }

    /// Decides on one call: `Ok(Some(permit))` admitted, `Ok(None)` exempt,
    /// `Err(status)` refused.
    fn admit(&self, path: &str) -> Result<Option<OwnedSemaphorePermit>, Status> {
        if self.is_exempt(path) {
            return Ok(None);
        }
        if self.is_draining() {
            self.refused_draining.fetch_add(1, Ordering::Relaxed);
            return Err(Status::unavailable(
                "server is draining; retry on another replica",
            ));
        }
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => Ok(Some(p)),
            Err(_) => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                Err(self.shed_status())
            }
        }
    }
}

/// The retry hint sent with a shed call.
pub const SHED_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// An admission permit held by one streamed item; see [`Admission::try_acquire_item`].
#[derive(Debug)]
pub struct ItemPermit {
    _permit: OwnedSemaphorePermit,
}

/// The tower layer; see the module docs.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    admission: Arc<Admission>,
}

impl AdmissionLayer {
    /// A layer sharing `admission` (keep a clone to drain and to read counters).
    pub fn new(admission: Arc<Admission>) -> Self {
        Self { admission }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = AdmissionService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AdmissionService {
            inner,
            admission: Arc::clone(&self.admission),
        }
    }
}

/// The service [`AdmissionLayer`] produces.
#[derive(Debug, Clone)]
pub struct AdmissionService<S> {
    inner: S,
    admission: Arc<Admission>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for AdmissionService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = AdmissionFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        match self.admission.admit(req.uri().path()) {
            Ok(permit) => AdmissionFuture::admitted(self.inner.call(req), permit),
            Err(status) => AdmissionFuture::refused(status.into_http()),
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`AdmissionService`]: the inner future (holding the permit
    /// until it completes) or an immediate refusal.
    pub struct AdmissionFuture<F, B> {
        #[pin]
        inner: Option<F>,
        permit: Option<OwnedSemaphorePermit>,
        refused: Option<http::Response<B>>,
    }
}

impl<F, B> AdmissionFuture<F, B> {
    fn admitted(inner: F, permit: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            inner: Some(inner),
            permit,
            refused: None,
        }
    }

    fn refused(response: http::Response<B>) -> Self {
        Self {
            inner: None,
            permit: None,
            refused: Some(response),
        }
    }
}

impl<F, B, E> Future for AdmissionFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Default,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(inner) = this.inner.as_pin_mut() {
            let out = std::task::ready!(inner.poll(cx));
            drop(this.permit.take());
            return Poll::Ready(out);
        }
        match this.refused.take() {
            Some(r) => Poll::Ready(Ok(r)),
            // Polled again after completion: a contract violation by the caller;
            // answer with a clean internal error rather than panicking.
            None => Poll::Ready(Ok(Status::internal(
                "admission future polled after completion",
            )
            .into_http())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tokio::sync::oneshot;
    use tower::{Layer, Service, ServiceExt};

    fn grpc_status(r: &http::Response<String>) -> Option<String> {
        r.headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn sheds_beyond_limit_and_admits_again_after() {
        let adm = Admission::new(1, &["/grpc.health.v1."]);
        let (tx, rx) = oneshot::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(Some(rx)));
        let svc = tower::service_fn(move |_req: http::Request<()>| {
            let rx = rx.lock().unwrap().take();
            async move {
                if let Some(rx) = rx {
                    let _ = rx.await;
                }
                Ok::<_, Infallible>(http::Response::new(String::from("ok")))
            }
        });
        let mut svc = AdmissionLayer::new(Arc::clone(&adm)).layer(svc);
        let req = |p: &str| http::Request::builder().uri(p).body(()).unwrap();
        let slow = tokio::spawn(
            svc.clone()
                .oneshot(req("/probserve.v1.InferenceService/Infer")),
        );
        tokio::task::yield_now().await;
        while adm.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let shed = svc
            .ready()
            .await
            .unwrap()
            .call(req("/probserve.v1.InferenceService/Infer"))
            .await
            .unwrap();
        assert_eq!(grpc_status(&shed).as_deref(), Some("8"));
        assert_eq!(adm.shed_count(), 1);
        // Health checks are exempt even at the limit.
        let health = svc
            .ready()
            .await
            .unwrap()
            .call(req("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert_eq!(grpc_status(&health), None);
        tx.send(()).unwrap();
        slow.await.unwrap().unwrap();
        assert_eq!(adm.in_flight(), 0);
        let ok = svc
            .ready()
            .await
            .unwrap()
            .call(req("/probserve.v1.InferenceService/Infer"))
            .await
            .unwrap();
        assert_eq!(grpc_status(&ok), None);
    }

    #[tokio::test]
    async fn draining_refuses_new_calls_but_not_health() {
        let adm = Admission::new(8, &["/grpc.health.v1."]);
        let svc = tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(String::new()))
        });
        let mut svc = AdmissionLayer::new(Arc::clone(&adm)).layer(svc);
        adm.start_draining();
        let r = svc
            .ready()
            .await
            .unwrap()
            .call(
                http::Request::builder()
                    .uri("/probserve.v1.ModelRegistryService/GetModel")
                    .body(())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(grpc_status(&r).as_deref(), Some("14"));
        assert_eq!(adm.refused_draining_count(), 1);
        let r = svc
            .ready()
            .await
            .unwrap()
            .call(
                http::Request::builder()
                    .uri("/grpc.health.v1.Health/Check")
                    .body(())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(grpc_status(&r), None);
    }

    #[tokio::test]
    async fn stream_items_take_permits_from_the_same_limit() {
        let adm = Admission::new(2, &[]);
        let a = adm.try_acquire_item().unwrap();
        let _b = adm.try_acquire_item().unwrap();
        assert_eq!(adm.in_flight(), 2);
        let refused = adm.try_acquire_item().unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        use tonic_types::StatusExt as _;
        assert!(refused.get_error_details().retry_info().is_some());
        assert_eq!(adm.shed_count(), 1);
        // A whole call is shed too while items hold every permit.
        let svc = tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(String::new()))
        });
        let r = AdmissionLayer::new(Arc::clone(&adm))
            .layer(svc)
            .oneshot(http::Request::builder().uri("/a.B/C").body(()).unwrap())
            .await
            .unwrap();
        assert_eq!(grpc_status(&r).as_deref(), Some("8"));
        drop(a);
        assert_eq!(adm.in_flight(), 1);
        let _c = adm.try_acquire_item().unwrap();
        adm.start_draining();
        assert_eq!(
            adm.try_acquire_item().unwrap_err().code(),
            tonic::Code::Unavailable
        );
    }

    #[test]
    fn zero_limit_is_clamped_to_one() {
        assert_eq!(Admission::new(0, &[]).max_in_flight(), 1);
    }
}
