//! Persistent state for probserve behind one trait: model registry, rollouts,
//! audit log and metric aggregates.
//!
//! Callers see only [`Store`], the plain record types in [`model`] and
//! [`StoreError`]. [`RedbStore`] is the embedded default; a PostgreSQL backend can
//! implement the same trait and must pass the same `conformance` suite
//! (cargo feature `conformance`).
//!
//! # Why redb
//! The default deployment must need nothing installed and survive `kill -9`.
//! [redb](https://docs.rs/redb) is a pure-Rust embedded database (no C toolchain,
//! no server): ACID transactions over copy-on-write B-trees, where a commit writes
//! new pages and then atomically switches the root with an `fsync`, so a crash at
//! any point leaves the last committed state. One writer at a time gives
//! serializable writes; readers get MVCC snapshots and never block. Alternatives
//! were SQLite (C library, heavier build) and sled (unmaintained, weaker
//! durability guarantees).
//!
//! # Example
//! ```
//! use probserve_store::{NewModelVersion, RedbStore, Store};
//! # fn main() -> Result<(), probserve_store::StoreError> {
//! let dir = tempfile::tempdir()?;
//! let store = RedbStore::open(dir.path().join("state.redb"))?;
//! let outcome = store.register_version(NewModelVersion {
//!     name: "sensor".into(),
//!     version: "1.0.0".into(),
//!     source: "model sensor { }".into(),
//!     description: String::new(),
//!     labels: Default::default(),
//!     created_at_millis: 1_700_000_000_000,
//! })?;
//! assert!(outcome.is_created());
//! // The first version of a model is `stable` at once; later ones wait for a label.
//! assert_eq!(store.resolve("sensor", None)?.version, "1.0.0");
//! # Ok(())
//! # }
//! ```

pub mod error;
pub mod model;
mod redb_store;
mod traits;
pub mod validate;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{Result, StoreError};
pub use model::{
    AuditEntry, AuditRecord, LabelIs, LabelMove, ModelSummary, ModelVersion, NewModelVersion, Page,
    RegisterOutcome, RolloutCommit, RolloutEntry, RolloutWrite, content_hash,
};
pub use redb_store::{CURRENT_SCHEMA_VERSION, RedbStore};
pub use traits::Store;
