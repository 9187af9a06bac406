//! The health prober (its own thread, runtime and connection, as kubelet would be)
//! and the printed summary of what the hostile calls got.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::calls::{LOAD, Outcome, with_timeout};

pub const PROBE_EVERY: Duration = Duration::from_millis(20);
pub const PROBE_DEADLINE: Duration = Duration::from_secs(1);

/// Prints one line per kind of hostile call: how many got which code, slowest time.
pub fn report(outcomes: &[Outcome], capacity: f64) {
    let mut by: std::collections::BTreeMap<(String, String), (usize, Duration, String)> =
        Default::default();
    for (name, r, t) in outcomes {
        let name = if name.starts_with("6 stream items") {
            "6 stream items (per stream)".to_owned()
        } else {
            name.clone()
        };
        let (c, m) = match r {
            Ok(()) => ("OK".to_owned(), String::new()),
            Err((c, m)) => (format!("{c:?}"), m.clone()),
        };
        let e = by.entry((name, c)).or_default();
        e.0 += 1;
        e.1 = e.1.max(*t);
        if e.2.is_empty() {
            e.2 = m;
        }
    }
    for ((name, r), (n, t, m)) in by {
        if !m.is_empty() {
            eprintln!("  {:<48} e.g. {m}", "");
        }
        eprintln!(
            "  {name:<48} {r:<28} ×{n:<4} slowest {:.2} s",
            t.as_secs_f64()
        );
    }
    let items: Vec<&String> = outcomes
        .iter()
        .map(|o| &o.0)
        .filter(|n| n.starts_with("6 stream items"))
        .collect();
    let total = |key: &str| -> usize {
        items
            .iter()
            .filter_map(|n| {
                n.split(key)
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .sum()
    };
    eprintln!(
        "  stream items: {} ok, {} failed",
        total("ok="),
        total("failed=")
    );
    let mut admitted: Vec<Duration> = outcomes
        .iter()
        .filter(|(n, r, _)| n == LOAD && r.is_ok())
        .map(|o| o.2)
        .collect();
    admitted.sort();
    let offered = outcomes.iter().filter(|o| o.0 == LOAD).count();
    eprintln!(
        "  4x load ({capacity:.0} calls/s sustained): {} of {offered} admitted and answered, p50 {:.0} ms",
        admitted.len(),
        admitted.get(admitted.len() / 2).map_or(0.0, |d| ms(*d))
    );
}

/// A `grpc.health.v1` prober on its own thread, runtime and connection (as kubelet
/// would be): one Check every 20 ms, each with a 1 s deadline.
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Result<Duration, String>>>,
}

impl Prober {
    pub fn start(addr: std::net::SocketAddr) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("prober runtime");
            rt.block_on(async move {
                let ch = Channel::from_shared(format!("http://{addr}"))
                    .expect("uri")
                    .connect()
                    .await
                    .expect("prober connect");
                let mut client = HealthClient::new(ch);
                let mut results = Vec::new();
                let mut tick = tokio::time::interval(PROBE_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !flag.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let t = Instant::now();
                    let call =
                        client.check(with_timeout(HealthCheckRequest::default(), PROBE_DEADLINE));
                    let r = match tokio::time::timeout(PROBE_DEADLINE, call).await {
                        Err(_) => Err("no answer within 1 s".to_owned()),
                        Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
                        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32 => {
                            Ok(t.elapsed())
                        }
                        Ok(Ok(r)) => Err(format!("status {}", r.get_ref().status)),
                    };
                    results.push(r);
                }
                results
            })
        });
        Prober { stop, thread }
    }

    pub fn finish(self) -> Vec<Result<Duration, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("prober thread")
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
