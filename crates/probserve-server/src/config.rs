//! Server configuration: defaults, then a TOML file, then `PROBSERVE_*` environment
//! variables, then command-line flags (later sources win).
//!
//! Unknown keys in the file are errors (a typo must not silently fall back to a
//! default), and every error names the key and the source it came from. The
//! environment is shared with the platform, so only variables naming a real key are
//! read: Kubernetes service links (`PROBSERVE_SERVICE_HOST`, `PROBSERVE_PORT`, …) are
//! ignored, and any other unknown `PROBSERVE_*` is reported by [`env_warnings`].
//! Listen addresses may name a host (`localhost:50051`); it is resolved at load time.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod env;
use env::EnvKeys;
pub use env::{ENV_PREFIX, env_warnings, process_env};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The whole configuration. Field docs are the configuration reference (README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC listen address (`host:port`; a host name is resolved at start-up).
    #[serde(deserialize_with = "de_addr")]
    pub listen: SocketAddr,
    /// Prometheus `/metrics` listen address (`host:port`, resolved like `listen`).
    #[serde(deserialize_with = "de_addr")]
    pub metrics_listen: SocketAddr,
    /// Directory of the embedded database.
    pub data_dir: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `probserve=debug,info`.
    pub log_level: String,
    /// Seconds to keep answering health checks as NOT_SERVING (and refusing new calls)
    /// before closing the listener, so load balancers notice the drain.
    pub drain_grace_secs: f64,
    /// Seconds in-flight calls get to finish after the listener closes.
    pub drain_timeout_secs: f64,
    /// Largest accepted or sent gRPC message, in bytes.
    pub max_message_bytes: usize,
    /// Calls in flight across all connections before new ones are shed with
    /// RESOURCE_EXHAUSTED (0 = 64 × the inference threads: admission sized from the
    /// pool, not a fixed number).
    pub max_in_flight: usize,
    /// Concurrent calls per HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2 keepalive ping interval, seconds (0 = off).
    pub keepalive_interval_secs: f64,
    /// HTTP/2 keepalive ping timeout, seconds.
    pub keepalive_timeout_secs: f64,
    /// Threads of the inference CPU pool (0 = number of cores).
    pub inference_threads: usize,
    /// Deadline applied to Infer calls that carry none, milliseconds.
    pub default_deadline_ms: u64,
    /// The longest deadline any call gets, milliseconds: a client's longer
    /// `grpc-timeout` is clamped to it (at least `default_deadline_ms`).
    pub max_deadline_ms: u64,
    /// The longest an inference waits for a CPU worker, milliseconds: a job whose
    /// expected or actual wait is longer is refused with RESOURCE_EXHAUSTED (and a
    /// retry hint) instead of waiting until its deadline.
    pub max_queue_ms: u64,
    /// Inferences predicted (from the version's measured cost) to take at most this
    /// many microseconds run inline on the receiving async worker instead of the
    /// CPU pool, saving two thread hand-offs (0 = always use the pool).
    pub inline_budget_micros: u64,
    /// Register the built-in example models at start-up.
    pub builtin_models: bool,
    /// How often the rollout controller evaluates running rollouts, milliseconds.
    pub controller_interval_ms: u64,
    /// Memory one Infer call may use (draws kept, traces, summaries, response), in
    /// bytes, estimated before it runs; a larger request is refused with
    /// RESOURCE_EXHAUSTED naming the option to lower.
    pub max_request_memory_bytes: u64,
    /// Memory all running Infer calls may use together, in bytes: a call waits (up
    /// to its deadline) until its estimate fits.
    pub max_inference_memory_bytes: u64,
    /// What a run whose outputs include NaN or ±∞ answers: `error` (INTERNAL,
    /// reason MODEL_NAN) or `warn` (OK with a warning). Either counts as an error
    /// for a rollout's guardrails.
    pub non_finite_outputs: NonFinitePolicy,
}

/// What to do with non-finite output values (`non_finite_outputs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NonFinitePolicy {
    /// Fail the call with INTERNAL / MODEL_NAN.
    Error,
    /// Answer with a warning in the diagnostics.
    Warn,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            data_dir: PathBuf::from("./probserve-data"),
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            drain_grace_secs: 0.0,
            drain_timeout_secs: 30.0,
            max_message_bytes: 4 * 1024 * 1024,
            max_in_flight: 0,
            max_concurrent_streams: 256,
            keepalive_interval_secs: 30.0,
            keepalive_timeout_secs: 10.0,
            inference_threads: 0,
            default_deadline_ms: 30_000,
            max_deadline_ms: 300_000,
            max_queue_ms: 1_000,
            inline_budget_micros: 50,
            builtin_models: true,
            controller_interval_ms: 5_000,
            max_request_memory_bytes: 256 * 1024 * 1024,
            max_inference_memory_bytes: 1024 * 1024 * 1024,
            non_finite_outputs: NonFinitePolicy::Error,
        }
    }
}

/// Flags that override the file and environment (None = not given).
#[derive(Debug, Default, Clone, Serialize)]
pub struct FlagOverrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--metrics-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--log-format`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// `--log-level`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` does not exist.
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    /// A key is unknown, mistyped or out of range; the message names it.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults ← `file` ← `PROBSERVE_*` environment ← `flags`, then validates.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Self, ConfigError> {
        Self::load_with_env(file, flags, process_env())
    }

    /// [`Config::load`] with the environment given as `(name, value)` pairs; only the
    /// `PROBSERVE_*` variables naming a key are read.
    pub fn load_with_env(
        file: Option<&Path>,
        flags: &FlagOverrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Missing(path.to_owned()));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig
            .merge(EnvKeys::new(env))
            .merge(Serialized::defaults(flags));
        let config: Config = fig.extract().map_err(|e| {
            // figment reports every problem with its key path and source.
            let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            ConfigError::Invalid(msgs.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Every configuration key: the fields of [`Config`], read from its serialized
    /// form so the list cannot drift from the struct.
    pub fn keys() -> Vec<String> {
        match toml::Table::try_from(Config::default()) {
            Ok(table) => table.keys().cloned().collect(),
            // Every field serializes to a TOML value (numbers, strings, booleans).
            Err(_) => Vec::new(),
        }
    }

    /// The in-flight limit: `max_in_flight`, or 64 calls per inference thread when it
    /// is 0.
    pub fn effective_max_in_flight(&self) -> usize {
        if self.max_in_flight > 0 {
            self.max_in_flight
        } else {
            crate::infer::resolve_threads(self.inference_threads).saturating_mul(64)
        }
    }

    /// Range checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::Invalid(format!("key `{key}`: {why}")));
        for (key, v) in [
            ("drain_grace_secs", self.drain_grace_secs),
            ("drain_timeout_secs", self.drain_timeout_secs),
            ("keepalive_interval_secs", self.keepalive_interval_secs),
            ("keepalive_timeout_secs", self.keepalive_timeout_secs),
        ] {
            if !v.is_finite() || !(0.0..=86_400.0).contains(&v) {
                return bad(key, "must be a number of seconds between 0 and 86400");
            }
        }
        if self.max_message_bytes < 1024 || self.max_message_bytes > 256 * 1024 * 1024 {
            return bad("max_message_bytes", "must be between 1024 and 268435456");
        }
        if self.max_concurrent_streams == 0 {
            return bad("max_concurrent_streams", "must be at least 1");
        }
        if !(10..=3_600_000).contains(&self.controller_interval_ms) {
            return bad("controller_interval_ms", "must be between 10 and 3600000");
        }
        if self.inline_budget_micros > 10_000 {
            return bad(
                "inline_budget_micros",
                "must be at most 10000 (longer jobs belong on the CPU pool)",
            );
        }
        if self.max_request_memory_bytes < 1024 * 1024 {
            return bad(
                "max_request_memory_bytes",
                "must be at least 1048576 (1 MiB)",
            );
        }
        if self.max_inference_memory_bytes < self.max_request_memory_bytes
            || self.max_inference_memory_bytes > 1 << 42
        {
            return bad(
                "max_inference_memory_bytes",
                "must be at least max_request_memory_bytes and at most 4 TiB",
            );
        }
        if self.default_deadline_ms == 0 {
            return bad("default_deadline_ms", "must be at least 1");
        }
        if !(1..=86_400_000).contains(&self.max_deadline_ms) {
            return bad("max_deadline_ms", "must be between 1 and 86400000");
        }
        if self.default_deadline_ms > self.max_deadline_ms {
            return bad(
                "default_deadline_ms",
                "must not be above max_deadline_ms (raise max_deadline_ms or lower it)",
            );
        }
        if !(1..=3_600_000).contains(&self.max_queue_ms) {
            return bad("max_queue_ms", "must be between 1 and 3600000");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return bad(
                "log_level",
                "is not a valid filter (e.g. `info`, `probserve=debug,warn`)",
            );
        }
        Ok(())
    }
}

/// Resolves `host:port` (an IP literal or a host name) to one socket address,
/// preferring IPv4 when a name has both (a container often has `::1` in /etc/hosts
/// without an IPv6 loopback).
pub fn resolve_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if text
        .rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!(
            "`{text}` is not HOST:PORT (e.g. 0.0.0.0:50051 or localhost:50051)"
        ));
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("`{text}` does not resolve: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("`{text}` resolves to no address"))
}

fn de_addr<'de, D: serde::Deserializer<'de>>(de: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(de)?;
    resolve_addr(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let p = dir.path().join("probserve.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "listen = \"127.0.0.1:7000\"\nmax_in_flight = 7\n");
        let c = Config::load(Some(&p), &FlagOverrides::default()).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.max_in_flight, 7);
        let flags = FlagOverrides {
            listen: Some("127.0.0.1:7001".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::load(Some(&p), &flags).unwrap();
        assert_eq!(c.listen.port(), 7001);
        assert_eq!(c.max_in_flight, 7);
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "listenn = \"127.0.0.1:7000\"\n");
        let e = Config::load(Some(&p), &FlagOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("listenn"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "max_in_flight = \"many\"\n");
        let e = Config::load(Some(&p), &FlagOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_in_flight"), "{e}");
    }

    #[test]
    fn range_errors_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "drain_timeout_secs = -1.0\n");
        let e = Config::load(Some(&p), &FlagOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("drain_timeout_secs"), "{e}");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn keys_are_exactly_the_accepted_fields() {
        let keys = Config::keys();
        assert!(
            keys.contains(&"listen".to_owned())
                && keys.contains(&"controller_interval_ms".to_owned())
        );
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for key in &keys {
            let mut one = toml::Table::new();
            one.insert(key.clone(), defaults[key].clone());
            let p = write(&dir, &toml::to_string(&one).unwrap());
            let c = Config::load_with_env(Some(&p), &FlagOverrides::default(), []);
            assert_eq!(c.unwrap(), Config::default(), "{key}");
        }
    }

    #[test]
    fn listen_addresses_may_name_a_host() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "listen = \"localhost:7000\"\n");
        let c = Config::load_with_env(Some(&p), &FlagOverrides::default(), []).unwrap();
        assert!(
            c.listen.ip().is_loopback() && c.listen.port() == 7000,
            "{c:?}"
        );
        let vars = env(&[("PROBSERVE_METRICS_LISTEN", "localhost:7001")]);
        let c = Config::load_with_env(None, &FlagOverrides::default(), vars).unwrap();
        assert!(c.metrics_listen.ip().is_loopback() && c.metrics_listen.port() == 7001);

        let p = write(&dir, "metrics_listen = \"no-such-host.invalid:7000\"\n");
        let e = Config::load_with_env(Some(&p), &FlagOverrides::default(), [])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metrics_listen") && e.contains("no-such-host.invalid"),
            "{e}"
        );
        for bad in ["localhost", "localhost:http", ":80", "localhost:70000"] {
            assert!(resolve_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deadlines_and_admission_are_sized_and_checked() {
        let c = Config::default();
        assert_eq!(
            c.effective_max_in_flight(),
            64 * crate::infer::resolve_threads(0)
        );
        let c = Config {
            inference_threads: 3,
            ..Config::default()
        };
        assert_eq!(c.effective_max_in_flight(), 192);
        let c = Config {
            max_in_flight: 5,
            ..Config::default()
        };
        assert_eq!(c.effective_max_in_flight(), 5);
        let dir = tempfile::tempdir().unwrap();
        for (text, key) in [
            (
                "default_deadline_ms = 5000\nmax_deadline_ms = 1000\n",
                "default_deadline_ms",
            ),
            ("max_deadline_ms = 0\n", "max_deadline_ms"),
            ("max_queue_ms = 0\n", "max_queue_ms"),
        ] {
            let p = write(&dir, text);
            let e = Config::load(Some(&p), &FlagOverrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = Config::load(
            Some(Path::new("/nonexistent/p.toml")),
            &FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Missing(_)));
    }
}
