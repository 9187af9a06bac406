//! `InferenceService`: UNIMPLEMENTED until the model language, registry and runtime
//! are wired in (issue "Models as data").

use probserve_proto::v1::inference_service_server::InferenceService;
use probserve_proto::v1::*;
use tonic::{Request, Response, Status, Streaming};

use super::status::not_yet;

const CAPABILITY: &str = "models as data (the model language, registry and Infer end to end)";

/// The InferenceService handler.
#[derive(Debug, Default)]
pub struct Inference;

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl InferenceService for Inference {
    async fn infer(&self, _: Request<InferRequest>) -> Result<Response<InferResponse>, Status> {
        Err(not_yet("Infer", CAPABILITY))
    }
    type InferStreamStream = Stream<InferStreamResponse>;
    async fn infer_stream(
        &self,
        _: Request<Streaming<InferStreamRequest>>,
    ) -> Result<Response<Self::InferStreamStream>, Status> {
        Err(not_yet("InferStream", CAPABILITY))
    }
}
