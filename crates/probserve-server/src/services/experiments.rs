//! `ExperimentService`: every RPC answers UNIMPLEMENTED until the rollout control
//! plane is wired to the server. The engine itself (routing, plans, statistics,
//! guardrails) exists in `probserve-experiment`; what is missing is its state in the
//! store, the controller loop and these handlers. Nothing here pretends to work.

use probserve_proto::v1::experiment_service_server::ExperimentService;
use probserve_proto::v1::*;
use tonic::{Request, Response, Status};

use super::status::not_yet;

const CAPABILITY: &str = "the rollout control plane (experiments over gRPC)";

/// The ExperimentService handler.
#[derive(Debug, Default)]
pub struct Experiments;

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl ExperimentService for Experiments {
    async fn create_rollout(
        &self,
        _: Request<CreateRolloutRequest>,
    ) -> Result<Response<CreateRolloutResponse>, Status> {
        Err(not_yet("CreateRollout", CAPABILITY))
    }
    async fn get_rollout(
        &self,
        _: Request<GetRolloutRequest>,
    ) -> Result<Response<GetRolloutResponse>, Status> {
        Err(not_yet("GetRollout", CAPABILITY))
    }
    async fn list_rollouts(
        &self,
        _: Request<ListRolloutsRequest>,
    ) -> Result<Response<ListRolloutsResponse>, Status> {
        Err(not_yet("ListRollouts", CAPABILITY))
    }
    async fn advance_rollout(
        &self,
        _: Request<AdvanceRolloutRequest>,
    ) -> Result<Response<AdvanceRolloutResponse>, Status> {
        Err(not_yet("AdvanceRollout", CAPABILITY))
    }
    async fn pause_rollout(
        &self,
        _: Request<PauseRolloutRequest>,
    ) -> Result<Response<PauseRolloutResponse>, Status> {
        Err(not_yet("PauseRollout", CAPABILITY))
    }
    async fn resume_rollout(
        &self,
        _: Request<ResumeRolloutRequest>,
    ) -> Result<Response<ResumeRolloutResponse>, Status> {
        Err(not_yet("ResumeRollout", CAPABILITY))
    }
    async fn promote_rollout(
        &self,
        _: Request<PromoteRolloutRequest>,
    ) -> Result<Response<PromoteRolloutResponse>, Status> {
        Err(not_yet("PromoteRollout", CAPABILITY))
    }
    async fn rollback_rollout(
        &self,
        _: Request<RollbackRolloutRequest>,
    ) -> Result<Response<RollbackRolloutResponse>, Status> {
        Err(not_yet("RollbackRollout", CAPABILITY))
    }
    async fn abort_rollout(
        &self,
        _: Request<AbortRolloutRequest>,
    ) -> Result<Response<AbortRolloutResponse>, Status> {
        Err(not_yet("AbortRollout", CAPABILITY))
    }
    async fn set_kill_switch(
        &self,
        _: Request<SetKillSwitchRequest>,
    ) -> Result<Response<SetKillSwitchResponse>, Status> {
        Err(not_yet("SetKillSwitch", CAPABILITY))
    }
    async fn set_override(
        &self,
        _: Request<SetOverrideRequest>,
    ) -> Result<Response<SetOverrideResponse>, Status> {
        Err(not_yet("SetOverride", CAPABILITY))
    }
    async fn record_outcome(
        &self,
        _: Request<RecordOutcomeRequest>,
    ) -> Result<Response<RecordOutcomeResponse>, Status> {
        Err(not_yet("RecordOutcome", CAPABILITY))
    }
    async fn get_analysis(
        &self,
        _: Request<GetAnalysisRequest>,
    ) -> Result<Response<GetAnalysisResponse>, Status> {
        Err(not_yet("GetAnalysis", CAPABILITY))
    }
    type WatchRolloutStream = Stream<WatchRolloutResponse>;
    async fn watch_rollout(
        &self,
        _: Request<WatchRolloutRequest>,
    ) -> Result<Response<Self::WatchRolloutStream>, Status> {
        Err(not_yet("WatchRollout", CAPABILITY))
    }
}
