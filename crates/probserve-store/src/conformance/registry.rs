//! Conformance cases for the model registry: versions, paging, labels, archive.

use serde_json::json;

use crate::error::StoreError;
use crate::model::{RegisterOutcome, content_hash};
use crate::traits::Store;

use super::{created, new_version};

pub(super) fn register_and_get(store: &dyn Store) {
    let v = created(store, "conf-reg", "1.0.0", "model a {}");
    assert_eq!(v.name, "conf-reg");
    assert_eq!(v.version, "1.0.0");
    assert_eq!(v.content_hash, content_hash("model a {}"));
    assert_eq!(v.content_hash.len(), 64);
    assert_eq!(v.description, "conf-reg 1.0.0");
    assert_eq!(
        v.labels.get("team").map(String::as_str),
        Some("conformance")
    );
    assert_eq!(v.created_at_millis, 1_700_000_000_000);
    assert!(!v.archived);
    assert!(v.sequence >= 1);
    assert_eq!(
        store.get_version("conf-reg", "1.0.0").ok().flatten(),
        Some(v.clone())
    );
    assert_eq!(store.get_version("conf-reg", "1.0.1").ok().flatten(), None);
    assert_eq!(
        store.get_version("conf-nobody", "1.0.0").ok().flatten(),
        None
    );
    let w = created(store, "conf-reg", "1.0.1", "model a { changed }");
    assert!(w.sequence > v.sequence, "sequence must increase");
}

pub(super) fn idempotent_reregister(store: &dyn Store) {
    let first = created(store, "conf-idem", "0.1.0", "same");
    let mut retry = new_version("conf-idem", "0.1.0", "same");
    retry.description = "a different description is ignored".into();
    retry.created_at_millis = 1;
    match store.register_version(retry) {
        Ok(RegisterOutcome::AlreadyExists(v)) => assert_eq!(v, first),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let versions = store
        .list_versions("conf-idem", 0, "")
        .map(|p| p.items.len());
    assert_eq!(versions.ok(), Some(1));
}

pub(super) fn version_conflict(store: &dyn Store) {
    let first = created(store, "conf-conflict", "1.0.0", "original");
    match store.register_version(new_version("conf-conflict", "1.0.0", "tampered")) {
        Err(StoreError::VersionConflict {
            name,
            version,
            existing_hash,
        }) => {
            assert_eq!(
                (name.as_str(), version.as_str()),
                ("conf-conflict", "1.0.0")
            );
            assert_eq!(existing_hash, first.content_hash);
        }
        other => panic!("expected VersionConflict, got {other:?}"),
    }
    let stored = store.get_version("conf-conflict", "1.0.0").ok().flatten();
    assert_eq!(stored.map(|v| v.source), Some("original".to_owned()));
}

pub(super) fn invalid_arguments(store: &dyn Store) {
    let field = |r: Result<RegisterOutcome, StoreError>| match r {
        Err(StoreError::InvalidArgument { field, .. }) => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert_eq!(
        field(store.register_version(new_version("conf-bad", "1.0", "x"))),
        "version"
    );
    assert_eq!(
        field(store.register_version(new_version("conf-bad", "v1.0.0", "x"))),
        "version"
    );
    assert_eq!(
        field(store.register_version(new_version("", "1.0.0", "x"))),
        "name"
    );
    for bad in ["a/b", "Model", "a..b", "1abc", "m.v-2"] {
        assert_eq!(
            field(store.register_version(new_version(bad, "1.0.0", "x"))),
            "name",
            "{bad:?} is not [a-z][a-z0-9_-]{{0,62}}"
        );
    }
    let long = format!("1.0.0-{}", "a".repeat(crate::validate::MAX_VERSION_BYTES));
    assert_eq!(
        field(store.register_version(new_version("conf-bad", &long, "x"))),
        "version"
    );
    let mut many = new_version("conf-bad", "1.0.0", "x");
    many.labels = (0..=crate::validate::MAX_METADATA_ENTRIES)
        .map(|i| (format!("k{i}"), "v".to_owned()))
        .collect();
    assert_eq!(field(store.register_version(many)), "metadata");
    let mut big = new_version("conf-bad", "1.0.0", "x");
    big.labels = [(
        "k".to_owned(),
        "v".repeat(crate::validate::MAX_METADATA_VALUE_BYTES + 1),
    )]
    .into();
    assert_eq!(field(store.register_version(big)), "metadata");
    let huge = "x".repeat(crate::validate::MAX_SOURCE_BYTES + 1);
    assert_eq!(
        field(store.register_version(new_version("conf-bad", "1.0.0", &huge))),
        "source"
    );
    created(store, "conf-bad", "1.0.0", "x");
    let invalid = |r: Result<Option<String>, StoreError>| {
        matches!(r, Err(StoreError::InvalidArgument { .. }))
    };
    assert!(invalid(store.set_label("conf-bad", "Stable", "1.0.0")));
    assert!(invalid(store.set_label("conf-bad", "1stable", "1.0.0")));
    assert!(invalid(store.get_label("conf-bad", "")));
    assert!(matches!(
        store.get_version("conf-bad", "latest"),
        Err(StoreError::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.resolve("conf-bad", Some("Not A Label")),
        Err(StoreError::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.list_models(10, "not-a-token"),
        Err(StoreError::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.list_versions("conf-bad", 10, "zz"),
        Err(StoreError::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.put_rollout("", None, &json!(1)),
        Err(StoreError::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.put_blob("", "k", b"x"),
        Err(StoreError::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.put_blob("ns", "", b"x"),
        Err(StoreError::InvalidArgument { .. })
    ));
    // A token from one listing is not accepted by another.
    let models_token = loop_models_token(store);
    if let Some(token) = models_token {
        assert!(matches!(
            store.list_versions("conf-bad", 10, &token),
            Err(StoreError::InvalidArgument { .. })
        ));
    }
}

fn loop_models_token(store: &dyn Store) -> Option<String> {
    store
        .list_models(1, "")
        .ok()
        .and_then(|p| p.next_page_token)
}

pub(super) fn latest_is_highest_semver(store: &dyn Store) {
    let name = "conf-latest";
    assert_eq!(store.latest_version(name).ok().flatten(), None);
    for v in ["1.2.0", "1.10.0", "1.9.0", "0.9.9"] {
        created(store, name, v, &format!("src {v}"));
    }
    let latest = store.latest_version(name).ok().flatten().map(|v| v.version);
    assert_eq!(
        latest.as_deref(),
        Some("1.10.0"),
        "semver order, not string or registration order"
    );
    created(store, name, "2.0.0-rc.1", "rc");
    let latest = store.latest_version(name).ok().flatten().map(|v| v.version);
    assert_eq!(
        latest.as_deref(),
        Some("2.0.0-rc.1"),
        "a pre-release of 2.0.0 outranks 1.10.0"
    );
    created(store, name, "2.0.0", "final");
    let latest = store.latest_version(name).ok().flatten().map(|v| v.version);
    assert_eq!(latest.as_deref(), Some("2.0.0"));
    assert_eq!(
        store.resolve(name, None).ok().map(|v| v.version).as_deref(),
        Some("1.2.0"),
        "default traffic stays on the first version (stable), not the latest"
    );
}

pub(super) fn list_versions_in_registration_order(store: &dyn Store) {
    let name = "conf-listv";
    let order = [
        "3.0.0", "1.0.0", "2.0.0", "1.5.0", "0.1.0", "10.0.0", "2.1.0",
    ];
    for v in order {
        created(store, name, v, v);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = store
            .list_versions(name, 3, &token)
            .unwrap_or_else(|e| panic!("list_versions: {e}"));
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|v| v.version.clone()));
        match page.next_page_token {
            Some(t) => token = t,
            None => break,
        }
    }
    assert_eq!(seen, order);
    assert_eq!(pages, 3);
    assert!(matches!(
        store.list_versions("conf-listv-missing", 3, ""),
        Err(StoreError::NotFound { .. })
    ));
}

pub(super) fn paging_models_without_gaps(store: &dyn Store) {
    let prefix = "conf-page-";
    let expected: Vec<String> = (0..250).map(|i| format!("{prefix}{i:03}")).collect();
    // Register in a scrambled order so the listing order is the store's doing.
    for i in 0..250 {
        let idx = (i * 97) % 250;
        created(store, &expected[idx], "1.0.0", "m");
    }
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = store
            .list_models(100, &token)
            .unwrap_or_else(|e| panic!("list_models: {e}"));
        let more = page.next_page_token.is_some();
        if more {
            assert_eq!(page.items.len(), 100, "only the last page may be short");
        }
        all.extend(page.items);
        match page.next_page_token {
            Some(t) => token = t,
            None => break,
        }
    }
    let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: no duplicates, stable order"
    );
    let mine: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert_eq!(
        mine,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let one = all
        .iter()
        .find(|m| m.name == expected[7])
        .map(|m| (m.version_count, m.latest_version.clone()));
    assert_eq!(one, Some((1, Some("1.0.0".to_owned()))));
}

pub(super) fn labels_and_resolve(store: &dyn Store) {
    let name = "conf-labels";
    created(store, name, "1.0.0", "one");
    created(store, name, "2.0.0", "two");
    assert_eq!(
        store.resolve(name, None).ok().map(|v| v.version).as_deref(),
        Some("1.0.0"),
        "the first version is stable; 2.0.0 takes no traffic until labelled"
    );
    assert_eq!(
        store.set_label(name, "stable", "1.0.0").ok(),
        Some(Some("1.0.0".to_owned()))
    );
    assert_eq!(store.set_label(name, "canary", "2.0.0").ok(), Some(None));
    assert_eq!(
        store
            .resolve(name, Some("canary"))
            .ok()
            .map(|v| v.version)
            .as_deref(),
        Some("2.0.0")
    );
    assert_eq!(
        store
            .resolve(name, Some("2.0.0"))
            .ok()
            .map(|v| v.version)
            .as_deref(),
        Some("2.0.0")
    );
    assert_eq!(
        store.get_label(name, "stable").ok().flatten().as_deref(),
        Some("1.0.0")
    );
    assert_eq!(
        store
            .set_label(name, "stable", "2.0.0")
            .ok()
            .flatten()
            .as_deref(),
        Some("1.0.0")
    );
    assert!(matches!(
        store.resolve(name, Some("shadow")),
        Err(StoreError::NotFound { .. })
    ));
    let summary = store.model_summary(name).ok().flatten().expect("summary");
    assert_eq!(summary.version_count, 2);
    assert_eq!(
        summary.labels.get("stable").map(String::as_str),
        Some("2.0.0")
    );
    assert_eq!(
        summary.labels.get("canary").map(String::as_str),
        Some("2.0.0")
    );
    assert!(matches!(
        store.model_summary("conf-no-such-model"),
        Ok(None)
    ));
    assert!(matches!(
        store.resolve(name, Some("9.9.9")),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.resolve("conf-labels-none", None),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.set_label(name, "x", "3.0.0"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.set_label("conf-labels-none", "x", "1.0.0"),
        Err(StoreError::NotFound { .. })
    ));
    let summary = store
        .list_models(1000, "")
        .ok()
        .and_then(|p| p.items.into_iter().find(|m| m.name == name));
    let labels = summary.map(|m| m.labels);
    let expected = [
        ("canary".to_owned(), "2.0.0".to_owned()),
        ("stable".to_owned(), "2.0.0".to_owned()),
    ];
    assert_eq!(labels, Some(expected.into()));
    assert_eq!(
        store.delete_label(name, "stable").ok().flatten().as_deref(),
        Some("2.0.0")
    );
    assert_eq!(store.delete_label(name, "stable").ok(), Some(None));
    assert_eq!(store.get_label(name, "stable").ok(), Some(None));
    match store.resolve(name, None) {
        Err(StoreError::FailedPrecondition { reason }) => {
            assert!(reason.contains("stable"), "{reason}")
        }
        other => panic!("no stable label: expected FailedPrecondition, got {other:?}"),
    }
}

/// Only the first version of a model is labelled `stable` on registration.
pub(super) fn first_version_is_stable(store: &dyn Store) {
    let name = "conf-first";
    created(store, name, "1.0.0", "one");
    assert_eq!(
        store.get_label(name, "stable").ok().flatten().as_deref(),
        Some("1.0.0")
    );
    created(store, name, "99.0.0", "ninety-nine");
    assert_eq!(
        store.get_label(name, "stable").ok().flatten().as_deref(),
        Some("1.0.0"),
        "a later version never moves stable"
    );
    assert_eq!(
        store.resolve(name, None).ok().map(|v| v.version).as_deref(),
        Some("1.0.0")
    );
    // An idempotent retry of the first version changes nothing either.
    assert!(matches!(
        store.register_version(new_version(name, "1.0.0", "one")),
        Ok(RegisterOutcome::AlreadyExists(_))
    ));
    let labels = store.model_summary(name).ok().flatten().map(|m| m.labels);
    assert_eq!(
        labels,
        Some([("stable".to_owned(), "1.0.0".to_owned())].into())
    );
}

pub(super) fn archive(store: &dyn Store) {
    let name = "conf-archive";
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        created(store, name, v, v);
    }
    store
        .set_label(name, "pinned", "1.2.0")
        .unwrap_or_else(|e| panic!("set_label: {e}"));
    match store.archive_version(name, "1.2.0") {
        Err(StoreError::FailedPrecondition { reason }) => {
            assert!(reason.contains("pinned"), "{reason}")
        }
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    assert_eq!(
        store.delete_label(name, "pinned").ok().flatten().as_deref(),
        Some("1.2.0")
    );
    let archived = store
        .archive_version(name, "1.2.0")
        .unwrap_or_else(|e| panic!("archive: {e}"));
    assert!(archived.archived);
    assert_eq!(
        store.archive_version(name, "1.2.0").ok(),
        Some(archived.clone()),
        "idempotent"
    );
    // Archived: readable, not served by default, not labelable.
    assert_eq!(
        store.get_version(name, "1.2.0").ok().flatten(),
        Some(archived.clone())
    );
    assert_eq!(
        store.resolve(name, Some("1.2.0")).ok(),
        Some(archived.clone())
    );
    let latest = store.latest_version(name).ok().flatten().map(|v| v.version);
    assert_eq!(latest.as_deref(), Some("1.1.0"));
    assert_eq!(
        store.resolve(name, None).ok().map(|v| v.version).as_deref(),
        Some("1.0.0"),
        "stable (the first version) serves by default"
    );
    assert!(matches!(
        store.set_label(name, "stable", "1.2.0"),
        Err(StoreError::FailedPrecondition { .. })
    ));
    // Re-registering identical content returns the archived record unchanged.
    match store.register_version(new_version(name, "1.2.0", "1.2.0")) {
        Ok(RegisterOutcome::AlreadyExists(v)) => assert!(v.archived),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // Archiving a non-latest version leaves latest alone (stable moves off it first).
    assert!(matches!(
        store.archive_version(name, "1.0.0"),
        Err(StoreError::FailedPrecondition { .. })
    ));
    assert!(store.set_label(name, "stable", "1.1.0").is_ok());
    assert!(store.archive_version(name, "1.0.0").is_ok());
    assert_eq!(
        store
            .latest_version(name)
            .ok()
            .flatten()
            .map(|v| v.version)
            .as_deref(),
        Some("1.1.0")
    );
    assert!(store.delete_label(name, "stable").is_ok());
    assert!(store.archive_version(name, "1.1.0").is_ok());
    assert_eq!(store.latest_version(name).ok().flatten(), None);
    assert!(matches!(
        store.resolve(name, None),
        Err(StoreError::FailedPrecondition { .. })
    ));
    assert!(matches!(
        store.archive_version(name, "7.0.0"),
        Err(StoreError::NotFound { .. })
    ));
    let count = store
        .list_models(1000, "")
        .ok()
        .and_then(|p| p.items.into_iter().find(|m| m.name == name))
        .map(|m| (m.version_count, m.latest_version));
    assert_eq!(count, Some((3, None)), "archived versions still count");
}

/// If a backend reports a registry generation, every registry write moves it and
/// reads do not (a resolution cached under a stale generation would serve the
/// wrong version).
pub(super) fn registry_generation_tracks_writes(store: &dyn Store) {
    let Some(mut last) = store.registry_generation() else {
        return;
    };
    let name = "conf-generation";
    let mut moved = |what: &str, store: &dyn Store| {
        let now = store
            .registry_generation()
            .expect("generation stays reported");
        assert_ne!(now, last, "registry generation did not move after {what}");
        last = now;
    };
    created(store, name, "1.0.0", "one");
    moved("register", store);
    created(store, name, "2.0.0", "two");
    moved("second register", store);
    store.set_label(name, "stable", "1.0.0").expect("set label");
    moved("set_label", store);
    store.delete_label(name, "stable").expect("delete label");
    moved("delete_label", store);
    store.archive_version(name, "2.0.0").expect("archive");
    moved("archive_version", store);
    let before = store.registry_generation();
    let _ = store.resolve(name, None);
    let _ = store.get_version(name, "1.0.0");
    let _ = store.list_models(10, "");
    assert_eq!(
        store.registry_generation(),
        before,
        "a read moved the generation"
    );
}

/// A model holds at most [`MAX_LABELS_PER_MODEL`] labels; a label it has can
/// always be moved, and a refused label writes nothing.
pub(super) fn labels_per_model_are_capped(store: &dyn Store) {
    use crate::validate::MAX_LABELS_PER_MODEL;
    let name = "conf-many-labels";
    created(store, name, "1.0.0", "1.0.0");
    created(store, name, "2.0.0", "2.0.0");
    // `stable` is one of them.
    for i in 1..MAX_LABELS_PER_MODEL {
        store
            .set_label(name, &format!("l{i}"), "1.0.0")
            .unwrap_or_else(|e| panic!("label {i}: {e}"));
    }
    match store.set_label(name, "one-too-many", "1.0.0") {
        Err(StoreError::FailedPrecondition { reason }) => assert!(
            reason.contains(&MAX_LABELS_PER_MODEL.to_string()),
            "names the limit: {reason}"
        ),
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    assert_eq!(store.get_label(name, "one-too-many").ok(), Some(None));
    assert_eq!(
        store.set_label(name, "l1", "2.0.0").ok(),
        Some(Some("1.0.0".to_owned())),
        "an existing label still moves"
    );
    assert_eq!(
        store
            .model_summary(name)
            .ok()
            .flatten()
            .map(|m| m.labels.len()),
        Some(MAX_LABELS_PER_MODEL)
    );
}
