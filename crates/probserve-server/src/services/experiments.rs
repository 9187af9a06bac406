//! `ExperimentService`: create, inspect, drive and watch rollouts. The engine is
//! `probserve-experiment`; state lives in [`crate::rollouts::Rollouts`], which persists
//! every change (with its audit record) before applying it.

use std::sync::Arc;

use probserve_experiment::audit::Actor;
use probserve_experiment::rollout::{Command, Rollout};
use probserve_proto::v1::experiment_service_server::ExperimentService;
use probserve_proto::v1::*;
use tokio_stream::StreamExt as _;
use tonic::{Code, Request, Response, Status};

use super::status::{from_catalog, invalid_argument, with_reason};
use crate::catalog::Catalog;
use crate::rollouts::convert::{
    analysis_to_proto, rollout_to_proto, shadow_to_proto, spec_from_proto,
};
use crate::rollouts::{RolloutError, Rollouts, now};

/// The ExperimentService handler.
#[derive(Debug, Clone)]
pub struct Experiments {
    rollouts: Arc<Rollouts>,
    catalog: Arc<Catalog>,
}

impl Experiments {
    /// A handler over `rollouts`, checking versions in `catalog`.
    pub fn new(rollouts: Arc<Rollouts>, catalog: Arc<Catalog>) -> Self {
        Self { rollouts, catalog }
    }
}

/// The gRPC status for a rollout error.
pub fn from_rollout(e: RolloutError) -> Status {
    use probserve_experiment::ExperimentError as E;
    match e {
        RolloutError::NotFound(id) => with_reason(
            Code::NotFound,
            format!("rollout {id:?} not found"),
            "NOT_FOUND",
        ),
        RolloutError::AlreadyExists(msg) => with_reason(Code::AlreadyExists, msg, "ALREADY_EXISTS"),
        e @ RolloutError::StaleRevision { .. } => {
            with_reason(Code::Aborted, e.to_string(), "CONFLICT")
        }
        RolloutError::Engine(E::InvalidConfig { field, reason })
        | RolloutError::Command(probserve_experiment::RolloutError::Config(E::InvalidConfig {
            field,
            reason,
        })) => invalid_argument(
            format!("invalid rollout plan: {field}: {reason}"),
            vec![(format!("spec.{field}"), reason)],
        ),
        RolloutError::Engine(e) => invalid_argument(e.to_string(), vec![]),
        RolloutError::Command(probserve_experiment::RolloutError::Limit { field, reason }) => {
            invalid_argument(
                format!("{field}: {reason}"),
                vec![(field.to_owned(), reason)],
            )
        }
        RolloutError::Command(e @ probserve_experiment::RolloutError::UnknownVersion(_)) => {
            invalid_argument(e.to_string(), vec![("version".into(), e.to_string())])
        }
        RolloutError::Command(e) => with_reason(
            Code::FailedPrecondition,
            e.to_string(),
            "INVALID_TRANSITION",
        ),
        RolloutError::Store(e) => from_catalog(crate::catalog::CatalogError::Store(e)),
        RolloutError::Internal(msg) => with_reason(Code::Internal, msg, "INTERNAL"),
    }
}

/// Most rollouts one ListRollouts answer holds (newest first); GetRollout reads
/// any rollout by id.
pub const MAX_LISTED_ROLLOUTS: usize = 1000;

/// Longest actor name kept in the audit log, in bytes.
const MAX_ACTOR_BYTES: usize = 256;
/// Longest reason kept in the audit log, in bytes.
const MAX_REASON_BYTES: usize = 4096;

fn actor(name: &str) -> Result<Actor, Status> {
    if name.trim().is_empty() {
        return Err(invalid_argument(
            "actor is required for the audit log",
            vec![("context.actor".into(), "must not be empty".into())],
        ));
    }
    if name.len() > MAX_ACTOR_BYTES {
        return Err(invalid_argument(
            "actor is too long",
            vec![(
                "context.actor".into(),
                format!("at most {MAX_ACTOR_BYTES} bytes, got {}", name.len()),
            )],
        ));
    }
    Ok(Actor::Operator(name.to_owned()))
}

/// Audit reasons are stored with every change, so they are bounded.
fn check_reason(field: &str, reason: &str) -> Result<(), Status> {
    if reason.len() > MAX_REASON_BYTES {
        return Err(invalid_argument(
            format!("{field} is too long"),
            vec![(
                field.into(),
                format!("at most {MAX_REASON_BYTES} bytes, got {}", reason.len()),
            )],
        ));
    }
    Ok(())
}

impl Experiments {
    fn view(&self, id: &str) -> Result<Rollout, Status> {
        Ok(self
            .rollouts
            .get(id)
            .ok_or_else(|| from_rollout(RolloutError::NotFound(id.to_owned())))?
            .1)
    }

    async fn run(
        &self,
        ctx: Option<CommandContext>,
        command: Command,
    ) -> Result<probserve_proto::v1::Rollout, Status> {
        let ctx = ctx.ok_or_else(|| {
            invalid_argument(
                "context is required",
                vec![("context".into(), "must be set".into())],
            )
        })?;
        let who = actor(&ctx.actor)?;
        check_reason("context.reason", &ctx.reason)?;
        let r = self
            .rollouts
            .command(&ctx.id, command, who, &ctx.reason, ctx.expected_revision)
            .await
            .map_err(from_rollout)?;
        let model = self
            .rollouts
            .get(&ctx.id)
            .map(|(m, _)| m)
            .unwrap_or_default();
        Ok(rollout_to_proto(&model, &r))
    }
}

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl ExperimentService for Experiments {
    async fn create_rollout(
        &self,
        req: Request<CreateRolloutRequest>,
    ) -> Result<Response<CreateRolloutResponse>, Status> {
        let r = req.into_inner();
        let who = actor(&r.actor).map_err(|_| {
            invalid_argument(
                "actor is required (at most 256 bytes)",
                vec![("actor".into(), "must be 1 to 256 bytes".into())],
            )
        })?;
        check_reason("reason", &r.reason)?;
        probserve_store::validate::validate_slug("id", &r.id)
            .map_err(|e| invalid_argument(e.to_string(), vec![("id".into(), e.to_string())]))?;
        let p = r.spec.ok_or_else(|| {
            invalid_argument(
                "spec is required",
                vec![("spec".into(), "must be set".into())],
            )
        })?;
        probserve_store::validate::validate_model_name(&p.model).map_err(|e| {
            invalid_argument(e.to_string(), vec![("spec.model".into(), e.to_string())])
        })?;
        for (field, v) in [
            ("spec.baseline_version", &p.baseline_version),
            ("spec.candidate_version", &p.candidate_version),
        ] {
            if v.is_empty() {
                return Err(invalid_argument(
                    format!("{field} is required"),
                    vec![(field.into(), "must not be empty".into())],
                ));
            }
            if let Err(e) = probserve_store::validate::normalize_version(v) {
                return Err(invalid_argument(
                    format!("{field}: {e}"),
                    vec![(field.into(), e.to_string())],
                ));
            }
        }
        let name = p.model.clone();
        let known = self
            .catalog
            .with_store(move |s| s.model_summary(&name))
            .await
            .map_err(from_catalog)?;
        if known.is_none() {
            return Err(from_catalog(crate::catalog::CatalogError::Store(
                probserve_store::StoreError::not_found(format!("model {:?}", p.model)),
            )));
        }
        // That both versions exist and are not archived is checked inside the
        // store transaction that creates the rollout.
        let spec = spec_from_proto(&r.id, &p).map_err(|e| from_rollout(RolloutError::Engine(e)))?;
        let rollout = Rollout::new(spec).map_err(|e| from_rollout(RolloutError::Engine(e)))?;
        let created = self
            .rollouts
            .create(p.model.clone(), rollout, who, r.reason, r.start)
            .await
            .map_err(from_rollout)?;
        Ok(Response::new(CreateRolloutResponse {
            rollout: Some(rollout_to_proto(&p.model, &created)),
        }))
    }

    async fn get_rollout(
        &self,
        req: Request<GetRolloutRequest>,
    ) -> Result<Response<GetRolloutResponse>, Status> {
        let id = req.into_inner().id;
        let (model, r) = self
            .rollouts
            .get(&id)
            .ok_or_else(|| from_rollout(RolloutError::NotFound(id.clone())))?;
        Ok(Response::new(GetRolloutResponse {
            rollout: Some(rollout_to_proto(&model, &r)),
        }))
    }

    async fn list_rollouts(
        &self,
        req: Request<ListRolloutsRequest>,
    ) -> Result<Response<ListRolloutsResponse>, Status> {
        let r = req.into_inner();
        let mut list = self.rollouts.list(&r.model, r.active_only);
        // Newest first (never started last), then by id; the proto has no paging,
        // so the answer is capped and the oldest are left off.
        list.sort_by(|(_, a), (_, b)| {
            b.state
                .started_at
                .cmp(&a.state.started_at)
                .then_with(|| a.spec.id.cmp(&b.spec.id))
        });
        list.truncate(MAX_LISTED_ROLLOUTS);
        let rollouts = list.iter().map(|(m, ro)| rollout_to_proto(m, ro)).collect();
        Ok(Response::new(ListRolloutsResponse { rollouts }))
    }

    async fn start_rollout(
        &self,
        req: Request<StartRolloutRequest>,
    ) -> Result<Response<StartRolloutResponse>, Status> {
        let r = self.run(req.into_inner().context, Command::Start).await?;
        Ok(Response::new(StartRolloutResponse { rollout: Some(r) }))
    }

    async fn advance_rollout(
        &self,
        req: Request<AdvanceRolloutRequest>,
    ) -> Result<Response<AdvanceRolloutResponse>, Status> {
        let r = self.run(req.into_inner().context, Command::Advance).await?;
        Ok(Response::new(AdvanceRolloutResponse { rollout: Some(r) }))
    }

    async fn pause_rollout(
        &self,
        req: Request<PauseRolloutRequest>,
    ) -> Result<Response<PauseRolloutResponse>, Status> {
        let r = self.run(req.into_inner().context, Command::Pause).await?;
        Ok(Response::new(PauseRolloutResponse { rollout: Some(r) }))
    }

    async fn resume_rollout(
        &self,
        req: Request<ResumeRolloutRequest>,
    ) -> Result<Response<ResumeRolloutResponse>, Status> {
        let r = self.run(req.into_inner().context, Command::Resume).await?;
        Ok(Response::new(ResumeRolloutResponse { rollout: Some(r) }))
    }

    async fn promote_rollout(
        &self,
        req: Request<PromoteRolloutRequest>,
    ) -> Result<Response<PromoteRolloutResponse>, Status> {
        let r = self.run(req.into_inner().context, Command::Promote).await?;
        Ok(Response::new(PromoteRolloutResponse { rollout: Some(r) }))
    }

    async fn rollback_rollout(
        &self,
        req: Request<RollbackRolloutRequest>,
    ) -> Result<Response<RollbackRolloutResponse>, Status> {
        let r = self
            .run(req.into_inner().context, Command::Rollback)
            .await?;
        Ok(Response::new(RollbackRolloutResponse { rollout: Some(r) }))
    }

    async fn abort_rollout(
        &self,
        req: Request<AbortRolloutRequest>,
    ) -> Result<Response<AbortRolloutResponse>, Status> {
        let r = self.run(req.into_inner().context, Command::Abort).await?;
        Ok(Response::new(AbortRolloutResponse { rollout: Some(r) }))
    }

    async fn set_kill_switch(
        &self,
        req: Request<SetKillSwitchRequest>,
    ) -> Result<Response<SetKillSwitchResponse>, Status> {
        let r = req.into_inner();
        let out = self
            .run(r.context, Command::KillSwitch { on: r.enabled })
            .await?;
        Ok(Response::new(SetKillSwitchResponse { rollout: Some(out) }))
    }

    async fn set_override(
        &self,
        req: Request<SetOverrideRequest>,
    ) -> Result<Response<SetOverrideResponse>, Status> {
        let r = req.into_inner();
        if r.routing_key.is_empty() {
            return Err(invalid_argument(
                "routing_key is required",
                vec![("routing_key".into(), "must not be empty".into())],
            ));
        }
        let command = if r.version.is_empty() {
            Command::ClearOverride { key: r.routing_key }
        } else {
            Command::SetOverride {
                key: r.routing_key,
                version: r.version,
            }
        };
        let out = self.run(r.context, command).await?;
        Ok(Response::new(SetOverrideResponse { rollout: Some(out) }))
    }

    async fn record_outcome(
        &self,
        req: Request<RecordOutcomeRequest>,
    ) -> Result<Response<RecordOutcomeResponse>, Status> {
        let r = req.into_inner();
        if r.routing_key.is_empty() || r.metric.is_empty() {
            return Err(invalid_argument(
                "routing_key and metric are required",
                vec![
                    ("routing_key".into(), "must not be empty".into()),
                    ("metric".into(), "must not be empty".into()),
                ],
            ));
        }
        let version = self
            .rollouts
            .record_outcome(&r.id, &r.routing_key, &r.metric, r.value)
            .map_err(from_rollout)?;
        Ok(Response::new(RecordOutcomeResponse { version }))
    }

    async fn get_analysis(
        &self,
        req: Request<GetAnalysisRequest>,
    ) -> Result<Response<GetAnalysisResponse>, Status> {
        let id = req.into_inner().id;
        let r = self.view(&id)?;
        let metrics = self
            .rollouts
            .metrics(&id)
            .ok_or_else(|| from_rollout(RolloutError::NotFound(id.clone())))?;
        let shadow = self.rollouts.shadow_stats(&id).unwrap_or_default();
        let eval = probserve_experiment::controller::evaluate(&r, &metrics, Some(&shadow), now())
            .map_err(|e| from_rollout(RolloutError::Engine(e)))?;
        let mut resp = analysis_to_proto(&r, &eval);
        resp.shadow = shadow_to_proto(&r, &shadow);
        Ok(Response::new(resp))
    }

    type WatchRolloutStream = Stream<WatchRolloutResponse>;

    async fn watch_rollout(
        &self,
        req: Request<WatchRolloutRequest>,
    ) -> Result<Response<Self::WatchRolloutStream>, Status> {
        let id = req.into_inner().id;
        let rx = self.rollouts.subscribe();
        let (model, current) = self
            .rollouts
            .get(&id)
            .ok_or_else(|| from_rollout(RolloutError::NotFound(id.clone())))?;
        let first = tokio_stream::once(Ok(WatchRolloutResponse {
            rollout: Some(rollout_to_proto(&model, &current)),
            change: String::new(),
        }));
        let changes =
            tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |ev| match ev {
                Ok(ev) if ev.rollout.spec.id == id => Some(Ok(WatchRolloutResponse {
                    rollout: Some(rollout_to_proto(&ev.model, &ev.rollout)),
                    change: ev.change,
                })),
                Ok(_) => None,
                Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                    Some(Err(Status::data_loss(format!(
                        "watcher fell behind by {n} changes; call GetRollout and watch again"
                    ))))
                }
            });
        Ok(Response::new(Box::pin(first.chain(changes))))
    }
}
