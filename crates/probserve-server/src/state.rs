//! State shared by the services, the RPC layer and the lifecycle code: metrics,
//! admission control, readiness and subsystem health.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use probserve_proto::v1::{HealthState, SubsystemHealth};
use probserve_reliability::Admission;

use crate::telemetry::metrics::RpcMetrics;

/// Shared server state. Cheap to clone behind an `Arc`.
#[derive(Debug)]
pub struct Shared {
    /// Per-method RPC metrics.
    pub rpc_metrics: Arc<RpcMetrics>,
    /// Load shedding and the drain gate.
    pub admission: Arc<Admission>,
    /// When the process started serving.
    pub started: Instant,
    ready: AtomicBool,
    subsystems: Mutex<Vec<SubsystemHealth>>,
}

impl Shared {
    /// New state, not ready.
    pub fn new(rpc_metrics: Arc<RpcMetrics>, admission: Arc<Admission>) -> Self {
        Self {
            rpc_metrics,
            admission,
            started: Instant::now(),
            ready: AtomicBool::new(false),
            subsystems: Mutex::new(Vec::new()),
        }
    }

    /// Start-up finished.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// True once start-up finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Records a subsystem's health (replacing its previous record).
    pub fn set_subsystem(&self, name: &str, state: HealthState, detail: impl Into<String>) {
        let mut subs = self.subsystems.lock();
        let rec = SubsystemHealth {
            name: name.to_owned(),
            state: state as i32,
            detail: detail.into(),
        };
        match subs.iter_mut().find(|s| s.name == name) {
            Some(s) => *s = rec,
            None => subs.push(rec),
        }
    }

    /// Subsystem records.
    pub fn subsystems(&self) -> Vec<SubsystemHealth> {
        self.subsystems.lock().clone()
    }
}
