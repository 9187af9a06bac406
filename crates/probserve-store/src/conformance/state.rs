//! Conformance cases for rollouts, the audit log, blobs and concurrent writers.

use std::collections::BTreeSet;
use std::sync::Barrier;

use serde_json::json;

use crate::error::StoreError;
use crate::model::{LabelIs, LabelMove, RegisterOutcome, RolloutWrite};
use crate::traits::Store;

use super::{audit, new_version};

pub(super) fn rollout_revisions(store: &dyn Store) {
    let id = "conf-rollout-1";
    let mismatch = |r: Result<u64, StoreError>| match r {
        Err(StoreError::RevisionMismatch {
            expected, actual, ..
        }) => (expected, actual),
        other => panic!("expected RevisionMismatch, got {other:?}"),
    };
    assert_eq!(store.get_rollout(id).ok(), Some(None));
    assert_eq!(
        mismatch(store.put_rollout(id, Some(5), &json!({}))),
        (Some(5), None)
    );
    assert_eq!(
        store.put_rollout(id, None, &json!({"step": 0})).ok(),
        Some(1)
    );
    assert_eq!(
        mismatch(store.put_rollout(id, None, &json!({}))),
        (None, Some(1))
    );
    assert_eq!(
        store.put_rollout(id, Some(1), &json!({"step": 1})).ok(),
        Some(2)
    );
    assert_eq!(
        mismatch(store.put_rollout(id, Some(1), &json!({"step": 9}))),
        (Some(1), Some(2))
    );
    assert_eq!(
        store.get_rollout(id).ok().flatten(),
        Some((2, json!({"step": 1})))
    );
    assert_eq!(
        store
            .put_rollout("conf-rollout-0", None, &json!([1, 2.5, null, "x"]))
            .ok(),
        Some(1)
    );
    let listed: Vec<(String, u64)> = store
        .list_rollouts()
        .unwrap_or_else(|e| panic!("list_rollouts: {e}"))
        .into_iter()
        .filter(|r| r.id.starts_with("conf-rollout-"))
        .map(|r| (r.id, r.revision))
        .collect();
    assert_eq!(
        listed,
        [
            ("conf-rollout-0".to_owned(), 1),
            ("conf-rollout-1".to_owned(), 2)
        ]
    );
}

pub(super) fn audit_log(store: &dyn Store) {
    let base = store
        .append_audit(&audit("baseline", "conf"))
        .unwrap_or_else(|e| panic!("append: {e}"));
    let seqs: Vec<u64> = (0..5)
        .map(|i| {
            store
                .append_audit(&audit(&format!("a{i}"), "conf"))
                .unwrap_or_else(|e| panic!("append: {e}"))
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > base,
        "strictly increasing"
    );
    let got = store
        .audit_since(base, 3)
        .unwrap_or_else(|e| panic!("audit_since: {e}"));
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), seqs[..3]);
    assert_eq!(got[0].entry, audit("a0", "conf"));
    let rest = store
        .audit_since(seqs[2], 100)
        .unwrap_or_else(|e| panic!("audit_since: {e}"));
    assert_eq!(rest.iter().map(|r| r.seq).collect::<Vec<_>>(), seqs[3..]);
    assert_eq!(store.audit_since(base, 0).ok().map(|v| v.len()), Some(0));
    assert_eq!(
        store.audit_since(u64::MAX, 10).ok().map(|v| v.len()),
        Some(0)
    );
}

pub(super) fn rollout_with_audit_is_atomic(store: &dyn Store) {
    let id = "conf-atomic";
    let base = store
        .append_audit(&audit("baseline", id))
        .unwrap_or_else(|e| panic!("append: {e}"));
    let c = store
        .put_rollout_with_audit(id, None, &json!({"s": "started"}), &audit("start", id))
        .unwrap_or_else(|e| panic!("put_rollout_with_audit: {e}"));
    assert_eq!(c.revision, 1);
    assert!(c.audit_seq > base);
    // A failed revision check writes neither the state nor the audit record.
    let failed = store.put_rollout_with_audit(id, Some(7), &json!({"s": "bad"}), &audit("bad", id));
    assert!(matches!(failed, Err(StoreError::RevisionMismatch { .. })));
    let c2 = store
        .put_rollout_with_audit(
            id,
            Some(1),
            &json!({"s": "advanced"}),
            &audit("advance", id),
        )
        .unwrap_or_else(|e| panic!("put_rollout_with_audit: {e}"));
    assert_eq!(c2.revision, 2);
    let actions: Vec<String> = store
        .audit_since(base, 100)
        .unwrap_or_else(|e| panic!("audit_since: {e}"))
        .into_iter()
        .filter(|r| r.entry.subject == id)
        .map(|r| r.entry.action)
        .collect();
    assert_eq!(actions, ["start", "advance"]);
    assert_eq!(
        store.get_rollout(id).ok().flatten(),
        Some((2, json!({"s": "advanced"})))
    );
}

/// `commit_rollout`: preconditions checked inside the transaction; any failure
/// writes no state, no audit record and no label.
pub(super) fn rollout_commit_checks_inside_the_transaction(store: &dyn Store) {
    let (id, model) = ("conf-commit", "conf-commit-model");
    for v in ["1.0.0", "2.0.0", "3.0.0"] {
        super::created(store, model, v, v);
    }
    assert!(store.archive_version(model, "3.0.0").is_ok());
    let audit_count = || store.audit_since(0, usize::MAX).map(|v| v.len()).ok();
    let labels = || store.model_summary(model).ok().flatten().map(|m| m.labels);
    let write = |expected: Option<u64>, require: &[&str], pin: Option<(&str, bool)>| RolloutWrite {
        id: id.to_owned(),
        expected_revision: expected,
        value: json!({ "rev": expected }),
        audit: audit("commit", id),
        require_servable: require
            .iter()
            .map(|v| (model.to_owned(), (*v).to_owned()))
            .collect(),
        labels: pin
            .map(|(version, only_if_unset)| LabelMove {
                model: model.to_owned(),
                label: "stable".to_owned(),
                version: version.to_owned(),
                only_if_unset,
            })
            .into_iter()
            .collect(),
        require_labels: Vec::new(),
        holds: Vec::new(),
    };
    let (audits, before) = (audit_count(), labels());

    // An archived or missing version: nothing at all is written.
    let archived = store.commit_rollout(&write(None, &["1.0.0", "3.0.0"], Some(("1.0.0", true))));
    assert!(
        matches!(archived, Err(StoreError::FailedPrecondition { .. })),
        "{archived:?}"
    );
    let missing = store.commit_rollout(&write(None, &["9.0.0"], None));
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    // A label move onto an archived version fails after the state was staged:
    // the state is rolled back with it.
    let late = store.commit_rollout(&write(None, &["1.0.0"], Some(("3.0.0", false))));
    assert!(
        matches!(late, Err(StoreError::FailedPrecondition { .. })),
        "{late:?}"
    );
    assert_eq!(store.get_rollout(id).ok(), Some(None));
    assert_eq!(audit_count(), audits);
    assert_eq!(labels(), before);

    // Success: state, audit and label together; `only_if_unset` keeps stable.
    let c = store
        .commit_rollout(&write(None, &["1.0.0", "2.0.0"], Some(("2.0.0", true))))
        .unwrap_or_else(|e| panic!("commit_rollout: {e}"));
    assert_eq!(c.revision, 1);
    assert_eq!(
        store.get_label(model, "stable").ok().flatten().as_deref(),
        Some("1.0.0")
    );
    // A stale revision leaves the label where it was.
    let stale = store.commit_rollout(&write(Some(7), &["2.0.0"], Some(("2.0.0", false))));
    assert!(
        matches!(stale, Err(StoreError::RevisionMismatch { .. })),
        "{stale:?}"
    );
    assert_eq!(
        store.get_label(model, "stable").ok().flatten().as_deref(),
        Some("1.0.0")
    );
    // A move (promotion) lands with the state.
    let c2 = store
        .commit_rollout(&write(Some(1), &["2.0.0"], Some(("2.0.0", false))))
        .unwrap_or_else(|e| panic!("commit_rollout: {e}"));
    assert_eq!(c2.revision, 2);
    assert!(c2.audit_seq > c.audit_seq);
    assert_eq!(
        store.get_label(model, "stable").ok().flatten().as_deref(),
        Some("2.0.0")
    );
    assert_eq!(
        store.get_rollout(id).ok().flatten(),
        Some((2, json!({ "rev": 1 })))
    );
}

/// `commit_rollout`'s `holds` and `require_labels`: a version an active rollout
/// holds cannot be archived, and its model's `stable` label is the rollout's
/// until a write holds nothing; a required label that points elsewhere refuses
/// the whole write.
pub(super) fn active_rollouts_hold_their_versions(store: &dyn Store) {
    let (id, model) = ("conf-holds", "conf-holds-model");
    for v in ["1.0.0", "2.0.0", "3.0.0"] {
        super::created(store, model, v, v);
    }
    let pair = |v: &str| (model.to_owned(), v.to_owned());
    let write = |expected: Option<u64>, holds: Vec<(String, String)>, base: &str| RolloutWrite {
        id: id.to_owned(),
        expected_revision: expected,
        value: json!({ "rev": expected }),
        audit: audit("commit", id),
        require_servable: Vec::new(),
        labels: vec![LabelMove {
            model: model.to_owned(),
            label: "stable".to_owned(),
            version: base.to_owned(),
            only_if_unset: true,
        }],
        require_labels: vec![LabelIs {
            model: model.to_owned(),
            label: "stable".to_owned(),
            version: base.to_owned(),
        }],
        holds,
    };
    fn precondition<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str, needle: &str) {
        match r {
            Err(StoreError::FailedPrecondition { reason }) => {
                assert!(reason.contains(needle), "{what}: {reason}");
            }
            other => panic!("{what}: expected FailedPrecondition, got {other:?}"),
        }
    }
    // `stable` is 1.0.0 (the first version): a rollout from 2.0.0 is refused whole.
    precondition(
        store.commit_rollout(&write(None, vec![pair("2.0.0"), pair("3.0.0")], "2.0.0")),
        "baseline is not stable",
        "1.0.0",
    );
    assert_eq!(store.get_rollout(id).ok(), Some(None));
    assert!(store.archive_version(model, "3.0.0").is_ok(), "no hold yet");
    let c = store
        .commit_rollout(&write(None, vec![pair("1.0.0"), pair("2.0.0")], "1.0.0"))
        .unwrap_or_else(|e| panic!("commit_rollout: {e}"));
    precondition(
        store.archive_version(model, "2.0.0"),
        "archive the held candidate",
        id,
    );
    precondition(
        store.set_label(model, "stable", "2.0.0"),
        "move the held model's stable",
        id,
    );
    precondition(
        store.delete_label(model, "stable"),
        "delete the held model's stable",
        id,
    );
    assert!(
        store.set_label(model, "canary", "2.0.0").is_ok(),
        "other labels stay free"
    );
    assert!(store.delete_label(model, "canary").is_ok());
    // The rollout finishes (holds nothing): its versions are free again.
    store
        .commit_rollout(&write(Some(c.revision), Vec::new(), "1.0.0"))
        .unwrap_or_else(|e| panic!("commit_rollout: {e}"));
    assert!(store.archive_version(model, "2.0.0").is_ok());
    assert!(store.set_label(model, "stable", "1.0.0").is_ok());
}

pub(super) fn blobs(store: &dyn Store) {
    let ns = "conf-metrics";
    assert_eq!(store.get_blob(ns, "r1/arm-a").ok(), Some(None));
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, 0]).collect();
    assert!(store.put_blob(ns, "r1/arm-a", &bytes).is_ok());
    assert_eq!(store.get_blob(ns, "r1/arm-a").ok().flatten(), Some(bytes));
    assert!(store.put_blob(ns, "r1/arm-a", b"").is_ok());
    assert_eq!(
        store.get_blob(ns, "r1/arm-a").ok().flatten(),
        Some(Vec::new())
    );
    assert_eq!(
        store.get_blob("conf-other", "r1/arm-a").ok(),
        Some(None),
        "namespaces are separate"
    );
    assert_eq!(store.delete_blob(ns, "r1/arm-a").ok(), Some(true));
    assert_eq!(store.delete_blob(ns, "r1/arm-a").ok(), Some(false));
    assert_eq!(store.get_blob(ns, "r1/arm-a").ok(), Some(None));
}

pub(super) fn concurrent_register_same_version(store: &dyn Store) {
    const THREADS: usize = 8;
    let barrier = Barrier::new(THREADS);
    let outcomes: Vec<RegisterOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    store.register_version(new_version("conf-race", "1.0.0", "racing"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => panic!("register failed: {e}"),
                Err(_) => panic!("register thread panicked"),
            })
            .collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| o.is_created()).count(),
        1,
        "exactly one Created"
    );
    let seqs: BTreeSet<u64> = outcomes.iter().map(|o| o.version().sequence).collect();
    assert_eq!(
        seqs.len(),
        1,
        "all outcomes describe the same stored version"
    );
}

pub(super) fn concurrent_rollout_updates(store: &dyn Store) {
    const THREADS: u64 = 4;
    const INCREMENTS: u64 = 10;
    let id = "conf-counter";
    assert_eq!(store.put_rollout(id, None, &json!({"n": 0})).ok(), Some(1));
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..INCREMENTS {
                    // Read-modify-write with retry: the optimistic-concurrency protocol.
                    loop {
                        let (rev, value) = match store.get_rollout(id) {
                            Ok(Some(got)) => got,
                            other => panic!("get_rollout: {other:?}"),
                        };
                        let n = value["n"]
                            .as_u64()
                            .unwrap_or_else(|| panic!("bad value {value}"));
                        match store.put_rollout(id, Some(rev), &json!({"n": n + 1})) {
                            Ok(_) => break,
                            Err(StoreError::RevisionMismatch { .. }) => continue,
                            Err(e) => panic!("put_rollout: {e}"),
                        }
                    }
                }
            });
        }
    });
    let total = THREADS * INCREMENTS;
    assert_eq!(
        store.get_rollout(id).ok().flatten(),
        Some((total + 1, json!({"n": total}))),
        "no lost update"
    );
}
