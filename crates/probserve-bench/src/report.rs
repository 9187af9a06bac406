//! The suite's combined result (`suite.json`) and its markdown rendering: probserve
//! vs the bare-tonic floor as ratios, the targets, the soak and the overload run.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::result::RunResult;

/// The `schema` value of [`SuiteResult`].
pub const SUITE_SCHEMA: &str = "probserve-bench/suite/v1";

/// Target: probserve's throughput at concurrency 32 (1 sample) as a fraction of the floor's.
pub const TARGET_THROUGHPUT_RATIO: f64 = 0.85;
/// Target: probserve's p99 at concurrency 32 (1 sample) at most this multiple of the floor's.
pub const TARGET_P99_RATIO: f64 = 1.3;
/// Target: RSS growth over the soak after warm-up below this fraction.
pub const TARGET_RSS_GROWTH: f64 = 0.05;
/// A soak whose last-segment p99 exceeds this multiple of the first's fell behind.
pub const SATURATION_DRIFT: f64 = 2.0;

/// The overload run and what it was measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overload {
    /// The server's `max_in_flight` for this run.
    pub max_in_flight: u64,
    /// The capacity the offered rate was derived from, req/s.
    pub capacity_rps: f64,
    /// The run.
    pub run: RunResult,
}

/// The soak run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Soak {
    /// The capacity the offered rate was derived from, req/s.
    pub capacity_rps: f64,
    /// Offered load as a fraction of capacity.
    pub load_fraction: f64,
    /// The run (with drift and RSS series).
    pub run: RunResult,
}

/// Everything one suite run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteResult {
    /// Always [`SUITE_SCHEMA`].
    pub schema: String,
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Smoke mode (tiny counts; numbers meaningless).
    pub smoke: bool,
    /// CPU cores seen.
    pub cores: u64,
    /// The command that reproduces it.
    pub command: String,
    /// Closed-loop points: echo and probserve (`infer`) at each concurrency.
    pub floor: Vec<RunResult>,
    /// The soak, when run.
    pub soak: Option<Soak>,
    /// The overload run, when run.
    pub overload: Option<Overload>,
    /// Anything the reader must know (skipped parts, failures).
    pub notes: Vec<String>,
}

/// Requests per second, compact.
pub fn fmt_rate(rps: f64) -> String {
    if rps >= 10_000.0 {
        format!("{:.0} k", rps / 1000.0)
    } else if rps >= 1000.0 {
        format!("{:.1} k", rps / 1000.0)
    } else {
        format!("{rps:.0}")
    }
}

/// Microseconds, compact.
pub fn fmt_us(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else if us >= 10_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else if us >= 1000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// `a / b`, or NaN when `b` is zero.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}×")
    } else {
        "–".into()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**not met**" }
}

impl SuiteResult {
    /// Recomputes derived RSS figures from the stored samples (results written by an
    /// older version lack some).
    pub fn refresh_derived(&mut self) {
        if let Some(soak) = &mut self.soak
            && let Some(rss) = &soak.run.rss
        {
            soak.run.rss = crate::result::RssSeries::from_samples(rss.pid, rss.samples.clone());
        }
    }

    /// The echo point at `concurrency`.
    pub fn echo_at(&self, concurrency: u64) -> Option<&RunResult> {
        self.floor
            .iter()
            .find(|r| r.spec.target == "echo" && r.spec.concurrency == Some(concurrency))
    }

    /// The probserve point at `concurrency` with `samples`.
    pub fn infer_at(&self, concurrency: u64, samples: u32) -> Option<&RunResult> {
        self.floor.iter().find(|r| {
            r.spec.target == "infer"
                && r.spec.concurrency == Some(concurrency)
                && r.spec.samples == Some(samples)
        })
    }

    /// The concurrencies measured, ascending.
    pub fn concurrencies(&self) -> Vec<u64> {
        let mut c: Vec<u64> = self
            .floor
            .iter()
            .filter_map(|r| r.spec.concurrency)
            .collect();
        c.sort_unstable();
        c.dedup();
        c
    }

    /// The sample counts of the probserve points, ascending.
    pub fn sample_counts(&self) -> Vec<u32> {
        let mut s: Vec<u32> = self
            .floor
            .iter()
            .filter(|r| r.spec.target == "infer")
            .filter_map(|r| r.spec.samples)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// The markdown report.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "Measured {} on {} core(s){}. Reproduce: `{}`.\n",
            self.date,
            self.cores,
            if self.smoke {
                " — **smoke run: tiny counts, the numbers mean nothing**"
            } else {
                ""
            },
            self.command
        );
        self.floor_table(&mut md);
        self.targets(&mut md);
        self.soak_section(&mut md);
        self.overload_section(&mut md);
        if !self.notes.is_empty() {
            md.push_str("\nNotes:\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md
    }

    fn floor_table(&self, md: &mut String) {
        md.push_str(
            "| concurrency | server | req/s | × floor | p50 | × floor | p99 | × floor | response bytes |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for c in self.concurrencies() {
            let echo = self.echo_at(c);
            if let Some(e) = echo {
                let _ = writeln!(
                    md,
                    "| {c} | echo floor | {} | 1 | {} | 1 | {} | 1 | {:.0} |",
                    fmt_rate(e.throughput_rps),
                    fmt_us(e.latency_us.p50),
                    fmt_us(e.latency_us.p99),
                    e.mean_response_bytes
                );
            }
            for s in self.sample_counts() {
                let Some(p) = self.infer_at(c, s) else {
                    continue;
                };
                let (rt, r50, r99) = echo.map_or((f64::NAN, f64::NAN, f64::NAN), |e| {
                    (
                        ratio(p.throughput_rps, e.throughput_rps),
                        ratio(p.latency_us.p50 as f64, e.latency_us.p50 as f64),
                        ratio(p.latency_us.p99 as f64, e.latency_us.p99 as f64),
                    )
                });
                let failed = p.sent.saturating_sub(p.ok);
                let _ = writeln!(
                    md,
                    "| {c} | probserve, {s} sample{} | {} | {} | {} | {} | {} | {} | {:.0} |",
                    if s == 1 { "" } else { "s" },
                    fmt_rate(p.throughput_rps),
                    fmt_ratio(rt),
                    fmt_us(p.latency_us.p50),
                    fmt_ratio(r50),
                    fmt_us(p.latency_us.p99),
                    fmt_ratio(r99),
                    p.mean_response_bytes
                );
                if failed > 0 {
                    let _ = writeln!(
                        md,
                        "|  | ↳ {failed} of {} calls failed: {:?} | | | | | | | |",
                        p.sent, p.errors
                    );
                }
            }
        }
    }

    fn targets(&self, md: &mut String) {
        let (Some(e), Some(p)) = (self.echo_at(32), self.infer_at(32, 1)) else {
            md.push_str("\nTargets at concurrency 32 (1 sample): not measured in this run.\n");
            return;
        };
        let rt = ratio(p.throughput_rps, e.throughput_rps);
        let r99 = ratio(p.latency_us.p99 as f64, e.latency_us.p99 as f64);
        let _ = writeln!(
            md,
            "\nTargets (trivial model, 1 sample, concurrency 32): throughput {} of the floor \
             (target ≥ {TARGET_THROUGHPUT_RATIO}×): {}; p99 {} the floor's (target ≤ {TARGET_P99_RATIO}×): {}.",
            fmt_ratio(rt),
            verdict(rt >= TARGET_THROUGHPUT_RATIO),
            fmt_ratio(r99),
            verdict(r99 <= TARGET_P99_RATIO),
        );
    }

    fn soak_section(&self, md: &mut String) {
        let Some(s) = &self.soak else {
            md.push_str("\nSoak: not run.\n");
            return;
        };
        let r = &s.run;
        let _ = write!(
            md,
            "\nSoak: {:.0} s open loop at {} req/s ({:.0} % of the measured capacity {} req/s, {} samples), \
             after {:.0} s warm-up: {} ok, {} shed, {} other errors; p50 {}, p99 {}.",
            r.duration_secs,
            fmt_rate(r.spec.rate.unwrap_or(0.0)),
            100.0 * s.load_fraction,
            fmt_rate(s.capacity_rps),
            r.spec.samples.unwrap_or(0),
            r.spec.warmup_secs,
            r.ok,
            r.shed,
            r.errors.values().sum::<u64>(),
            fmt_us(r.latency_us.p50),
            fmt_us(r.latency_us.p99),
        );
        match &r.rss {
            Some(m) => {
                let _ = write!(
                    md,
                    " Server RSS {:.1} → {:.1} MiB (peak {:.1}): growth {:+.2} % (target < {:.0} %): {}; \
                     over the second half alone {:+.2} %.",
                    m.start_kib as f64 / 1024.0,
                    m.end_kib as f64 / 1024.0,
                    m.peak_kib as f64 / 1024.0,
                    100.0 * m.growth_fraction,
                    100.0 * TARGET_RSS_GROWTH,
                    verdict(m.growth_fraction < TARGET_RSS_GROWTH),
                    100.0 * m.second_half_growth_fraction
                );
            }
            None => md.push_str(" Server RSS: not sampled."),
        }
        match &r.drift {
            Some(d) => {
                let _ = writeln!(
                    md,
                    " p99 drift: first {:.0} s {}, last {:.0} s {} ({}).",
                    d.segment_secs,
                    fmt_us(d.first.p99),
                    d.segment_secs,
                    fmt_us(d.last.p99),
                    fmt_ratio(d.p99_ratio)
                );
            }
            None => md.push_str(" p99 drift: run too short for two segments.\n"),
        }
        if r.drift
            .as_ref()
            .is_some_and(|d| d.p99_ratio > SATURATION_DRIFT)
        {
            md.push_str(
                "The p99 grew over the soak: the server fell behind the offered load \
                 (a growing queue of calls), so the RSS growth includes the queued calls \
                 and is not by itself evidence of a leak.\n",
            );
        }
    }

    fn overload_section(&self, md: &mut String) {
        let Some(o) = &self.overload else {
            md.push_str("\nOverload: not run.\n");
            return;
        };
        let r = &o.run;
        let _ = writeln!(
            md,
            "\nOverload: {:.0} s open loop at {} req/s offered (2× the capacity {} req/s, {} samples) \
             against `max_in_flight = {}`: {} sent, {:.1} % shed (RESOURCE_EXHAUSTED), {} other errors {:?}; \
             admitted calls: {} ok/s, p50 {}, p99 {} (from the intended send time).",
            r.duration_secs,
            fmt_rate(r.spec.rate.unwrap_or(0.0)),
            fmt_rate(o.capacity_rps),
            r.spec.samples.unwrap_or(0),
            o.max_in_flight,
            r.sent,
            100.0 * r.shed_fraction,
            r.errors.values().sum::<u64>(),
            r.errors,
            fmt_rate(r.throughput_rps),
            fmt_us(r.latency_us.p50),
            fmt_us(r.latency_us.p99),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::tests::sample_result;

    fn suite(infer_rate_ok: u64, infer_p99_us: u64) -> SuiteResult {
        SuiteResult {
            schema: SUITE_SCHEMA.into(),
            date: "2026-01-02".into(),
            smoke: false,
            cores: 2,
            command: "scripts/bench.sh".into(),
            floor: vec![
                sample_result("echo", 32, 1, 1000, 400, 1.0),
                sample_result("infer", 32, 1, infer_rate_ok, infer_p99_us, 1.0),
                sample_result("infer", 32, 1000, 100, 4000, 1.0),
            ],
            soak: None,
            overload: None,
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn markdown_reports_ratios_and_verdicts() {
        let md = suite(900, 480).markdown();
        assert!(
            md.contains("| 32 | echo floor | 1.0 k | 1 | 400 µs"),
            "{md}"
        );
        assert!(
            md.contains("| 32 | probserve, 1 sample | 900 | 0.90× | 480 µs | 1.20×"),
            "{md}"
        );
        assert!(
            md.contains("| 32 | probserve, 1000 samples | 100 | 0.10×"),
            "{md}"
        );
        assert!(
            md.contains("throughput 0.90× of the floor (target ≥ 0.85×): **met**"),
            "{md}"
        );
        assert!(md.contains("(target ≤ 1.3×): **met**"), "{md}");
        assert!(md.contains("- a note"));
        assert!(md.contains("Soak: not run."));
        let md = suite(800, 600).markdown();
        assert!(
            md.contains("0.80× of the floor (target ≥ 0.85×): **not met**"),
            "{md}"
        );
        assert!(
            md.contains("1.50× the floor's (target ≤ 1.3×): **not met**"),
            "{md}"
        );
    }

    #[test]
    fn soak_and_overload_sections() {
        let mut s = suite(900, 480);
        let mut soak = sample_result("infer", 0, 1000, 300, 2000, 3.0);
        soak.spec.rate = Some(100.0);
        s.soak = Some(Soak {
            capacity_rps: 1000.0,
            load_fraction: 0.7,
            run: soak,
        });
        s.overload = Some(Overload {
            max_in_flight: 64,
            capacity_rps: 1000.0,
            run: sample_result("infer", 0, 1000, 300, 3000, 1.0),
        });
        let md = s.markdown();
        // RSS 1000 -> 1020 KiB: +2 %, below the 5 % target.
        assert!(
            md.contains("growth +2.00 % (target < 5 %): **met**"),
            "{md}"
        );
        assert!(
            md.contains("p99 drift: first 1 s 2.0 ms, last 1 s 2.0 ms (1.00×)"),
            "{md}"
        );
        assert!(
            md.contains("against `max_in_flight = 64`: 302 sent, 0.3 % shed"),
            "{md}"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_rate(61_234.0), "61 k");
        assert_eq!(fmt_rate(6_612.0), "6.6 k");
        assert_eq!(fmt_rate(612.4), "612");
        assert_eq!(fmt_us(140), "140 µs");
        assert_eq!(fmt_us(4_200), "4.2 ms");
        assert_eq!(fmt_us(12_600), "13 ms");
        assert_eq!(fmt_us(12_263_000), "12.3 s");
        assert!(ratio(1.0, 0.0).is_nan());
        assert_eq!(fmt_ratio(f64::NAN), "–");
    }

    #[test]
    fn suite_json_round_trips() {
        let s = suite(900, 480);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["schema"], SUITE_SCHEMA);
        assert_eq!(v["floor"].as_array().unwrap().len(), 3);
        let back: SuiteResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        assert_eq!(s.concurrencies(), vec![32]);
        assert_eq!(s.sample_counts(), vec![1, 1000]);
    }
}
