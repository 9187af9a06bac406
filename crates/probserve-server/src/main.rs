//! The `probserve` command: `probserve serve` runs the server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use probserve_server::config::{
    Config, FlagOverrides, LogFormat, env_warnings, process_env, resolve_addr,
};

/// mimalloc instead of the system allocator: on a trivial Infer call glibc's
/// malloc/free took about 9 % of the server's CPU (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// probserve serves Bayesian models over gRPC and rolls out new model versions safely.
///
/// Configuration comes from defaults, then the TOML file given by --config, then
/// PROBSERVE_* environment variables (e.g. PROBSERVE_LISTEN=0.0.0.0:50051), then
/// flags; later sources win. Only PROBSERVE_* variables naming a configuration key
/// are read; others (Kubernetes service links such as PROBSERVE_SERVICE_HOST) are
/// ignored, with a warning unless they are service links. Tracing is exported over OTLP when the standard
/// OTEL_EXPORTER_OTLP_ENDPOINT variable is set (service name from OTEL_SERVICE_NAME).
#[derive(Debug, Parser)]
#[command(name = "probserve", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server until SIGTERM or SIGINT, then drain gracefully.
    Serve(ServeArgs),
    /// Load and validate the configuration, print it as TOML, and exit.
    CheckConfig(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (keys as in the README's configuration table).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// gRPC listen address; a host name is resolved [default: 127.0.0.1:50051].
    #[arg(long, value_name = "HOST:PORT", value_parser = resolve_addr)]
    listen: Option<std::net::SocketAddr>,
    /// Prometheus /metrics listen address [default: 127.0.0.1:9464].
    #[arg(long, value_name = "HOST:PORT", value_parser = resolve_addr)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Directory of the embedded database [default: ./probserve-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log format on stderr [default: human].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `probserve=debug,warn` [default: info].
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

impl ServeArgs {
    /// The configuration, and warnings about ignored environment variables.
    fn load(&self) -> Result<(Config, Vec<String>), probserve_server::config::ConfigError> {
        let flags = FlagOverrides {
            listen: self.listen,
            metrics_listen: self.metrics_listen,
            data_dir: self.data_dir.clone(),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
        };
        let env = process_env();
        let warnings = env_warnings(env.iter().map(|(k, _)| k.clone()));
        let config = Config::load_with_env(self.config.as_deref(), &flags, env)?;
        Ok((config, warnings))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(args) => match args.load() {
            Ok((config, warnings)) => match toml::to_string(&config) {
                Ok(text) => {
                    use std::io::Write as _;
                    for w in warnings {
                        eprintln!("probserve: warning: {w}");
                    }
                    let _ = std::io::stdout().write_all(text.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("probserve: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("probserve: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve(args) => {
            let (config, warnings) = match args.load() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("probserve: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("probserve: starting the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(async move {
                let telemetry =
                    probserve_server::telemetry::init(config.log_format, &config.log_level)?;
                for w in warnings {
                    tracing::warn!("{w}");
                }
                probserve_server::server::run(config, telemetry).await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("probserve: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
