//! Versions active rollouts hold, on redb transactions: while a rollout is
//! pending, running or paused, its versions cannot be archived and its model's
//! `stable` label moves only with the rollout's own writes.
//!
//! The `rollout_holds` table maps a rollout id to the (model, version) pairs its
//! last write said it keeps in use; a finished rollout has no row, so the table
//! stays as small as the number of active rollouts.

use redb::{ReadableTable, WriteTransaction};

use super::backend_error as be;
use super::registry::{VersionKey, delete_label, set_label};
use super::tables::{ROLLOUT_HOLDS, decode, encode};
use crate::error::{Result, StoreError};
use crate::validate::STABLE_LABEL;

/// An operator's label change: refused for `stable` while a rollout holds the model.
pub(super) fn set_label_checked(
    txn: &WriteTransaction,
    key: &VersionKey,
    label: &str,
) -> Result<Option<String>> {
    stable_is_free(txn, &key.name, label)?;
    set_label(txn, key, label)
}

/// An operator's label removal: refused for `stable` while a rollout holds the model.
pub(super) fn delete_label_checked(
    txn: &WriteTransaction,
    name: &str,
    label: &str,
) -> Result<Option<String>> {
    stable_is_free(txn, name, label)?;
    delete_label(txn, name, label)
}

/// While a rollout is active, `stable` is the version it started from (and the
/// rollout's own writes move it): nobody else may move or delete it.
fn stable_is_free(txn: &WriteTransaction, name: &str, label: &str) -> Result<()> {
    if label != STABLE_LABEL {
        return Ok(());
    }
    match holders(txn, name)?.into_iter().next() {
        None => Ok(()),
        Some((id, _)) => Err(StoreError::precondition(format!(
            "label {STABLE_LABEL:?} of model {name:?} is the baseline of active rollout {id:?}; \
             promote, roll back or abort the rollout before moving it"
        ))),
    }
}

/// Active rollouts holding versions of `name`: (rollout id, versions).
pub(super) fn holders(txn: &WriteTransaction, name: &str) -> Result<Vec<(String, Vec<String>)>> {
    let holds = txn.open_table(ROLLOUT_HOLDS).map_err(be)?;
    let mut out = Vec::new();
    for item in holds.iter().map_err(be)? {
        let (k, v) = item.map_err(be)?;
        let pairs: Vec<(String, String)> = decode("rollout_holds", v.value())?;
        let versions: Vec<String> = pairs
            .into_iter()
            .filter(|(model, _)| model == name)
            .map(|(_, version)| version)
            .collect();
        if !versions.is_empty() {
            out.push((k.value().to_owned(), versions));
        }
    }
    Ok(out)
}

/// Records what rollout `id` holds after a write (nothing: the row is removed).
pub(super) fn put_holds(
    txn: &WriteTransaction,
    id: &str,
    holds: &[(String, String)],
) -> Result<()> {
    let mut table = txn.open_table(ROLLOUT_HOLDS).map_err(be)?;
    if holds.is_empty() {
        table.remove(id).map_err(be)?;
    } else {
        for (model, version) in holds {
            VersionKey::new(model, version)?;
        }
        table.insert(id, encode(&holds)?.as_slice()).map_err(be)?;
    }
    Ok(())
}
