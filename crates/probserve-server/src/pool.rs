//! The bounded CPU pool for inference.
//!
//! Inference runs on the CPU pool: [`InferencePool::run`] waits for one of
//! `threads` permits (the wait is the reported queue time, bounded by the call's
//! deadline) and then runs the job on one of exactly `threads` rayon threads. A
//! fixed set of threads (rather than tokio's growing blocking pool) keeps memory
//! flat: each extra blocking thread brought its stack and allocator heap, and the
//! soak's RSS rose with the thread count. The one exception is a
//! job the version's measured cost predicts to be tiny (microseconds, see
//! [`crate::run_cost`]), which [`InferencePool::run_inline`] runs on the async
//! worker, because the hand-off would cost more than the job. The job's
//! [`CancelToken`] carries the deadline and is cancelled when the caller goes away,
//! so abandoned work stops within about a millisecond.
//!
//! The pool sheds on queue time (CoDel's idea: a queue that absorbs a burst is
//! good, a standing queue is overload): a job waits at most `max_queue` for a
//! worker, and one whose expected wait (jobs waiting per thread × the mean job
//! time) is already longer is refused at once ([`RunError::Overloaded`] →
//! RESOURCE_EXHAUSTED with a retry hint), rather than every admitted call waiting
//! until its deadline. When no job has found a free worker for a whole `max_queue`
//! (the queue has not drained), the limit drops to a tenth of it until one does, so
//! under sustained overload admitted calls wait little and the rest are refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use probserve_runtime::CancelToken;
use tokio::sync::Semaphore;

use crate::infer::RunError;

/// The bounded CPU pool for inference.
#[derive(Debug)]
pub struct InferencePool {
    permits: Arc<Semaphore>,
    threads: usize,
    workers: rayon::ThreadPool,
    /// Longest wait for a worker before the job is refused.
    max_queue: Duration,
    /// Jobs waiting for a permit now.
    waiting: Arc<AtomicUsize>,
    /// Moving average of the time jobs ran on the pool, microseconds.
    mean_job_micros: Arc<AtomicU64>,
    /// Jobs refused because of queue time, since start.
    shed: AtomicU64,
    /// When the pool was made (the clock of `last_free`).
    epoch: Instant,
    /// Microseconds after `epoch` at which a job last found a free worker.
    last_free: AtomicU64,
}

/// The default queue limit (config `max_queue_ms`).
pub const DEFAULT_MAX_QUEUE: Duration = Duration::from_secs(1);

/// Decrements the waiting count when the wait ends (in every way it can end).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The pool size for a configured `threads` (0 = number of cores).
pub fn resolve_threads(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        threads
    }
}

/// Cancels a token when dropped: the caller's future was dropped (client gone,
/// server timeout), so the blocking job should stop.
#[derive(Debug)]
pub struct CancelOnDrop(pub CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl InferencePool {
    /// A pool running at most `threads` inferences at once (0 = number of cores).
    ///
    /// # Errors
    /// The operating system refused to start the threads.
    pub fn new(threads: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        let threads = resolve_threads(threads);
        let workers = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("probserve-infer-{i}"))
            .build()?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(threads)),
            threads,
            workers,
            max_queue: DEFAULT_MAX_QUEUE,
            waiting: Arc::default(),
            mean_job_micros: Arc::default(),
            shed: AtomicU64::new(0),
            epoch: Instant::now(),
            last_free: AtomicU64::new(0),
        })
    }

    fn micros_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The wait allowed now: `max_queue`, or a tenth of it while the queue has not
    /// drained for a whole `max_queue` (a standing queue: no job found a free worker
    /// or an empty queue for that long).
    pub fn queue_limit(&self) -> Duration {
        let since_free = self
            .micros_since_epoch()
            .saturating_sub(self.last_free.load(Ordering::Relaxed));
        if Duration::from_micros(since_free) > self.max_queue {
            self.max_queue / 10
        } else {
            self.max_queue
        }
    }

    /// Sets the queue limit (see the module docs; at least 1 ms).
    #[must_use]
    pub fn with_max_queue(mut self, max_queue: Duration) -> Self {
        self.max_queue = max_queue.max(Duration::from_millis(1));
        self
    }

    /// Jobs waiting for a worker now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Jobs refused because of queue time, since start.
    pub fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    fn overloaded(
        &self,
        waiting: usize,
        expected: Duration,
        limit: Duration,
        queued: Duration,
    ) -> RunError {
        self.shed.fetch_add(1, Ordering::Relaxed);
        RunError::Overloaded {
            waiting,
            threads: self.threads,
            expected_ms: expected.as_millis() as u64,
            max_queue_ms: limit.as_millis() as u64,
            queued_ms: queued.as_millis() as u64,
        }
    }

    /// Pool size.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Jobs running now.
    pub fn busy(&self) -> usize {
        self.threads - self.permits.available_permits()
    }

    /// Runs `job` on the pool; returns its result and the queue wait.
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        job: impl FnOnce() -> Result<T, RunError> + Send + 'static,
    ) -> Result<(T, Duration), RunError> {
        let queued = Instant::now();
        let ahead = self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(Arc::clone(&self.waiting));
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => {
                self.last_free
                    .store(self.micros_since_epoch(), Ordering::Relaxed);
                p
            }
            Err(_) => {
                // The first job to wait finds an empty queue: however long ago a job
                // last found a free worker (an idle spell, long jobs), that is no
                // standing queue.
                if ahead == 0 {
                    self.last_free
                        .store(self.micros_since_epoch(), Ordering::Relaxed);
                }
                let max_wait = self.queue_limit();
                // Every worker is busy and `ahead` jobs wait before this one.
                let mean = Duration::from_micros(self.mean_job_micros.load(Ordering::Relaxed));
                let expected = mean
                    .saturating_mul(u32::try_from(ahead / self.threads + 1).unwrap_or(u32::MAX));
                if expected > max_wait {
                    return Err(self.overloaded(ahead, expected, max_wait, Duration::ZERO));
                }
                let limit = queued.checked_add(max_wait).unwrap_or(deadline);
                let until = limit.min(deadline);
                match tokio::time::timeout_at(
                    until.into(),
                    Arc::clone(&self.permits).acquire_owned(),
                )
                .await
                {
                    Ok(Ok(p)) => p,
                    Err(_) if until < deadline => {
                        return Err(self.overloaded(ahead, expected, max_wait, queued.elapsed()));
                    }
                    // The semaphore is never closed; treat it like a timeout if it were.
                    Ok(Err(_)) | Err(_) => {
                        return Err(RunError::QueueDeadline {
                            queued_ms: queued.elapsed().as_millis() as u64,
                        });
                    }
                }
            }
        };
        drop(waiting);
        let wait = queued.elapsed();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mean_job = Arc::clone(&self.mean_job_micros);
        // One permit per thread: the job starts at once, never queues in rayon.
        self.workers.spawn(move || {
            let started = Instant::now();
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            drop(permit);
            observe_job(&mean_job, started.elapsed());
            // The caller may be gone (client cancelled); then nobody needs the result.
            let _ = tx.send(out);
        });
        match rx.await {
            Ok(Ok(r)) => r.map(|v| (v, wait)),
            Ok(Err(p)) => Err(RunError::Panicked(panic_message(p))),
            Err(_) => Err(RunError::Panicked("the inference worker went away".into())),
        }
    }

    /// Runs a job predicted to be tiny (see [`crate::run_cost`]) on the calling
    /// async worker, saving the two thread hand-offs. It takes no pool permit: at
    /// most one such job runs per async worker at a time, and a tiny job should not
    /// queue behind long ones. Panics are isolated as on the pool; the queue wait is
    /// zero.
    pub fn run_inline<T>(
        &self,
        job: impl FnOnce() -> Result<T, RunError>,
    ) -> Result<(T, Duration), RunError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
            Ok(r) => r.map(|v| (v, Duration::ZERO)),
            Err(p) => Err(RunError::Panicked(panic_message(p))),
        }
    }
}

/// Folds one job's run time into the moving average (weight 1/8; a racing update
/// loses one sample, which is fine for an estimate).
fn observe_job(mean: &AtomicU64, took: Duration) {
    let x = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let old = mean.load(Ordering::Relaxed);
    let new = if old == 0 { x } else { old - old / 8 + x / 8 };
    mean.store(new, Ordering::Relaxed);
}

/// The message of a caught panic.
fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that holds its worker until `release` fires.
    fn blocker(release: std::sync::mpsc::Receiver<()>) -> impl FnOnce() -> Result<(), RunError> {
        move || {
            let _ = release.recv();
            Ok(())
        }
    }

    /// A job on `pool` holding its (only) worker until the returned sender fires.
    async fn hold_the_worker(
        pool: &Arc<InferencePool>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<((), Duration), RunError>>,
    ) {
        let (tx, rx) = std::sync::mpsc::channel();
        let far = Instant::now() + Duration::from_secs(3600);
        let busy = tokio::spawn({
            let pool = Arc::clone(pool);
            async move { pool.run(far, blocker(rx)).await }
        });
        while pool.busy() == 0 {
            tokio::task::yield_now().await;
        }
        (tx, busy)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_would_wait_past_max_queue_is_refused_not_held_to_its_deadline() {
        let pool = Arc::new(
            InferencePool::new(1)
                .unwrap()
                .with_max_queue(Duration::from_millis(20)),
        );
        let far = Instant::now() + Duration::from_secs(3600);
        let (tx, busy) = hold_the_worker(&pool).await;
        // The deadline is an hour away; the queue limit ends the wait.
        let e = pool.run(far, || Ok(())).await.unwrap_err();
        assert!(matches!(e, RunError::Overloaded { .. }), "{e:?}");
        assert_eq!(pool.shed_count(), 1);
        assert_eq!(pool.waiting(), 0);
        tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // A free worker takes the next job at once.
        pool.run(far, || Ok(())).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadline_before_the_queue_limit_is_a_queue_deadline() {
        let pool = Arc::new(InferencePool::new(1).unwrap());
        let (tx, busy) = hold_the_worker(&pool).await;
        let soon = Instant::now() + Duration::from_millis(10);
        let e = pool.run(soon, || Ok(())).await.unwrap_err();
        assert!(matches!(e, RunError::QueueDeadline { .. }), "{e:?}");
        tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_arriving_at_an_empty_queue_after_a_long_job_gets_the_whole_limit() {
        let pool = Arc::new(
            InferencePool::new(1)
                .unwrap()
                .with_max_queue(Duration::from_secs(3)),
        );
        let far = Instant::now() + Duration::from_secs(3600);
        let (tx, busy) = hold_the_worker(&pool).await;
        // The one job runs for longer than the queue limit with nobody waiting.
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.run(far, || Ok(())).await }
        });
        // Released well within the limit, well after a tenth of it (300 ms).
        tokio::time::sleep(Duration::from_millis(1000)).await;
        tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
        let r = waiter.await.unwrap();
        assert!(r.is_ok(), "no standing queue, no tenth of the limit: {r:?}");
        assert_eq!(pool.shed_count(), 0);
    }

    #[test]
    fn thread_count_zero_means_the_cores() {
        assert!(resolve_threads(0) >= 1);
        assert_eq!(resolve_threads(3), 3);
    }
}
