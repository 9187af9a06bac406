//! `bench_suite`: the whole service benchmark in one command (scripts/bench.sh runs
//! it after building release binaries).
//!
//! Starts the echo floor and `probserve serve` on free 127.0.0.1 ports, then runs
//! `loadgen` as a separate process for every point: closed loop at each concurrency
//! against the echo server and against probserve's Infer (1 and 1,000 importance
//! samples), a soak at a fraction of the measured capacity (server RSS and p99 drift)
//! and an overload run at a multiple of capacity against a server restarted with a
//! small `max_in_flight`. Writes every run's JSON, `suite.json` and `summary.md` to
//! the output directory and prints the markdown.
#![allow(clippy::print_stdout)] // a command-line tool: its report goes to stdout

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use probserve_bench::client::{HealthReportCall, InferCall, code_name, connect, infer_request};
use probserve_bench::driver::Call as _;
use probserve_bench::report::{Overload, SUITE_SCHEMA, Soak, SuiteResult};
use probserve_bench::result::RunResult;
use probserve_bench::stats::Outcome;
use probserve_bench::sys::{free_port, today_utc};
use tokio::process::{Child, Command};

/// Runs the probserve service benchmark suite.
#[derive(Debug, Parser)]
#[command(name = "bench_suite", version)]
struct Args {
    /// Directory holding `loadgen`, `echo_server` and `probserve` [default: this binary's].
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Output directory for JSON results, logs and summary.md.
    #[arg(long, default_value = "target/bench-results")]
    out: PathBuf,
    /// A few seconds in total: tiny counts, to check the tools work (numbers meaningless).
    #[arg(long)]
    smoke: bool,
    /// Closed-loop concurrencies.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    concurrencies: Vec<u64>,
    /// Importance samples of the probserve points.
    #[arg(long, value_delimiter = ',', default_value = "1,1000")]
    samples: Vec<u32>,
    /// Measured seconds per closed-loop point.
    #[arg(long, default_value_t = 8.0)]
    point_secs: f64,
    /// Warm-up seconds per closed-loop point.
    #[arg(long, default_value_t = 2.0)]
    point_warmup_secs: f64,
    /// HTTP/2 connections per load generator.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Soak: measured seconds.
    #[arg(long, default_value_t = 600.0)]
    soak_secs: f64,
    /// Soak: warm-up seconds before RSS and latency are recorded.
    #[arg(long, default_value_t = 30.0)]
    soak_warmup_secs: f64,
    /// Soak: offered load as a fraction of the measured capacity.
    #[arg(long, default_value_t = 0.7)]
    soak_load: f64,
    /// Soak and overload: importance samples per call.
    #[arg(long, default_value_t = 1000)]
    soak_samples: u32,
    /// Soak: window (and RSS sampling) seconds.
    #[arg(long, default_value_t = 10.0)]
    soak_window_secs: f64,
    /// Soak: length of the first and last segment compared for p99 drift, seconds.
    #[arg(long, default_value_t = 60.0)]
    drift_secs: f64,
    /// Overload: measured seconds.
    #[arg(long, default_value_t = 20.0)]
    overload_secs: f64,
    /// Overload: warm-up seconds.
    #[arg(long, default_value_t = 3.0)]
    overload_warmup_secs: f64,
    /// Overload: offered load as a multiple of the measured capacity.
    #[arg(long, default_value_t = 2.0)]
    overload_factor: f64,
    /// Overload: the server's max_in_flight.
    #[arg(long, default_value_t = 64)]
    overload_max_in_flight: u64,
    /// Skip the soak.
    #[arg(long)]
    skip_soak: bool,
    /// Skip the overload run.
    #[arg(long)]
    skip_overload: bool,
    /// Fail when probserve's Infer does not answer OK (otherwise only the floor runs).
    #[arg(long)]
    require_infer: bool,
    /// The reproduce command recorded in the report.
    #[arg(long, default_value = "scripts/bench.sh")]
    command: String,
    /// Run nothing: re-render this suite.json as markdown (to stdout).
    #[arg(long, value_name = "SUITE_JSON")]
    render: Option<PathBuf>,
}

impl Args {
    fn apply_smoke(&mut self) {
        if self.smoke {
            self.point_secs = 0.3;
            self.point_warmup_secs = 0.0;
            self.soak_secs = 2.0;
            self.soak_warmup_secs = 0.2;
            self.soak_window_secs = 0.5;
            self.drift_secs = 0.5;
            self.overload_secs = 1.0;
            self.overload_warmup_secs = 0.0;
        }
    }
}

/// A server child process.
struct Server {
    name: &'static str,
    child: Child,
    addr: String,
}

impl Server {
    fn spawn(
        name: &'static str,
        mut cmd: Command,
        addr: String,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Self { name, child, addr })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL after 10 s.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

struct Suite {
    args: Args,
    bin: PathBuf,
    result: SuiteResult,
}

impl Suite {
    fn path(&self, sub: &str) -> PathBuf {
        self.args.out.join(sub)
    }

    fn save(&self) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(&self.result)?;
        std::fs::write(self.path("suite.json"), json + "\n").context("writing suite.json")
    }

    fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        println!("note: {s}");
        self.result.notes.push(s);
    }

    async fn start_echo(&self) -> anyhow::Result<Server> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = Command::new(self.bin.join("echo_server"));
        cmd.args(["--listen", &addr]);
        let s = Server::spawn("echo_server", cmd, addr, &self.path("logs/echo_server.log"))?;
        wait_ready(&s, true).await?;
        Ok(s)
    }

    async fn start_probserve(
        &self,
        tag: &str,
        max_in_flight: Option<u64>,
    ) -> anyhow::Result<Server> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let metrics = format!("127.0.0.1:{}", free_port()?);
        let data = self.path(&format!("probserve-data-{tag}"));
        let _ = std::fs::remove_dir_all(&data);
        let mut cmd = Command::new(self.bin.join("probserve"));
        cmd.arg("serve")
            .args(["--listen", &addr, "--metrics-listen", &metrics])
            .arg("--data-dir")
            .arg(&data);
        if let Some(m) = max_in_flight {
            cmd.env("PROBSERVE_MAX_IN_FLIGHT", m.to_string());
        }
        let log = self.path(&format!("logs/probserve-{tag}.log"));
        let s = Server::spawn("probserve", cmd, addr, &log)?;
        wait_ready(&s, false).await?;
        Ok(s)
    }

    /// Runs one loadgen process and reads its JSON result.
    async fn loadgen(
        &self,
        name: &str,
        server: &Server,
        extra: &[String],
    ) -> anyhow::Result<RunResult> {
        let json = self.path(&format!("points/{name}.json"));
        let _ = std::fs::remove_file(&json);
        println!("== {name}");
        let status = Command::new(self.bin.join("loadgen"))
            .args(["--addr", &server.addr, "--label", name])
            .args(["--connections", &self.args.connections.to_string()])
            .args(extra)
            .arg("--json")
            .arg(&json)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .context("running loadgen")?;
        if !status.success() {
            bail!("loadgen {name} failed ({status})");
        }
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("reading {}", json.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    fn closed_args(&self, target: &str, concurrency: u64, samples: u32) -> Vec<String> {
        let mut v = vec![
            "--target".to_string(),
            target.to_string(),
            "--concurrency".into(),
            concurrency.to_string(),
            "--samples".into(),
            samples.to_string(),
            "--warmup".into(),
            self.args.point_warmup_secs.to_string(),
        ];
        if self.args.smoke {
            v.extend([
                "--requests".to_string(),
                (50 * concurrency.max(4)).to_string(),
            ]);
        } else {
            v.extend(["--duration".to_string(), self.args.point_secs.to_string()]);
        }
        v
    }

    async fn floor(&mut self, echo: &Server, probserve: Option<&Server>) -> anyhow::Result<()> {
        let sample_counts = self.args.samples.clone();
        for c in self.args.concurrencies.clone() {
            let echo_run = self
                .loadgen(&format!("echo-c{c}"), echo, &self.closed_args("echo", c, 1))
                .await?;
            self.result.floor.push(echo_run);
            self.save()?;
            let Some(p) = probserve else { continue };
            for &s in &sample_counts {
                let run = self
                    .loadgen(
                        &format!("infer-s{s}-c{c}"),
                        p,
                        &self.closed_args("infer", c, s),
                    )
                    .await?;
                self.result.floor.push(run);
                self.save()?;
            }
        }
        Ok(())
    }

    /// The best closed-loop throughput of probserve with the soak's sample count.
    async fn capacity(&mut self, probserve: &Server) -> anyhow::Result<f64> {
        let s = self.args.soak_samples;
        let best = self
            .result
            .floor
            .iter()
            .filter(|r| r.spec.target == "infer" && r.spec.samples == Some(s))
            .map(|r| r.throughput_rps)
            .fold(0.0, f64::max);
        if best > 0.0 {
            return Ok(best);
        }
        let run = self
            .loadgen(
                &format!("capacity-s{s}"),
                probserve,
                &self.closed_args("infer", 32, s),
            )
            .await?;
        Ok(run.throughput_rps)
    }

    fn open_args(&self, rate: f64, secs: f64, warmup: f64, window: f64) -> Vec<String> {
        [
            "--target",
            "infer",
            "--rate",
            &format!("{rate:.1}"),
            "--samples",
            &self.args.soak_samples.to_string(),
            "--duration",
            &secs.to_string(),
            "--warmup",
            &warmup.to_string(),
            "--window-secs",
            &window.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    async fn soak(&mut self, probserve: &Server, capacity: f64) -> anyhow::Result<()> {
        let a = &self.args;
        let rate = (capacity * a.soak_load).max(1.0);
        let mut extra = self.open_args(rate, a.soak_secs, a.soak_warmup_secs, a.soak_window_secs);
        extra.extend(["--drift-secs".to_string(), a.drift_secs.to_string()]);
        if let Some(pid) = probserve.pid() {
            extra.extend(["--rss-pid".to_string(), pid.to_string()]);
        }
        let run = self.loadgen("soak", probserve, &extra).await?;
        self.result.soak = Some(Soak {
            capacity_rps: capacity,
            load_fraction: self.args.soak_load,
            run,
        });
        self.save()
    }

    async fn overload(&mut self, capacity: f64) -> anyhow::Result<()> {
        let m = self.args.overload_max_in_flight;
        let server = self.start_probserve("overload", Some(m)).await?;
        let a = &self.args;
        let rate = (capacity * a.overload_factor).max(1.0);
        let extra = self.open_args(rate, a.overload_secs, a.overload_warmup_secs, 1.0);
        let run = self.loadgen("overload", &server, &extra).await;
        server.stop().await;
        self.result.overload = Some(Overload {
            max_in_flight: m,
            capacity_rps: capacity,
            run: run?,
        });
        self.save()
    }
}

/// Waits until the server answers: the echo server's Infer, or probserve's
/// GetHealthReport (30 s at most).
async fn wait_ready(server: &Server, echo: bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(ch) = connect(&server.addr, 1).await {
            let outcome = if echo {
                match InferCall::new(&ch, infer_request("temperature_sensor", 1, 22.0), 0, None) {
                    Ok(c) => c.call(0).await,
                    Err(_) => Outcome::Failed { code: 13 },
                }
            } else {
                match HealthReportCall::new(&ch) {
                    Ok(c) => c.call(0).await,
                    Err(_) => Outcome::Failed { code: 13 },
                }
            };
            if matches!(outcome, Outcome::Ok { .. }) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{} at {} did not become ready within 30 s",
                server.name,
                server.addr
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether probserve's Infer answers OK; the failure's status code name otherwise.
async fn probe_infer(server: &Server, samples: u32) -> Result<(), String> {
    let ch = connect(&server.addr, 1).await.map_err(|e| e.to_string())?;
    let call = InferCall::new(
        &ch,
        infer_request("temperature_sensor", samples, 22.0),
        0,
        None,
    )
    .map_err(|e| e.to_string())?;
    match call.call(0).await {
        Outcome::Ok { .. } => Ok(()),
        Outcome::Failed { code } => Err(code_name(code)),
    }
}

/// The 1-minute load average, from /proc/loadavg ("?" if unreadable).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

async fn run(mut args: Args) -> anyhow::Result<SuiteResult> {
    args.apply_smoke();
    let bin = match &args.bin_dir {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .context("locating the binary directory")?,
    };
    for sub in ["points", "logs"] {
        std::fs::create_dir_all(args.out.join(sub))
            .with_context(|| format!("creating {}", args.out.join(sub).display()))?;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let result = SuiteResult {
        schema: SUITE_SCHEMA.into(),
        date: today_utc(),
        smoke: args.smoke,
        cores,
        command: args.command.clone(),
        floor: Vec::new(),
        soak: None,
        overload: None,
        notes: Vec::new(),
    };
    let mut suite = Suite { args, bin, result };
    let started = Instant::now();
    let load_start = load_average();

    let echo = suite.start_echo().await?;
    let probserve = suite.start_probserve("main", None).await?;
    let infer_ok = match probe_infer(&probserve, 1).await {
        Ok(()) => true,
        Err(code) => {
            if suite.args.require_infer {
                bail!("probserve's Infer answered {code}");
            }
            suite.note(format!(
                "probserve's Infer answered {code}: only the echo floor was measured"
            ));
            false
        }
    };
    let floor = suite.floor(&echo, infer_ok.then_some(&probserve)).await;
    echo.stop().await;
    if let Err(e) = floor {
        probserve.stop().await;
        return Err(e);
    }

    if infer_ok && !(suite.args.skip_soak && suite.args.skip_overload) {
        let capacity = suite.capacity(&probserve).await?;
        if suite.args.skip_soak {
            suite.note("soak skipped (--skip-soak)");
        } else if let Err(e) = suite.soak(&probserve, capacity).await {
            suite.note(format!("soak failed: {e:#}"));
        }
        probserve.stop().await;
        if suite.args.skip_overload {
            suite.note("overload skipped (--skip-overload)");
        } else if let Err(e) = suite.overload(capacity).await {
            suite.note(format!("overload failed: {e:#}"));
        }
    } else {
        probserve.stop().await;
    }
    if !suite.args.smoke && suite.args.soak_secs < 600.0 && suite.result.soak.is_some() {
        let secs = suite.args.soak_secs;
        suite.note(format!("soak shortened to {secs:.0} s (--soak-secs)"));
    }
    for tag in ["main", "overload"] {
        let _ = std::fs::remove_dir_all(suite.path(&format!("probserve-data-{tag}")));
    }
    let total = started.elapsed().as_secs_f64();
    suite.note(format!(
        "suite wall time {total:.0} s (after the build); 1-minute load average {load_start} at the start, {} at the end (other work on the machine inflates it)",
        load_average()
    ));
    suite.save()?;
    let md = suite.result.markdown();
    std::fs::write(suite.path("summary.md"), &md).context("writing summary.md")?;
    Ok(suite.result)
}

fn render(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut suite: SuiteResult = serde_json::from_str(&text)?;
    suite.refresh_derived();
    Ok(suite.markdown())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.render {
        return match render(path) {
            Ok(md) => {
                print!("{md}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench_suite: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench_suite: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(result) => {
            println!("\n{}", result.markdown());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_suite: {e:#}");
            ExitCode::FAILURE
        }
    }
}
