//! The JSON result of one load-generator run (`loadgen --json`), and the human
//! summary printed next to it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::code_name;
use crate::driver::RunOutput;
use crate::stats::{LatencySummary, WindowSummary};

/// The `schema` value of [`RunResult`].
pub const RUN_SCHEMA: &str = "probserve-bench/run/v1";

/// How load was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Fixed concurrency.
    Closed,
    /// Fixed arrival rate.
    Open,
}

/// What was run against what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// A free-form label (e.g. `infer-s1-c32`).
    pub label: String,
    /// `echo`, `infer` or `health`.
    pub target: String,
    /// `host:port`.
    pub addr: String,
    /// Closed or open loop.
    pub mode: Mode,
    /// Closed loop: workers.
    pub concurrency: Option<u64>,
    /// Open loop: intended calls per second.
    pub rate: Option<f64>,
    /// Open loop: most calls in flight.
    pub max_outstanding: Option<u64>,
    /// Importance samples per `Infer` call (None for `health`).
    pub samples: Option<u32>,
    /// HTTP/2 connections.
    pub connections: u64,
    /// Warm-up seconds (not recorded).
    pub warmup_secs: f64,
}

/// First and last segment of a run, for latency drift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Segment length, seconds.
    pub segment_secs: f64,
    /// Successful calls sent in the first segment.
    pub first: LatencySummary,
    /// ... and in the last.
    pub last: LatencySummary,
    /// `last.p99 / first.p99`.
    pub p99_ratio: f64,
}

/// Resident memory of a process (the server) sampled during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RssSeries {
    /// The process.
    pub pid: u32,
    /// `(seconds after the start of measurement, KiB)`.
    pub samples: Vec<(f64, u64)>,
    /// The first sample (after warm-up), KiB.
    pub start_kib: u64,
    /// The last sample, KiB.
    pub end_kib: u64,
    /// The largest sample, KiB.
    pub peak_kib: u64,
    /// `(end - start) / start`.
    pub growth_fraction: f64,
    /// Growth over the second half of the run, `(end - mid) / mid` with `mid` the
    /// first sample at or after half-time: a leak keeps growing, a high-water mark
    /// (allocator arenas, pools) levels off.
    #[serde(default)]
    pub second_half_growth_fraction: f64,
}

impl RssSeries {
    /// Summarizes samples; `None` without samples.
    pub fn from_samples(pid: u32, samples: Vec<(f64, u64)>) -> Option<Self> {
        let start = samples.first()?.1;
        let end = samples.last()?.1;
        let peak = samples.iter().map(|s| s.1).max()?;
        let half = samples.last()?.0 / 2.0;
        let mid = samples.iter().find(|s| s.0 >= half).map_or(end, |s| s.1);
        let growth = |from: u64| {
            if from == 0 {
                0.0
            } else {
                (end as f64 - from as f64) / from as f64
            }
        };
        Some(Self {
            pid,
            growth_fraction: growth(start),
            second_half_growth_fraction: growth(mid),
            start_kib: start,
            end_kib: end,
            peak_kib: peak,
            samples,
        })
    }
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Always [`RUN_SCHEMA`].
    pub schema: String,
    /// What was run.
    pub spec: RunSpec,
    /// From the start of measurement to the last measured answer, seconds.
    pub duration_secs: f64,
    /// Measured calls sent.
    pub sent: u64,
    /// Warm-up calls sent.
    pub warmup_calls: u64,
    /// Successful calls.
    pub ok: u64,
    /// Calls shed with RESOURCE_EXHAUSTED.
    pub shed: u64,
    /// Other failures by status-code name.
    pub errors: BTreeMap<String, u64>,
    /// `shed / sent`.
    pub shed_fraction: f64,
    /// Successful calls per second.
    pub throughput_rps: f64,
    /// Open loop: the rate offered (sent / duration).
    pub offered_rps: Option<f64>,
    /// Latency of successful calls, µs (open loop: from the intended send time).
    pub latency_us: LatencySummary,
    /// Mean encoded response size of successful calls, bytes.
    pub mean_response_bytes: f64,
    /// Open loop: the generator's largest lag behind its schedule, µs.
    pub max_send_lag_us: u64,
    /// Window length, seconds.
    pub window_secs: f64,
    /// Per-window counts and percentiles.
    pub windows: Vec<WindowSummary>,
    /// First vs last segment, when asked for.
    pub drift: Option<Drift>,
    /// The server's memory during the run, when asked for.
    pub rss: Option<RssSeries>,
}

impl RunResult {
    /// Builds the result of a run. `drift_segment` asks for first-vs-last-segment
    /// latency (when the run is at least two segments long).
    pub fn new(
        spec: RunSpec,
        out: &RunOutput,
        drift_segment: Option<Duration>,
        rss: Option<RssSeries>,
    ) -> Self {
        let r = &out.recorder;
        let secs = out.measured.as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let drift = drift_segment.and_then(|seg| {
            let windows = r.windows().len() as u32;
            let span = r.window() * windows;
            if seg.is_zero() || span < seg * 2 {
                return None;
            }
            let first = r.segment(Duration::ZERO, seg);
            let last = r.segment(span - seg, span);
            Some(Drift {
                segment_secs: seg.as_secs_f64(),
                p99_ratio: if first.p99 == 0 {
                    0.0
                } else {
                    last.p99 as f64 / first.p99 as f64
                },
                first,
                last,
            })
        });
        let offered = (spec.mode == Mode::Open).then(|| per_sec(out.sent));
        Self {
            schema: RUN_SCHEMA.to_string(),
            duration_secs: secs,
            sent: out.sent,
            warmup_calls: out.warmup_calls,
            ok: r.ok(),
            shed: r.shed(),
            errors: r
                .errors()
                .iter()
                .map(|(c, n)| (code_name(*c), *n))
                .collect(),
            shed_fraction: if out.sent == 0 {
                0.0
            } else {
                r.shed() as f64 / out.sent as f64
            },
            throughput_rps: per_sec(r.ok()),
            offered_rps: offered,
            latency_us: r.latency(),
            mean_response_bytes: r.mean_response_bytes(),
            max_send_lag_us: u64::try_from(out.max_send_lag.as_micros()).unwrap_or(u64::MAX),
            window_secs: r.window().as_secs_f64(),
            windows: r.windows(),
            drift,
            rss,
            spec,
        }
    }

    /// A few lines for people.
    pub fn human(&self) -> String {
        let s = &self.spec;
        let l = &self.latency_us;
        let load = match s.mode {
            Mode::Closed => format!("closed loop, concurrency {}", s.concurrency.unwrap_or(0)),
            Mode::Open => format!(
                "open loop, {:.0} req/s offered (max {} outstanding)",
                s.rate.unwrap_or(0.0),
                s.max_outstanding.unwrap_or(0)
            ),
        };
        let mut out = format!(
            "{} -> {} {} ({}), {} connection(s), samples {}\n",
            s.label,
            s.target,
            s.addr,
            load,
            s.connections,
            s.samples.map_or("-".into(), |n| n.to_string()),
        );
        let _ = writeln!(
            out,
            "  {} sent in {:.2} s: {} ok, {} shed ({:.1} %), {} other errors {:?}",
            self.sent,
            self.duration_secs,
            self.ok,
            self.shed,
            100.0 * self.shed_fraction,
            self.errors.values().sum::<u64>(),
            self.errors
        );
        let _ = writeln!(
            out,
            "  throughput {:.0} ok/s; latency us: p50 {} p90 {} p99 {} p99.9 {} max {} (mean {:.0}); response {:.0} B",
            self.throughput_rps,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
            self.mean_response_bytes
        );
        if let Some(d) = &self.drift {
            let _ = writeln!(
                out,
                "  drift: p99 first {:.0} s {} us, last {} us (x{:.2})",
                d.segment_secs, d.first.p99, d.last.p99, d.p99_ratio
            );
        }
        if let Some(r) = &self.rss {
            let _ = writeln!(
                out,
                "  server RSS: {} -> {} KiB (peak {}), growth {:+.2} % (second half {:+.2} %)",
                r.start_kib,
                r.end_kib,
                r.peak_kib,
                100.0 * r.growth_fraction,
                100.0 * r.second_half_growth_fraction
            );
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::{Outcome, Recorder};

    /// A run of `ok` successful calls of `latency_us` each (plus 1 shed, 1 UNAVAILABLE)
    /// over `secs` seconds.
    pub(crate) fn sample_result(
        target: &str,
        concurrency: u64,
        samples: u32,
        ok: u64,
        latency_us: u64,
        secs: f64,
    ) -> RunResult {
        let mut rec = Recorder::new(Duration::from_secs(1));
        for i in 0..ok {
            let at = Duration::from_secs_f64(secs * i as f64 / ok as f64);
            rec.record(
                at,
                Duration::from_micros(latency_us),
                Outcome::Ok {
                    response_bytes: 150,
                },
            );
        }
        rec.record(
            Duration::ZERO,
            Duration::from_micros(5),
            Outcome::Failed { code: 8 },
        );
        rec.record(
            Duration::ZERO,
            Duration::from_micros(5),
            Outcome::Failed { code: 14 },
        );
        let out = RunOutput {
            sent: rec.total(),
            recorder: rec,
            measured: Duration::from_secs_f64(secs),
            warmup_calls: 3,
            max_send_lag: Duration::from_micros(7),
        };
        let spec = RunSpec {
            label: format!("{target}-c{concurrency}"),
            target: target.into(),
            addr: "127.0.0.1:1".into(),
            mode: Mode::Closed,
            concurrency: Some(concurrency),
            rate: None,
            max_outstanding: None,
            samples: Some(samples),
            connections: 4,
            warmup_secs: 0.0,
        };
        let rss = RssSeries::from_samples(42, vec![(0.0, 1000), (1.0, 1100), (2.0, 1020)]);
        RunResult::new(spec, &out, Some(Duration::from_secs(1)), rss)
    }

    #[test]
    fn json_shape_is_stable() {
        let r = sample_result("infer", 8, 1, 400, 250, 4.0);
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "schema",
            "spec",
            "duration_secs",
            "sent",
            "warmup_calls",
            "ok",
            "shed",
            "errors",
            "shed_fraction",
            "throughput_rps",
            "offered_rps",
            "latency_us",
            "mean_response_bytes",
            "max_send_lag_us",
            "window_secs",
            "windows",
            "drift",
            "rss",
        ];
        expected.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, expected);
        assert_eq!(v["schema"], RUN_SCHEMA);
        assert_eq!(v["spec"]["mode"], "closed");
        assert_eq!(v["spec"]["concurrency"], 8);
        assert_eq!(v["ok"], 400);
        assert_eq!(v["shed"], 1);
        assert_eq!(v["sent"], 402);
        assert_eq!(v["errors"]["Unavailable"], 1);
        assert_eq!(v["throughput_rps"], 100.0);
        assert_eq!(v["offered_rps"], serde_json::Value::Null);
        for k in ["count", "min", "mean", "p50", "p90", "p99", "p999", "max"] {
            assert!(v["latency_us"].get(k).is_some(), "latency_us.{k}");
        }
        assert_eq!(v["latency_us"]["p50"], 250);
        assert_eq!(v["windows"].as_array().unwrap().len(), 4);
        assert_eq!(v["windows"][0]["ok"], 100);
        assert_eq!(v["drift"]["segment_secs"], 1.0);
        assert_eq!(v["drift"]["p99_ratio"], 1.0);
        assert_eq!(v["rss"]["start_kib"], 1000);
        assert_eq!(v["rss"]["peak_kib"], 1100);
        assert!((v["rss"]["growth_fraction"].as_f64().unwrap() - 0.02).abs() < 1e-12);
        // Half-time is 1.0 s: the sample there is 1100 KiB.
        let second = v["rss"]["second_half_growth_fraction"].as_f64().unwrap();
        assert!((second - (1020.0 - 1100.0) / 1100.0).abs() < 1e-12);
        // Round trip.
        let back: RunResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        assert!(r.human().contains("400 ok"));
    }

    #[test]
    fn drift_needs_two_segments() {
        let r = sample_result("infer", 1, 1, 10, 100, 0.9);
        assert!(r.drift.is_none());
        assert!(RssSeries::from_samples(1, Vec::new()).is_none());
    }
}
