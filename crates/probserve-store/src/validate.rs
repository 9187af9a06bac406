//! Argument validation and page tokens shared by every [`Store`](crate::Store) backend.
//!
//! Backends call these first so that all of them accept and reject exactly the
//! same inputs (the conformance suite checks it).

use crate::error::{Result, StoreError};

/// Page size used when the caller passes 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Larger page sizes are reduced to this.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Largest accepted model source, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4 * 1024 * 1024;
/// Longest accepted model name, rollout id, blob namespace or blob key, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The label [`Store::resolve`](crate::Store::resolve) prefers when no version is given.
pub const STABLE_LABEL: &str = "stable";

/// Most labels one model holds (a label that exists can always be moved).
pub const MAX_LABELS_PER_MODEL: usize = 64;

/// Longest accepted version string of a new registration, in bytes (pre-release
/// and build parts included).
pub const MAX_VERSION_BYTES: usize = 128;
/// Most metadata entries of one registration.
pub const MAX_METADATA_ENTRIES: usize = 64;
/// Longest metadata key, in bytes.
pub const MAX_METADATA_KEY_BYTES: usize = 128;
/// Longest metadata value, in bytes.
pub const MAX_METADATA_VALUE_BYTES: usize = 1024;
/// Longest description of a registration, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;

/// Model names in lookups: 1 to 256 ASCII bytes from `[A-Za-z0-9_.-]`, starting
/// with a letter or digit. This is the looser rule of older releases, so models
/// registered under it stay readable; new registrations must pass
/// [`validate_new_model_name`].
pub fn validate_model_name(name: &str) -> Result<()> {
    validate_identifier("name", name)
}

/// Names of newly registered models: `[a-z][a-z0-9_-]{0,62}`, as the proto documents.
pub fn validate_new_model_name(name: &str) -> Result<()> {
    validate_slug("name", name)
}

/// The proto's name rule `[a-z][a-z0-9_-]{0,62}` (model names, labels, rollout ids).
pub fn validate_slug(field: &str, value: &str) -> Result<()> {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok && value.len() <= 63 {
        Ok(())
    } else {
        let shown: String = value.chars().take(80).collect();
        Err(StoreError::invalid(
            field,
            format!("{shown:?} must match [a-z][a-z0-9_-]{{0,62}}"),
        ))
    }
}

/// Parses a semantic version and returns its normalized string form.
pub fn normalize_version(version: &str) -> Result<String> {
    parse_version(version).map(|v| v.to_string())
}

/// [`normalize_version`] for a new registration: also at most
/// [`MAX_VERSION_BYTES`] bytes.
pub fn normalize_new_version(version: &str) -> Result<String> {
    if version.len() > MAX_VERSION_BYTES {
        return Err(StoreError::invalid(
            "version",
            format!(
                "{} bytes exceeds the limit of {MAX_VERSION_BYTES} (pre-release and build parts included)",
                version.len()
            ),
        ));
    }
    normalize_version(version)
}

/// Checks a registration's description and metadata against their size caps.
pub fn validate_metadata(
    description: &str,
    metadata: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    if description.len() > MAX_DESCRIPTION_BYTES {
        return Err(StoreError::invalid(
            "description",
            format!(
                "{} bytes exceeds the limit of {MAX_DESCRIPTION_BYTES}",
                description.len()
            ),
        ));
    }
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(StoreError::invalid(
            "metadata",
            format!(
                "{} entries exceeds the limit of {MAX_METADATA_ENTRIES}",
                metadata.len()
            ),
        ));
    }
    for (k, v) in metadata {
        if k.is_empty() || k.len() > MAX_METADATA_KEY_BYTES {
            return Err(StoreError::invalid(
                "metadata",
                format!(
                    "keys must be 1 to {MAX_METADATA_KEY_BYTES} bytes, got one of {}",
                    k.len()
                ),
            ));
        }
        if v.len() > MAX_METADATA_VALUE_BYTES {
            let key: String = k.chars().take(40).collect();
            return Err(StoreError::invalid(
                "metadata",
                format!(
                    "value of {key:?} is {} bytes, more than the limit of {MAX_METADATA_VALUE_BYTES}",
                    v.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Parses a semantic version (the `semver` crate's strict grammar).
pub fn parse_version(version: &str) -> Result<semver::Version> {
    semver::Version::parse(version).map_err(|e| {
        StoreError::invalid(
            "version",
            format!("{version:?} is not a semantic version: {e}"),
        )
    })
}

/// Label names: `[a-z][a-z0-9_-]{0,62}`. A label can never parse as a semver
/// version, so `resolve` can tell the two apart.
pub fn validate_label(label: &str) -> Result<()> {
    validate_slug("label", label)
}

/// Rollout ids, blob namespaces and blob keys follow the model-name rule.
pub fn validate_identifier(field: &str, value: &str) -> Result<()> {
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if first_ok && rest_ok && value.len() <= MAX_NAME_BYTES {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!(
                "{value:?} must be 1 to {MAX_NAME_BYTES} characters from [A-Za-z0-9_.-] starting with a letter or digit"
            ),
        ))
    }
}

/// Longest accepted blob key, in bytes.
pub const MAX_BLOB_KEY_BYTES: usize = 1024;

/// Blob keys: any non-empty string of at most [`MAX_BLOB_KEY_BYTES`] bytes
/// (so callers can use paths such as `rollout-1/arm-b`).
pub fn validate_blob_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_BLOB_KEY_BYTES {
        return Err(StoreError::invalid(
            "key",
            format!("must be 1 to {MAX_BLOB_KEY_BYTES} bytes, got {}", key.len()),
        ));
    }
    Ok(())
}

/// Checks a new version's source size.
pub fn validate_source(source: &str) -> Result<()> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(StoreError::invalid(
            "source",
            format!(
                "{} bytes exceeds the limit of {MAX_SOURCE_BYTES}",
                source.len()
            ),
        ));
    }
    Ok(())
}

/// Effective page size: 0 means [`DEFAULT_PAGE_SIZE`], larger than [`MAX_PAGE_SIZE`] is clamped.
pub fn effective_page_size(page_size: u32) -> usize {
    let size = if page_size == 0 {
        DEFAULT_PAGE_SIZE
    } else {
        page_size.min(MAX_PAGE_SIZE)
    };
    // u32 always fits usize on the 32- and 64-bit targets we build for.
    size as usize
}

/// Which listing a page token belongs to; a token from one listing is rejected by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// [`Store::list_models`](crate::Store::list_models): resumes after a model name.
    Models,
    /// [`Store::list_versions`](crate::Store::list_versions): resumes after a sequence number.
    Versions,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Models => "m:",
            Self::Versions => "v:",
        }
    }
}

/// Encodes a resume position as an opaque token (hex, so it is safe in any transport).
pub fn encode_page_token(kind: TokenKind, position: &str) -> String {
    hex::encode(format!("{}{position}", kind.prefix()))
}

/// Decodes a token made by [`encode_page_token`]. Empty token means "first page" (`None`).
pub fn decode_page_token(kind: TokenKind, token: &str) -> Result<Option<String>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || StoreError::invalid("page_token", "not a token returned by this listing");
    let bytes = hex::decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(kind.prefix())
        .map(|rest| Some(rest.to_owned()))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in [
            "stable",
            "a",
            "canary-2",
            "x_y",
            &format!("a{}", "b".repeat(62)),
        ] {
            assert!(validate_label(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Stable",
            "1abc",
            "-a",
            "a b",
            "a.b",
            &format!("a{}", "b".repeat(63)),
        ] {
            assert!(validate_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_versions() {
        assert!(validate_model_name("temperature_sensor").is_ok());
        assert!(validate_model_name("m.v-2").is_ok());
        assert!(validate_model_name("").is_err());
        assert!(validate_model_name("_x").is_err());
        assert!(validate_model_name("a/b").is_err());
        assert!(validate_model_name(&"a".repeat(257)).is_err());
        assert_eq!(
            normalize_version("1.2.3-rc.1+b5").ok().as_deref(),
            Some("1.2.3-rc.1+b5")
        );
        assert!(normalize_version("1.2").is_err());
        assert!(normalize_version("01.2.3").is_err());
    }

    #[test]
    fn new_names_versions_and_metadata() {
        for ok in [
            "temperature_sensor",
            "m",
            "a-1_b",
            &format!("a{}", "b".repeat(62)),
        ] {
            assert!(validate_new_model_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a..b",
            "Model",
            "1abc",
            "m.v-2",
            "",
            &format!("a{}", "b".repeat(63)),
        ] {
            assert!(validate_new_model_name(bad).is_err(), "{bad}");
        }
        assert!(normalize_new_version("1.2.3-rc.1+b5").is_ok());
        let long = format!("1.0.0-{}", "a".repeat(MAX_VERSION_BYTES));
        assert!(normalize_new_version(&long).is_err());
        assert!(
            normalize_version(&long).is_ok(),
            "lookups keep the old rule"
        );
        let many: std::collections::BTreeMap<String, String> = (0..=MAX_METADATA_ENTRIES)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(validate_metadata("", &many).is_err());
        let big = [("k".to_owned(), "v".repeat(MAX_METADATA_VALUE_BYTES + 1))].into();
        assert!(validate_metadata("", &big).is_err());
        assert!(
            validate_metadata(&"d".repeat(MAX_DESCRIPTION_BYTES + 1), &Default::default()).is_err()
        );
        assert!(validate_metadata("ok", &[("team".to_owned(), "ml".to_owned())].into()).is_ok());
    }

    #[test]
    fn tokens_round_trip_and_are_kind_checked() {
        let t = encode_page_token(TokenKind::Models, "model-7");
        assert_eq!(
            decode_page_token(TokenKind::Models, &t)
                .ok()
                .flatten()
                .as_deref(),
            Some("model-7")
        );
        assert!(decode_page_token(TokenKind::Versions, &t).is_err());
        assert!(decode_page_token(TokenKind::Models, "zz").is_err());
        assert_eq!(decode_page_token(TokenKind::Models, "").ok(), Some(None));
    }

    #[test]
    fn page_sizes() {
        assert_eq!(effective_page_size(0), 100);
        assert_eq!(effective_page_size(7), 7);
        assert_eq!(effective_page_size(5000), 1000);
    }
}
