//! Burn-rate and budget tests against the SRE Workbook's worked numbers, with a
//! fake time moved minute by minute.

use std::time::{Duration, Instant};

use super::*;

const MINUTES_IN_30_DAYS: u64 = 30 * 24 * 60;

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

fn assert_close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "got {got}, want {want}"
    );
}

fn tracker(objective: Objective) -> SloTracker {
    SloTracker::new(SloConfig::new(objective)).expect("valid config")
}

fn availability(target: f64) -> SloTracker {
    tracker(Objective::Availability { target })
}

/// A tracker with 30 days of 10,000 calls a minute, the last `incident` minutes of
/// which had `bad_per_10k` bad calls; and the last millisecond of that month.
fn month_with_incident(target: f64, bad_per_10k: u64, incident: u64) -> (SloTracker, Instant) {
    let mut slo = availability(target);
    let t0 = Instant::now();
    for m in 0..MINUTES_IN_30_DAYS {
        let bad = if m >= MINUTES_IN_30_DAYS - incident {
            bad_per_10k
        } else {
            0
        };
        slo.record_counts(Counts { total: 10_000, bad }, t0 + minutes(m));
    }
    let end = t0 + minutes(MINUTES_IN_30_DAYS) - Duration::from_millis(1);
    (slo, end)
}

#[test]
fn budget_consumed_matches_the_workbook_table() {
    let period = DEFAULT_PERIOD;
    assert_close(budget_consumed(14.4, HOUR, period), 0.02);
    assert_close(budget_consumed(6.0, 6 * HOUR, period), 0.05);
    assert_close(budget_consumed(3.0, 24 * HOUR, period), 0.10);
    assert_close(budget_consumed(1.0, 72 * HOUR, period), 0.10);
    // Table 5-4: a burn rate of 1000 (100 % errors at 99.9 %) spends it all in 43.2 min.
    assert_close(budget_consumed(1000.0, minutes(432) / 10, period), 1.0);
}

#[test]
fn a_burn_of_14_4_for_one_hour_spends_2_percent_of_a_30_day_budget() {
    // 14.4 × 0.1 % = 1.44 % of the calls fail for the last hour.
    let (slo, end) = month_with_incident(0.999, 144, 60);
    assert_close(slo.burn_rate(HOUR, end).expect("events"), 14.4);
    assert_close(slo.burn_rate(minutes(5), end).expect("events"), 14.4);
    assert_close(slo.burn_rate(6 * HOUR, end).expect("events"), 14.4 / 6.0);
    let report = slo.evaluate(end);
    assert_close(report.budget_remaining, 0.98);
    let total = 10_000 * MINUTES_IN_30_DAYS;
    assert_eq!(
        report.period_counts,
        Counts {
            total,
            bad: 144 * 60
        }
    );
    assert_eq!(report.retained, DEFAULT_PERIOD - Duration::from_millis(1));
    // Exactly at the threshold does not fire: the Workbook's rules use `>`.
    assert!(!report.alerts[0].firing);
}

#[test]
fn a_burn_of_6_for_six_hours_spends_5_percent() {
    let (slo, end) = month_with_incident(0.999, 60, 6 * 60);
    assert_close(slo.burn_rate(6 * HOUR, end).expect("events"), 6.0);
    assert_close(slo.burn_rate(minutes(30), end).expect("events"), 6.0);
    assert_close(slo.budget_remaining(end), 0.95);
}

#[test]
fn a_burn_of_1_for_three_days_spends_10_percent() {
    let (slo, end) = month_with_incident(0.999, 10, 3 * 24 * 60);
    assert_close(slo.burn_rate(72 * HOUR, end).expect("events"), 1.0);
    assert_close(slo.burn_rate(6 * HOUR, end).expect("events"), 1.0);
    assert_close(slo.budget_remaining(end), 0.90);
}

#[test]
fn a_90_percent_slo_never_pages_on_a_full_one_hour_outage() {
    // The Workbook's caution: at 90 % a total outage burns at only 10 < 14.4, and
    // an hour of it spends 1.4 % of the budget.
    let (slo, end) = month_with_incident(0.9, 10_000, 60);
    let report = slo.evaluate(end);
    assert_close(report.alerts[0].long_burn_rate.expect("events"), 10.0);
    assert!(report.alerts.iter().all(|a| !a.firing));
    assert_close(1.0 - report.budget_remaining, 10.0 / 720.0);
}

#[test]
fn errors_at_exactly_the_budget_burn_at_1_in_every_window() {
    let mut slo = availability(0.999);
    let t0 = Instant::now();
    for m in 0..7 * 60 {
        slo.record_counts(
            Counts {
                total: 1_000,
                bad: 1,
            },
            t0 + minutes(m),
        );
    }
    let end = t0 + minutes(7 * 60) - Duration::from_millis(1);
    for window in [minutes(5), minutes(30), HOUR, 6 * HOUR, 72 * HOUR] {
        assert_close(slo.burn_rate(window, end).expect("events"), 1.0);
    }
}

#[test]
fn a_full_outage_pages_within_a_minute_and_stops_one_short_window_after() {
    let mut slo = availability(0.999);
    let t0 = Instant::now();
    let end_of = |m: u64| t0 + minutes(m + 1) - Duration::from_millis(1);
    // Two good hours, ten minutes of 100 % errors, then good again.
    for m in 0..140 {
        let bad = if (120..130).contains(&m) { 100 } else { 0 };
        slo.record_counts(Counts { total: 100, bad }, t0 + minutes(m));
        let report = slo.evaluate(end_of(m));
        let firing: Vec<bool> = report.alerts.iter().map(|a| a.firing).collect();
        if m == 120 {
            let first = report.alerts[0];
            assert_close(
                first.long_burn_rate.expect("events"),
                100.0 / 6_000.0 / 0.001,
            );
            assert_close(first.short_burn_rate.expect("events"), 0.2 / 0.001);
        }
        match m {
            ..120 => assert_eq!(firing, [false, false, false], "minute {m}"),
            // One minute of outage is already a 16.7× burn over the hour.
            120..134 => assert!(firing[0], "minute {m}"),
            // The 5-minute window ending at minute 134 no longer holds minute 129.
            _ => assert!(!firing[0], "minute {m}"),
        }
    }
}

#[test]
fn no_events_means_no_burn_rate_no_alert_and_a_full_budget() {
    let slo = availability(0.999);
    let now = Instant::now();
    assert_eq!(slo.burn_rate(HOUR, now), None);
    let report = slo.evaluate(now);
    assert!(
        report
            .alerts
            .iter()
            .all(|a| !a.firing && a.long_burn_rate.is_none())
    );
    assert_eq!(report.budget_remaining, 1.0);
    assert_eq!(report.retained, Duration::ZERO);
    assert_eq!(report.period_counts, Counts::default());
}

#[test]
fn a_latency_objective_counts_calls_over_the_threshold_as_bad() {
    let threshold = Duration::from_millis(300);
    let mut slo = tracker(Objective::Latency {
        target: 0.99,
        threshold,
    });
    let now = Instant::now();
    for (failed, ms) in [(true, 10), (false, 300), (false, 301), (true, 900)] {
        let duration = Duration::from_millis(ms);
        slo.record(Outcome { failed, duration }, now);
    }
    assert_eq!(slo.counts(minutes(5), now), Counts { total: 4, bad: 2 });
    let mut slo = availability(0.99);
    slo.record(
        Outcome {
            failed: true,
            duration: Duration::ZERO,
        },
        now,
    );
    slo.record(
        Outcome {
            failed: false,
            duration: HOUR,
        },
        now,
    );
    assert_eq!(slo.counts(minutes(5), now), Counts { total: 2, bad: 1 });
}

#[test]
fn old_events_leave_each_window_and_the_period() {
    let mut slo = availability(0.999);
    let t0 = Instant::now();
    slo.record_counts(Counts { total: 10, bad: 10 }, t0);
    let good = Counts { total: 1, bad: 0 };
    slo.record_counts(good, t0 + 6 * HOUR);
    // The minute buckets hold 6 hours: at 6 h the burst of minute 0 has left them.
    assert_eq!(slo.counts(6 * HOUR, t0 + 6 * HOUR), good);
    // The hour buckets still hold it.
    let both = Counts { total: 11, bad: 10 };
    assert_eq!(slo.counts(72 * HOUR, t0 + 6 * HOUR), both);
    assert_eq!(slo.counts(72 * HOUR, t0 + 72 * HOUR), good);
    assert_eq!(slo.counts(DEFAULT_PERIOD, t0 + 72 * HOUR), both);
    // After 30 days nothing of the burst is retained.
    let later = t0 + DEFAULT_PERIOD + HOUR;
    slo.record_counts(good, later);
    assert_eq!(
        slo.counts(DEFAULT_PERIOD, later),
        Counts { total: 2, bad: 0 }
    );
    assert_eq!(slo.budget_remaining(later), 1.0);
    assert_eq!(slo.evaluate(later).retained, DEFAULT_PERIOD);
    // A time that goes backwards counts in the current bucket.
    slo.record_counts(Counts { total: 1, bad: 1 }, t0);
    assert_eq!(slo.counts(minutes(1), later), Counts { total: 2, bad: 1 });
}

#[test]
fn a_bad_config_is_refused_with_its_value() {
    let availability = |target| SloConfig::new(Objective::Availability { target });
    for target in [0.0, 1.0, 1.5, f64::NAN] {
        assert!(matches!(
            availability(target).validate(),
            Err(SloError::Target { .. })
        ));
    }
    let zero = Objective::Latency {
        target: 0.99,
        threshold: Duration::ZERO,
    };
    assert_eq!(
        SloConfig::new(zero).validate(),
        Err(SloError::ZeroLatencyThreshold)
    );
    let with = |f: fn(&mut SloConfig)| {
        let mut config = availability(0.999);
        f(&mut config);
        config.validate()
    };
    assert_eq!(with(|_| {}), Ok(()));
    for period in [Duration::ZERO, minutes(90), MAX_PERIOD + HOUR] {
        let mut config = availability(0.999);
        config.period = period;
        assert_eq!(config.validate(), Err(SloError::Period { period }));
    }
    let alert_error = |result: Result<(), SloError>| match result {
        Err(SloError::Alert { index, .. }) => Some(index),
        _ => None,
    };
    // The 3-day ticket does not fit a 1-day period.
    assert_eq!(alert_error(with(|c| c.period = 24 * HOUR)), Some(2));
    assert_eq!(alert_error(with(|c| c.alerts[0].burn_rate = 0.0)), Some(0));
    assert_eq!(
        alert_error(with(|c| c.alerts[1].short_window = 6 * HOUR)),
        Some(1)
    );
    assert_eq!(
        alert_error(with(|c| c.alerts[0].short_window = Duration::from_secs(90))),
        Some(0)
    );
    assert_eq!(
        alert_error(with(|c| c.alerts[2].short_window = minutes(450))),
        Some(2)
    );
    let error = with(|c| c.alerts[0].burn_rate = f64::INFINITY).expect_err("infinite");
    assert!(error.to_string().starts_with("alert rule 0:"));
}

#[test]
fn the_default_alerts_are_the_workbooks() {
    let config = SloConfig::new(Objective::Availability { target: 0.999 });
    assert_eq!(config.period, Duration::from_secs(30 * 24 * 3_600));
    let rules: Vec<(&str, u64, u64, f64)> = config
        .alerts
        .iter()
        .map(|r| {
            let (long, short) = (r.long_window.as_secs() / 60, r.short_window.as_secs() / 60);
            (r.severity.as_str(), long, short, r.burn_rate)
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("page", 60, 5, 14.4),
            ("page", 360, 30, 6.0),
            ("ticket", 4_320, 360, 1.0)
        ]
    );
    for rule in &config.alerts {
        // Each pair's short window is 1/12 of its long one.
        assert_eq!(rule.long_window, rule.short_window * 12);
    }
}
