//! The [`Store`] trait: the only storage interface the rest of probserve sees.

use crate::error::Result;
use crate::model::{
    AuditEntry, AuditRecord, ModelSummary, ModelVersion, NewModelVersion, Page, RegisterOutcome,
    RolloutCommit, RolloutEntry, RolloutWrite,
};

/// Durable state of a probserve deployment: model registry, rollouts, audit log and
/// metric aggregates.
///
/// # Calling convention
/// Methods are synchronous and may block on disk I/O (every write waits for an
/// `fsync`). Async callers must run them off the reactor, for example
/// `tokio::task::spawn_blocking(move || store.get_version(&n, &v))` with the store
/// held as `Arc<dyn Store>`.
///
/// # Guarantees every implementation gives
/// * Each method that writes is one atomic transaction, and when it returns `Ok`
///   the change is durable (survives `kill -9` and power loss, as far as the
///   device honours `fsync`).
/// * Writes are serializable: concurrent calls behave as if run one at a time.
/// * Inputs are validated with [`crate::validate`], so all backends accept the
///   same arguments; errors are [`StoreError`](crate::StoreError) variants whose
///   gRPC mapping is documented there.
///
/// The shared test suite in `conformance` (feature `conformance`) checks these
/// behaviours for any implementation.
pub trait Store: Send + Sync + 'static {
    // ----- model registry -----

    /// Registers an immutable model version, atomically.
    ///
    /// * same (name, version) with a different content hash →
    ///   [`VersionConflict`](crate::StoreError::VersionConflict);
    /// * same content hash → [`RegisterOutcome::AlreadyExists`] with the stored
    ///   record (description and metadata of the retry are ignored);
    /// * otherwise [`RegisterOutcome::Created`] with a fresh sequence number.
    ///
    /// A new version never takes default traffic by itself: only the FIRST version
    /// of a model also gets the [`"stable"`](crate::validate::STABLE_LABEL) label,
    /// in the same transaction; later versions serve by default only once a label
    /// is pointed at them.
    ///
    /// Bad name (not `[a-z][a-z0-9_-]{0,62}` for a new model; a model that already
    /// exists keeps the looser rule of [`crate::validate::validate_model_name`] it
    /// was registered under), version (not semver, or longer than
    /// [`MAX_VERSION_BYTES`](crate::validate::MAX_VERSION_BYTES)), oversized source,
    /// description or metadata → [`InvalidArgument`](crate::StoreError::InvalidArgument).
    fn register_version(&self, rec: NewModelVersion) -> Result<RegisterOutcome>;

    /// One version by exact (normalized) semver string; archived versions included.
    fn get_version(&self, name: &str, version: &str) -> Result<Option<ModelVersion>>;

    /// The highest (semver precedence) non-archived version of a model.
    fn latest_version(&self, name: &str) -> Result<Option<ModelVersion>>;

    /// Models ordered by name, paged. `page_size` 0 means the default (100), larger
    /// than 1000 is clamped; `page_token` is `""` for the first page, else the
    /// token of the previous page. Models registered between pages appear iff
    /// their name sorts after the last name already returned.
    fn list_models(&self, page_size: u32, page_token: &str) -> Result<Page<ModelSummary>>;

    /// One model's summary (version count, latest version, labels); `None` if unknown.
    fn model_summary(&self, name: &str) -> Result<Option<ModelSummary>>;

    /// Versions of one model in registration order, paged like [`Store::list_models`].
    /// Unknown model → [`NotFound`](crate::StoreError::NotFound).
    fn list_versions(
        &self,
        name: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<ModelVersion>>;

    /// Archives a version (idempotent) and returns the updated record.
    ///
    /// Archived versions stay readable but are skipped by [`Store::latest_version`]
    /// and default resolution. If a label points to the version, or an active
    /// rollout holds it ([`RolloutWrite::holds`]) →
    /// [`FailedPrecondition`](crate::StoreError::FailedPrecondition) naming the
    /// label or the rollout.
    fn archive_version(&self, name: &str, version: &str) -> Result<ModelVersion>;

    /// Points `label` of model `name` at `version`; returns the version it pointed
    /// to before, if any. The version must exist ([`NotFound`](crate::StoreError::NotFound))
    /// and not be archived ([`FailedPrecondition`](crate::StoreError::FailedPrecondition)).
    /// Also `FailedPrecondition`: a new label on a model that already has
    /// [`MAX_LABELS_PER_MODEL`](crate::validate::MAX_LABELS_PER_MODEL), and
    /// `stable` while an active rollout holds a version of the model (naming it;
    /// only the rollout's own [`Store::commit_rollout`] moves it then).
    fn set_label(&self, name: &str, label: &str, version: &str) -> Result<Option<String>>;

    /// Removes a label; returns the version it pointed to, if it existed.
    /// `stable` of a model an active rollout holds →
    /// [`FailedPrecondition`](crate::StoreError::FailedPrecondition), as in
    /// [`Store::set_label`].
    fn delete_label(&self, name: &str, label: &str) -> Result<Option<String>>;

    /// The version a label points to.
    fn get_label(&self, name: &str, label: &str) -> Result<Option<String>>;

    /// The version to serve for a request.
    ///
    /// * `None` → the version labelled [`"stable"`](crate::validate::STABLE_LABEL);
    ///   a known model without that label →
    ///   [`FailedPrecondition`](crate::StoreError::FailedPrecondition) (there is no
    ///   "latest wins" fallback: a new version must never take traffic by itself);
    /// * `Some(v)` where `v` parses as semver → that exact version (even if archived:
    ///   an explicit request can read it; the flag is on the record);
    /// * `Some(label)` → the version the label points to.
    ///
    /// Nothing matches → [`NotFound`](crate::StoreError::NotFound).
    fn resolve(&self, name: &str, version_or_label: Option<&str>) -> Result<ModelVersion>;

    /// A counter that changes after every committed write that can change what
    /// [`Store::resolve`] returns (a version registered or archived, a label set or
    /// deleted), or `None` when this backend cannot tell (for example a database
    /// shared with other processes).
    ///
    /// Callers may cache a resolution tagged with the generation read *before* the
    /// lookup and reuse it while the generation is unchanged; with `None` they must
    /// not cache. Reading it never blocks.
    fn registry_generation(&self) -> Option<u64> {
        None
    }

    // ----- rollouts -----

    /// Writes rollout state with optimistic concurrency and returns the new revision.
    ///
    /// `expected_revision` `None` means the rollout must not exist yet (the new
    /// revision is 1); `Some(r)` means its current revision must be `r` (the new one
    /// is `r + 1`). Otherwise [`RevisionMismatch`](crate::StoreError::RevisionMismatch).
    fn put_rollout(
        &self,
        id: &str,
        expected_revision: Option<u64>,
        value: &serde_json::Value,
    ) -> Result<u64>;

    /// [`Store::put_rollout`] and [`Store::append_audit`] in ONE transaction: either
    /// both are durable or neither is. Use it for every rollout state change, before
    /// the change takes effect.
    fn put_rollout_with_audit(
        &self,
        id: &str,
        expected_revision: Option<u64>,
        value: &serde_json::Value,
        audit: &AuditEntry,
    ) -> Result<RolloutCommit>;

    /// Everything one rollout command writes, in ONE transaction: the
    /// preconditions in `write.require_servable` (each version exists and is not
    /// archived) are checked inside it, then the state is written (revision-checked
    /// as in [`Store::put_rollout`]), the audit entry appended, the label moves
    /// made, `write.require_labels` checked against the result and the rollout's
    /// holds replaced by `write.holds`. Any failure writes nothing: missing version →
    /// [`NotFound`](crate::StoreError::NotFound), archived or a required label
    /// pointing elsewhere → [`FailedPrecondition`](crate::StoreError::FailedPrecondition),
    /// stale revision → [`RevisionMismatch`](crate::StoreError::RevisionMismatch).
    fn commit_rollout(&self, write: &RolloutWrite) -> Result<RolloutCommit>;

    /// Current revision and state of a rollout.
    fn get_rollout(&self, id: &str) -> Result<Option<(u64, serde_json::Value)>>;

    /// All rollouts, ordered by id.
    fn list_rollouts(&self) -> Result<Vec<RolloutEntry>>;

    // ----- audit log -----

    /// Appends an audit entry and returns its sequence number (strictly increasing from 1).
    fn append_audit(&self, entry: &AuditEntry) -> Result<u64>;

    /// Up to `limit` records with `seq > after_seq`, in order. Pass 0 to read from
    /// the start, then the last `seq` seen to continue.
    fn audit_since(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>>;

    // ----- metric aggregates -----

    /// Stores an opaque blob under (namespace, key), replacing any previous one.
    fn put_blob(&self, namespace: &str, key: &str, bytes: &[u8]) -> Result<()>;

    /// Reads a blob.
    fn get_blob(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>>;

    /// Deletes a blob; returns whether it existed.
    fn delete_blob(&self, namespace: &str, key: &str) -> Result<bool>;
}
