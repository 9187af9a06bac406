//! The environment as a configuration source: only `PROBSERVE_<KEY>` variables naming
//! a [`Config`] key are read (kubelet's service links such as `PROBSERVE_SERVICE_HOST`
//! share the prefix and must not break start-up), and every other `PROBSERVE_*` that
//! is not a service link gets a warning naming it.

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::Config;

/// Prefix of the environment variables the configuration reads.
pub const ENV_PREFIX: &str = "PROBSERVE_";

/// The process environment as `(name, value)` pairs (non-Unicode parts replaced).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// The figment provider of the environment: `PROBSERVE_<KEY>` for each configuration
/// key (case-insensitive), values parsed as figment's `Env` does; every other variable
/// is left out, so the platform's variables cannot break start-up.
pub(super) struct EnvKeys(Dict);

impl EnvKeys {
    pub(super) fn new(env: impl IntoIterator<Item = (String, String)>) -> Self {
        let keys = Config::keys();
        let mut dict = Dict::new();
        for (name, value) in env {
            let Some(key) = strip_prefix_ignore_case(&name, ENV_PREFIX) else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            if keys.contains(&key) {
                let Ok(value) = value.parse::<Value>();
                dict.insert(key, value);
            }
        }
        Self(dict)
    }
}

impl Provider for EnvKeys {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("`{ENV_PREFIX}` environment variable(s)")).interpolater(
            |_: &Profile, k: &[&str]| {
                let k: Vec<String> = k.iter().map(|k| k.to_ascii_uppercase()).collect();
                format!("{ENV_PREFIX}{}", k.join("."))
            },
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
}

/// Warnings for `PROBSERVE_*` variables in `names` that are neither a configuration
/// key nor a Kubernetes service-link variable: such a variable is ignored, which a
/// typo must not be silently.
pub fn env_warnings<I: IntoIterator<Item = String>>(names: I) -> Vec<String> {
    let keys = Config::keys();
    names
        .into_iter()
        .filter_map(|name| {
            let upper = name.to_ascii_uppercase();
            let rest = upper.strip_prefix(ENV_PREFIX)?.trim().to_ascii_lowercase();
            if keys.contains(&rest) || is_service_link(&upper) {
                return None;
            }
            let hint = keys
                .iter()
                .filter(|k| edit_distance(k, &rest) <= 2)
                .min_by_key(|k| edit_distance(k, &rest))
                .map(|k| format!(" (did you mean {ENV_PREFIX}{}?)", k.to_ascii_uppercase()))
                .unwrap_or_default();
            Some(format!(
                "environment variable {name} is not a configuration key and is ignored{hint}"
            ))
        })
        .collect()
}

/// Whether `name` (upper case) has the shape of a variable kubelet injects for a
/// Service whose name starts with `probserve` (`<SVC>_SERVICE_HOST`,
/// `<SVC>_SERVICE_PORT[_<PORT NAME>]`, `<SVC>_PORT`,
/// `<SVC>_PORT_<N>_<PROTO>[_PROTO|_PORT|_ADDR]`).
fn is_service_link(name: &str) -> bool {
    let words: Vec<&str> = name.split('_').collect();
    let proto = |w: &str| matches!(w, "TCP" | "UDP" | "SCTP");
    (1..words.len()).any(|i| match &words[i..] {
        ["SERVICE", "HOST"] | ["SERVICE", "PORT", ..] | ["PORT"] => true,
        ["PORT", n, p] => n.parse::<u16>().is_ok() && proto(p),
        ["PORT", n, p, "PROTO" | "PORT" | "ADDR"] => n.parse::<u16>().is_ok() && proto(p),
        _ => false,
    })
}

/// Levenshtein distance (for the typo hint; keys are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::FlagOverrides;
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// What kubelet injects for the manifest's Service `probserve` (ports grpc 50051
    /// and metrics 9464).
    const KUBELET: &[(&str, &str)] = &[
        ("PROBSERVE_SERVICE_HOST", "10.96.0.10"),
        ("PROBSERVE_SERVICE_PORT", "50051"),
        ("PROBSERVE_SERVICE_PORT_GRPC", "50051"),
        ("PROBSERVE_SERVICE_PORT_METRICS", "9464"),
        ("PROBSERVE_PORT", "tcp://10.96.0.10:50051"),
        ("PROBSERVE_PORT_50051_TCP", "tcp://10.96.0.10:50051"),
        ("PROBSERVE_PORT_50051_TCP_PROTO", "tcp"),
        ("PROBSERVE_PORT_50051_TCP_PORT", "50051"),
        ("PROBSERVE_PORT_50051_TCP_ADDR", "10.96.0.10"),
        ("PROBSERVE_PORT_9464_TCP_ADDR", "10.96.0.10"),
        ("PROBSERVE_METRICS_SERVICE_HOST", "10.96.0.11"),
    ];

    #[test]
    fn environment_reads_only_configuration_keys() {
        let mut vars = env(KUBELET);
        vars.extend(env(&[
            ("PROBSERVE_MAX_IN_FLIGHT", "9"),
            ("probserve_log_level", "debug"),
            ("PROBSERVE_TYPO_KEY", "1"),
            ("HOME", "/root"),
        ]));
        let c = Config::load_with_env(None, &FlagOverrides::default(), vars).unwrap();
        assert_eq!(c.max_in_flight, 9);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.listen, Config::default().listen);
    }

    #[test]
    fn environment_errors_name_the_variable() {
        let vars = env(&[("PROBSERVE_MAX_IN_FLIGHT", "-3")]);
        let e = Config::load_with_env(None, &FlagOverrides::default(), vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PROBSERVE_MAX_IN_FLIGHT"), "{e}");
    }

    #[test]
    fn unknown_variables_warn_unless_they_are_service_links() {
        let names = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, _)| (*k).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(env_warnings(names(KUBELET)), Vec::<String>::new());
        let w = env_warnings(names(&[
            ("PROBSERVE_MAX_INFLIGHT", ""),
            ("PROBSERVE_LISTEN", ""),
            ("PATH", ""),
        ]));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("PROBSERVE_MAX_INFLIGHT"), "{w:?}");
        assert!(
            w[0].contains("did you mean PROBSERVE_MAX_IN_FLIGHT"),
            "{w:?}"
        );
    }
}
