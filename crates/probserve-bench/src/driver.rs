//! Load drivers, generic over an async [`Call`].
//!
//! - [`run_closed`]: a fixed number of workers, each sending its next call as soon as
//!   the previous one answered (throughput at a given concurrency).
//! - [`run_open`]: calls sent at a fixed rate whatever the answers do; latency is
//!   measured from each call's intended send time (see [`crate::schedule`]). The
//!   schedule runs on its own OS thread (sub-millisecond sleeps; tokio's timer ticks
//!   in milliseconds) and spawns each call onto the runtime; `max_outstanding` bounds
//!   the calls in flight, and time spent waiting for a slot is charged to the call.
//!
//! Both run an optional warm-up (same load, not recorded) and are bounded by a count
//! of measured calls or a measured duration. Calls are recorded into a few shards
//! (one mutex each) that are merged at the end.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::BenchError;
use crate::schedule::{OpenLoopSchedule, corrected_latency};
use crate::stats::{Outcome, Recorder};

/// One kind of call the drivers can send.
pub trait Call: Send + Sync + 'static {
    /// Sends call number `index` (0-based within the run; warm-up calls use indices
    /// from `1 << 62` on) and reports its outcome.
    fn call(&self, index: u64) -> impl Future<Output = Outcome> + Send;
}

/// Where a run stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// After this many measured calls.
    Requests(u64),
    /// After this long of measurement (calls sent within it are waited for).
    Duration(Duration),
}

/// Settings shared by both drivers.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Where the run stops.
    pub bound: Bound,
    /// Warm-up before measurement, at the same load; not recorded.
    pub warmup: Duration,
    /// Length of the recorder's time windows.
    pub window: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Every measured call.
    pub recorder: Recorder,
    /// From the start of measurement to the last measured answer.
    pub measured: Duration,
    /// Measured calls sent.
    pub sent: u64,
    /// Warm-up calls sent.
    pub warmup_calls: u64,
    /// Open loop: the largest delay between a call's intended and actual send time
    /// (the generator's own lag; charged to the calls' latencies).
    pub max_send_lag: Duration,
}

/// First index of warm-up calls, so they never share seeds with measured calls.
pub const WARMUP_INDEX_BASE: u64 = 1 << 62;

const SHARDS: usize = 4;

struct Shards(Vec<Mutex<Recorder>>);

impl Shards {
    fn new(window: Duration) -> Self {
        Self(
            (0..SHARDS)
                .map(|_| Mutex::new(Recorder::new(window)))
                .collect(),
        )
    }

    fn record(&self, index: u64, at: Duration, latency: Duration, outcome: Outcome) {
        // index % SHARDS < SHARDS = self.0.len().
        let shard = (index % SHARDS as u64) as usize;
        if let Some(m) = self.0.get(shard) {
            m.lock().record(at, latency, outcome);
        }
    }

    fn merge(&self, window: Duration) -> Result<Recorder, BenchError> {
        let mut all = Recorder::new(window);
        for s in &self.0 {
            all.merge(&s.lock())?;
        }
        Ok(all)
    }
}

fn invalid(name: &'static str, reason: &str) -> BenchError {
    BenchError::InvalidParameter {
        name,
        reason: reason.to_string(),
    }
}

/// Shows progress: per call for count-bounded runs, by elapsed time (a ticker)
/// for duration-bounded ones. Returns the ticker's stop flag.
fn start_progress(pb: &ProgressBar, bound: Bound, measure_start: Instant) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    match bound {
        Bound::Requests(n) => pb.set_length(n),
        Bound::Duration(d) => {
            let total = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            pb.set_length(total);
            let (pb, stop) = (pb.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ms = Instant::now().saturating_duration_since(measure_start);
                    pb.set_position(u64::try_from(ms.as_millis()).unwrap_or(u64::MAX).min(total));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
    }
    stop
}

/// Runs `concurrency` workers, each sending calls back to back.
pub async fn run_closed<C: Call>(
    caller: Arc<C>,
    concurrency: usize,
    cfg: &RunConfig,
    pb: ProgressBar,
) -> Result<RunOutput, BenchError> {
    if concurrency == 0 {
        return Err(invalid("concurrency", "must be at least 1"));
    }
    let t0 = Instant::now();
    let measure_start = t0 + cfg.warmup;
    let (end, limit) = match cfg.bound {
        Bound::Duration(d) => (Some(measure_start + d), u64::MAX),
        Bound::Requests(n) => (None, n),
    };
    let count_progress = matches!(cfg.bound, Bound::Requests(_));
    let shards = Arc::new(Shards::new(cfg.window));
    let issued = Arc::new(AtomicU64::new(0));
    let warm = Arc::new(AtomicU64::new(0));
    let stop_ticker = start_progress(&pb, cfg.bound, measure_start);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (caller, shards, issued, warm, pb) = (
            Arc::clone(&caller),
            Arc::clone(&shards),
            Arc::clone(&issued),
            Arc::clone(&warm),
            pb.clone(),
        );
        workers.spawn(async move {
            let mut last_done = measure_start;
            loop {
                let start = Instant::now();
                if start < measure_start {
                    let i = WARMUP_INDEX_BASE + warm.fetch_add(1, Ordering::Relaxed);
                    let _ = caller.call(i).await;
                    continue;
                }
                if end.is_some_and(|e| start >= e) {
                    break;
                }
                let i = issued.fetch_add(1, Ordering::Relaxed);
                if i >= limit {
                    break;
                }
                let outcome = caller.call(i).await;
                let done = Instant::now();
                shards.record(i, start - measure_start, done - start, outcome);
                if count_progress {
                    pb.inc(1);
                }
                last_done = last_done.max(done);
            }
            last_done
        });
    }
    let mut last = measure_start;
    while let Some(r) = workers.join_next().await {
        if let Ok(t) = r {
            last = last.max(t);
        }
    }
    stop_ticker.store(true, Ordering::Relaxed);
    pb.finish();
    let recorder = shards.merge(cfg.window)?;
    Ok(RunOutput {
        sent: recorder.total(),
        recorder,
        measured: last.saturating_duration_since(measure_start),
        warmup_calls: warm.load(Ordering::Relaxed),
        max_send_lag: Duration::ZERO,
    })
}

/// Sends calls at `rate` per second, at most `max_outstanding` in flight.
pub async fn run_open<C: Call>(
    caller: Arc<C>,
    rate: f64,
    max_outstanding: usize,
    cfg: &RunConfig,
    pb: ProgressBar,
) -> Result<RunOutput, BenchError> {
    let schedule = OpenLoopSchedule::new(rate)?;
    let permits = u32::try_from(max_outstanding)
        .ok()
        .filter(|&p| p >= 1 && (p as usize) <= Semaphore::MAX_PERMITS)
        .ok_or_else(|| invalid("max_outstanding", "must be in 1..=2^32-1"))?;
    let warm_n = schedule.count_within(cfg.warmup);
    let measured_n = match cfg.bound {
        Bound::Requests(n) => n,
        Bound::Duration(d) => schedule.count_within(cfg.warmup + d).saturating_sub(warm_n),
    };
    let total = warm_n + measured_n;
    // Measurement starts at the first measured call's intended time.
    let measure_offset = schedule.intended_offset(warm_n);
    let shards = Arc::new(Shards::new(cfg.window));
    let sem = Arc::new(Semaphore::new(permits as usize));
    let last_done = Arc::new(AtomicU64::new(0));
    let handle = tokio::runtime::Handle::current();
    let t0 = Instant::now();
    let stop_ticker = start_progress(&pb, cfg.bound, t0 + measure_offset);
    let count_progress = matches!(cfg.bound, Bound::Requests(_));

    let (tx, rx) = tokio::sync::oneshot::channel();
    {
        let (sem, shards, last_done, pb) = (
            Arc::clone(&sem),
            Arc::clone(&shards),
            Arc::clone(&last_done),
            pb.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("open-loop-schedule".into())
            .spawn(move || {
                let mut max_lag = Duration::ZERO;
                for i in 0..total {
                    let intended = schedule.intended_offset(i);
                    let now = t0.elapsed();
                    if intended > now {
                        std::thread::sleep(intended - now);
                    }
                    let permit = match Arc::clone(&sem).try_acquire_owned() {
                        Ok(p) => p,
                        Err(_) => match handle.block_on(Arc::clone(&sem).acquire_owned()) {
                            Ok(p) => p,
                            Err(_) => break, // closed: cannot happen, we never close it
                        },
                    };
                    max_lag = max_lag.max(t0.elapsed().saturating_sub(intended));
                    let measured = i >= warm_n;
                    let index = if measured {
                        i - warm_n
                    } else {
                        WARMUP_INDEX_BASE + i
                    };
                    let (caller, shards, last_done, pb) = (
                        Arc::clone(&caller),
                        Arc::clone(&shards),
                        Arc::clone(&last_done),
                        pb.clone(),
                    );
                    handle.spawn(async move {
                        let outcome = caller.call(index).await;
                        let done = t0.elapsed();
                        if measured {
                            let latency = corrected_latency(intended, done);
                            shards.record(index, intended - measure_offset, latency, outcome);
                            let nanos = u64::try_from(done.as_nanos()).unwrap_or(u64::MAX);
                            last_done.fetch_max(nanos, Ordering::Relaxed);
                            if count_progress {
                                pb.inc(1);
                            }
                        }
                        drop(permit);
                    });
                }
                let _ = tx.send(max_lag);
            });
        if let Err(e) = spawned {
            return Err(BenchError::Io {
                context: "starting the schedule thread".into(),
                source: e,
            });
        }
    }
    let max_send_lag = rx.await.unwrap_or(Duration::ZERO);
    // Every call holds a permit until it is recorded: taking all of them waits for
    // the last one.
    let _all = sem.acquire_many(permits).await;
    stop_ticker.store(true, Ordering::Relaxed);
    pb.finish();
    let recorder = shards.merge(cfg.window)?;
    let last = Duration::from_nanos(last_done.load(Ordering::Relaxed));
    Ok(RunOutput {
        sent: recorder.total(),
        recorder,
        measured: last.saturating_sub(measure_offset),
        warmup_calls: warm_n,
        max_send_lag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers after a fixed delay, and after a long stall for one chosen call.
    struct Sleepy {
        delay: Duration,
        stall_index: u64,
        stall: Duration,
    }

    impl Call for Sleepy {
        fn call(&self, index: u64) -> impl Future<Output = Outcome> + Send {
            let d = if index == self.stall_index {
                self.stall
            } else {
                self.delay
            };
            async move {
                tokio::time::sleep(d).await;
                if index % 10 == 9 {
                    Outcome::Failed { code: 8 }
                } else {
                    Outcome::Ok { response_bytes: 10 }
                }
            }
        }
    }

    fn cfg(bound: Bound) -> RunConfig {
        RunConfig {
            bound,
            warmup: Duration::ZERO,
            window: Duration::from_millis(100),
        }
    }

    #[tokio::test]
    async fn closed_loop_sends_exactly_the_requested_count() {
        let caller = Arc::new(Sleepy {
            delay: Duration::ZERO,
            stall_index: u64::MAX,
            stall: Duration::ZERO,
        });
        let out = run_closed(caller, 7, &cfg(Bound::Requests(300)), ProgressBar::hidden())
            .await
            .unwrap();
        assert_eq!(out.sent, 300);
        assert_eq!(out.recorder.ok(), 270);
        assert_eq!(out.recorder.shed(), 30);
        assert!(
            run_closed(
                Arc::new(Sleepy {
                    delay: Duration::ZERO,
                    stall_index: 0,
                    stall: Duration::ZERO
                }),
                0,
                &cfg(Bound::Requests(1)),
                ProgressBar::hidden()
            )
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn open_loop_sends_the_scheduled_count_and_skips_warmup() {
        let caller = Arc::new(Sleepy {
            delay: Duration::ZERO,
            stall_index: u64::MAX,
            stall: Duration::ZERO,
        });
        let mut c = cfg(Bound::Duration(Duration::from_millis(50)));
        c.warmup = Duration::from_millis(20);
        let out = run_open(caller, 2000.0, 64, &c, ProgressBar::hidden())
            .await
            .unwrap();
        // 2000/s: 40 warm-up calls in 20 ms, then 100 measured in 50 ms.
        assert_eq!(out.warmup_calls, 40);
        assert_eq!(out.sent, 100);
    }

    /// Coordinated omission: with one call allowed in flight, a 60 ms stall of call
    /// 10 holds back every later call. Measured from the intended send time, calls
    /// 11..=30 (intended 1..20 ms after call 10, sent only once it answered, i.e.
    /// at least 60 ms after its intended time) are charged at least 40 ms each. The
    /// bounds follow from causality alone, whatever the machine's speed.
    #[tokio::test]
    async fn open_loop_charges_queueing_behind_a_stall() {
        let caller = Arc::new(Sleepy {
            delay: Duration::ZERO,
            stall_index: 10,
            stall: Duration::from_millis(60),
        });
        let out = run_open(
            caller,
            1000.0,
            1,
            &cfg(Bound::Requests(40)),
            ProgressBar::hidden(),
        )
        .await
        .unwrap();
        assert_eq!(out.sent, 40);
        let l = out.recorder.latency();
        assert!(l.max >= 60_000, "{l:?}");
        // 40 calls, 36 OK (every 10th is shed); at least 20 OK calls of >= 40 ms, so
        // the median OK latency is >= 40 ms. Uncorrected, it would be ~0.
        assert_eq!(l.count, 36);
        assert!(l.p50 >= 40_000, "{l:?}");
        assert!(out.max_send_lag >= Duration::from_millis(40));
    }
}
