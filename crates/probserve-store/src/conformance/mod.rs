//! Conformance suite every [`Store`] implementation must pass.
//!
//! Enabled by the `conformance` cargo feature. A backend's tests call
//! [`run_conformance`] on a fresh, empty store. The cases share that store, so
//! each uses its own model names, rollout ids and blob namespaces, and checks
//! listings only relative to what it wrote. Failures panic with a message naming
//! the case, like any test assertion.

mod registry;
mod state;

use serde_json::json;

use crate::model::{AuditEntry, ModelVersion, NewModelVersion, RegisterOutcome};
use crate::traits::Store;

/// A named conformance case.
pub type Case = (&'static str, fn(&dyn Store));

/// Every case, in the order [`run_conformance`] runs them.
pub const CASES: &[Case] = &[
    ("register_and_get", registry::register_and_get),
    ("idempotent_reregister", registry::idempotent_reregister),
    ("version_conflict", registry::version_conflict),
    ("invalid_arguments", registry::invalid_arguments),
    (
        "latest_is_highest_semver",
        registry::latest_is_highest_semver,
    ),
    (
        "list_versions_in_registration_order",
        registry::list_versions_in_registration_order,
    ),
    (
        "paging_models_without_gaps",
        registry::paging_models_without_gaps,
    ),
    ("labels_and_resolve", registry::labels_and_resolve),
    ("first_version_is_stable", registry::first_version_is_stable),
    ("archive", registry::archive),
    (
        "labels_per_model_are_capped",
        registry::labels_per_model_are_capped,
    ),
    (
        "registry_generation_tracks_writes",
        registry::registry_generation_tracks_writes,
    ),
    ("rollout_revisions", state::rollout_revisions),
    ("audit_log", state::audit_log),
    (
        "rollout_with_audit_is_atomic",
        state::rollout_with_audit_is_atomic,
    ),
    (
        "rollout_commit_checks_inside_the_transaction",
        state::rollout_commit_checks_inside_the_transaction,
    ),
    (
        "active_rollouts_hold_their_versions",
        state::active_rollouts_hold_their_versions,
    ),
    ("blobs", state::blobs),
    (
        "concurrent_register_same_version",
        state::concurrent_register_same_version,
    ),
    (
        "concurrent_rollout_updates",
        state::concurrent_rollout_updates,
    ),
];

/// Runs every case in [`CASES`] against `store`, which must start empty.
pub fn run_conformance(store: &dyn Store) {
    for (name, case) in CASES {
        // Test harnesses show captured stderr of a failing test: it names the case.
        eprintln!("conformance case: {name}");
        case(store);
    }
}

/// A registration request with fixed description, metadata and time.
pub fn new_version(name: &str, version: &str, source: &str) -> NewModelVersion {
    NewModelVersion {
        name: name.to_owned(),
        version: version.to_owned(),
        source: source.to_owned(),
        description: format!("{name} {version}"),
        labels: [("team".to_owned(), "conformance".to_owned())].into(),
        created_at_millis: 1_700_000_000_000,
    }
}

pub(crate) fn created(store: &dyn Store, name: &str, version: &str, source: &str) -> ModelVersion {
    match store.register_version(new_version(name, version, source)) {
        Ok(RegisterOutcome::Created(v)) => v,
        other => panic!("registering {name} {version}: expected Created, got {other:?}"),
    }
}

fn audit(action: &str, subject: &str) -> AuditEntry {
    AuditEntry {
        at_millis: 1_700_000_000_123,
        actor: "conformance".into(),
        subject: subject.into(),
        action: action.into(),
        detail: json!({ "why": action }),
    }
}
