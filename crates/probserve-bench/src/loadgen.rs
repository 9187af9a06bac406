//! The load generator's command line and its run, as a library function so tests
//! can run it in-process (`src/bin/loadgen.rs` is a thin wrapper).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{ArgGroup, Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::client::{HealthReportCall, InferCall, connect, infer_request};
use crate::driver::{Bound, Call, RunConfig, RunOutput, run_closed, run_open};
use crate::result::{Mode, RssSeries, RunResult, RunSpec};
use crate::sys::vm_rss_kib;

/// What to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The bare-tonic echo server (`Infer` with a canned answer).
    Echo,
    /// probserve's `Infer`.
    Infer,
    /// probserve's `DiagnosticsService/GetHealthReport`.
    Health,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Echo => "echo",
            Target::Infer => "infer",
            Target::Health => "health",
        }
    }
}

/// Load generator for probserve's Infer (and the bare-tonic echo floor).
///
/// Closed loop (--concurrency N) or open loop (--rate R, latency measured from each
/// call's intended send time), bounded by --requests or --duration. Prints a summary
/// and writes a JSON result with --json.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version)]
#[command(group(ArgGroup::new("load").required(true).args(["concurrency", "rate"])))]
#[command(group(ArgGroup::new("bound").required(true).args(["requests", "duration"])))]
pub struct LoadgenArgs {
    /// What to call.
    #[arg(long, value_enum, default_value = "infer")]
    pub target: Target,
    /// Server address, host:port.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// HTTP/2 connections, used round-robin (closed loop: at most --concurrency).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Closed loop: workers sending back to back.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Open loop: calls per second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: most calls in flight (waiting for a slot counts as latency).
    #[arg(long, default_value_t = 10_000)]
    pub max_outstanding: usize,
    /// Stop after this many measured calls.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Stop after this many seconds of measurement.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds of warm-up at the same load before measuring.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Model to run.
    #[arg(long, default_value = "temperature_sensor")]
    pub model: String,
    /// Importance samples per call.
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Value of the model's `reading` input.
    #[arg(long, default_value_t = 22.0)]
    pub reading: f64,
    /// Seed of call 0; call i uses seed + i.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// gRPC deadline per call, milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Length of the per-window statistics, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub window_secs: f64,
    /// Compare latency of the first and last segment of this many seconds.
    #[arg(long)]
    pub drift_secs: Option<f64>,
    /// Sample this process's VmRSS (the server) once per window.
    #[arg(long)]
    pub rss_pid: Option<u32>,
    /// Label in the result (default: target-sSAMPLES-cN or -rRATE).
    #[arg(long)]
    pub label: Option<String>,
    /// Write the JSON result here (`-`: stdout, instead of the summary).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Async runtime worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn secs(name: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("--{name} must be a non-negative number of seconds, got {s}"))
}

impl LoadgenArgs {
    fn run_config(&self) -> anyhow::Result<RunConfig> {
        let bound = match (self.requests, self.duration) {
            (Some(n), None) => Bound::Requests(n),
            (None, Some(d)) => Bound::Duration(secs("duration", d)?),
            _ => bail!("give exactly one of --requests and --duration"),
        };
        let window = secs("window-secs", self.window_secs)?;
        if window.is_zero() {
            bail!("--window-secs must be positive");
        }
        Ok(RunConfig {
            bound,
            warmup: secs("warmup", self.warmup)?,
            window,
        })
    }

    fn spec(&self, connections: usize) -> RunSpec {
        let mode = if self.rate.is_some() {
            Mode::Open
        } else {
            Mode::Closed
        };
        let samples = (self.target != Target::Health).then_some(self.samples);
        let label = self.label.clone().unwrap_or_else(|| {
            let load = match (self.concurrency, self.rate) {
                (Some(c), _) => format!("c{c}"),
                (None, Some(r)) => format!("r{r:.0}"),
                (None, None) => String::new(),
            };
            match samples {
                Some(s) => format!("{}-s{s}-{load}", self.target.name()),
                None => format!("{}-{load}", self.target.name()),
            }
        });
        RunSpec {
            label,
            target: self.target.name().to_string(),
            addr: self.addr.clone(),
            mode,
            concurrency: self.concurrency.map(|c| c as u64),
            rate: self.rate,
            max_outstanding: self.rate.map(|_| self.max_outstanding as u64),
            samples,
            connections: connections as u64,
            warmup_secs: self.warmup,
        }
    }

    /// A progress bar (hidden when quiet or when stderr is not a terminal).
    pub fn progress_bar(&self, label: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:24} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
        ) {
            pb.set_style(style);
        }
        pb.set_message(label.to_string());
        pb
    }
}

async fn drive<C: Call>(
    caller: C,
    args: &LoadgenArgs,
    cfg: &RunConfig,
    pb: ProgressBar,
) -> anyhow::Result<RunOutput> {
    let caller = Arc::new(caller);
    let out = match (args.concurrency, args.rate) {
        (Some(c), None) => run_closed(caller, c, cfg, pb).await?,
        (None, Some(r)) => run_open(caller, r, args.max_outstanding, cfg, pb).await?,
        _ => bail!("give exactly one of --concurrency and --rate"),
    };
    Ok(out)
}

/// Samples a process's VmRSS every `every` from `start` (the start of measurement)
/// until `stop` fires; returns `(seconds after start, KiB)`.
fn spawn_rss_sampler(
    pid: u32,
    start: Instant,
    every: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<Vec<(f64, u64)>> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        tokio::select! {
            () = tokio::time::sleep_until(start.into()) => {}
            _ = &mut stop => return samples,
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Ok(kib) = vm_rss_kib(pid) {
                        samples.push((start.elapsed().as_secs_f64(), kib));
                    }
                }
                _ = &mut stop => break,
            }
        }
        samples
    })
}

/// Runs the load described by `args` and returns its result.
pub async fn run(args: &LoadgenArgs) -> anyhow::Result<RunResult> {
    let cfg = args.run_config()?;
    let connections = match args.concurrency {
        Some(c) => args.connections.min(c.max(1)),
        None => args.connections,
    };
    let spec = args.spec(connections);
    let channels = connect(&args.addr, connections).await?;
    let pb = args.progress_bar(&spec.label);

    let (stop, stop_rx) = tokio::sync::oneshot::channel();
    let sampler = args
        .rss_pid
        .map(|pid| spawn_rss_sampler(pid, Instant::now() + cfg.warmup, cfg.window, stop_rx));

    let out = match args.target {
        Target::Echo | Target::Infer => {
            let template = infer_request(&args.model, args.samples, args.reading);
            let timeout = args.timeout_ms.map(Duration::from_millis);
            let caller = InferCall::new(&channels, template, args.seed, timeout)?;
            drive(caller, args, &cfg, pb).await?
        }
        Target::Health => drive(HealthReportCall::new(&channels)?, args, &cfg, pb).await?,
    };

    let _ = stop.send(());
    let rss = match (args.rss_pid, sampler) {
        (Some(pid), Some(task)) => {
            let mut samples = task.await.unwrap_or_default();
            if let Ok(kib) = vm_rss_kib(pid) {
                samples.push((out.measured.as_secs_f64(), kib));
            }
            RssSeries::from_samples(pid, samples)
        }
        _ => None,
    };
    let drift = match args.drift_secs {
        Some(s) => Some(secs("drift-secs", s)?),
        None => None,
    };
    Ok(RunResult::new(spec, &out, drift, rss))
}
