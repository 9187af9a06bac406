//! Issue 12, items 3, 4 and 6, through the real binary: deadlines (a huge
//! `grpc-timeout` answers normally, a long one is clamped to `max_deadline_ms`),
//! cancellation (a dropped InferStream frees the CPU pool), and admission tied to
//! capacity (at 4× load calls are shed with RESOURCE_EXHAUSTED instead of all
//! waiting; InferStream items are admitted one by one).
//!
//! Nothing here asserts a speed: each test asserts codes and counts, and a call
//! "completes promptly" only in the sense that it finishes within its own deadline.

use std::time::{Duration, Instant};

use probserve_e2e::{Options, Server};
use probserve_proto::v1::inference_service_client::InferenceServiceClient;
use probserve_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use probserve_proto::v1::value::Kind;
use probserve_proto::v1::*;
use tonic::Code;

const LOOPY: &str = "model loopy {\n  data n: int;\n  mu ~ normal(0.0, 1.0);\n  for i in 0..n {\n    let b = mu + 1.0;\n  }\n  output mu;\n}\n";

fn real(x: f64) -> Value {
    Value {
        kind: Some(Kind::Real(x)),
    }
}

fn temp_request(method: InferenceMethod, samples: u32, seed: u64) -> InferRequest {
    InferRequest {
        model: "temperature_sensor".into(),
        inputs: [("reading".to_owned(), real(22.0))].into(),
        method: method as i32,
        options: Some(InferenceOptions {
            num_samples: samples,
            ..Default::default()
        }),
        seed: Some(seed),
        ..Default::default()
    }
}

/// A loopy call that runs for much longer than any test waits (seconds of work
/// per draw times many draws); only a deadline or a cancel ends it.
fn endless_request(method: InferenceMethod) -> InferRequest {
    InferRequest {
        model: "loopy".into(),
        inputs: [(
            "n".to_owned(),
            Value {
                kind: Some(Kind::Int(20_000)),
            },
        )]
        .into(),
        method: method as i32,
        options: Some(InferenceOptions {
            num_samples: 1_000_000,
            num_chains: 1,
            ..Default::default()
        }),
        seed: Some(1),
        ..Default::default()
    }
}

/// `k` outputs computed from one latent: cheap to sample, each output summarized.
const WIDE: &str = "model wide {\n  data k: int;\n  x ~ normal(0.0, 1.0);\n  for i in 0..k {\n    let w[i] = x * 2.0;\n  }\n  output w;\n}\n";

async fn register_wide(server: &Server) {
    ModelRegistryServiceClient::new(server.channel().await)
        .register_model(RegisterModelRequest {
            name: "wide".into(),
            version: "1.0.0".into(),
            source: WIDE.into(),
            ..Default::default()
        })
        .await
        .expect("register wide");
}

/// MCMC on `wide` with `k` outputs, 8 chains of `draws` (one warm-up step).
fn wide_mcmc(k: i64, draws: u32) -> InferRequest {
    InferRequest {
        model: "wide".into(),
        inputs: [(
            "k".to_owned(),
            Value {
                kind: Some(Kind::Int(k)),
            },
        )]
        .into(),
        method: InferenceMethod::Mcmc as i32,
        options: Some(InferenceOptions {
            num_samples: draws,
            num_chains: 8,
            num_warmup: 1,
            ..Default::default()
        }),
        seed: Some(1),
        ..Default::default()
    }
}

async fn register_loopy(server: &Server) {
    ModelRegistryServiceClient::new(server.channel().await)
        .register_model(RegisterModelRequest {
            name: "loopy".into(),
            version: "1.0.0".into(),
            source: LOOPY.into(),
            ..Default::default()
        })
        .await
        .expect("register loopy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_grpc_timeout_is_answered_normally() {
    let server = Server::start(Options::default()).await;
    let mut c = InferenceServiceClient::new(server.channel().await);
    for value in ["18446744073709551615S", "99999999H", "1234567890123m"] {
        let mut req = tonic::Request::new(temp_request(InferenceMethod::Importance, 200, 1));
        req.metadata_mut()
            .insert("grpc-timeout", value.parse().unwrap());
        let r = c.infer(req).await;
        let r = r.unwrap_or_else(|e| panic!("grpc-timeout {value}: {e:?}"));
        assert_eq!(r.into_inner().outputs.len(), 2);
    }
    // The server is alive and its log has no multi-line panic report.
    assert_eq!(server.health("").await.unwrap(), 1);
    let log = server.stderr();
    assert!(!log.contains("stack backtrace"), "{log}");
    assert!(!log.contains("overflow"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_hour_deadline_is_clamped_to_max_deadline_ms() {
    let server = Server::start(Options {
        config_toml: Some("default_deadline_ms = 1000\nmax_deadline_ms = 1500\n".into()),
        ..Default::default()
    })
    .await;
    register_loopy(&server).await;
    let mut c = InferenceServiceClient::new(server.channel().await);
    for method in [InferenceMethod::Mcmc, InferenceMethod::Importance] {
        let mut req = tonic::Request::new(endless_request(method));
        req.set_timeout(Duration::from_secs(3600));
        // The client's own timer is far away: only the server's cap can end it.
        let e = tokio::time::timeout(Duration::from_secs(120), c.infer(req))
            .await
            .expect("the call must end long before the client gives up")
            .expect_err("an endless call cannot succeed");
        assert_eq!(e.code(), Code::DeadlineExceeded, "{method:?}: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_infer_stream_frees_the_pool() {
    let server = Server::start(Options {
        config_toml: Some("inference_threads = 2\n".into()),
        ..Default::default()
    })
    .await;
    register_loopy(&server).await;
    let ch = server.channel().await;
    let mut c = InferenceServiceClient::new(ch.clone());
    // Items that would each run until the default deadline (30 s).
    let items: Vec<InferStreamRequest> = (0..16)
        .map(|i| InferStreamRequest {
            request_id: format!("long{i}"),
            request: Some(endless_request(InferenceMethod::Importance)),
        })
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    for it in items {
        tx.send(it).await.unwrap();
    }
    drop(tx);
    let stream = c
        .infer_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    // Let the items reach the pool (a wait for work to start, not a threshold).
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(stream);
    drop(c);
    // A cheap call right after gets a worker within its own generous deadline: on
    // the old code it queued behind the stream's items for their whole deadline.
    let mut cheap = tonic::Request::new(temp_request(InferenceMethod::Importance, 100, 2));
    cheap.set_timeout(Duration::from_secs(10));
    let r = InferenceServiceClient::new(ch)
        .infer(cheap)
        .await
        .expect("the cheap call must not queue behind a cancelled stream");
    assert_eq!(r.into_inner().outputs.len(), 2);
}

/// Percentile of sorted durations.
fn pct(v: &[Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_four_times_capacity_calls_are_shed_instead_of_all_waiting() {
    // Only keys the old binary knows, so the same test measures before and after.
    let server = Server::start(Options {
        config_toml: Some("inference_threads = 2\n".into()),
        ..Default::default()
    })
    .await;
    let ch = server.channel().await;
    let mut c = InferenceServiceClient::new(ch.clone());
    // Calibrate one call's compute time (median of a few) on this machine.
    let samples = 100_000;
    let mut computes = Vec::new();
    for i in 0..5 {
        let r = c
            .infer(temp_request(InferenceMethod::Importance, samples, i))
            .await
            .unwrap()
            .into_inner();
        computes.push(Duration::from_micros(
            r.timings.as_ref().map_or(1, |t| t.compute_micros.max(1)),
        ));
    }
    computes.sort();
    let compute = pct(&computes, 0.5).max(Duration::from_millis(1));
    // Open loop at 4 × capacity (2 workers) for 8 s.
    let interval = compute / 8;
    let run_for = Duration::from_secs(8);
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    let mut i = 0u64;
    while started.elapsed() < run_for {
        let mut c = c.clone();
        calls.spawn(async move {
            let mut req =
                tonic::Request::new(temp_request(InferenceMethod::Importance, samples, 100 + i));
            req.set_timeout(Duration::from_secs(60));
            let t = Instant::now();
            let r = c.infer(req).await;
            (r.map(|r| r.into_inner()), t.elapsed())
        });
        i += 1;
        tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
    }
    let (mut ok, mut shed, mut other) = (Vec::new(), 0u64, Vec::new());
    while let Some(r) = calls.join_next().await {
        match r.unwrap() {
            (Ok(_), took) => ok.push(took),
            (Err(e), _) if e.code() == Code::ResourceExhausted => shed += 1,
            (Err(e), _) => other.push(e.code()),
        }
    }
    ok.sort();
    eprintln!(
        "4x load: compute {:?}/call, {} sent, {} ok, {} shed, other {:?}; admitted p50 {:?} p99 {:?}",
        compute,
        i,
        ok.len(),
        shed,
        other,
        pct(&ok, 0.5),
        pct(&ok, 0.99)
    );
    assert!(shed > 0, "nothing was shed at 4x load");
    assert!(!ok.is_empty());
    assert!(other.is_empty(), "only sheds may fail: {other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_admitted_per_item() {
    let server = Server::start(Options {
        config_toml: Some("inference_threads = 2\nmax_in_flight = 16\n".into()),
        ..Default::default()
    })
    .await;
    let ch = server.channel().await;
    let mut streams = tokio::task::JoinSet::new();
    for s in 0..64u64 {
        let mut c = InferenceServiceClient::new(ch.clone());
        streams.spawn(async move {
            let items: Vec<InferStreamRequest> = (0..8)
                .map(|i| InferStreamRequest {
                    request_id: format!("s{s}i{i}"),
                    request: Some(temp_request(InferenceMethod::Importance, 50_000, s * 8 + i)),
                })
                .collect();
            let mut codes = Vec::new();
            match c.infer_stream(tokio_stream::iter(items)).await {
                Ok(resp) => {
                    let mut resp = resp.into_inner();
                    while let Ok(Some(item)) = resp.message().await {
                        codes.push(item.status.map_or(0, |s| s.code));
                    }
                }
                // The stream itself may be shed at the call level too.
                Err(e) => codes.push(-(e.code() as i32)),
            }
            codes
        });
    }
    let (mut ok, mut item_shed, mut call_shed, mut other) = (0, 0, 0, Vec::new());
    while let Some(r) = streams.join_next().await {
        for code in r.unwrap() {
            match code {
                0 => ok += 1,
                c if c == Code::ResourceExhausted as i32 => item_shed += 1,
                c if c == -(Code::ResourceExhausted as i32) => call_shed += 1,
                c => other.push(c),
            }
        }
    }
    eprintln!(
        "64 streams × 8 items, limit 16: {ok} ok, {item_shed} items shed, {call_shed} streams shed, other {other:?}"
    );
    assert!(item_shed > 0, "no item was shed: admission is per stream");
    assert!(ok > 0);
    assert!(other.is_empty(), "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcmc_summaries_stop_at_the_deadline() {
    let server = Server::start(Options {
        config_toml: Some("inference_threads = 1\n".into()),
        ..Default::default()
    })
    .await;
    register_wide(&server).await;
    let ch = server.channel().await;
    // Sampling takes well under a second; summarizing 200 outputs of 8 × 15,000
    // strongly autocorrelated draws takes tens of seconds (the ESS walks many lags).
    // (8 × 20,000 draws are now over the default memory budget.)
    let mut heavy = tonic::Request::new(wide_mcmc(200, 15_000));
    heavy.set_timeout(Duration::from_secs(4));
    let e = InferenceServiceClient::new(ch.clone())
        .infer(heavy)
        .await
        .expect_err("the summaries cannot finish within 4 s");
    // tonic's client answers its own timer with CANCELLED("Timeout expired").
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e:?}"
    );
    // The only worker is free again: the summaries stopped at the deadline. On the
    // old code they ran on for half a minute and this call timed out in the queue.
    let mut cheap = tonic::Request::new(temp_request(InferenceMethod::Importance, 100, 2));
    cheap.set_timeout(Duration::from_secs(10));
    let r = InferenceServiceClient::new(ch)
        .infer(cheap)
        .await
        .expect("the worker must be free after the deadline");
    assert_eq!(r.into_inner().outputs.len(), 2);
}
