//! Experiment engine: sticky routing, rollout plans, statistics, guardrails, drift and
//! shadow comparison.
//!
//! A pure library with an injected clock: it knows nothing of tonic or the runtime.
//! Arms are version ids (strings) and observations are numbers. The server
//! 1. builds a [`routing::RoutingSnapshot`] from each [`rollout::Rollout`] and calls
//!    [`routing::route`] per request (kill switch > override > segment > split);
//! 2. records per-version [`metrics::Observation`]s and outcomes into
//!    [`metrics::RolloutMetrics`] (mergeable across replicas), and mirrored calls into
//!    [`shadow::ShadowStats`];
//! 3. runs [`controller::evaluate`] on an interval and persists each returned
//!    [`rollout::Transition`] (state + [`audit::AuditRecord`]) before applying it;
//! 4. turns operator commands into [`rollout::Command`]s via [`rollout::Rollout::command`].
//!
//! Everything the server stores (specs, states, audit records, metric aggregates)
//! is serde-serializable.
//!
//! ```
//! use probserve_experiment::audit::Actor;
//! use probserve_experiment::controller::{evaluate, Verdict};
//! use probserve_experiment::metrics::{Observation, RolloutMetrics};
//! use probserve_experiment::plan::RolloutSpec;
//! use probserve_experiment::rollout::{Command, Rollout};
//! use probserve_experiment::routing::{route, NoAttributes};
//! use probserve_experiment::{Clock, ManualClock, Timestamp};
//! use rand::SeedableRng;
//!
//! // A canary 5 % → 25 % → 100 %, one minute per step, 200 calls per arm per step.
//! let spec = RolloutSpec::canary("temp-v2", "temp@1", "temp@2", &[(500, 60_000), (2500, 60_000), (10_000, 60_000)], 200)?;
//! let mut rollout = Rollout::new(spec)?;
//! let clock = ManualClock::new(Timestamp(0));
//! let t = rollout.command(Command::Start, Actor::Operator("ana".into()), "ticket 7", clock.now(), None)?;
//! // ... persist t.audit and t.next, then:
//! rollout.apply(&t);
//!
//! let mut metrics = RolloutMetrics::new(10_000, 60);
//! let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! let snapshot = rollout.routing_snapshot()?;
//! for i in 0..10_000 {
//!     let d = route(&snapshot, Some(&format!("user-{i}")), &NoAttributes, &mut rng);
//!     metrics.record(&d.version, clock.now(), &Observation { latency_ms: 12.0, ..Default::default() });
//! }
//! clock.advance_millis(60_000);
//! let eval = evaluate(&rollout, &metrics, None, clock.now())?;
//! assert_eq!(eval.verdict, Verdict::Advance);
//! if let Some(t) = eval.transition {
//!     // persist t.audit (with its metrics snapshot) before acting
//!     rollout.apply(&t);
//! }
//! assert_eq!(rollout.state.step, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod audit;
pub mod clock;
pub mod controller;
pub mod drift;
pub mod error;
pub mod guardrails;
pub mod metrics;
pub mod plan;
pub mod rollout;
pub mod routing;
pub mod shadow;
pub mod stats;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{ExperimentError, RolloutError};
