//! `RedbStore::open` on files that are not a valid store: refused with
//! `StoreError::NotAStore` (saying what to do), never re-initialized, never a panic.

use probserve_store::conformance::new_version;
use probserve_store::{RedbStore, Store, StoreError};

fn expect_not_a_store(path: &std::path::Path, what: &str) -> String {
    let before = std::fs::read(path).expect("read before");
    let err = match RedbStore::open(path) {
        Err(e) => e,
        Ok(_) => panic!("{what}: opened a file that is not a valid store"),
    };
    assert!(
        matches!(err, StoreError::NotAStore { .. }),
        "{what}: expected NotAStore, got {err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("backup") && msg.contains("move it away"),
        "{what}: message says what to do: {msg}"
    );
    assert_eq!(
        std::fs::read(path).expect("read after"),
        before,
        "{what}: the file is left untouched"
    );
    msg
}

/// A store with a few versions, closed; returns its bytes.
fn good_store(path: &std::path::Path) -> Vec<u8> {
    let store = RedbStore::open(path).expect("open");
    for i in 0..20 {
        store
            .register_version(new_version("m", &format!("1.0.{i}"), &format!("src {i}")))
            .expect("register");
    }
    drop(store);
    std::fs::read(path).expect("read")
}

#[test]
fn zero_length_file_is_refused_not_initialized() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("probserve.redb");
    std::fs::write(&path, b"").expect("write");
    let msg = expect_not_a_store(&path, "empty");
    assert!(msg.contains("empty"), "{msg}");
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), 0);
}

#[test]
fn foreign_and_short_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("probserve.redb");
    std::fs::write(&path, b"hello, I am a text file\n").expect("write");
    expect_not_a_store(&path, "short text");
    std::fs::write(&path, vec![b'x'; 8192]).expect("write");
    let msg = expect_not_a_store(&path, "long text");
    assert!(msg.contains("signature"), "{msg}");
}

#[test]
fn truncated_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = good_store(&dir.path().join("good.redb"));
    let path = dir.path().join("probserve.redb");
    for len in [
        1,
        9,
        100,
        319,
        320,
        512,
        4096,
        good.len() / 2,
        good.len() - 1,
    ] {
        std::fs::write(&path, &good[..len]).expect("write");
        // Either refused as not a store, or (redb can repair a file whose tail
        // is only free space) opened with its data intact. Never a panic, never
        // an empty store.
        match RedbStore::open(&path) {
            Err(e) => {
                assert!(
                    matches!(e, StoreError::NotAStore { .. }),
                    "truncated to {len}: {e:?}"
                );
                assert!(e.to_string().contains("truncated"), "{len}: {e}");
                assert_eq!(std::fs::read(&path).ok().as_deref(), Some(&good[..len]));
            }
            Ok(store) => assert_eq!(
                store
                    .model_summary("m")
                    .ok()
                    .flatten()
                    .map(|s| s.version_count),
                Some(20),
                "truncated to {len}: opened, so its data must be intact"
            ),
        }
    }
}

#[test]
fn corrupted_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = good_store(&dir.path().join("good.redb"));
    let path = dir.path().join("probserve.redb");
    // Overwrite regions of the header and of the data pages.
    for (at, n) in [
        (9, 8),
        (16, 48),
        (64, 256),
        (320, 64),
        (4096, 4096),
        (good.len() / 2, 512),
    ] {
        let mut bad = good.clone();
        let end = (at + n).min(bad.len());
        for b in &mut bad[at..end] {
            *b = 0xA5;
        }
        std::fs::write(&path, &bad).expect("write");
        match RedbStore::open(&path) {
            Err(e) => {
                assert!(
                    matches!(e, StoreError::NotAStore { .. }),
                    "corrupted at {at}..{end}: {e:?}"
                );
                assert!(!e.to_string().contains('\n'), "one-line message: {e}");
                assert_eq!(std::fs::read(&path).ok(), Some(bad), "left untouched");
            }
            // redb keeps two commit slots and may fall back to the intact one.
            Ok(store) => {
                let _ = store.model_summary("m");
            }
        }
    }
}

#[test]
fn another_applications_redb_file_is_refused() {
    use redb::{Database, TableDefinition};
    const THEIRS: TableDefinition<'_, &str, u64> = TableDefinition::new("their_counters");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("probserve.redb");
    {
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("begin");
        txn.open_table(THEIRS)
            .expect("table")
            .insert("visits", 7)
            .expect("insert");
        txn.commit().expect("commit");
    }
    let msg = expect_not_a_store(&path, "foreign redb file");
    assert!(
        msg.contains("their_counters") && msg.contains("another application"),
        "{msg}"
    );
    // Still theirs, unchanged: no probserve table was added.
    let db = Database::open(&path).expect("open raw");
    let txn = db.begin_read().expect("read");
    let names: Vec<String> = {
        use redb::TableHandle as _;
        txn.list_tables()
            .expect("list")
            .map(|t| t.name().to_owned())
            .collect()
    };
    assert_eq!(names, ["their_counters"]);
}

#[test]
fn an_empty_redb_database_becomes_a_store() {
    // A redb file with no tables at all (probserve crashed right after creating
    // it, before its first transaction) holds nothing to lose: it is initialized.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("probserve.redb");
    drop(redb::Database::create(&path).expect("create"));
    let store = RedbStore::open(&path).expect("open an empty redb database");
    assert!(
        store
            .register_version(new_version("m", "1.0.0", "x"))
            .is_ok()
    );
}

#[test]
fn a_directory_at_the_path_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("probserve.redb");
    std::fs::create_dir(&path).expect("mkdir");
    let err = match RedbStore::open(&path) {
        Err(e) => e,
        Ok(_) => panic!("opened a directory as a store"),
    };
    assert!(
        matches!(err, StoreError::NotAStore { .. }),
        "expected NotAStore, got {err:?}"
    );
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(path.is_dir(), "left as it was");
}
