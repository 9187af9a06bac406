//! redb-specific behaviour: persistence across reopen, file locking and schema
//! migrations (including an upgrade from a hand-written v1 file).

use probserve_store::conformance::new_version;
use probserve_store::{AuditEntry, CURRENT_SCHEMA_VERSION, RedbStore, Store, StoreError};
use redb::{Database, TableDefinition};
use serde_json::json;

// The v1 on-disk format, spelled out independently of the crate's definitions so
// that an accidental format change fails these tests.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const VERSIONS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("versions");
const LABELS: TableDefinition<'_, (&str, &str), &str> = TableDefinition::new("labels");
const ROLLOUTS: TableDefinition<'_, &str, (u64, &[u8])> = TableDefinition::new("rollouts");
const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");
const BLOBS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("blobs");
const MODELS_V2: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("models");

fn entry(action: &str) -> AuditEntry {
    AuditEntry {
        at_millis: 5,
        actor: "test".into(),
        subject: "rollout/r1".into(),
        action: action.into(),
        detail: json!({"k": action}),
    }
}

fn version_row(name: &str, version: &str, seq: u64, archived: bool) -> Vec<u8> {
    let source = format!("model {name} v{version}");
    serde_json::to_vec(&json!({
        "name": name,
        "version": version,
        "source": source,
        "description": "from v1",
        "labels": {"origin": "v1"},
        "content_hash": probserve_store::content_hash(&source),
        "created_at_millis": 1000 + seq,
        "archived": archived,
        "sequence": seq,
    }))
    .expect("json")
}

/// Writes a schema-v1 file: what probserve wrote before schema v2.
fn write_v1_file(path: &std::path::Path, corrupt: bool) {
    let db = Database::create(path).expect("create");
    let txn = db.begin_write().expect("begin");
    {
        let mut meta = txn.open_table(META).expect("meta");
        meta.insert("schema_version", 1).expect("insert");
        meta.insert("last_version_seq", 4).expect("insert");
        let mut versions = txn.open_table(VERSIONS).expect("versions");
        for (name, version, seq, archived) in [
            ("alpha", "1.0.0", 1, false),
            ("beta", "0.1.0", 2, false),
            ("alpha", "2.0.0", 3, true),
            ("alpha", "1.5.0", 4, false),
        ] {
            let row = version_row(name, version, seq, archived);
            versions
                .insert((name, version), row.as_slice())
                .expect("insert");
        }
        if corrupt {
            versions
                .insert(("gamma", "1.0.0"), b"{not json".as_slice())
                .expect("insert");
        }
        let mut labels = txn.open_table(LABELS).expect("labels");
        labels.insert(("alpha", "stable"), "1.0.0").expect("insert");
        let mut rollouts = txn.open_table(ROLLOUTS).expect("rollouts");
        let state = serde_json::to_vec(&json!({"phase": "canary"})).expect("json");
        rollouts
            .insert("r1", (3, state.as_slice()))
            .expect("insert");
        let mut audit = txn.open_table(AUDIT).expect("audit");
        for (seq, action) in [(1u64, "create"), (2, "advance")] {
            let row = serde_json::to_vec(&entry(action)).expect("json");
            audit.insert(seq, row.as_slice()).expect("insert");
        }
        let mut blobs = txn.open_table(BLOBS).expect("blobs");
        blobs
            .insert(("metrics", "r1"), b"\x00\x01blob".as_slice())
            .expect("insert");
    }
    txn.commit().expect("commit");
}

fn raw_schema_version(path: &std::path::Path) -> Option<u64> {
    let db = Database::open(path).expect("open raw");
    let txn = db.begin_read().expect("read");
    let meta = txn.open_table(META).expect("meta");
    meta.get("schema_version").expect("get").map(|g| g.value())
}

fn raw_has_table(path: &std::path::Path, def: TableDefinition<'_, &str, &[u8]>) -> bool {
    let db = Database::open(path).expect("open raw");
    let txn = db.begin_read().expect("read");
    txn.open_table(def).is_ok()
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/state.redb");
    let v = {
        let store = RedbStore::open(&path).expect("open");
        assert_eq!(store.schema_version().ok(), Some(CURRENT_SCHEMA_VERSION));
        let v = store
            .register_version(new_version("m", "1.0.0", "src"))
            .expect("register");
        store.set_label("m", "stable", "1.0.0").expect("label");
        store
            .put_rollout_with_audit("r1", None, &json!({"a": 1}), &entry("create"))
            .expect("rollout");
        store.put_blob("metrics", "r1", b"agg").expect("blob");
        v.into_version()
    };
    let store = RedbStore::open(&path).expect("reopen");
    assert_eq!(
        store.get_version("m", "1.0.0").ok().flatten(),
        Some(v.clone())
    );
    assert_eq!(store.resolve("m", None).ok(), Some(v));
    assert_eq!(
        store.get_rollout("r1").ok().flatten(),
        Some((1, json!({"a": 1})))
    );
    assert_eq!(store.audit_since(0, 10).ok().map(|a| a.len()), Some(1));
    assert_eq!(
        store.get_blob("metrics", "r1").ok().flatten(),
        Some(b"agg".to_vec())
    );
    let next = store
        .register_version(new_version("m", "1.1.0", "src2"))
        .expect("register");
    assert_eq!(
        next.version().sequence,
        2,
        "sequence continues after reopen"
    );
}

#[test]
fn second_open_of_same_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    let _first = RedbStore::open(&path).expect("open");
    match RedbStore::open(&path) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("already open"), "{msg}"),
        other => panic!("expected Backend error, got {other:?}"),
    }
}

#[test]
fn newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("future.redb");
    {
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("begin");
        txn.open_table(META)
            .expect("meta")
            .insert("schema_version", 99)
            .expect("insert");
        txn.commit().expect("commit");
    }
    match RedbStore::open(&path) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (99, CURRENT_SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let msg = StoreError::SchemaTooNew {
        found: 99,
        supported: CURRENT_SCHEMA_VERSION,
    }
    .to_string();
    assert!(msg.contains("99") && msg.contains("newer"), "{msg}");
    assert_eq!(raw_schema_version(&path), Some(99));
    assert!(!raw_has_table(&path, MODELS_V2), "no migration ran");
}

#[test]
fn upgrade_from_v1_backfills_summaries_and_keeps_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.redb");
    write_v1_file(&path, false);
    assert_eq!(raw_schema_version(&path), Some(1));

    let store = RedbStore::open(&path).expect("open v1 file");
    assert_eq!(store.schema_version().ok(), Some(CURRENT_SCHEMA_VERSION));
    let models = store.list_models(0, "").expect("list").items;
    let summary: Vec<_> = models
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.version_count,
                m.latest_version.as_deref(),
                m.labels.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("alpha", 3, Some("1.5.0"), 1),
            ("beta", 1, Some("0.1.0"), 1)
        ]
    );
    // Schema v3: a model without `stable` is pinned to what served before the
    // upgrade (its highest non-archived version); an existing `stable` is kept.
    assert_eq!(
        store.get_label("beta", "stable").ok().flatten().as_deref(),
        Some("0.1.0")
    );
    assert_eq!(
        store.get_label("alpha", "stable").ok().flatten().as_deref(),
        Some("1.0.0")
    );
    let order: Vec<String> = store
        .list_versions("alpha", 2, "")
        .and_then(|p| {
            let token = p.next_page_token.clone().unwrap_or_default();
            let rest = store.list_versions("alpha", 2, &token)?;
            Ok(p.items
                .into_iter()
                .chain(rest.items)
                .map(|v| v.version)
                .collect())
        })
        .expect("list_versions");
    assert_eq!(
        order,
        ["1.0.0", "2.0.0", "1.5.0"],
        "registration (sequence) order"
    );
    let old = store
        .get_version("alpha", "2.0.0")
        .ok()
        .flatten()
        .expect("v1 row readable");
    assert!(old.archived);
    assert_eq!(old.labels.get("origin").map(String::as_str), Some("v1"));
    assert_eq!(
        store
            .resolve("alpha", None)
            .ok()
            .map(|v| v.version)
            .as_deref(),
        Some("1.0.0")
    );
    assert_eq!(
        store.get_rollout("r1").ok().flatten(),
        Some((3, json!({"phase": "canary"})))
    );
    assert_eq!(
        store
            .put_rollout("r1", Some(3), &json!({"phase": "full"}))
            .ok(),
        Some(4)
    );
    let audit = store.audit_since(0, 10).expect("audit");
    assert_eq!(
        audit
            .iter()
            .map(|r| (r.seq, r.entry.action.as_str()))
            .collect::<Vec<_>>(),
        [(1, "create"), (2, "advance")]
    );
    assert_eq!(store.append_audit(&entry("x")).ok(), Some(3));
    assert_eq!(
        store.get_blob("metrics", "r1").ok().flatten(),
        Some(b"\x00\x01blob".to_vec())
    );
    // New writes keep the migrated summaries and counters in step.
    let created = store
        .register_version(new_version("alpha", "3.0.0", "new"))
        .expect("register");
    assert_eq!(created.version().sequence, 5);
    assert_eq!(
        store
            .latest_version("alpha")
            .ok()
            .flatten()
            .map(|v| v.version)
            .as_deref(),
        Some("3.0.0")
    );
    drop(store);
    // Opening again is a no-op.
    let store = RedbStore::open(&path).expect("reopen");
    let alpha = store.list_models(1, "").expect("list").items;
    assert_eq!(alpha.first().map(|m| m.version_count), Some(4));
}

#[test]
fn failed_migration_leaves_file_at_old_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1-corrupt.redb");
    write_v1_file(&path, true);
    match RedbStore::open(&path) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("corrupt row"), "{msg}"),
        other => panic!("expected Backend error, got {other:?}"),
    }
    assert_eq!(
        raw_schema_version(&path),
        Some(1),
        "migration is one transaction"
    );
    assert!(!raw_has_table(&path, MODELS_V2));
}

#[test]
fn store_is_usable_as_shared_trait_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(RedbStore::open(dir.path().join("s.redb")).expect("open"));
    let clone = std::sync::Arc::clone(&store);
    let handle = std::thread::spawn(move || {
        clone
            .register_version(new_version("t", "1.0.0", "x"))
            .map(|o| o.is_created())
    });
    assert_eq!(handle.join().ok().and_then(Result::ok), Some(true));
    assert!(store.get_version("t", "1.0.0").ok().flatten().is_some());
}

/// A v2 file (what 161c222 wrote) whose models have no `stable` label: after the
/// upgrade each model serves exactly what it served before (its highest
/// non-archived version), and a later registration does not take traffic.
#[test]
fn upgrade_to_v3_pins_stable_where_latest_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v2.redb");
    write_v1_file(&path, false);
    {
        // Bring it to v2 by hand: the models table as v2 backfilled it.
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("begin");
        {
            let mut meta = txn.open_table(META).expect("meta");
            meta.insert("schema_version", 2).expect("insert");
            let mut models = txn.open_table(MODELS_V2).expect("models");
            for (name, count, latest) in [("alpha", 3, "1.5.0"), ("beta", 1, "0.1.0")] {
                let row = serde_json::to_vec(&json!({"version_count": count, "latest": latest}))
                    .expect("json");
                models.insert(name, row.as_slice()).expect("insert");
            }
            let mut labels = txn.open_table(LABELS).expect("labels");
            labels.remove(("alpha", "stable")).expect("remove");
        }
        txn.commit().expect("commit");
    }
    let store = RedbStore::open(&path).expect("open v2 file");
    assert_eq!(store.schema_version().ok(), Some(CURRENT_SCHEMA_VERSION));
    for (name, served) in [("alpha", "1.5.0"), ("beta", "0.1.0")] {
        assert_eq!(
            store.get_label(name, "stable").ok().flatten().as_deref(),
            Some(served),
            "{name}"
        );
        assert_eq!(
            store.resolve(name, None).ok().map(|v| v.version).as_deref(),
            Some(served)
        );
    }
    store
        .register_version(new_version("alpha", "99.0.0", "new"))
        .expect("register");
    assert_eq!(
        store
            .resolve("alpha", None)
            .ok()
            .map(|v| v.version)
            .as_deref(),
        Some("1.5.0"),
        "a new version does not take default traffic"
    );
}

/// A v1 file with rollouts as the server stored them and a model named under the
/// older, looser rule: after the upgrade the active rollout's versions cannot be
/// archived (v4 backfills its holds), a finished one holds nothing, and the old
/// model keeps getting versions while new models follow the strict rule.
#[test]
fn upgrade_to_v4_holds_active_rollouts_and_keeps_old_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.redb");
    write_v1_file(&path, false);
    {
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("begin");
        {
            let mut versions = txn.open_table(VERSIONS).expect("versions");
            let row = version_row("Old.Model", "1.0.0", 5, false);
            versions
                .insert(("Old.Model", "1.0.0"), row.as_slice())
                .expect("insert");
            let mut meta = txn.open_table(META).expect("meta");
            meta.insert("last_version_seq", 5).expect("insert");
            let mut rollouts = txn.open_table(ROLLOUTS).expect("rollouts");
            for (id, phase, base, cand) in [
                ("active", "Paused", "1.0.0", "1.5.0"),
                ("done", "Aborted", "1.0.0", "1.0.0"),
            ] {
                let value = serde_json::to_vec(&json!({
                    "model": "alpha",
                    "rollout": {
                        "spec": {"id": id, "baseline": base, "candidate": cand},
                        "state": {"phase": phase, "revision": 2},
                    },
                }))
                .expect("json");
                rollouts.insert(id, (2, value.as_slice())).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
    let store = RedbStore::open(&path).expect("open v1 file");
    assert_eq!(store.schema_version().ok(), Some(CURRENT_SCHEMA_VERSION));
    match store.archive_version("alpha", "1.5.0") {
        Err(StoreError::FailedPrecondition { reason }) => {
            assert!(reason.contains("\"active\""), "{reason}");
            assert!(!reason.contains("\"done\""), "{reason}");
        }
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    assert!(matches!(
        store.set_label("alpha", "stable", "1.5.0"),
        Err(StoreError::FailedPrecondition { .. })
    ));
    assert!(
        store.set_label("beta", "stable", "0.1.0").is_ok(),
        "other models are free"
    );

    let outcome = store
        .register_version(new_version("Old.Model", "2.0.0", "old model, new version"))
        .unwrap_or_else(|e| panic!("a new version of an old-named model: {e}"));
    assert!(outcome.is_created());
    assert!(matches!(
        store.register_version(new_version("New.Model", "1.0.0", "x")),
        Err(StoreError::InvalidArgument { .. })
    ));
}
