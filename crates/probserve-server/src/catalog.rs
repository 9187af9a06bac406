//! The model catalog: registered versions (in the store) and their compiled programs
//! (cached in memory).
//!
//! Versions are immutable, so a compiled program never goes stale: the cache is
//! keyed by content hash and only bounded in size. Store calls are synchronous and
//! run on tokio's blocking pool. Compilation is CPU work a caller controls, so it
//! runs on the bounded inference pool, under the same admission as inference, with
//! a time budget (the call's deadline, at most [`MAX_COMPILE_TIME`]) that the
//! compiler checks in its loops, and it stops when the call is dropped.
//!
//! Resolutions (name + version/label → version) are cached too, tagged with the
//! store's [`registry_generation`](Store::registry_generation) read before the
//! lookup: a hit needs the generation unchanged, so a label move or a new version
//! is seen by the next call, and the hot path of `Infer` makes no store call and no
//! thread hop. A backend that reports no generation is never cached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use probserve_lang::{CompileBudget, CompileError, CompiledModel, Diagnostics};
use probserve_runtime::CancelToken;
use probserve_store::{ModelVersion, NewModelVersion, RegisterOutcome, Store, StoreError};

use crate::infer::{CancelOnDrop, InferencePool, RunError};
use crate::run_cost::RunCost;

/// The longest one compilation may run, whatever the caller's deadline (a 1 MiB
/// source compiles in well under a second).
pub const MAX_COMPILE_TIME: Duration = Duration::from_secs(10);

/// Compiled programs kept at most; beyond this the cache is cleared (versions are
/// recompiled on next use, which takes microseconds).
const MAX_CACHED: usize = 4096;

/// Estimated bytes of compiled programs kept at most (sources may be up to 1 MiB
/// each, so a count alone does not bound the cache's memory); beyond this the cache
/// is cleared like at [`MAX_CACHED`].
const MAX_CACHED_BYTES: u64 = 256 << 20;

/// Estimated memory of a compiled program per source byte (its syntax, IR and
/// names; measured well under this on the built-in models).
const COMPILED_BYTES_PER_SOURCE_BYTE: u64 = 8;

/// The compiled-program cache with its estimated size.
#[derive(Default)]
struct CompiledCache {
    map: HashMap<String, Compiled>,
    bytes: u64,
}

/// What can go wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source does not compile.
    #[error("model source does not compile: {0}")]
    Compile(Diagnostics),
    /// Compilation did not finish within its time budget, or waited past the call's
    /// deadline for a CPU worker.
    #[error("{message}")]
    CompileBudget {
        /// What ran out, for the client.
        message: String,
        /// True when the call's own deadline was the limit (rather than
        /// [`MAX_COMPILE_TIME`]).
        callers_deadline: bool,
    },
    /// Compilation stopped because the call was dropped.
    #[error("{0}")]
    CompileCancelled(String),
    /// The CPU pool is saturated; compilation was not started.
    #[error("{0}")]
    Overloaded(String),
    /// A stored version no longer compiles (the language changed incompatibly).
    #[error(
        "stored model {name}@{version} does not compile with this server: {} error(s), first: {}",
        diagnostics.len() + diagnostics.more,
        diagnostics.iter().next().map_or("?", |d| d.message.as_str())
    )]
    StoredDoesNotCompile {
        /// Model name.
        name: String,
        /// Version.
        version: String,
        /// The compiler's diagnostics.
        diagnostics: Diagnostics,
    },
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Task(String),
}

/// A resolved, compiled model version.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// The stored record.
    pub version: Arc<ModelVersion>,
    /// Its compiled program.
    pub compiled: Arc<CompiledModel>,
    /// Its learned run cost (shared by every resolution of this content).
    pub cost: Arc<RunCost>,
}

/// Cached resolutions kept at most; beyond this the cache is cleared.
const MAX_RESOLVED: usize = 4096;

/// A resolution and the registry generation it was looked up under.
#[derive(Debug, Clone)]
struct CachedResolution {
    generation: u64,
    resolved: ResolvedModel,
}

/// model name → selector (`""` for none) → resolution.
type ResolutionCache = HashMap<String, HashMap<String, CachedResolution>>;

/// A compiled program and its learned cost, keyed by content hash.
type Compiled = (Arc<CompiledModel>, Arc<RunCost>);

/// The catalog; cheap to share behind an `Arc`.
pub struct Catalog {
    store: Arc<dyn Store>,
    pool: Arc<InferencePool>,
    compiled: Mutex<CompiledCache>,
    resolved: parking_lot::RwLock<ResolutionCache>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("cached", &self.compiled.lock().map.len())
            .field("resolved", &self.resolved.read().len())
            .finish()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CatalogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CatalogError::Task(e.to_string()))
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Catalog {
    /// A catalog over `store`, compiling on `pool`.
    pub fn new(store: Arc<dyn Store>, pool: Arc<InferencePool>) -> Self {
        Self {
            store,
            pool,
            compiled: Mutex::new(CompiledCache::default()),
            resolved: parking_lot::RwLock::new(HashMap::new()),
        }
    }

    /// The store (for listings).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Caches `compiled` (from `source_len` bytes of source) under `hash` unless
    /// present; returns the cached entry.
    fn cache(&self, hash: &str, compiled: &Arc<CompiledModel>, source_len: usize) -> Compiled {
        let weight = (source_len as u64).saturating_mul(COMPILED_BYTES_PER_SOURCE_BYTE);
        let mut cache = self.compiled.lock();
        if let Some(hit) = cache.map.get(hash) {
            return hit.clone();
        }
        if cache.map.len() >= MAX_CACHED || cache.bytes.saturating_add(weight) > MAX_CACHED_BYTES {
            cache.map.clear();
            cache.bytes = 0;
        }
        cache.bytes = cache.bytes.saturating_add(weight);
        let entry = (Arc::clone(compiled), Arc::default());
        cache.map.insert(hash.to_owned(), entry.clone());
        entry
    }

    /// Compiles `source` on the CPU pool, by `deadline` (or [`MAX_COMPILE_TIME`] from
    /// now, if sooner); `Ok(Err(..))` is a source with errors.
    ///
    /// The pool's admission applies (a saturated pool refuses at once), the budget
    /// is checked inside the compiler's loops, and dropping the returned future
    /// (client gone, drain timeout) cancels the compilation.
    pub async fn compile_checked(
        &self,
        source: String,
        deadline: Option<Instant>,
    ) -> Result<Result<CompiledModel, Diagnostics>, CatalogError> {
        let now = Instant::now();
        let limit = now.checked_add(MAX_COMPILE_TIME).unwrap_or(now);
        let (until, callers_deadline) = match deadline {
            Some(d) if d < limit => (d, true),
            _ => (limit, false),
        };
        let cancel = CancelToken::new().with_deadline(until);
        let _cancel_on_drop = CancelOnDrop(cancel.clone());
        let budget = CompileBudget::new(until, cancel);
        let job = move || {
            let result = probserve_lang::compile_with(&source, &budget);
            // Logged here, on the worker: after a cancel nobody awaits the answer.
            if let Err(e @ (CompileError::OverBudget { .. } | CompileError::Cancelled { .. })) =
                &result
            {
                tracing::warn!(error = %e, bytes = source.len(), "compilation stopped");
            }
            Ok(result)
        };
        match self.pool.run(until, job).await {
            Ok((Ok(model), _)) => Ok(Ok(model)),
            Ok((Err(CompileError::Invalid(d)), _)) => Ok(Err(d)),
            Ok((Err(e @ CompileError::Cancelled { .. }), _)) => {
                Err(CatalogError::CompileCancelled(e.to_string()))
            }
            Ok((Err(e), _)) => Err(CatalogError::CompileBudget {
                message: if callers_deadline {
                    format!("{e} (the call's deadline)")
                } else {
                    format!(
                        "{e} (the server allows {} s per compilation)",
                        MAX_COMPILE_TIME.as_secs()
                    )
                },
                callers_deadline,
            }),
            Err(e @ RunError::QueueDeadline { .. }) => Err(CatalogError::CompileBudget {
                message: format!("compilation did not start before the deadline: {e}"),
                callers_deadline: true,
            }),
            Err(e @ RunError::Overloaded { .. }) => Err(CatalogError::Overloaded(format!(
                "compilation not started: {e}; retry with back-off"
            ))),
            Err(e) => Err(CatalogError::Task(format!("compilation failed: {e}"))),
        }
    }

    /// [`Catalog::compile_checked`] with a source error as [`CatalogError::Compile`].
    pub async fn compile(
        &self,
        source: String,
        deadline: Option<Instant>,
    ) -> Result<CompiledModel, CatalogError> {
        self.compile_checked(source, deadline)
            .await?
            .map_err(CatalogError::Compile)
    }

    /// Compiles and stores a version; idempotent for identical content.
    pub async fn register(
        &self,
        rec: NewModelVersion,
    ) -> Result<(RegisterOutcome, Arc<CompiledModel>), CatalogError> {
        self.register_by(rec, None).await
    }

    /// [`Catalog::register`], compiling by `deadline` (see [`Catalog::compile`]).
    pub async fn register_by(
        &self,
        rec: NewModelVersion,
        deadline: Option<Instant>,
    ) -> Result<(RegisterOutcome, Arc<CompiledModel>), CatalogError> {
        let compiled = Arc::new(self.compile(rec.source.clone(), deadline).await?);
        let store = Arc::clone(&self.store);
        let outcome = blocking(move || store.register_version(rec)).await??;
        let source_len = outcome.version().source.len();
        self.cache(&outcome.version().content_hash, &compiled, source_len);
        Ok((outcome, compiled))
    }

    /// Registers the built-in example models (idempotent: a restart changes nothing).
    pub async fn register_builtins(&self) -> Result<usize, CatalogError> {
        let mut created = 0;
        for (name, version, source) in probserve_lang::builtin_models() {
            let rec = NewModelVersion {
                name: (*name).to_owned(),
                version: (*version).to_owned(),
                source: (*source).to_owned(),
                description: format!("built-in example model `{name}`"),
                labels: [("origin".to_owned(), "builtin".to_owned())].into(),
                created_at_millis: now_millis(),
            };
            let (outcome, _) = self.register(rec).await?;
            created += usize::from(outcome.is_created());
        }
        Ok(created)
    }

    /// The version for (name, version or label or neither), compiled.
    pub async fn resolve(
        &self,
        name: &str,
        selector: Option<&str>,
    ) -> Result<ResolvedModel, CatalogError> {
        // Read before the lookup: a write that lands during it moves the generation
        // past this one, so the entry stored below is never served after it.
        let generation = self.store.registry_generation();
        if let Some(hit) = generation.and_then(|g| self.cached_resolution(name, selector, g)) {
            return Ok(hit);
        }
        let resolved = self.resolve_uncached(name, selector).await?;
        if let Some(g) = generation {
            let mut cache = self.resolved.write();
            if cache.values().map(HashMap::len).sum::<usize>() >= MAX_RESOLVED {
                cache.clear();
            }
            cache.entry(name.to_owned()).or_default().insert(
                selector.unwrap_or_default().to_owned(),
                CachedResolution {
                    generation: g,
                    resolved: resolved.clone(),
                },
            );
        }
        Ok(resolved)
    }

    fn cached_resolution(
        &self,
        name: &str,
        selector: Option<&str>,
        generation: u64,
    ) -> Option<ResolvedModel> {
        let cache = self.resolved.read();
        let hit = cache.get(name)?.get(selector.unwrap_or_default())?;
        (hit.generation == generation).then(|| hit.resolved.clone())
    }

    async fn resolve_uncached(
        &self,
        name: &str,
        selector: Option<&str>,
    ) -> Result<ResolvedModel, CatalogError> {
        let store = Arc::clone(&self.store);
        let (name, selector) = (name.to_owned(), selector.map(str::to_owned));
        let version = blocking(move || store.resolve(&name, selector.as_deref())).await??;
        let cached = self.compiled.lock().map.get(&version.content_hash).cloned();
        let (compiled, cost) = match cached {
            Some(c) => c,
            None => {
                let compiled = Arc::new(self.compile(version.source.clone(), None).await.map_err(
                    |e| match e {
                        CatalogError::Compile(diagnostics) => CatalogError::StoredDoesNotCompile {
                            name: version.name.clone(),
                            version: version.version.clone(),
                            diagnostics,
                        },
                        other => other,
                    },
                )?);
                self.cache(&version.content_hash, &compiled, version.source.len())
            }
        };
        Ok(ResolvedModel {
            version: Arc::new(version),
            compiled,
            cost,
        })
    }

    /// Runs a synchronous store call on the blocking pool.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let store = Arc::clone(&self.store);
        Ok(blocking(move || f(store.as_ref())).await??)
    }

    /// Compiled programs in the cache.
    pub fn cached(&self) -> usize {
        self.compiled.lock().map.len()
    }
}

/// Milliseconds since the Unix epoch, for records.
pub fn unix_millis() -> u64 {
    now_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use probserve_store::RedbStore;

    fn new_version(name: &str, version: &str, mean: f64) -> NewModelVersion {
        NewModelVersion {
            name: name.into(),
            version: version.into(),
            source: format!("model {name} {{\n  mu ~ normal({mean:.1}, 1.0);\n  output mu;\n}}\n"),
            description: String::new(),
            labels: Default::default(),
            created_at_millis: 0,
        }
    }

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(dir.path().join("store.redb")).expect("open");
        let pool = InferencePool::new(1).expect("pool");
        (dir, Catalog::new(Arc::new(store), Arc::new(pool)))
    }

    #[tokio::test]
    async fn cached_resolution_follows_label_moves_and_new_versions() {
        let (_dir, cat) = catalog();
        cat.register(new_version("m", "1.0.0", 0.0))
            .await
            .expect("v1");
        let a = cat.resolve("m", None).await.expect("resolve");
        let b = cat.resolve("m", None).await.expect("resolve again");
        assert_eq!(a.version.version, "1.0.0");
        assert!(
            Arc::ptr_eq(&a.version, &b.version),
            "second call is a cache hit"
        );

        cat.register(new_version("m", "2.0.0", 1.0))
            .await
            .expect("v2");
        let c = cat.resolve("m", None).await.expect("after register");
        assert_eq!(
            c.version.version, "1.0.0",
            "a new version takes no default traffic: stable (the first version) serves"
        );

        let pin = cat.with_store(|s| s.set_label("m", "stable", "2.0.0"));
        pin.await.expect("label");
        let d = cat.resolve("m", None).await.expect("after label");
        assert_eq!(
            d.version.version, "2.0.0",
            "the stable label's move is seen at once"
        );
        assert_eq!(
            cat.resolve("m", Some("stable"))
                .await
                .expect("by label")
                .version
                .version,
            "2.0.0"
        );
        let unpin = cat.with_store(|s| s.delete_label("m", "stable"));
        unpin.await.expect("delete label");
        assert!(matches!(
            cat.resolve("m", None).await,
            Err(CatalogError::Store(
                probserve_store::StoreError::FailedPrecondition { .. }
            ))
        ));
        assert!(matches!(
            cat.resolve("m", Some("stable")).await,
            Err(CatalogError::Store(
                probserve_store::StoreError::NotFound { .. }
            ))
        ));
    }
}
