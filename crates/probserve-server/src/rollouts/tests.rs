//! Rollout commands against a real store: a caller dropped in the middle of a
//! commit, rollback after promotion, the baseline/`stable` rule, the per-model
//! index.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use probserve_experiment::audit::Actor;
use probserve_experiment::plan::RolloutSpec;
use probserve_experiment::rollout::{Command, Phase, Rollout};
use probserve_store::model::{
    AuditEntry, AuditRecord, ModelSummary, ModelVersion, NewModelVersion, Page, RegisterOutcome,
    RolloutCommit, RolloutEntry, RolloutWrite,
};
use probserve_store::{RedbStore, Store, StoreError};

use super::*;

type R<T> = Result<T, StoreError>;

/// A store whose `commit_rollout` can be held: it reports that it was entered,
/// then waits to be released.
struct Gated {
    inner: RedbStore,
    gate: parking_lot::Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

impl Store for Gated {
    fn register_version(&self, rec: NewModelVersion) -> R<RegisterOutcome> {
        self.inner.register_version(rec)
    }
    fn get_version(&self, n: &str, v: &str) -> R<Option<ModelVersion>> {
        self.inner.get_version(n, v)
    }
    fn latest_version(&self, n: &str) -> R<Option<ModelVersion>> {
        self.inner.latest_version(n)
    }
    fn list_models(&self, size: u32, token: &str) -> R<Page<ModelSummary>> {
        self.inner.list_models(size, token)
    }
    fn model_summary(&self, n: &str) -> R<Option<ModelSummary>> {
        self.inner.model_summary(n)
    }
    fn list_versions(&self, n: &str, size: u32, token: &str) -> R<Page<ModelVersion>> {
        self.inner.list_versions(n, size, token)
    }
    fn archive_version(&self, n: &str, v: &str) -> R<ModelVersion> {
        self.inner.archive_version(n, v)
    }
    fn set_label(&self, n: &str, l: &str, v: &str) -> R<Option<String>> {
        self.inner.set_label(n, l, v)
    }
    fn delete_label(&self, n: &str, l: &str) -> R<Option<String>> {
        self.inner.delete_label(n, l)
    }
    fn get_label(&self, n: &str, l: &str) -> R<Option<String>> {
        self.inner.get_label(n, l)
    }
    fn resolve(&self, n: &str, sel: Option<&str>) -> R<ModelVersion> {
        self.inner.resolve(n, sel)
    }
    fn put_rollout(&self, id: &str, rev: Option<u64>, v: &serde_json::Value) -> R<u64> {
        self.inner.put_rollout(id, rev, v)
    }
    fn put_rollout_with_audit(
        &self,
        id: &str,
        rev: Option<u64>,
        v: &serde_json::Value,
        a: &AuditEntry,
    ) -> R<RolloutCommit> {
        self.inner.put_rollout_with_audit(id, rev, v, a)
    }
    fn commit_rollout(&self, w: &RolloutWrite) -> R<RolloutCommit> {
        if let Some((entered, release)) = self.gate.lock().take() {
            let _ = entered.send(());
            let _ = release.recv();
        }
        self.inner.commit_rollout(w)
    }
    fn get_rollout(&self, id: &str) -> R<Option<(u64, serde_json::Value)>> {
        self.inner.get_rollout(id)
    }
    fn list_rollouts(&self) -> R<Vec<RolloutEntry>> {
        self.inner.list_rollouts()
    }
    fn append_audit(&self, e: &AuditEntry) -> R<u64> {
        self.inner.append_audit(e)
    }
    fn audit_since(&self, after: u64, limit: usize) -> R<Vec<AuditRecord>> {
        self.inner.audit_since(after, limit)
    }
    fn put_blob(&self, ns: &str, k: &str, b: &[u8]) -> R<()> {
        self.inner.put_blob(ns, k, b)
    }
    fn get_blob(&self, ns: &str, k: &str) -> R<Option<Vec<u8>>> {
        self.inner.get_blob(ns, k)
    }
    fn delete_blob(&self, ns: &str, k: &str) -> R<bool> {
        self.inner.delete_blob(ns, k)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Gated>,
    rollouts: Arc<Rollouts>,
}

async fn fixture(versions: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = RedbStore::open(dir.path().join("s.redb")).expect("open");
    for v in versions {
        inner
            .register_version(NewModelVersion {
                name: "m".into(),
                version: (*v).into(),
                source: format!("model m {{ }} // {v}"),
                description: String::new(),
                labels: Default::default(),
                created_at_millis: 1,
            })
            .expect("register");
    }
    let store = Arc::new(Gated {
        inner,
        gate: parking_lot::Mutex::new(None),
    });
    let dyn_store: Arc<dyn Store> = store.clone();
    let rollouts = Rollouts::load(dyn_store).await.expect("load");
    Fixture {
        _dir: dir,
        store,
        rollouts,
    }
}

fn ana() -> Actor {
    Actor::Operator("ana".into())
}

fn canary(id: &str, base: &str, cand: &str) -> Rollout {
    let spec =
        RolloutSpec::canary(id, base, cand, &[(1000, 0), (10_000, 0)], 1_000_000).expect("spec");
    Rollout::new(spec).expect("rollout")
}

/// Holds the next `commit_rollout`; returns (entered, release).
fn hold(f: &Fixture) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    *f.store.gate.lock() = Some((entered_tx, release_rx));
    (entered_rx, release_tx)
}

/// Waits until the store has revision `want` of `id` and memory agrees (the
/// detached command finished); panics after a few seconds.
async fn settled(f: &Fixture, id: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stored = f.store.get_rollout(id).expect("get").map(|(rev, _)| rev);
        let memory = f.rollouts.live.read().get(id).map(|l| l.store_revision);
        if stored == Some(want) && memory == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "memory {memory:?} and store {stored:?} disagree about {id}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_dropped_mid_commit_leaves_memory_and_store_in_step() {
    let f = fixture(&["1.0.0", "2.0.0"]).await;
    // Create: the caller goes away while the commit is held.
    let (entered, release) = hold(&f);
    let r = Arc::clone(&f.rollouts);
    let call = tokio::spawn(async move {
        r.create(
            "m".into(),
            canary("r1", "1.0.0", "2.0.0"),
            ana(),
            String::new(),
            true,
        )
        .await
    });
    tokio::task::spawn_blocking(move || entered.recv())
        .await
        .expect("join")
        .expect("commit entered");
    call.abort();
    assert!(call.await.is_err_and(|e| e.is_cancelled()));
    release.send(()).expect("release");
    settled(&f, "r1", 1).await;
    let again = f
        .rollouts
        .create(
            "m".into(),
            canary("r2", "1.0.0", "2.0.0"),
            ana(),
            String::new(),
            true,
        )
        .await;
    assert!(
        matches!(again, Err(RolloutError::AlreadyExists(_))),
        "one active rollout per model: {again:?}"
    );

    // A command: the same.
    let (entered, release) = hold(&f);
    let r = Arc::clone(&f.rollouts);
    let call = tokio::spawn(async move { r.command("r1", Command::Pause, ana(), "", 0).await });
    tokio::task::spawn_blocking(move || entered.recv())
        .await
        .expect("join")
        .expect("commit entered");
    call.abort();
    let _ = call.await;
    release.send(()).expect("release");
    settled(&f, "r1", 2).await;
    let phase = f.rollouts.get("r1").map(|(_, r)| r.state.phase);
    assert_eq!(phase, Some(Phase::Paused));
    let resumed = f
        .rollouts
        .command("r1", Command::Resume, ana(), "", 0)
        .await
        .expect("the next command is not ABORTED");
    assert_eq!(resumed.state.phase, Phase::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_after_promotion_moves_stable_back() {
    let f = fixture(&["1.0.0", "2.0.0"]).await;
    let spec = RolloutSpec::blue_green("bg", "1.0.0", "2.0.0").expect("spec");
    let bg = Rollout::new(spec).expect("rollout");
    f.rollouts
        .create("m".into(), bg, ana(), String::new(), true)
        .await
        .expect("create");
    let stable = || f.store.get_label("m", "stable").expect("label");
    f.rollouts
        .command("bg", Command::Promote, ana(), "", 0)
        .await
        .expect("promote");
    assert_eq!(stable().as_deref(), Some("2.0.0"));
    let back = f
        .rollouts
        .command("bg", Command::Rollback, ana(), "", 0)
        .await
        .expect("rollback after promotion (blue-green keeps the baseline warm)");
    assert_eq!(back.state.phase, Phase::RolledBack);
    assert_eq!(
        stable().as_deref(),
        Some("1.0.0"),
        "default traffic is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_must_be_stable_and_stable_stays_while_active() {
    let f = fixture(&["1.0.0", "2.0.0", "3.0.0"]).await;
    let refused = f
        .rollouts
        .create(
            "m".into(),
            canary("r", "2.0.0", "3.0.0"),
            ana(),
            String::new(),
            true,
        )
        .await;
    match refused {
        Err(RolloutError::Store(StoreError::FailedPrecondition { reason })) => {
            assert!(
                reason.contains("\"1.0.0\"") && reason.contains("\"2.0.0\""),
                "{reason}"
            );
        }
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    assert_eq!(f.store.get_rollout("r").expect("get"), None);
    f.rollouts
        .create(
            "m".into(),
            canary("r", "1.0.0", "3.0.0"),
            ana(),
            String::new(),
            false,
        )
        .await
        .expect("from stable");
    let moved = f.store.set_label("m", "stable", "2.0.0");
    assert!(
        matches!(&moved, Err(StoreError::FailedPrecondition { reason }) if reason.contains("\"r\"")),
        "{moved:?}"
    );
    let archived = f.store.archive_version("m", "3.0.0");
    assert!(
        matches!(&archived, Err(StoreError::FailedPrecondition { reason }) if reason.contains("\"r\"")),
        "{archived:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_uses_the_active_rollout_of_the_model() {
    let f = fixture(&["1.0.0", "2.0.0"]).await;
    let attrs = std::collections::HashMap::new();
    for i in 0..5 {
        let id = format!("r{i}");
        f.rollouts
            .create(
                "m".into(),
                canary(&id, "1.0.0", "2.0.0"),
                ana(),
                String::new(),
                true,
            )
            .await
            .expect("create");
        let routed = f.rollouts.route("m", Some("k"), &attrs, 1).expect("routed");
        assert_eq!(routed.rollout_id, id);
        f.rollouts
            .command(&id, Command::Abort, ana(), "", 0)
            .await
            .expect("abort");
        assert!(f.rollouts.route("m", Some("k"), &attrs, 1).is_none());
    }
    assert!(f.rollouts.list("m", true).is_empty());
    assert_eq!(f.rollouts.list("m", false).len(), 5);
    assert_eq!(f.rollouts.live.read().active.len(), 0);
    // Reloaded from the store: the same.
    let dyn_store: Arc<dyn Store> = f.store.clone();
    let again = Rollouts::load(dyn_store).await.expect("load");
    assert!(again.route("m", Some("k"), &attrs, 1).is_none());
    assert_eq!(again.list("", false).len(), 5);
}
