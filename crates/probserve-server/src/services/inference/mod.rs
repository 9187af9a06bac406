//! `InferenceService`: validate the request, resolve the version, bind the inputs,
//! run on the CPU pool under the deadline, and summarize.

use std::sync::Arc;
use std::time::{Duration, Instant};

use probserve_lang::Inputs;
use probserve_proto::v1::inference_service_server::InferenceService;
use probserve_proto::v1::*;
use probserve_runtime::{CancelToken, InferError};
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::Instrument as _;

mod execute;
mod mirror;
mod request;
mod stream;

use crate::catalog::Catalog;
use crate::config::NonFinitePolicy;
use crate::infer::{self, CancelOnDrop, InferencePool, Method, RunError};
use crate::rollouts::{MirrorLimit, Rollouts, Routed, SideOutcome};
use crate::run_cost;
use crate::services::status::{from_catalog, invalid_argument, with_reason};
pub use execute::ResponseHold;
use execute::memory_error;
use mirror::MirrorCall;
use probserve_experiment::metrics::Observation;
use probserve_experiment::routing::Reason;
pub use request::inputs_from_proto;
use request::{Violations, grpc_timeout, input_value, method};

/// The InferenceService handler.
#[derive(Debug, Clone)]
pub struct Inference {
    catalog: Arc<Catalog>,
    rollouts: Arc<Rollouts>,
    pool: Arc<InferencePool>,
    default_deadline: Duration,
    inline_budget: Duration,
    mirrors: Arc<MirrorLimit>,
    /// The server's maximum deadline (every call's deadline is clamped to it).
    max_deadline: Duration,
    /// Admission shared with the tower layer: InferStream items take a permit each.
    admission: Option<Arc<probserve_reliability::Admission>>,
    /// Memory budgets: per request, per response, all running calls together.
    memory: run_cost::MemoryBudget,
    /// What a run with non-finite outputs answers.
    non_finite: NonFinitePolicy,
}

impl Inference {
    /// A handler over `catalog`, running on `pool`.
    pub fn new(
        catalog: Arc<Catalog>,
        rollouts: Arc<Rollouts>,
        pool: Arc<InferencePool>,
        default_deadline: Duration,
        inline_budget: Duration,
    ) -> Self {
        Self {
            catalog,
            rollouts,
            pool,
            default_deadline,
            inline_budget,
            mirrors: Arc::default(),
            max_deadline: Duration::MAX,
            admission: None,
            memory: run_cost::MemoryBudget::default(),
            non_finite: NonFinitePolicy::Error,
        }
    }

    /// Sets the memory budgets and the policy for non-finite outputs.
    #[must_use]
    pub fn with_limits(
        mut self,
        memory: run_cost::MemoryBudget,
        non_finite: NonFinitePolicy,
    ) -> Self {
        self.memory = memory;
        self.non_finite = non_finite;
        self
    }

    /// Clamps every call's deadline (the client's or the default) to `max`.
    #[must_use]
    pub fn with_max_deadline(mut self, max: Duration) -> Self {
        self.max_deadline = max;
        self
    }

    /// Admits each InferStream item through `admission` (the same limit as calls).
    #[must_use]
    pub fn with_admission(mut self, admission: Arc<probserve_reliability::Admission>) -> Self {
        self.admission = Some(admission);
        self
    }
}

fn method_enum(m: &Method) -> InferenceMethod {
    match m {
        Method::Prior { .. } => InferenceMethod::Prior,
        Method::Importance { .. } => InferenceMethod::Importance,
        Method::Smc { .. } => InferenceMethod::Smc,
        Method::Mcmc { .. } => InferenceMethod::Mcmc,
    }
}

fn run_error(e: RunError, cancel: &CancelToken, deadline: Instant) -> Status {
    if Instant::now() >= deadline || matches!(e, RunError::QueueDeadline { .. }) {
        return Status::deadline_exceeded(format!(
            "inference did not finish before the deadline: {e}"
        ));
    }
    if cancel.is_cancelled() {
        return Status::cancelled("the call was cancelled");
    }
    match e {
        RunError::QueueDeadline { .. } => Status::deadline_exceeded(e.to_string()),
        RunError::Overloaded { .. } => overloaded(format!("load shed: {e}; retry with back-off")),
        RunError::Panicked(msg) => {
            tracing::error!(panic = %msg, "inference panicked");
            with_reason(
                Code::Internal,
                format!("the model run panicked: {msg}"),
                "MODEL_PANIC",
            )
        }
        RunError::Infer(ie) => match &ie {
            InferError::DeadlineExceeded => {
                Status::deadline_exceeded("inference did not finish before the deadline")
            }
            InferError::Cancelled => Status::cancelled("the call was cancelled"),
            _ if infer::is_step_limit(&ie) => with_reason(
                Code::ResourceExhausted,
                format!("the model exceeded its step budget: {ie}"),
                "STEP_LIMIT",
            ),
            InferError::Model {
                source: probserve_runtime::ModelError::NonFinite { .. },
                ..
            } => with_reason(
                Code::Internal,
                format!("the model produced a non-finite value: {ie}"),
                "MODEL_NAN",
            ),
            InferError::Model {
                source: probserve_runtime::ModelError::SiteLimit { .. },
                ..
            } => memory_error(format!(
                "the model visited more sites (or wrote further into a run-time array) in \
                 one run than the request's memory budget allows \
                 (max_request_memory_bytes): lower the loop lengths or indices set by the \
                 inputs, or num_samples: {ie}"
            )),
            InferError::Model { .. } => with_reason(
                Code::FailedPrecondition,
                format!("the model failed on these inputs: {ie}"),
                "MODEL_ERROR",
            ),
            InferError::NoPositiveWeight | InferError::NoValidInitialization { .. } => with_reason(
                Code::FailedPrecondition,
                format!("the data are impossible under the model's prior: {ie}"),
                "NO_POSITIVE_WEIGHT",
            ),
            InferError::InvalidConfig(msg) => {
                invalid_argument(msg.clone(), vec![("options".into(), msg.clone())])
            }
            _ => with_reason(Code::Internal, ie.to_string(), "INFERENCE"),
        },
    }
}

/// RESOURCE_EXHAUSTED / OVERLOADED with a retry hint: the call was shed because
/// running calls hold the CPU pool or the memory for longer than a call may queue.
fn overloaded(message: String) -> Status {
    use tonic_types::{ErrorDetails, StatusExt as _};
    let mut details = ErrorDetails::new();
    details.set_error_info(
        "OVERLOADED",
        crate::services::status::ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    details.set_retry_info(Some(probserve_reliability::admission::SHED_RETRY_AFTER));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// The message for outputs with non-finite draws, if any.
fn non_finite_message(outputs: &[(String, u64)], draws: u64) -> Option<String> {
    let named: Vec<String> = outputs
        .iter()
        .map(|(name, n)| format!("`{name}` ({n} of {draws} draws)"))
        .collect();
    (!named.is_empty()).then(|| {
        format!(
            "the model produced non-finite outputs (NaN or ±inf): {}",
            named.join(", ")
        )
    })
}

/// True for the status of [`RunError::Overloaded`] (queue shed by the CPU pool).
fn is_pool_shed(s: &Status) -> bool {
    use tonic_types::StatusExt as _;
    s.code() == Code::ResourceExhausted
        && s.get_error_details()
            .error_info()
            .is_some_and(|i| i.reason == "OVERLOADED")
}

fn routing_reason(r: &Reason) -> RoutingReason {
    match r {
        Reason::KillSwitch => RoutingReason::KillSwitch,
        Reason::Override => RoutingReason::Override,
        Reason::Segment(_) => RoutingReason::Segment,
        Reason::Split => RoutingReason::Split,
        Reason::Default => RoutingReason::Default,
    }
}

fn summary(s: &probserve_runtime::OutputSummary) -> OutputSummary {
    OutputSummary {
        name: s.name.clone(),
        mean: s.mean,
        sd: s.sd,
        q05: s.q05,
        q25: s.q25,
        q50: s.q50,
        q75: s.q75,
        q95: s.q95,
        hdi90_low: s.hdi_low,
        hdi90_high: s.hdi_high,
        ess_bulk: s.ess_bulk,
        ess_tail: s.ess_tail,
        rhat: s.r_hat,
        mcse_mean: s.mcse_mean,
    }
}

impl Inference {
    /// One inference, start to end. When spans are exported it runs in an `infer`
    /// span (child of the RPC's) carrying the model, the version that served, the
    /// rollout and arm, the routing reason and the method.
    pub async fn infer_one(
        &self,
        r: InferRequest,
        timeout: Option<Duration>,
    ) -> Result<(InferResponse, ResponseHold), Status> {
        if !crate::telemetry::exporting_spans() {
            return self.run_one(r, timeout).await;
        }
        let span = tracing::info_span!(
            "infer",
            probserve.model = %r.model,
            probserve.version = tracing::field::Empty,
            probserve.rollout = tracing::field::Empty,
            probserve.arm = tracing::field::Empty,
            probserve.routing_reason = tracing::field::Empty,
            probserve.method = tracing::field::Empty,
        );
        let result = self.run_one(r, timeout).instrument(span.clone()).await;
        if let Ok((resp, _)) = &result {
            if let Some(by) = &resp.served_by {
                span.record("probserve.version", by.version.as_str());
                span.record("probserve.rollout", by.rollout_id.as_str());
                span.record("probserve.arm", by.arm.as_str());
                let reason =
                    RoutingReason::try_from(by.reason).map_or("unknown", |r| r.as_str_name());
                span.record("probserve.routing_reason", reason);
            }
            let method =
                InferenceMethod::try_from(resp.method).map_or("unknown", |m| m.as_str_name());
            span.record("probserve.method", method);
        }
        result
    }

    async fn run_one(
        &self,
        r: InferRequest,
        timeout: Option<Duration>,
    ) -> Result<(InferResponse, ResponseHold), Status> {
        let arrived = Instant::now();
        // Clamped to the server's maximum and added without overflow: a client's
        // `grpc-timeout` can be up to 99,999,999 hours.
        let budget = timeout
            .unwrap_or(self.default_deadline)
            .min(self.max_deadline);
        let deadline = arrived.checked_add(budget).unwrap_or(arrived);
        let mut v: Violations = Vec::new();
        if r.model.is_empty() {
            v.push(("model".into(), "must not be empty".into()));
        }
        if !r.version.is_empty() && !r.label.is_empty() {
            v.push(("label".into(), "give a version or a label, not both".into()));
        }
        let method = method(&r, &mut v);
        let mut inputs = Inputs::new();
        for (name, value) in &r.inputs {
            if let Some(iv) = input_value(name, value, &mut v) {
                inputs.insert(name.clone(), iv);
            }
        }
        if !v.is_empty() {
            return Err(invalid_argument(
                format!("invalid request: {} problem(s)", v.len()),
                v,
            ));
        }
        let seed = r.seed.unwrap_or_else(infer::random_seed);
        let routed: Option<Routed> = if r.version.is_empty() && r.label.is_empty() {
            let key = (!r.routing_key.is_empty()).then_some(r.routing_key.as_str());
            self.rollouts.route(&r.model, key, &r.attributes, seed)
        } else {
            None
        };
        let (selector, reason) = match (&routed, r.version.is_empty(), r.label.is_empty()) {
            (Some(rt), _, _) => (
                Some(rt.decision.version.as_str()),
                routing_reason(&rt.decision.reason),
            ),
            (None, false, _) => (Some(r.version.as_str()), RoutingReason::Explicit),
            (None, true, false) => (Some(r.label.as_str()), RoutingReason::Explicit),
            (None, true, true) => (None, RoutingReason::Default),
        };
        let resolved = self
            .catalog
            .resolve(&r.model, selector)
            .await
            .map_err(from_catalog)?;
        let cancel = CancelToken::new().with_deadline(deadline);
        let _guard = CancelOnDrop(cancel.clone());
        let max_draws = if r.return_draws {
            if r.max_draws == 0 {
                1000
            } else {
                r.max_draws as usize
            }
        } else {
            0
        };
        let job = execute::Job {
            resolved: &resolved,
            inputs: &inputs,
            method: &method,
            seed,
            deadline,
            max_draws,
            allow_inline: true,
        };
        let result = self.execute(job, &cancel).await;
        // Non-finite outputs fail the call or warn, by policy; either way they count
        // as an error for the rollout arm's guardrails.
        let nan = result
            .as_ref()
            .ok()
            .and_then(|x| non_finite_message(&x.out.non_finite, x.out.num_draws));
        let result = match (result, &nan) {
            (Ok(_), Some(msg)) if self.non_finite == NonFinitePolicy::Error => {
                Err(with_reason(Code::Internal, msg.clone(), "MODEL_NAN"))
            }
            (r, _) => r,
        };
        // A call shed by the CPU pool says nothing about the version that would have
        // served it: it is no observation for the rollout (no error, no latency).
        let shed = matches!(&result, Err(s) if is_pool_shed(s));
        if let Some(rt) = routed.as_ref().filter(|_| !shed) {
            let (error, timeout) = match &result {
                Ok(_) => (nan.is_some(), false),
                Err(s) if s.code() == Code::DeadlineExceeded => (false, true),
                Err(s) if s.code() == Code::Cancelled => (false, false),
                Err(_) => (true, false),
            };
            let first = result.as_ref().ok().and_then(|x| x.out.summaries.first());
            let latency_ms = arrived.elapsed().as_secs_f64() * 1000.0;
            rt.record(&Observation {
                latency_ms,
                error,
                timeout,
                output_mean: first.map(|s| s.mean),
                output_sd: first.map(|s| s.sd),
            });
            if let Some(mirror) = &rt.mirror {
                let primary = SideOutcome {
                    latency_ms,
                    first_output: first.map(|s| (s.mean, s.sd)),
                };
                let call = MirrorCall {
                    model: r.model.clone(),
                    inputs,
                    method: method.clone(),
                    seed,
                    budget: deadline.saturating_duration_since(arrived),
                };
                self.spawn_mirror(mirror.clone(), call, primary);
            }
        }
        let execute::Executed {
            out,
            queued,
            compute,
            hold,
        } = result?;
        let summaries: Vec<OutputSummary> = out.summaries.iter().map(summary).collect();
        let min_ess = summaries
            .iter()
            .map(|s| s.ess_bulk)
            .fold(f64::INFINITY, f64::min);
        let max_rhat = summaries
            .iter()
            .filter_map(|s| s.rhat)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let mut warnings = Vec::new();
        if let Some(msg) = &nan {
            warnings.push(format!("NON_FINITE_OUTPUTS: {msg}"));
        }
        if let Some(rh) = max_rhat.filter(|rh| *rh > 1.01) {
            warnings.push(format!(
                "max R-hat {rh:.3} > 1.01: chains have not mixed; run longer"
            ));
        }
        if min_ess.is_finite() && min_ess < 100.0 {
            warnings.push(format!(
                "min bulk ESS {min_ess:.0} < 100: estimates are noisy"
            ));
        }
        let version = &resolved.version;
        let response = InferResponse {
            outputs: summaries,
            log_evidence: out.log_evidence,
            served_by: Some(ServedBy {
                model: version.name.clone(),
                version: version.version.clone(),
                content_hash: version.content_hash.clone(),
                rollout_id: routed
                    .as_ref()
                    .map(|r| r.rollout_id.clone())
                    .unwrap_or_default(),
                arm: routed
                    .as_ref()
                    .map(|r| r.arm.to_owned())
                    .unwrap_or_default(),
                reason: reason as i32,
                degraded: false,
            }),
            timings: Some(Timings {
                queue_micros: queued.as_micros() as u64,
                compute_micros: compute.as_micros() as u64,
                total_micros: arrived.elapsed().as_micros() as u64,
            }),
            diagnostics: Some(RunDiagnostics {
                num_draws: out.num_draws,
                min_ess_bulk: if min_ess.is_finite() { min_ess } else { 0.0 },
                max_rhat,
                acceptance_rate: out.acceptance_rate,
                resamples: out.resamples,
                warnings,
            }),
            draws: out
                .draws
                .into_iter()
                .map(|(name, values)| OutputDraws { name, values })
                .collect(),
            seed,
            trace_id: crate::telemetry::current_trace_id(),
            method: method_enum(&method) as i32,
        };
        Ok((response, hold))
    }
}

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl InferenceService for Inference {
    async fn infer(&self, req: Request<InferRequest>) -> Result<Response<InferResponse>, Status> {
        let timeout = grpc_timeout(&req);
        let r = req.into_inner();
        let model = r.model.clone();
        let result = self.infer_one(r, timeout).await.map(|(resp, _hold)| resp);
        match &result {
            Ok(resp) => {
                let v = resp
                    .served_by
                    .as_ref()
                    .map(|s| s.version.as_str())
                    .unwrap_or_default();
                tracing::debug!(model = %model, version = %v, "infer ok");
            }
            Err(s) => {
                tracing::debug!(model = %model, code = ?s.code(), message = %s.message(), "infer failed")
            }
        }
        result.map(Response::new)
    }

    type InferStreamStream = Stream<InferStreamResponse>;

    async fn infer_stream(
        &self,
        req: Request<Streaming<InferStreamRequest>>,
    ) -> Result<Response<Self::InferStreamStream>, Status> {
        Ok(Response::new(stream::infer_stream(self.clone(), req)))
    }
}
