//! Server configuration: defaults, then a TOML file, then `PROBSERVE_*` environment
//! variables, then command-line flags (later sources win).
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and
//! every error names the key and the source it came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

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
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Prometheus `/metrics` listen address.
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
    /// RESOURCE_EXHAUSTED.
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
    /// Inferences predicted (from the version's measured cost) to take at most this
    /// many microseconds run inline on the receiving async worker instead of the
    /// CPU pool, saving two thread hand-offs (0 = always use the pool).
    pub inline_budget_micros: u64,
    /// Register the built-in example models at start-up.
    pub builtin_models: bool,
    /// How often the rollout controller evaluates running rollouts, milliseconds.
    pub controller_interval_ms: u64,
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
            max_in_flight: 1024,
            max_concurrent_streams: 256,
            keepalive_interval_secs: 30.0,
            keepalive_timeout_secs: 10.0,
            inference_threads: 0,
            default_deadline_ms: 30_000,
            inline_budget_micros: 50,
            builtin_models: true,
            controller_interval_ms: 5_000,
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
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Missing(path.to_owned()));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig
            .merge(Env::prefixed("PROBSERVE_"))
            .merge(Serialized::defaults(flags));
        let config: Config = fig.extract().map_err(|e| {
            // figment reports every problem with its key path and source.
            let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            ConfigError::Invalid(msgs.join("; "))
        })?;
        config.validate()?;
        Ok(config)
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
        if self.max_in_flight == 0 {
            return bad("max_in_flight", "must be at least 1");
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
        if self.default_deadline_ms == 0 {
            return bad("default_deadline_ms", "must be at least 1");
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
