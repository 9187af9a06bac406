//! Model-registry operations on redb transactions: versions, summaries, labels.
//!
//! Invariants kept by every write here (and checked by the conformance suite):
//! the `models` row of a model counts its `versions` rows and names the highest
//! non-archived one; `version_seq` has one entry per version; no label points to
//! an archived or missing version; no version an active rollout holds is archived;
//! a model has at most [`MAX_LABELS_PER_MODEL`] labels; while a rollout holds a
//! model, only the rollout's own writes move its `stable` label.

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::backend_error as be;
use super::tables::{
    LABELS, LAST_VERSION_SEQ_KEY, META, MODELS, ModelRow, VERSION_SEQ, VERSIONS, VersionRow,
    decode, encode,
};
use crate::error::{Result, StoreError};
use crate::model::{
    ModelSummary, ModelVersion, NewModelVersion, Page, RegisterOutcome, content_hash,
};
use crate::validate::{
    MAX_LABELS_PER_MODEL, STABLE_LABEL, TokenKind, decode_page_token, effective_page_size,
    encode_page_token, normalize_new_version, normalize_version, parse_version, validate_label,
    validate_metadata, validate_model_name, validate_new_model_name, validate_source,
};

/// A validated (name, normalized version) pair.
pub(super) struct VersionKey {
    pub(super) name: String,
    version: String,
}

impl VersionKey {
    pub(super) fn new(name: &str, version: &str) -> Result<Self> {
        validate_model_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            version: normalize_version(version)?,
        })
    }

    fn describe(&self) -> String {
        format!("model {:?} version {:?}", self.name, self.version)
    }
}

/// A validated registration request with its content hash.
pub(super) struct CheckedNew {
    key: VersionKey,
    rec: NewModelVersion,
    hash: String,
}

impl TryFrom<NewModelVersion> for CheckedNew {
    type Error = StoreError;

    fn try_from(rec: NewModelVersion) -> Result<Self> {
        // The strict rule for names of new models is applied in `register`, which
        // knows whether the model exists: one registered under the older, looser
        // rule keeps getting versions.
        validate_model_name(&rec.name)?;
        let key = VersionKey {
            name: rec.name.clone(),
            version: normalize_new_version(&rec.version)?,
        };
        validate_source(&rec.source)?;
        validate_metadata(&rec.description, &rec.labels)?;
        let hash = content_hash(&rec.source);
        Ok(Self { key, rec, hash })
    }
}

pub(super) fn register(txn: &WriteTransaction, new: CheckedNew) -> Result<RegisterOutcome> {
    let CheckedNew { key, rec, hash } = new;
    let (name, version) = (key.name.as_str(), key.version.as_str());
    if load_model(&txn.open_table(MODELS).map_err(be)?, name)?.is_none() {
        validate_new_model_name(name)?;
    }
    let mut versions = txn.open_table(VERSIONS).map_err(be)?;
    if let Some(existing) = load_row(&versions, name, version)? {
        return if existing.content_hash == hash {
            Ok(RegisterOutcome::AlreadyExists(existing.into()))
        } else {
            Err(StoreError::VersionConflict {
                name: key.name,
                version: key.version,
                existing_hash: existing.content_hash,
            })
        };
    }
    let sequence = next_version_seq(txn)?;
    let row = VersionRow {
        name: key.name.clone(),
        version: key.version.clone(),
        source: rec.source,
        description: rec.description,
        labels: rec.labels,
        content_hash: hash,
        created_at_millis: rec.created_at_millis,
        archived: false,
        sequence,
    };
    versions
        .insert((name, version), encode(&row)?.as_slice())
        .map_err(be)?;
    txn.open_table(VERSION_SEQ)
        .map_err(be)?
        .insert((name, sequence), version)
        .map_err(be)?;
    let mut models = txn.open_table(MODELS).map_err(be)?;
    let mut summary = load_model(&models, name)?.unwrap_or_default();
    if summary.version_count == 0 {
        // The first version of a model serves by default at once; every later one
        // waits until a label points at it.
        let mut labels = txn.open_table(LABELS).map_err(be)?;
        if labels.get((name, STABLE_LABEL)).map_err(be)?.is_none() {
            labels.insert((name, STABLE_LABEL), version).map_err(be)?;
        }
    }
    summary.version_count += 1;
    let newer = match summary.latest.as_deref() {
        None => true,
        Some(latest) => parse_version(version)? > parse_version(latest)?,
    };
    if newer {
        summary.latest = Some(key.version.clone());
    }
    models
        .insert(name, encode(&summary)?.as_slice())
        .map_err(be)?;
    Ok(RegisterOutcome::Created(row.into()))
}

pub(super) fn get_version(txn: &ReadTransaction, key: &VersionKey) -> Result<Option<ModelVersion>> {
    let versions = txn.open_table(VERSIONS).map_err(be)?;
    Ok(load_row(&versions, &key.name, &key.version)?.map(Into::into))
}

pub(super) fn latest_version(txn: &ReadTransaction, name: &str) -> Result<Option<ModelVersion>> {
    let models = txn.open_table(MODELS).map_err(be)?;
    let Some(latest) = load_model(&models, name)?.and_then(|m| m.latest) else {
        return Ok(None);
    };
    let versions = txn.open_table(VERSIONS).map_err(be)?;
    match load_row(&versions, name, &latest)? {
        Some(row) => Ok(Some(row.into())),
        None => Err(StoreError::Backend(format!(
            "corrupt summary: model {name:?} names missing latest version {latest:?}"
        ))),
    }
}

pub(super) fn list_models(
    txn: &ReadTransaction,
    page_size: u32,
    page_token: &str,
) -> Result<Page<ModelSummary>> {
    let size = effective_page_size(page_size);
    let after = decode_page_token(TokenKind::Models, page_token)?;
    let models = txn.open_table(MODELS).map_err(be)?;
    let labels = txn.open_table(LABELS).map_err(be)?;
    let lower = match after.as_deref() {
        Some(name) => Bound::Excluded(name),
        None => Bound::Unbounded,
    };
    let mut items = Vec::with_capacity(size);
    let mut more = false;
    for item in models
        .range::<&str>((lower, Bound::Unbounded))
        .map_err(be)?
    {
        if items.len() == size {
            more = true;
            break;
        }
        let (k, v) = item.map_err(be)?;
        let name = k.value();
        let row: ModelRow = decode("models", v.value())?;
        items.push(ModelSummary {
            name: name.to_owned(),
            version_count: row.version_count,
            latest_version: row.latest,
            labels: labels_of(&labels, name)?,
        });
    }
    let next_page_token = match items.last() {
        Some(last) if more => Some(encode_page_token(TokenKind::Models, &last.name)),
        _ => None,
    };
    Ok(Page {
        items,
        next_page_token,
    })
}

pub(super) fn model_summary(txn: &ReadTransaction, name: &str) -> Result<Option<ModelSummary>> {
    let models = txn.open_table(MODELS).map_err(be)?;
    let labels = txn.open_table(LABELS).map_err(be)?;
    let Some(v) = models.get(name).map_err(be)? else {
        return Ok(None);
    };
    let row: ModelRow = decode("models", v.value())?;
    Ok(Some(ModelSummary {
        name: name.to_owned(),
        version_count: row.version_count,
        latest_version: row.latest,
        labels: labels_of(&labels, name)?,
    }))
}

pub(super) fn list_versions(
    txn: &ReadTransaction,
    name: &str,
    page_size: u32,
    page_token: &str,
) -> Result<Page<ModelVersion>> {
    let size = effective_page_size(page_size);
    let after = match decode_page_token(TokenKind::Versions, page_token)? {
        None => 0,
        Some(seq) => seq.parse::<u64>().map_err(|_| {
            StoreError::invalid("page_token", "not a token returned by this listing")
        })?,
    };
    let models = txn.open_table(MODELS).map_err(be)?;
    if load_model(&models, name)?.is_none() {
        return Err(StoreError::not_found(format!("model {name:?}")));
    }
    let mut page = Page {
        items: Vec::new(),
        next_page_token: None,
    };
    let Some(start) = after.checked_add(1) else {
        return Ok(page);
    };
    let by_seq = txn.open_table(VERSION_SEQ).map_err(be)?;
    let versions = txn.open_table(VERSIONS).map_err(be)?;
    for item in by_seq.range((name, start)..=(name, u64::MAX)).map_err(be)? {
        let (k, v) = item.map_err(be)?;
        if page.items.len() == size {
            let last_seq = page
                .items
                .last()
                .map_or(after, |m: &ModelVersion| m.sequence);
            page.next_page_token = Some(encode_page_token(
                TokenKind::Versions,
                &last_seq.to_string(),
            ));
            break;
        }
        let version = v.value();
        let row = load_row(&versions, name, version)?.ok_or_else(|| {
            StoreError::Backend(format!(
                "corrupt index: seq {} of model {name:?} names missing version {version:?}",
                k.value().1
            ))
        })?;
        page.items.push(row.into());
    }
    Ok(page)
}

pub(super) fn archive(txn: &WriteTransaction, key: &VersionKey) -> Result<ModelVersion> {
    let (name, version) = (key.name.as_str(), key.version.as_str());
    let mut versions = txn.open_table(VERSIONS).map_err(be)?;
    let mut row =
        load_row(&versions, name, version)?.ok_or_else(|| StoreError::not_found(key.describe()))?;
    if row.archived {
        return Ok(row.into());
    }
    let labels = txn.open_table(LABELS).map_err(be)?;
    let blocking: Vec<String> = labels_of(&labels, name)?
        .into_iter()
        .filter(|(_, v)| v == version)
        .map(|(label, _)| label)
        .collect();
    if !blocking.is_empty() {
        return Err(StoreError::precondition(format!(
            "{} is the target of label(s) {}; move or delete them before archiving",
            key.describe(),
            blocking.join(", ")
        )));
    }
    let users: Vec<String> = super::holds::holders(txn, name)?
        .into_iter()
        .filter(|(_, versions)| versions.iter().any(|v| v == version))
        .map(|(id, _)| format!("{id:?}"))
        .collect();
    if !users.is_empty() {
        return Err(StoreError::precondition(format!(
            "{} is used by active rollout {}; promote, roll back or abort it before archiving",
            key.describe(),
            users.join(", ")
        )));
    }
    row.archived = true;
    versions
        .insert((name, version), encode(&row)?.as_slice())
        .map_err(be)?;
    let mut models = txn.open_table(MODELS).map_err(be)?;
    let mut summary = load_model(&models, name)?.unwrap_or_default();
    if summary.latest.as_deref() == Some(version) {
        summary.latest = highest_unarchived(&versions, name)?;
        models
            .insert(name, encode(&summary)?.as_slice())
            .map_err(be)?;
    }
    Ok(row.into())
}

pub(super) fn set_label(
    txn: &WriteTransaction,
    key: &VersionKey,
    label: &str,
) -> Result<Option<String>> {
    let versions = txn.open_table(VERSIONS).map_err(be)?;
    let row = load_row(&versions, &key.name, &key.version)?
        .ok_or_else(|| StoreError::not_found(key.describe()))?;
    if row.archived {
        return Err(StoreError::precondition(format!(
            "{} is archived; label {label:?} cannot point to it",
            key.describe()
        )));
    }
    let mut labels = txn.open_table(LABELS).map_err(be)?;
    if labels
        .get((key.name.as_str(), label))
        .map_err(be)?
        .is_none()
        && labels_of(&labels, &key.name)?.len() >= MAX_LABELS_PER_MODEL
    {
        return Err(StoreError::precondition(format!(
            "model {:?} already has {MAX_LABELS_PER_MODEL} labels, the most a model holds; \
             move an existing label instead of adding {label:?}",
            key.name
        )));
    }
    let previous = labels
        .insert((key.name.as_str(), label), key.version.as_str())
        .map_err(be)?;
    Ok(previous.map(|g| g.value().to_owned()))
}

pub(super) fn delete_label(
    txn: &WriteTransaction,
    name: &str,
    label: &str,
) -> Result<Option<String>> {
    let mut labels = txn.open_table(LABELS).map_err(be)?;
    let removed = labels.remove((name, label)).map_err(be)?;
    Ok(removed.map(|g| g.value().to_owned()))
}

pub(super) fn get_label(txn: &ReadTransaction, name: &str, label: &str) -> Result<Option<String>> {
    let labels = txn.open_table(LABELS).map_err(be)?;
    let got = labels.get((name, label)).map_err(be)?;
    Ok(got.map(|g| g.value().to_owned()))
}

pub(super) fn resolve(
    txn: &ReadTransaction,
    name: &str,
    selector: Option<&str>,
) -> Result<ModelVersion> {
    let versions = txn.open_table(VERSIONS).map_err(be)?;
    let by_label = |label: &str| -> Result<ModelVersion> {
        let target = get_label(txn, name, label)?
            .ok_or_else(|| StoreError::not_found(format!("label {label:?} of model {name:?}")))?;
        let row = load_row(&versions, name, &target)?.ok_or_else(|| {
            StoreError::Backend(format!(
                "label {label:?} of model {name:?} names missing version {target:?}"
            ))
        })?;
        Ok(row.into())
    };
    match selector {
        None if get_label(txn, name, STABLE_LABEL)?.is_some() => by_label(STABLE_LABEL),
        None => {
            let models = txn.open_table(MODELS).map_err(be)?;
            if load_model(&models, name)?.is_none() {
                return Err(StoreError::not_found(format!("model {name:?}")));
            }
            Err(StoreError::precondition(format!(
                "model {name:?} has no {STABLE_LABEL:?} label, so there is no default version; \
                 point it at a version with SetVersionLabel, or name a version or label in the request"
            )))
        }
        Some(sel) => {
            if let Ok(parsed) = semver::Version::parse(sel) {
                let version = parsed.to_string();
                let row = load_row(&versions, name, &version)?.ok_or_else(|| {
                    StoreError::not_found(format!("model {name:?} version {version:?}"))
                })?;
                Ok(row.into())
            } else if validate_label(sel).is_ok() {
                by_label(sel)
            } else {
                Err(StoreError::invalid(
                    "version",
                    format!("{sel:?} is neither a semantic version nor a label name"),
                ))
            }
        }
    }
}

fn next_version_seq(txn: &WriteTransaction) -> Result<u64> {
    let mut meta = txn.open_table(META).map_err(be)?;
    let last = meta
        .get(LAST_VERSION_SEQ_KEY)
        .map_err(be)?
        .map_or(0, |g| g.value());
    let next = last
        .checked_add(1)
        .ok_or_else(|| StoreError::Backend("version sequence overflow".into()))?;
    meta.insert(LAST_VERSION_SEQ_KEY, next).map_err(be)?;
    Ok(next)
}

fn load_row(
    versions: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    name: &str,
    version: &str,
) -> Result<Option<VersionRow>> {
    match versions.get((name, version)).map_err(be)? {
        Some(guard) => decode("versions", guard.value()).map(Some),
        None => Ok(None),
    }
}

fn load_model(
    models: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<ModelRow>> {
    match models.get(name).map_err(be)? {
        Some(guard) => decode("models", guard.value()).map(Some),
        None => Ok(None),
    }
}

/// Labels of one model: (name, "") is the smallest key of that model.
fn labels_of(
    labels: &impl ReadableTable<(&'static str, &'static str), &'static str>,
    name: &str,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in labels.range((name, "")..).map_err(be)? {
        let (k, v) = item.map_err(be)?;
        let (model, label) = k.value();
        if model != name {
            break;
        }
        out.insert(label.to_owned(), v.value().to_owned());
    }
    Ok(out)
}

fn highest_unarchived(
    versions: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    name: &str,
) -> Result<Option<String>> {
    let mut best: Option<semver::Version> = None;
    for item in versions.range((name, "")..).map_err(be)? {
        let (k, v) = item.map_err(be)?;
        if k.value().0 != name {
            break;
        }
        let row: VersionRow = decode("versions", v.value())?;
        if row.archived {
            continue;
        }
        let parsed = parse_version(&row.version)?;
        if best.as_ref().is_none_or(|b| parsed > *b) {
            best = Some(parsed);
        }
    }
    Ok(best.map(|v| v.to_string()))
}

/// Fails unless `name@version` exists and is not archived.
pub(super) fn require_servable(txn: &WriteTransaction, name: &str, version: &str) -> Result<()> {
    let key = VersionKey::new(name, version)?;
    let versions = txn.open_table(VERSIONS).map_err(be)?;
    let row = load_row(&versions, &key.name, &key.version)?
        .ok_or_else(|| StoreError::not_found(key.describe()))?;
    if row.archived {
        return Err(StoreError::precondition(format!(
            "{} is archived; unarchived versions only",
            key.describe()
        )));
    }
    Ok(())
}

/// Points `label` at `name@version` (checked like [`set_label`]); with
/// `only_if_unset`, an existing label is left alone.
pub(super) fn move_label(
    txn: &WriteTransaction,
    name: &str,
    label: &str,
    version: &str,
    only_if_unset: bool,
) -> Result<()> {
    let key = VersionKey::new(name, version)?;
    validate_label(label)?;
    if only_if_unset && get_label_in(txn, name, label)?.is_some() {
        return Ok(());
    }
    set_label(txn, &key, label).map(|_| ())
}

/// Fails unless `label` of `name` points at `version`.
pub(super) fn require_label(
    txn: &WriteTransaction,
    name: &str,
    label: &str,
    version: &str,
) -> Result<()> {
    let key = VersionKey::new(name, version)?;
    match get_label_in(txn, name, label)? {
        Some(at) if at == key.version => Ok(()),
        Some(at) => Err(StoreError::precondition(format!(
            "label {label:?} of model {name:?} points at version {at:?}, not {:?}",
            key.version
        ))),
        None => Err(StoreError::precondition(format!(
            "model {name:?} has no label {label:?}; it must point at version {:?}",
            key.version
        ))),
    }
}

fn get_label_in(txn: &WriteTransaction, name: &str, label: &str) -> Result<Option<String>> {
    let labels = txn.open_table(LABELS).map_err(be)?;
    let got = labels.get((name, label)).map_err(be)?;
    Ok(got.map(|g| g.value().to_owned()))
}
