//! The model catalog: registered versions (in the store) and their compiled programs
//! (cached in memory).
//!
//! Versions are immutable, so a compiled program never goes stale: the cache is
//! keyed by content hash and only bounded in size. Store calls are synchronous and
//! run on tokio's blocking pool; compilation is CPU work and runs there too.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use probserve_lang::{CompiledModel, Diagnostics};
use probserve_store::{ModelVersion, NewModelVersion, RegisterOutcome, Store, StoreError};

/// Compiled programs kept at most; beyond this the cache is cleared (versions are
/// recompiled on next use, which takes microseconds).
const MAX_CACHED: usize = 4096;

/// What can go wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source does not compile.
    #[error("model source does not compile: {0}")]
    Compile(Diagnostics),
    /// A stored version no longer compiles (the language changed incompatibly).
    #[error("stored model {name}@{version} does not compile with this server: {diagnostics}")]
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
}

/// The catalog; cheap to share behind an `Arc`.
pub struct Catalog {
    store: Arc<dyn Store>,
    compiled: Mutex<HashMap<String, Arc<CompiledModel>>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("cached", &self.compiled.lock().len())
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
    /// A catalog over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The store (for listings).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn cache(&self, hash: &str, compiled: &Arc<CompiledModel>) {
        let mut map = self.compiled.lock();
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(hash.to_owned(), Arc::clone(compiled));
    }

    /// Compiles `source` (on the blocking pool).
    pub async fn compile(source: String) -> Result<CompiledModel, CatalogError> {
        blocking(move || probserve_lang::compile(&source))
            .await?
            .map_err(CatalogError::Compile)
    }

    /// Compiles and stores a version; idempotent for identical content.
    pub async fn register(
        &self,
        rec: NewModelVersion,
    ) -> Result<(RegisterOutcome, Arc<CompiledModel>), CatalogError> {
        let compiled = Arc::new(Self::compile(rec.source.clone()).await?);
        let store = Arc::clone(&self.store);
        let outcome = blocking(move || store.register_version(rec)).await??;
        self.cache(&outcome.version().content_hash, &compiled);
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
        let store = Arc::clone(&self.store);
        let (name, selector) = (name.to_owned(), selector.map(str::to_owned));
        let version = blocking(move || store.resolve(&name, selector.as_deref())).await??;
        let cached = self.compiled.lock().get(&version.content_hash).cloned();
        let compiled = match cached {
            Some(c) => c,
            None => {
                let compiled = Arc::new(Self::compile(version.source.clone()).await.map_err(
                    |e| match e {
                        CatalogError::Compile(diagnostics) => CatalogError::StoredDoesNotCompile {
                            name: version.name.clone(),
                            version: version.version.clone(),
                            diagnostics,
                        },
                        other => other,
                    },
                )?);
                self.cache(&version.content_hash, &compiled);
                compiled
            }
        };
        Ok(ResolvedModel {
            version: Arc::new(version),
            compiled,
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
        self.compiled.lock().len()
    }
}

/// Milliseconds since the Unix epoch, for records.
pub fn unix_millis() -> u64 {
    now_millis()
}
