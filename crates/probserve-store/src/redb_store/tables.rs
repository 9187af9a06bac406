//! redb table definitions and the private row types stored in them.
//!
//! Rows are JSON so fields can be added with `#[serde(default)]` without a
//! migration; keys are native redb tuples so ranges and ordering are cheap.
//! Changing a definition here changes the file format: add a migration instead.

use std::collections::BTreeMap;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::model::{AuditEntry, ModelVersion};

// ----- schema v1 -----

/// `schema_version` and counters.
pub(crate) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// (model name, normalized version) → [`VersionRow`] JSON.
pub(crate) const VERSIONS: TableDefinition<'_, (&str, &str), &[u8]> =
    TableDefinition::new("versions");
/// (model name, label) → version.
pub(crate) const LABELS: TableDefinition<'_, (&str, &str), &str> = TableDefinition::new("labels");
/// rollout id → (revision, state JSON).
pub(crate) const ROLLOUTS: TableDefinition<'_, &str, (u64, &[u8])> =
    TableDefinition::new("rollouts");
/// audit seq → [`AuditRow`] JSON.
pub(crate) const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");
/// (namespace, key) → opaque bytes.
pub(crate) const BLOBS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("blobs");

// ----- schema v2 -----

/// model name → [`ModelRow`] JSON (derived summary, kept in step with `versions`).
pub(crate) const MODELS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("models");
/// (model name, sequence) → version: registration order for paging.
pub(crate) const VERSION_SEQ: TableDefinition<'_, (&str, u64), &str> =
    TableDefinition::new("version_seq");

// ----- schema v4 -----

/// rollout id → JSON list of the (model, version) pairs an active rollout keeps
/// in use (see [`crate::model::RolloutWrite::holds`]); no row once it finished.
pub(crate) const ROLLOUT_HOLDS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("rollout_holds");

/// `META` key of the schema version.
pub(crate) const SCHEMA_VERSION_KEY: &str = "schema_version";
/// `META` key of the last model-version sequence number handed out.
pub(crate) const LAST_VERSION_SEQ_KEY: &str = "last_version_seq";

/// Stored form of a model version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionRow {
    pub name: String,
    pub version: String,
    pub source: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub content_hash: String,
    pub created_at_millis: u64,
    #[serde(default)]
    pub archived: bool,
    pub sequence: u64,
}

impl From<VersionRow> for ModelVersion {
    fn from(r: VersionRow) -> Self {
        Self {
            name: r.name,
            version: r.version,
            source: r.source,
            description: r.description,
            labels: r.labels,
            content_hash: r.content_hash,
            created_at_millis: r.created_at_millis,
            archived: r.archived,
            sequence: r.sequence,
        }
    }
}

/// Per-model summary (schema v2).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ModelRow {
    pub version_count: u64,
    /// Highest non-archived version.
    pub latest: Option<String>,
}

/// Stored form of an audit entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuditRow {
    pub at_millis: u64,
    pub actor: String,
    pub subject: String,
    pub action: String,
    #[serde(default)]
    pub detail: serde_json::Value,
}

impl From<&AuditEntry> for AuditRow {
    fn from(e: &AuditEntry) -> Self {
        Self {
            at_millis: e.at_millis,
            actor: e.actor.clone(),
            subject: e.subject.clone(),
            action: e.action.clone(),
            detail: e.detail.clone(),
        }
    }
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        Self {
            at_millis: r.at_millis,
            actor: r.actor,
            subject: r.subject,
            action: r.action,
            detail: r.detail,
        }
    }
}

/// Serializes a row; serializing these plain structs to JSON cannot fail, but a
/// failure is still reported rather than panicking.
pub(crate) fn encode<T: Serialize>(row: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(row).map_err(|e| StoreError::Backend(format!("encoding row: {e}")))
}

/// Deserializes a row; a failure means the file is corrupt or from an unknown writer.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(table: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Backend(format!("corrupt row in table {table}: {e}")))
}
