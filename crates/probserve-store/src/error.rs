//! The store's typed error and its documented mapping to gRPC status codes.
//!
//! Every [`Store`](crate::Store) implementation returns [`StoreError`], so callers
//! never see backend types (redb today, PostgreSQL later). The server turns each
//! variant into exactly one gRPC code; the code is written on every variant.

/// Why a store operation failed.
///
/// | Variant | gRPC code |
/// |---|---|
/// | [`NotFound`](Self::NotFound) | `NOT_FOUND` |
/// | [`VersionConflict`](Self::VersionConflict) | `ALREADY_EXISTS` |
/// | [`RevisionMismatch`](Self::RevisionMismatch) | `ABORTED` |
/// | [`InvalidArgument`](Self::InvalidArgument) | `INVALID_ARGUMENT` |
/// | [`FailedPrecondition`](Self::FailedPrecondition) | `FAILED_PRECONDITION` |
/// | [`SchemaTooNew`](Self::SchemaTooNew), [`NotAStore`](Self::NotAStore) | `INTERNAL` (the server refuses to start) |
/// | [`Backend`](Self::Backend), [`Io`](Self::Io) | `INTERNAL` |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named thing does not exist. gRPC: `NOT_FOUND`.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up, for example `model "m" version "1.0.0"`.
        what: String,
    },

    /// A model version with this name and version is already registered with
    /// different source text; versions are immutable. gRPC: `ALREADY_EXISTS`.
    #[error(
        "model {name:?} version {version:?} is already registered with different content (sha256 {existing_hash})"
    )]
    VersionConflict {
        /// Model name.
        name: String,
        /// Version string (normalized semver).
        version: String,
        /// Content hash of the version already stored.
        existing_hash: String,
    },

    /// Optimistic concurrency failed: the stored revision is not the one the
    /// caller based its change on. Re-read and retry. gRPC: `ABORTED`.
    #[error("revision mismatch for {id:?}: expected {expected:?}, found {actual:?}")]
    RevisionMismatch {
        /// Key of the record (rollout id).
        id: String,
        /// Revision the caller expected (`None`: expected the record to be absent).
        expected: Option<u64>,
        /// Revision actually stored (`None`: the record does not exist).
        actual: Option<u64>,
    },

    /// An argument is malformed (bad semver, bad label name, bad page token, ...).
    /// gRPC: `INVALID_ARGUMENT` (with a `BadRequest` field violation on `field`).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// Name of the offending argument.
        field: String,
        /// Human-readable explanation.
        reason: String,
    },

    /// The request is well formed but the current state forbids it, for example
    /// archiving a version a label points to. gRPC: `FAILED_PRECONDITION`.
    #[error("failed precondition: {reason}")]
    FailedPrecondition {
        /// Human-readable explanation, naming the blocking object.
        reason: String,
    },

    /// The store was written by a newer probserve whose schema this build does not
    /// know. Nothing was modified. gRPC: `INTERNAL`; in practice the server refuses
    /// to start and prints this message.
    #[error(
        "store schema version {found} is newer than this build supports ({supported}); upgrade probserve or use another store file"
    )]
    SchemaTooNew {
        /// Schema version recorded in the store.
        found: u64,
        /// Highest schema version this build knows.
        supported: u64,
    },

    /// The file at the store path is not a valid probserve store (empty,
    /// truncated, corrupted, or another kind of file). Nothing was written to it.
    /// In practice the server refuses to start and prints this message.
    #[error(
        "store file {path} is not a valid probserve store: {problem}. Nothing was changed. \
         Restore the file from a backup, or move it away to start with an empty store \
         (models and rollouts in it are then no longer served)"
    )]
    NotAStore {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },

    /// The storage engine failed or the stored data is corrupt. gRPC: `INTERNAL`.
    #[error("store backend error: {0}")]
    Backend(String),

    /// An operating-system I/O error. gRPC: `INTERNAL`.
    #[error("store I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Shorthand for [`StoreError::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`StoreError::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// Shorthand for [`StoreError::FailedPrecondition`].
    pub fn precondition(reason: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason: reason.into(),
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
