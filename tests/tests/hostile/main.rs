//! Hostile callers against the real binary (issue 12, "Show it"): while the calls of
//! items 1, 2, 4, 5 and 6 run at once — data-sized loops after cheap warm-ups, huge
//! outputs × samples, MCMC cut off by its deadline, a cancelled InferStream, compile
//! bombs, 4× overload of unary calls and 64 streams — a prober's `grpc.health.v1`
//! Check must be answered within its own 1 s deadline every time, and under a fixed
//! address-space limit (`prlimit --as`) the process must survive every call.
//!
//! Probe latencies (p50/p99/max) and each hostile call's outcome are printed to stderr
//! (`--nocapture`), not asserted: the machine is shared.

mod calls;
mod probe;

use std::time::Duration;

use calls::{
    Outcome, attack, connect, inference, one_by_one, overload, set_up, temp, with_timeout,
};
use probe::{PROBE_DEADLINE, Prober, ms, report};
use probserve_e2e::{Options, Server};
use probserve_proto::v1::InferenceMethod;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// The two tests attack one server each; running them one at a time keeps each
/// attack's numbers its own on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process is still running and says SERVING.
async fn assert_alive(server: &mut Server) {
    if let Ok(Some(status)) = server.child.try_wait() {
        panic!(
            "probserve died under attack: {status}\n{}",
            tail(&server.stderr())
        );
    }
    let health = tokio::time::timeout(Duration::from_secs(10), server.health("")).await;
    assert!(
        matches!(health, Ok(Ok(s)) if s == ServingStatus::Serving as i32),
        "probserve does not answer health after the attack: {health:?}\n{}",
        tail(&server.stderr())
    );
    let mut c = inference(connect(server).await);
    let r = c
        .infer(with_timeout(
            temp(InferenceMethod::Importance, 100),
            Duration::from_secs(10),
        ))
        .await;
    assert!(r.is_ok(), "a cheap Infer after the attack failed: {r:?}");
}

/// The server's peak resident memory so far (VmHWM), for the report.
fn peak_rss(server: &Server) -> String {
    std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_never_stalls_under_hostile_calls() {
    let _serial = SERIAL.lock().await;
    let mut server = Server::start(Options::default()).await;
    let capacity = set_up(&server).await;
    let prober = Prober::start(server.addr);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcomes = attack(&server, capacity).await;
    // Then the 4× overload alone, for its admitted latency.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(connect(&server).await);
    }
    let alone = overload(channels, capacity).await;
    let probes = prober.finish();
    eprintln!(
        "health_never_stalls: hostile calls (peak RSS {})",
        peak_rss(&server)
    );
    report(&outcomes, capacity);
    eprintln!("health_never_stalls: the 4x overload alone");
    report(&alone, capacity);

    // Unanswered probes count as their 1 s deadline in the all-probes p99.
    let mut all: Vec<Duration> = probes
        .iter()
        .map(|r| r.as_ref().copied().unwrap_or(PROBE_DEADLINE))
        .collect();
    all.sort();
    if let Some(p99) = all.get(((all.len().max(1) - 1) as f64 * 0.99).round() as usize) {
        eprintln!(
            "health probes, unanswered counted as 1 s: p99 {:.1} ms",
            ms(*p99)
        );
    }
    let mut answered: Vec<Duration> = probes
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    answered.sort();
    let failed: Vec<&String> = probes.iter().filter_map(|r| r.as_ref().err()).collect();
    if !answered.is_empty() {
        let q = |p: f64| answered[((answered.len() - 1) as f64 * p).round() as usize];
        eprintln!(
            "health probes: {} sent, {} answered, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            probes.len(),
            answered.len(),
            ms(q(0.5)),
            ms(q(0.99)),
            ms(q(1.0))
        );
    }
    assert!(
        probes.len() >= 10,
        "the prober ran: {} probes",
        probes.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} health probes got no SERVING answer within their 1 s deadline: {:?}",
        failed.len(),
        probes.len(),
        &failed[..failed.len().min(5)]
    );
    assert_alive(&mut server).await;
}

/// The address-space limit of the memory test: far below what the item-2 calls would
/// allocate (8 GB of draws), far above what the server needs to start and serve.
const ADDRESS_SPACE: u64 = 3 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_calls_do_not_kill_the_process_under_an_address_space_limit() {
    let _serial = SERIAL.lock().await;
    let mut server = Server::start(Options {
        command_prefix: vec!["prlimit".into(), format!("--as={ADDRESS_SPACE}")],
        ..Default::default()
    })
    .await;
    let capacity = set_up(&server).await;
    // First the memory-hungry calls one at a time, so each really runs (in the storm
    // below they might only queue), then everything at once.
    let mut outcomes = one_by_one(&server).await;
    eprintln!(
        "memory: the calls one by one under prlimit --as={ADDRESS_SPACE} (peak RSS {})",
        peak_rss(&server)
    );
    report(&outcomes, capacity);
    assert_alive(&mut server).await;
    outcomes.extend(attack(&server, capacity).await);
    eprintln!(
        "memory: hostile calls under prlimit --as={ADDRESS_SPACE} (peak RSS {})",
        peak_rss(&server)
    );
    report(&outcomes, capacity);
    assert_alive(&mut server).await;
    // Refusals are fine; a dead process or a crash reported as INTERNAL/UNKNOWN is not.
    let allowed = [
        Code::ResourceExhausted,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::Cancelled,
    ];
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|(_, r, _)| matches!(r, Err((c, _)) if !allowed.contains(c)))
        .collect();
    let bad = &bad[..bad.len().min(10)];
    assert!(
        bad.is_empty(),
        "hostile calls answered with codes other than {allowed:?}: {bad:?}"
    );
}
