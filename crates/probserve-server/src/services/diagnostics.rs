//! `DiagnosticsService`: the detailed health report — readiness, admission
//! (in-flight, shed), per-method error rates and an availability SLO computed from
//! the server's own RPC metrics since start.

use std::sync::Arc;

use probserve_proto::v1::diagnostics_service_server::DiagnosticsService;
use probserve_proto::v1::*;
use tonic::{Request, Response, Status};

use crate::state::Shared;

/// Availability objective for probserve's own RPCs (server-side errors only).
const AVAILABILITY_TARGET: f64 = 0.999;

/// The DiagnosticsService handler.
#[derive(Debug)]
pub struct Diagnostics {
    shared: Arc<Shared>,
}

impl Diagnostics {
    /// A handler reading `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[tonic::async_trait]
impl DiagnosticsService for Diagnostics {
    async fn get_health_report(
        &self,
        _: Request<GetHealthReportRequest>,
    ) -> Result<Response<GetHealthReportResponse>, Status> {
        let s = &self.shared;
        let ready = s.is_ready();
        let draining = s.admission.is_draining();
        let mut subsystems = vec![SubsystemHealth {
            name: "server".into(),
            state: if draining || !ready {
                HealthState::NotReady
            } else {
                HealthState::Healthy
            } as i32,
            detail: if draining {
                "draining: new calls are refused".into()
            } else if ready {
                "serving".into()
            } else {
                "starting".into()
            },
        }];
        let in_flight = s.admission.in_flight();
        let load = in_flight as f64 / s.admission.max_in_flight() as f64;
        subsystems.push(SubsystemHealth {
            name: "admission".into(),
            state: if load >= 1.0 {
                HealthState::Degraded
            } else {
                HealthState::Healthy
            } as i32,
            detail: format!(
                "{in_flight}/{} calls in flight; {} shed since start",
                s.admission.max_in_flight(),
                s.admission.shed_count()
            ),
        });
        for sub in s.subsystems() {
            subsystems.push(sub);
        }
        let counts = s.rpc_metrics.counts();
        let calls: u64 = counts.values().map(|c| c.calls).sum();
        let faults: u64 = counts.values().map(|c| c.server_faults).sum();
        let methods: Vec<MethodStats> = counts
            .into_iter()
            .map(|(method, c)| MethodStats {
                method,
                calls: c.calls,
                errors: c.errors,
                error_rate: if c.calls == 0 {
                    0.0
                } else {
                    c.errors as f64 / c.calls as f64
                },
            })
            .collect();
        let error_rate = if calls == 0 {
            0.0
        } else {
            faults as f64 / calls as f64
        };
        let budget = 1.0 - AVAILABILITY_TARGET;
        let burn_rate = error_rate / budget;
        let uptime = s.started.elapsed();
        let slos = vec![SloStatus {
            name: "availability".into(),
            target: AVAILABILITY_TARGET,
            burn_rate,
            budget_remaining: (1.0 - burn_rate).max(0.0),
            window: Some(prost_types::Duration {
                seconds: uptime.as_secs() as i64,
                nanos: uptime.subsec_nanos() as i32,
            }),
        }];
        let worst = subsystems
            .iter()
            .map(|s| s.state)
            .max()
            .unwrap_or(HealthState::Healthy as i32);
        let score = if worst == HealthState::Healthy as i32 {
            (1.0 - burn_rate.min(1.0) * 0.5).max(0.0)
        } else if worst == HealthState::Degraded as i32 {
            0.5
        } else {
            0.0
        };
        Ok(Response::new(GetHealthReportResponse {
            state: worst,
            score,
            subsystems,
            breakers: Vec::new(),
            methods,
            slos,
            version: env!("CARGO_PKG_VERSION").into(),
            uptime: Some(prost_types::Duration {
                seconds: uptime.as_secs() as i64,
                nanos: uptime.subsec_nanos() as i32,
            }),
            in_flight: u32::try_from(in_flight).unwrap_or(u32::MAX),
        }))
    }
}
