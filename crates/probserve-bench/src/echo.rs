//! The floor: a bare tonic server implementing probserve's `InferenceService` that
//! answers every `Infer` with a canned `InferResponse` shaped like the one probserve
//! returns for `temperature_sensor` (two output summaries, log evidence, served-by,
//! timings, diagnostics, trace id), echoing the request's seed.
//!
//! Same tonic, same messages (so the same decode/encode work), and the same server
//! settings as `probserve serve` intends with its defaults (TCP_NODELAY, HTTP/2
//! keepalive 30 s / 10 s, 256 streams per connection, 4 MiB messages); the binary uses
//! the same default multi-threaded tokio runtime. What it lacks is everything probserve adds:
//! metrics and admission layers, routing, the registry and the inference itself.

use std::future::Future;
use std::time::Duration;

use probserve_proto::v1::inference_service_server::{InferenceService, InferenceServiceServer};
use probserve_proto::v1::{
    InferRequest, InferResponse, InferStreamRequest, InferStreamResponse, InferenceMethod,
    OutputSummary, RoutingReason, RunDiagnostics, ServedBy, Timings,
};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

/// probserve's default `max_message_bytes`.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The echo service.
#[derive(Debug, Clone)]
pub struct EchoInference {
    response: InferResponse,
}

impl Default for EchoInference {
    fn default() -> Self {
        Self::new()
    }
}

fn summary(name: &str, mean: f64, sd: f64) -> OutputSummary {
    OutputSummary {
        name: name.into(),
        mean,
        sd,
        q05: mean - 1.645 * sd,
        q25: mean - 0.674 * sd,
        q50: mean + 0.000_3 * sd,
        q75: mean + 0.674 * sd,
        q95: mean + 1.645 * sd,
        hdi90_low: mean - 1.641 * sd,
        hdi90_high: mean + 1.649 * sd,
        ess_bulk: 187.332,
        ess_tail: 187.332,
        rhat: None,
        mcse_mean: 0.073 * sd,
    }
}

/// A response shaped like probserve's answer for `temperature_sensor` with
/// importance sampling (outputs `temp` and `fahrenheit`).
pub fn canned_response() -> InferResponse {
    InferResponse {
        outputs: vec![
            summary("temp", 21.923_076, 0.980_581),
            summary("fahrenheit", 71.461_537, 1.765_046),
        ],
        log_evidence: Some(-2.930_51),
        served_by: Some(ServedBy {
            model: "temperature_sensor".into(),
            version: "1.0.0".into(),
            content_hash: "9f2c1e07b5d84a6a3c0e1f2d3b4a5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d".into(),
            rollout_id: String::new(),
            arm: String::new(),
            reason: RoutingReason::Default as i32,
            degraded: false,
        }),
        timings: Some(Timings {
            queue_micros: 3,
            compute_micros: 41,
            total_micros: 52,
        }),
        diagnostics: Some(RunDiagnostics {
            num_draws: 1000,
            min_ess_bulk: 187.332,
            max_rhat: None,
            acceptance_rate: None,
            resamples: 0,
            warnings: Vec::new(),
        }),
        draws: Vec::new(),
        seed: 0,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        method: InferenceMethod::Importance as i32,
    }
}

impl EchoInference {
    /// The echo service with the canned response.
    pub fn new() -> Self {
        Self {
            response: canned_response(),
        }
    }
}

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl InferenceService for EchoInference {
    async fn infer(&self, req: Request<InferRequest>) -> Result<Response<InferResponse>, Status> {
        let mut r = self.response.clone();
        r.seed = req.get_ref().seed.unwrap_or(0);
        Ok(Response::new(r))
    }

    type InferStreamStream = Stream<InferStreamResponse>;

    async fn infer_stream(
        &self,
        _: Request<Streaming<InferStreamRequest>>,
    ) -> Result<Response<Self::InferStreamStream>, Status> {
        Err(Status::unimplemented(
            "the echo server answers unary Infer only",
        ))
    }
}

/// Serves the echo service on `listener` until `shutdown` completes, with
/// probserve's default server settings.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(256)
        .tcp_nodelay(true)
        .add_service(
            InferenceServiceServer::new(EchoInference::new())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        // tonic ignores the builder's TCP settings for a caller-supplied incoming
        // stream, so TCP_NODELAY is set on the incoming side. (Without it, Nagle plus
        // delayed ACKs add ~40 ms to every unary call.)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
