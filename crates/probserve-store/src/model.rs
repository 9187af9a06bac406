//! Plain record types that cross the [`Store`](crate::Store) boundary.
//!
//! These are what callers build and receive; they carry no storage specifics.
//! Backends keep their own private row types so the on-disk format can evolve
//! without touching this API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Content hash of a model's source text: lowercase hex SHA-256 of its UTF-8 bytes.
///
/// Two registrations of the same (name, version) are the same version exactly
/// when their content hashes are equal.
pub fn content_hash(source: &str) -> String {
    hex::encode(Sha256::digest(source.as_bytes()))
}

/// A model version to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewModelVersion {
    /// Model name (see [`validate_model_name`](crate::validate::validate_model_name)).
    pub name: String,
    /// Semantic version, for example `1.2.0`; normalized when stored.
    pub version: String,
    /// Source text in the model language.
    pub source: String,
    /// Free-text description.
    pub description: String,
    /// Free-form metadata (`team = "ml"`, ...); not the movable labels.
    pub labels: BTreeMap<String, String>,
    /// Registration time in Unix milliseconds, supplied by the caller's clock.
    pub created_at_millis: u64,
}

/// An immutable, registered model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Model name.
    pub name: String,
    /// Normalized semantic version.
    pub version: String,
    /// Source text in the model language.
    pub source: String,
    /// Free-text description given at registration.
    pub description: String,
    /// Free-form metadata given at registration.
    pub labels: BTreeMap<String, String>,
    /// [`content_hash`] of `source`.
    pub content_hash: String,
    /// Registration time in Unix milliseconds.
    pub created_at_millis: u64,
    /// Archived versions stay readable but are not chosen by default resolution.
    pub archived: bool,
    /// Store-wide registration sequence number, strictly increasing, starting at 1.
    pub sequence: u64,
}

/// Result of [`Store::register_version`](crate::Store::register_version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// The version was new and is now stored.
    Created(ModelVersion),
    /// An identical version (same content hash) was already stored; nothing changed.
    AlreadyExists(ModelVersion),
}

impl RegisterOutcome {
    /// The stored version, whichever way the call went.
    pub fn version(&self) -> &ModelVersion {
        match self {
            Self::Created(v) | Self::AlreadyExists(v) => v,
        }
    }

    /// Consumes the outcome, returning the stored version.
    pub fn into_version(self) -> ModelVersion {
        match self {
            Self::Created(v) | Self::AlreadyExists(v) => v,
        }
    }

    /// True when this call created the version.
    pub fn is_created(&self) -> bool {
        matches!(self, Self::Created(_))
    }
}

/// One model in [`Store::list_models`](crate::Store::list_models).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Model name.
    pub name: String,
    /// Number of registered versions, archived ones included.
    pub version_count: u64,
    /// Highest non-archived version, if any.
    pub latest_version: Option<String>,
    /// Movable labels: label name to version.
    pub labels: BTreeMap<String, String>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// Items of this page, in the listing's stable order.
    pub items: Vec<T>,
    /// Opaque token for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// An audit log entry as written by the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened, Unix milliseconds.
    pub at_millis: u64,
    /// Who did it (user, `controller`, ...).
    pub actor: String,
    /// What it was done to (`rollout/r1`, `model/m@1.0.0`, ...).
    pub subject: String,
    /// What was done (`advance`, `rollback`, `register`, ...).
    pub action: String,
    /// Structured details.
    pub detail: serde_json::Value,
}

/// An audit entry with the sequence number the store gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Strictly increasing, starting at 1, never reused.
    pub seq: u64,
    /// The entry as appended.
    pub entry: AuditEntry,
}

/// A stored rollout in [`Store::list_rollouts`](crate::Store::list_rollouts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutEntry {
    /// Rollout id.
    pub id: String,
    /// Current revision (1 after the first write, +1 per write).
    pub revision: u64,
    /// The opaque rollout state.
    pub value: serde_json::Value,
}

/// What [`Store::put_rollout_with_audit`](crate::Store::put_rollout_with_audit) committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutCommit {
    /// New revision of the rollout.
    pub revision: u64,
    /// Sequence number of the audit record written in the same transaction.
    pub audit_seq: u64,
}

/// A label move written in the same transaction as a rollout change (see
/// [`Store::commit_rollout`](crate::Store::commit_rollout)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMove {
    /// Model name.
    pub model: String,
    /// Label, for example `stable`.
    pub label: String,
    /// The version it will point to (must exist and not be archived).
    pub version: String,
    /// Only set the label when it is unset: a label an operator set is kept.
    pub only_if_unset: bool,
}

/// Everything one rollout command writes, committed as ONE transaction by
/// [`Store::commit_rollout`](crate::Store::commit_rollout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutWrite {
    /// Rollout id.
    pub id: String,
    /// Optimistic concurrency, as in [`Store::put_rollout`](crate::Store::put_rollout).
    pub expected_revision: Option<u64>,
    /// The new rollout state.
    pub value: serde_json::Value,
    /// The audit entry of the change.
    pub audit: AuditEntry,
    /// (model, version) pairs that must exist and not be archived, checked inside
    /// the transaction: if one fails, nothing is written.
    pub require_servable: Vec<(String, String)>,
    /// Label moves made in the same transaction.
    pub labels: Vec<LabelMove>,
    /// Labels that must point at a version once `labels` are moved, checked inside
    /// the transaction (a create pins `stable` if unset, then requires it to be the
    /// baseline): if one does not, nothing is written.
    pub require_labels: Vec<LabelIs>,
    /// The (model, version) pairs the rollout keeps in use after this write: empty
    /// once it has finished. Replaces what its previous write said. While a rollout
    /// holds a version, that version cannot be archived, and while it holds any
    /// version of a model, that model's `stable` label can only be moved by the
    /// rollout's own writes (see [`Store::archive_version`](crate::Store::archive_version)
    /// and [`Store::set_label`](crate::Store::set_label)).
    pub holds: Vec<(String, String)>,
}

/// A label that must point at a version (see [`RolloutWrite::require_labels`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelIs {
    /// Model name.
    pub model: String,
    /// Label, for example `stable`.
    pub label: String,
    /// The version it must point at.
    pub version: String,
}
