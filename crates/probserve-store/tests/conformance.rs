//! The shared conformance suite against the embedded redb store.

use probserve_store::RedbStore;
use probserve_store::conformance::run_conformance;

#[test]
fn redb_store_passes_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(dir.path().join("state.redb")).expect("open");
    run_conformance(&store);
}
