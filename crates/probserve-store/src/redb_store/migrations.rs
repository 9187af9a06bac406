//! Versioned schema migrations for the redb file.
//!
//! The `meta` table holds `schema_version`. [`migrate`] runs, inside ONE write
//! transaction, every step whose target version is above the file's, then records
//! the new version; a crash mid-way leaves the file at its old version. A file
//! with a newer version than [`CURRENT_SCHEMA_VERSION`] is refused untouched.
//!
//! A file with tables but no schema version is another application's and is
//! refused untouched (see [`migrate`]).
//!
//! To change the schema: append a step here, bump [`CURRENT_SCHEMA_VERSION`], and
//! add an upgrade test that writes the previous format by hand.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, MultimapTableHandle as _, ReadableTable, TableHandle as _, WriteTransaction};

use super::backend_error as be;
use super::tables::{
    AUDIT, BLOBS, LABELS, META, MODELS, ModelRow, ROLLOUT_HOLDS, ROLLOUTS, SCHEMA_VERSION_KEY,
    VERSION_SEQ, VERSIONS, VersionRow, decode, encode,
};
use crate::error::{Result, StoreError};
use crate::validate::{STABLE_LABEL, parse_version};

/// Schema version this build writes.
pub const CURRENT_SCHEMA_VERSION: u64 = 4;

/// One schema step, taking a file from version `to - 1` to `to`.
struct Migration {
    to: u64,
    #[allow(dead_code)] // Read by tests and kept as documentation of each step.
    what: &'static str,
    apply: fn(&WriteTransaction) -> Result<()>,
}

/// All steps, in order; `to` runs 1, 2, ... [`CURRENT_SCHEMA_VERSION`].
const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 1,
        what: "create meta, versions, labels, rollouts, audit and blobs tables",
        apply: v1_initial_tables,
    },
    Migration {
        to: 2,
        what: "add per-model summaries and the registration-order index, backfilled from versions",
        apply: v2_model_summaries,
    },
    Migration {
        to: 3,
        what: "pin `stable` on every model without it to its highest non-archived version \
               (default resolution no longer falls back to the latest version)",
        apply: v3_pin_stable,
    },
    Migration {
        to: 4,
        what: "add rollout_holds (versions active rollouts keep in use), backfilled from the \
               active rollouts the server stored",
        apply: v4_rollout_holds,
    },
];

/// Brings the file to [`CURRENT_SCHEMA_VERSION`]; returns the version it found
/// (0 for a new file).
///
/// Schema 0 with tables in it is another application's redb database: probserve
/// writes its schema version in the transaction that creates its first tables,
/// so every file it ever wrote has one. Such a file is refused untouched.
pub(crate) fn migrate(db: &Database, path: &Path) -> Result<u64> {
    let txn = db.begin_write().map_err(be)?;
    let tables = table_names(&txn)?;
    let found = if tables.iter().any(|t| t == META.name()) {
        read_schema_version(&txn)?
    } else {
        0
    };
    if found == 0 && !tables.is_empty() {
        let mut shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
        if tables.len() > shown.len() {
            shown.push("...");
        }
        return Err(StoreError::NotAStore {
            path: path.display().to_string(),
            problem: format!(
                "it is a redb database without a probserve schema (tables {}), \
                 probably another application's",
                shown.join(", ")
            ),
        });
    }
    if found > CURRENT_SCHEMA_VERSION {
        // Dropping `txn` aborts it: the newer file is left exactly as it was.
        return Err(StoreError::SchemaTooNew {
            found,
            supported: CURRENT_SCHEMA_VERSION,
        });
    }
    if found == CURRENT_SCHEMA_VERSION {
        return Ok(found);
    }
    for step in MIGRATIONS.iter().filter(|m| m.to > found) {
        (step.apply)(&txn)?;
    }
    txn.open_table(META)
        .map_err(be)?
        .insert(SCHEMA_VERSION_KEY, CURRENT_SCHEMA_VERSION)
        .map_err(be)?;
    txn.commit().map_err(be)?;
    Ok(found)
}

/// Names of every table, plain and multimap, without creating any.
fn table_names(txn: &WriteTransaction) -> Result<Vec<String>> {
    let mut names: Vec<String> = txn
        .list_tables()
        .map_err(be)?
        .map(|t| t.name().to_owned())
        .collect();
    names.extend(
        txn.list_multimap_tables()
            .map_err(be)?
            .map(|t| t.name().to_owned()),
    );
    Ok(names)
}

fn read_schema_version(txn: &WriteTransaction) -> Result<u64> {
    let meta = txn.open_table(META).map_err(be)?;
    let found = meta.get(SCHEMA_VERSION_KEY).map_err(be)?.map(|g| g.value());
    Ok(found.unwrap_or(0))
}

fn v1_initial_tables(txn: &WriteTransaction) -> Result<()> {
    // Opening a table in a write transaction creates it.
    txn.open_table(META).map_err(be)?;
    txn.open_table(VERSIONS).map_err(be)?;
    txn.open_table(LABELS).map_err(be)?;
    txn.open_table(ROLLOUTS).map_err(be)?;
    txn.open_table(AUDIT).map_err(be)?;
    txn.open_table(BLOBS).map_err(be)?;
    Ok(())
}

fn v2_model_summaries(txn: &WriteTransaction) -> Result<()> {
    let versions = txn.open_table(VERSIONS).map_err(be)?;
    let mut by_seq = txn.open_table(VERSION_SEQ).map_err(be)?;
    let mut summaries: BTreeMap<String, (ModelRow, Option<semver::Version>)> = BTreeMap::new();
    for item in versions.iter().map_err(be)? {
        let (_, value) = item.map_err(be)?;
        let row: VersionRow = decode("versions", value.value())?;
        by_seq
            .insert((row.name.as_str(), row.sequence), row.version.as_str())
            .map_err(be)?;
        let (summary, best) = summaries.entry(row.name.clone()).or_default();
        summary.version_count += 1;
        if !row.archived {
            let parsed = parse_version(&row.version)?;
            if best.as_ref().is_none_or(|b| parsed > *b) {
                summary.latest = Some(row.version.clone());
                *best = Some(parsed);
            }
        }
    }
    let mut models = txn.open_table(MODELS).map_err(be)?;
    for (name, (summary, _)) in &summaries {
        models
            .insert(name.as_str(), encode(summary)?.as_slice())
            .map_err(be)?;
    }
    Ok(())
}

fn v3_pin_stable(txn: &WriteTransaction) -> Result<()> {
    let models = txn.open_table(MODELS).map_err(be)?;
    let mut labels = txn.open_table(LABELS).map_err(be)?;
    for item in models.iter().map_err(be)? {
        let (k, v) = item.map_err(be)?;
        let name = k.value();
        let row: ModelRow = decode("models", v.value())?;
        let Some(latest) = row.latest else { continue };
        if labels.get((name, STABLE_LABEL)).map_err(be)?.is_none() {
            labels
                .insert((name, STABLE_LABEL), latest.as_str())
                .map_err(be)?;
        }
    }
    Ok(())
}

/// Rollout values are opaque to the store, except here: before schema 4 the
/// server (the only writer) stored `{"model", "rollout": {"spec": {"baseline",
/// "candidate"}, "state": {"phase"}}}`; values of any other shape hold nothing.
fn v4_rollout_holds(txn: &WriteTransaction) -> Result<()> {
    let rollouts = txn.open_table(ROLLOUTS).map_err(be)?;
    let mut holds = txn.open_table(ROLLOUT_HOLDS).map_err(be)?;
    for item in rollouts.iter().map_err(be)? {
        let (k, v) = item.map_err(be)?;
        let value: serde_json::Value = decode("rollouts", v.value().1)?;
        let text = |ptr: &str| value.pointer(ptr).and_then(serde_json::Value::as_str);
        let active = matches!(
            text("/rollout/state/phase"),
            Some("Pending" | "Running" | "Paused")
        );
        let pairs: Vec<(String, String)> = match text("/model") {
            Some(model) if active => ["/rollout/spec/baseline", "/rollout/spec/candidate"]
                .iter()
                .filter_map(|p| text(p))
                .map(|version| (model.to_owned(), version.to_owned()))
                .collect(),
            _ => Vec::new(),
        };
        if !pairs.is_empty() {
            holds
                .insert(k.value(), encode(&pairs)?.as_slice())
                .map_err(be)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_consecutive_and_end_at_current() {
        for (i, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.to, i as u64 + 1, "step {:?}", step.what);
        }
        assert_eq!(
            MIGRATIONS.last().map(|m| m.to),
            Some(CURRENT_SCHEMA_VERSION)
        );
    }
}
