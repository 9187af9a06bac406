//! [`RedbStore`]: the embedded, single-file [`Store`] backed by redb.
//!
//! Every write method is one redb write transaction committed with
//! `Durability::Immediate` (fsync before `commit` returns), so an acknowledged
//! write survives `kill -9`. redb serializes write transactions, which makes all
//! writes serializable; readers see consistent snapshots and never block writers.

mod file_check;
mod holds;
mod migrations;
mod registry;
mod tables;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Builder, Database, Durability, ReadTransaction, ReadableTable, WriteTransaction};

pub use migrations::CURRENT_SCHEMA_VERSION;
use tables::{AUDIT, AuditRow, BLOBS, META, ROLLOUTS, SCHEMA_VERSION_KEY, decode, encode};

use crate::error::{Result, StoreError};
use crate::model::{
    AuditEntry, AuditRecord, ModelSummary, ModelVersion, NewModelVersion, Page, RegisterOutcome,
    RolloutCommit, RolloutEntry, RolloutWrite,
};
use crate::traits::Store;
use crate::validate::{validate_blob_key, validate_identifier};

/// The embedded store: one redb file, created on first open and migrated to
/// [`CURRENT_SCHEMA_VERSION`].
///
/// Only one process may have the file open at a time (redb holds an exclusive
/// file lock); within the process share it as `Arc<RedbStore>` or `Arc<dyn Store>`.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    /// Bumped after each committed registry write (see [`Store::registry_generation`]);
    /// exact because the file lock makes this the only writer.
    registry_generation: AtomicU64,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store file at `path`, or creates it (with parent directories) if
    /// nothing is there.
    ///
    /// An existing file is never replaced or re-initialized: an empty, truncated or
    /// corrupted file, one that is not a redb database, or a redb database of
    /// another application (tables but no probserve schema) is refused with
    /// [`StoreError::NotAStore`] saying what is wrong and what to do, and is left
    /// untouched. A new file is created exclusively (`O_EXCL`), so a file that
    /// appears at the path meanwhile is opened as an existing one, never initialized.
    /// After a crash redb repairs the file on open, which can take a
    /// moment on large files. Then pending schema migrations run in one transaction.
    /// A file written by a newer schema → [`StoreError::SchemaTooNew`], file untouched.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let created = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
            Err(e) => return Err(StoreError::Io(e)),
        };
        let db = match created {
            Some(file) => file_check::guarded(&path, || Builder::new().create_file(file))?,
            None => {
                let meta = std::fs::metadata(&path)?;
                file_check::check_existing(&path, &meta)?;
                file_check::guarded(&path, || Database::open(&path))?
            }
        };
        file_check::guarded_result(&path, || migrations::migrate(&db, &path))?;
        Ok(Self {
            db,
            path,
            registry_generation: AtomicU64::new(0),
        })
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Schema version recorded in the file (equals [`CURRENT_SCHEMA_VERSION`] after open).
    pub fn schema_version(&self) -> Result<u64> {
        self.read(|txn| {
            let meta = txn.open_table(META).map_err(backend_error)?;
            let v = meta.get(SCHEMA_VERSION_KEY).map_err(backend_error)?;
            Ok(v.map_or(0, |g| g.value()))
        })
    }

    /// Runs `f` in a write transaction and commits durably if it returns `Ok`.
    /// On `Err` the transaction is dropped, which aborts it.
    fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
        let mut txn = self.db.begin_write().map_err(backend_error)?;
        // The default already, stated so that a changed default cannot weaken us.
        txn.set_durability(Durability::Immediate);
        let out = f(&txn)?;
        txn.commit().map_err(backend_error)?;
        Ok(out)
    }

    /// [`Self::write`] for registry changes: bumps the registry generation after the
    /// commit (also after a failed one, which is merely conservative).
    fn write_registry<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
        let out = self.write(f);
        self.registry_generation.fetch_add(1, Ordering::AcqRel);
        out
    }

    /// Runs `f` on a consistent read snapshot.
    fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_read().map_err(backend_error)?;
        f(&txn)
    }
}

/// Converts any redb error into [`StoreError`] (I/O errors keep their kind).
pub(crate) fn backend_error(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(io) => StoreError::Io(io),
        other => StoreError::Backend(other.to_string()),
    }
}

fn put_rollout_in(
    txn: &WriteTransaction,
    id: &str,
    expected: Option<u64>,
    value: &serde_json::Value,
) -> Result<u64> {
    validate_identifier("id", id)?;
    let mut rollouts = txn.open_table(ROLLOUTS).map_err(backend_error)?;
    let actual = rollouts
        .get(id)
        .map_err(backend_error)?
        .map(|g| g.value().0);
    if actual != expected {
        return Err(StoreError::RevisionMismatch {
            id: id.to_owned(),
            expected,
            actual,
        });
    }
    let revision = match expected {
        None => 1,
        Some(r) => r
            .checked_add(1)
            .ok_or_else(|| StoreError::precondition(format!("rollout {id:?} revision overflow")))?,
    };
    let bytes = encode(value)?;
    rollouts
        .insert(id, (revision, bytes.as_slice()))
        .map_err(backend_error)?;
    Ok(revision)
}

fn append_audit_in(txn: &WriteTransaction, entry: &AuditEntry) -> Result<u64> {
    let mut audit = txn.open_table(AUDIT).map_err(backend_error)?;
    // Append-only: entries are never deleted, so last + 1 is never reused.
    let last = audit
        .last()
        .map_err(backend_error)?
        .map_or(0, |(k, _)| k.value());
    let seq = last
        .checked_add(1)
        .ok_or_else(|| StoreError::Backend("audit sequence overflow".into()))?;
    let bytes = encode(&AuditRow::from(entry))?;
    audit.insert(seq, bytes.as_slice()).map_err(backend_error)?;
    Ok(seq)
}

impl Store for RedbStore {
    fn register_version(&self, rec: NewModelVersion) -> Result<RegisterOutcome> {
        let checked = registry::CheckedNew::try_from(rec)?;
        self.write_registry(|txn| registry::register(txn, checked))
    }

    fn get_version(&self, name: &str, version: &str) -> Result<Option<ModelVersion>> {
        let key = registry::VersionKey::new(name, version)?;
        self.read(|txn| registry::get_version(txn, &key))
    }

    fn latest_version(&self, name: &str) -> Result<Option<ModelVersion>> {
        crate::validate::validate_model_name(name)?;
        self.read(|txn| registry::latest_version(txn, name))
    }

    fn list_models(&self, page_size: u32, page_token: &str) -> Result<Page<ModelSummary>> {
        self.read(|txn| registry::list_models(txn, page_size, page_token))
    }

    fn model_summary(&self, name: &str) -> Result<Option<ModelSummary>> {
        self.read(|txn| registry::model_summary(txn, name))
    }

    fn list_versions(
        &self,
        name: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<ModelVersion>> {
        crate::validate::validate_model_name(name)?;
        self.read(|txn| registry::list_versions(txn, name, page_size, page_token))
    }

    fn archive_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let key = registry::VersionKey::new(name, version)?;
        self.write_registry(|txn| registry::archive(txn, &key))
    }

    fn set_label(&self, name: &str, label: &str, version: &str) -> Result<Option<String>> {
        let key = registry::VersionKey::new(name, version)?;
        crate::validate::validate_label(label)?;
        self.write_registry(|txn| holds::set_label_checked(txn, &key, label))
    }

    fn delete_label(&self, name: &str, label: &str) -> Result<Option<String>> {
        crate::validate::validate_model_name(name)?;
        crate::validate::validate_label(label)?;
        self.write_registry(|txn| holds::delete_label_checked(txn, name, label))
    }

    fn get_label(&self, name: &str, label: &str) -> Result<Option<String>> {
        crate::validate::validate_model_name(name)?;
        crate::validate::validate_label(label)?;
        self.read(|txn| registry::get_label(txn, name, label))
    }

    fn registry_generation(&self) -> Option<u64> {
        Some(self.registry_generation.load(Ordering::Acquire))
    }

    fn resolve(&self, name: &str, version_or_label: Option<&str>) -> Result<ModelVersion> {
        crate::validate::validate_model_name(name)?;
        self.read(|txn| registry::resolve(txn, name, version_or_label))
    }

    fn put_rollout(
        &self,
        id: &str,
        expected_revision: Option<u64>,
        value: &serde_json::Value,
    ) -> Result<u64> {
        self.write(|txn| put_rollout_in(txn, id, expected_revision, value))
    }

    fn put_rollout_with_audit(
        &self,
        id: &str,
        expected_revision: Option<u64>,
        value: &serde_json::Value,
        audit: &AuditEntry,
    ) -> Result<RolloutCommit> {
        self.write(|txn| {
            let revision = put_rollout_in(txn, id, expected_revision, value)?;
            let audit_seq = append_audit_in(txn, audit)?;
            Ok(RolloutCommit {
                revision,
                audit_seq,
            })
        })
    }

    fn commit_rollout(&self, w: &RolloutWrite) -> Result<RolloutCommit> {
        let body = |txn: &WriteTransaction| {
            for (model, version) in &w.require_servable {
                registry::require_servable(txn, model, version)?;
            }
            let revision = put_rollout_in(txn, &w.id, w.expected_revision, &w.value)?;
            let audit_seq = append_audit_in(txn, &w.audit)?;
            for m in &w.labels {
                registry::move_label(txn, &m.model, &m.label, &m.version, m.only_if_unset)?;
            }
            for l in &w.require_labels {
                registry::require_label(txn, &l.model, &l.label, &l.version)?;
            }
            holds::put_holds(txn, &w.id, &w.holds)?;
            Ok(RolloutCommit {
                revision,
                audit_seq,
            })
        };
        if w.labels.is_empty() {
            self.write(body)
        } else {
            self.write_registry(body)
        }
    }

    fn get_rollout(&self, id: &str) -> Result<Option<(u64, serde_json::Value)>> {
        validate_identifier("id", id)?;
        self.read(|txn| {
            let rollouts = txn.open_table(ROLLOUTS).map_err(backend_error)?;
            let Some(guard) = rollouts.get(id).map_err(backend_error)? else {
                return Ok(None);
            };
            let (revision, bytes) = guard.value();
            Ok(Some((revision, decode("rollouts", bytes)?)))
        })
    }

    fn list_rollouts(&self) -> Result<Vec<RolloutEntry>> {
        self.read(|txn| {
            let rollouts = txn.open_table(ROLLOUTS).map_err(backend_error)?;
            let mut out = Vec::new();
            for item in rollouts.iter().map_err(backend_error)? {
                let (k, v) = item.map_err(backend_error)?;
                let (revision, bytes) = v.value();
                out.push(RolloutEntry {
                    id: k.value().to_owned(),
                    revision,
                    value: decode("rollouts", bytes)?,
                });
            }
            Ok(out)
        })
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<u64> {
        self.write(|txn| append_audit_in(txn, entry))
    }

    fn audit_since(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let Some(start) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.read(|txn| {
            let audit = txn.open_table(AUDIT).map_err(backend_error)?;
            let mut out = Vec::new();
            for item in audit.range(start..).map_err(backend_error)?.take(limit) {
                let (k, v) = item.map_err(backend_error)?;
                let row: AuditRow = decode("audit", v.value())?;
                out.push(AuditRecord {
                    seq: k.value(),
                    entry: row.into(),
                });
            }
            Ok(out)
        })
    }

    fn put_blob(&self, namespace: &str, key: &str, bytes: &[u8]) -> Result<()> {
        validate_identifier("namespace", namespace)?;
        validate_blob_key(key)?;
        self.write(|txn| {
            let mut blobs = txn.open_table(BLOBS).map_err(backend_error)?;
            blobs
                .insert((namespace, key), bytes)
                .map_err(backend_error)?;
            Ok(())
        })
    }

    fn get_blob(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        validate_identifier("namespace", namespace)?;
        validate_blob_key(key)?;
        self.read(|txn| {
            let blobs = txn.open_table(BLOBS).map_err(backend_error)?;
            let got = blobs.get((namespace, key)).map_err(backend_error)?;
            Ok(got.map(|g| g.value().to_vec()))
        })
    }

    fn delete_blob(&self, namespace: &str, key: &str) -> Result<bool> {
        validate_identifier("namespace", namespace)?;
        validate_blob_key(key)?;
        self.write(|txn| {
            let mut blobs = txn.open_table(BLOBS).map_err(backend_error)?;
            let removed = blobs.remove((namespace, key)).map_err(backend_error)?;
            Ok(removed.is_some())
        })
    }
}
