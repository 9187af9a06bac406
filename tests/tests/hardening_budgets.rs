//! Issue 12, items 1, 2, 6 and 7 with inputs the first round of fixes did not see,
//! through the real binary: a run-time array written at an index the data sets
//! (never inline, bounded by the request's memory budget), outputs whose total
//! width is over the limit (refused while binding), SMC after cheap warm-up calls
//! (never inline), NaN outputs under SMC and MCMC, a memory wait bounded like a
//! queue wait (shed, not held to the deadline), and an InferStream client that
//! stops reading (its stream stops working instead of buffering answers); and
//! undecodable requests to health and reflection (tonic's own codec) answer
//! INVALID_ARGUMENT like every probserve method.

use std::time::{Duration, Instant};

#[path = "support/raw_grpc.rs"]
mod raw_grpc;

use probserve_e2e::{Options, Server, metric_value};
use probserve_proto::v1::inference_service_client::InferenceServiceClient;
use probserve_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use probserve_proto::v1::value::Kind;
use probserve_proto::v1::*;
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt as _;

/// `w[m]` written under a latent branch: a run-time array whose index the data sets.
const FAR_WRITE: &str = "model far {
  data m: int;
  b ~ bernoulli(0.5);
  if b { w[m] ~ normal(0.0, 1.0); }
  output b;
}
";

/// Two outputs of `n` values each.
const TWO_WIDE: &str = "model two_wide {
  data n: int;
  for i in 0..n { a[i] ~ normal(0.0, 1.0); }
  for i in 0..n { c[i] ~ normal(0.0, 1.0); }
  output a; output c;
}
";

/// A loop whose length is the input `n`.
const LOOP: &str = "model spin {
  data n: int;
  x ~ normal(0.0, 1.0);
  for i in 0..n { factor(-0.000001 * x * x); }
  output x;
}
";

/// `k` outputs per draw.
const WIDE: &str = "model wide {
  data k: int;
  for i in 0..k { z[i] ~ normal(0.0, 1.0); }
  output z;
}
";

const NAN: &str = "model nan_log {\n  data y: real;\n  t ~ normal(0.0, 1.0);\n  y ~ normal(t, 1.0);\n  let v = log(-1.0 - t * t);\n  output t, v;\n}\n";

async fn register(ch: &Channel, name: &str, source: &str) {
    ModelRegistryServiceClient::new(ch.clone())
        .register_model(RegisterModelRequest {
            name: name.into(),
            version: "1.0.0".into(),
            source: source.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("register {name}: {e:?}"));
}

fn val(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

fn call(model: &str, inputs: &[(&str, Kind)], method: InferenceMethod, n: u32) -> InferRequest {
    InferRequest {
        model: model.into(),
        inputs: inputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), val(v.clone())))
            .collect(),
        method: method as i32,
        options: Some(InferenceOptions {
            num_samples: n,
            num_warmup: if method == InferenceMethod::Mcmc {
                n
            } else {
                0
            },
            num_chains: u32::from(method == InferenceMethod::Mcmc),
            ..Default::default()
        }),
        seed: Some(7),
        ..Default::default()
    }
}

fn reason(s: &tonic::Status) -> String {
    s.get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

fn dispatches(server: &Server) -> (f64, f64) {
    let m = server.metrics();
    (
        metric_value(&m, "probserve_inference_inline_total"),
        metric_value(&m, "probserve_inference_pool_total"),
    )
}

async fn healthy(server: &Server) {
    assert_eq!(
        server.health("").await.unwrap_or(-1),
        ServingStatus::Serving as i32,
        "{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_set_array_indices_widths_and_smc_cannot_fool_the_budgets() {
    let server = Server::start(Options::default()).await;
    let ch = server.channel().await;
    for (name, src) in [("far", FAR_WRITE), ("two_wide", TWO_WIDE), ("nan_log", NAN)] {
        register(&ch, name, src).await;
    }
    let mut inf = InferenceServiceClient::new(ch.clone());
    let prior = InferenceMethod::Prior;

    // Cheap warm-up calls (m = 0) would teach a cost model that the version is tiny.
    for _ in 0..20 {
        inf.infer(call("far", &[("m", Kind::Int(0))], prior, 1))
            .await
            .unwrap_or_else(|e| panic!("warm-up: {e:?}"));
    }
    let (inline0, pool0) = dispatches(&server);
    // A write at index 2^24 - 1 would be 268 MB per run: never inline, and stopped
    // by the request's site budget (the memory budget), not by the allocator.
    let mut req = tonic::Request::new(call("far", &[("m", Kind::Int((1 << 24) - 1))], prior, 200));
    req.set_timeout(Duration::from_secs(60));
    let e = inf.infer(req).await.expect_err("past the memory budget");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert_eq!(reason(&e), "MEMORY_BUDGET", "{e:?}");
    assert!(e.message().contains("run-time array"), "{}", e.message());
    let (inline1, pool1) = dispatches(&server);
    assert_eq!(inline1, inline0, "a run-time array never runs inline");
    assert_eq!(pool1, pool0 + 1.0);
    healthy(&server).await;

    // Two outputs, each within the per-output limit, together over the width limit:
    // refused while binding, naming both.
    let t = Instant::now();
    let e = inf
        .infer(call("two_wide", &[("n", Kind::Int(200_000))], prior, 1))
        .await
        .expect_err("over the total output width");
    eprintln!(
        "the 400,000-value outputs were refused in {:?}",
        t.elapsed()
    );
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("`a` 200000") && e.message().contains("`c` 200000"),
        "{}",
        e.message()
    );

    // SMC after cheap prior calls of the same version: never inline.
    for _ in 0..20 {
        let r = inf
            .infer(call("nan_log", &[("y", Kind::Real(0.5))], prior, 1))
            .await;
        assert!(matches!(&r, Err(s) if reason(s) == "MODEL_NAN"), "{r:?}");
    }
    let (inline0, pool0) = dispatches(&server);
    let smc = call(
        "nan_log",
        &[("y", Kind::Real(0.5))],
        InferenceMethod::Smc,
        20,
    );
    let e = inf.infer(smc).await.expect_err("NaN outputs under SMC");
    let (inline1, pool1) = dispatches(&server);
    assert_eq!(
        (inline1, pool1),
        (inline0, pool0 + 1.0),
        "SMC ran on the pool"
    );
    // Non-finite outputs are MODEL_NAN under SMC and MCMC too.
    assert_eq!(
        (e.code(), reason(&e)),
        (Code::Internal, "MODEL_NAN".into()),
        "{e:?}"
    );
    let mcmc = call(
        "nan_log",
        &[("y", Kind::Real(0.5))],
        InferenceMethod::Mcmc,
        50,
    );
    let e = inf.infer(mcmc).await.expect_err("NaN outputs under MCMC");
    assert_eq!(
        (e.code(), reason(&e)),
        (Code::Internal, "MODEL_NAN".into()),
        "{e:?}"
    );
    assert!(e.message().contains("`v`"), "{}", e.message());
    healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_memory_is_shed_like_a_queued_call_not_held_to_its_deadline() {
    // Room for one loop call's memory at a time.
    let server = Server::start(Options {
        config_toml: Some(
            "max_request_memory_bytes = 67108864\nmax_inference_memory_bytes = 100663296\n\
             max_queue_ms = 200\ninference_threads = 2\n"
                .into(),
        ),
        ..Default::default()
    })
    .await;
    let ch = server.channel().await;
    register(&ch, "spin", LOOP).await;
    let mut inf = InferenceServiceClient::new(ch.clone());
    // Holds its memory (the whole request budget: its sites are set by the data)
    // until its deadline (100,000 draws of a 100,000-step loop).
    let long_call = || {
        call(
            "spin",
            &[("n", Kind::Int(100_000))],
            InferenceMethod::Prior,
            100_000,
        )
    };
    let mut hold = tonic::Request::new(long_call());
    hold.set_timeout(Duration::from_secs(8));
    let mut c = inf.clone();
    let holder = tokio::spawn(async move { c.infer(hold).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut second = tonic::Request::new(long_call());
    second.set_timeout(Duration::from_secs(30));
    let t = Instant::now();
    let e = inf.infer(second).await.expect_err("no memory left");
    eprintln!("the memory wait ended after {:?}", t.elapsed());
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert_eq!(reason(&e), "OVERLOADED", "{e:?}");
    assert!(e.message().contains("max_queue_ms"), "{}", e.message());
    assert!(
        e.get_error_details().retry_info().is_some(),
        "a shed call carries RetryInfo: {e:?}"
    );
    assert!(
        !holder.is_finished(),
        "the holder still ran when the second call was shed"
    );
    // Stopped at its deadline (the server's answer or the client's own timer).
    let held = holder.await.unwrap_or_else(|e| panic!("join: {e}"));
    assert!(
        matches!(&held, Err(s) if matches!(s.code(), Code::DeadlineExceeded | Code::Cancelled)),
        "{held:?}"
    );
    healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_client_that_stops_reading_stops_its_streams_work() {
    let server = Server::start(Options::default()).await;
    let ch = server.channel().await;
    register(&ch, "wide", WIDE).await;
    let mut inf = InferenceServiceClient::new(ch.clone());
    // Each answer is ≈ 1.8 MB (10,000 output summaries), so the transport's flow
    // control window (2 MB per stream by default in hyper) holds about one.
    let item = |i: usize| InferStreamRequest {
        request_id: format!("item-{i}"),
        request: Some(call(
            "wide",
            &[("k", Kind::Int(10_000))],
            InferenceMethod::Prior,
            20,
        )),
    };
    const ITEMS: usize = 60;
    let (inline0, pool0) = dispatches(&server);
    let requests = tokio_stream::iter((0..ITEMS).map(item));
    let mut answers = inf
        .infer_stream(requests)
        .await
        .unwrap_or_else(|e| panic!("stream: {e:?}"))
        .into_inner();
    // Not reading: the server may run what fits in its stream's slots, the one
    // buffered answer and the transport's window, then it must stop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (inline1, pool1) = dispatches(&server);
    let ran = (inline1 - inline0) + (pool1 - pool0);
    eprintln!("{ran} of {ITEMS} items ran while the client did not read");
    assert!(
        ran <= 16.0,
        "{ran} items ran for a client that reads nothing (at most 8 in flight + 1 buffered + the window; 24 or more buffered before)"
    );
    healthy(&server).await;
    // Reading again, every item is answered: OK, or shed when the pool's queue is
    // long (this machine may be busy).
    let (mut ok, mut shed) = (0, 0);
    while let Some(a) = answers.next().await {
        let a = a.unwrap_or_else(|e| panic!("answer: {e:?}"));
        let status = a.status.unwrap_or_default();
        match Code::from_i32(status.code) {
            Code::Ok => ok += 1,
            Code::ResourceExhausted => shed += 1,
            c => panic!("{}: {c:?} {}", a.request_id, status.message),
        }
    }
    eprintln!("{ok} answered, {shed} shed");
    assert_eq!(ok + shed, ITEMS);
    assert!(ok >= ITEMS / 2, "{ok} answered, {shed} shed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_health_and_reflection_requests_are_invalid_argument() {
    let server = Server::start(Options::default()).await;
    let ch = server.channel().await;
    let t = Duration::from_secs(10);
    // Field 1 (a string in both requests) holding a byte that is not UTF-8, and a
    // truncated length-delimited field.
    let bodies = [vec![0x0a, 0x01, 0xff], vec![0x0a, 0x05, 0x61]];
    for body in &bodies {
        let s = raw_grpc::unary(&ch, "/grpc.health.v1.Health/Check", body.clone(), t)
            .await
            .expect_err("undecodable");
        assert_eq!(s.code(), Code::InvalidArgument, "{body:?}: {s:?}");
        assert!(s.get_error_details().bad_request().is_some(), "{s:?}");
    }
    // tonic-reflection ends the stream when a request does not decode; whatever it
    // answers, it is never a server fault.
    for body in &bodies {
        let path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        let r = raw_grpc::streaming(&ch, path, vec![body.clone()], t).await;
        if let Err(s) = &r {
            assert_eq!(s.code(), Code::InvalidArgument, "{body:?}: {s:?}");
        }
    }
    healthy(&server).await;
}
