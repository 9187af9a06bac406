//! Issue 12, items 1, 2 and 7, through the real binary: the cost model cannot be
//! fooled by data (a plan whose loop length the inputs set never runs inline, and
//! health keeps answering while such calls run), a per-request memory budget
//! checked before running (RESOURCE_EXHAUSTED naming the option to lower, the
//! server alive), and non-finite outputs (MODEL_NAN by default, a warning by
//! policy, and a NaN canary rolled back rather than promoted).

use std::time::{Duration, Instant};

use probserve_e2e::{Options, Server, metric_value};
use probserve_proto::v1::experiment_service_client::ExperimentServiceClient;
use probserve_proto::v1::inference_service_client::InferenceServiceClient;
use probserve_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use probserve_proto::v1::value::Kind;
use probserve_proto::v1::*;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_types::StatusExt as _;

/// A loop whose length is the input `n`; `factor` reads a latent, so it runs at run
/// time, once per draw. With `n = 0` it unrolls to nothing.
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

const GOOD: &str = "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, 1.0);\n  output temp;\n}\n";
/// Same data, an output that is NaN on every draw.
const NAN_CANDIDATE: &str = "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, 1.0);\n  let v = log(-1.0 - temp * temp);\n  output v;\n}\n";

async fn register(ch: &Channel, name: &str, version: &str, source: &str) {
    ModelRegistryServiceClient::new(ch.clone())
        .register_model(RegisterModelRequest {
            name: name.into(),
            version: version.into(),
            source: source.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("register {name}: {e:?}"));
}

fn int(v: i64) -> Value {
    Value {
        kind: Some(Kind::Int(v)),
    }
}

fn call(model: &str, inputs: &[(&str, Value)], samples: u32) -> InferRequest {
    InferRequest {
        model: model.into(),
        inputs: inputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        method: InferenceMethod::Prior as i32,
        options: Some(InferenceOptions {
            num_samples: samples,
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

async fn healthy(server: &Server) {
    assert_eq!(
        server.health("").await.unwrap_or(-1),
        ServingStatus::Serving as i32,
        "{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_the_data_lengthens_never_runs_inline_and_health_keeps_answering() {
    let server = Server::start(Options::default()).await;
    let ch = server.channel().await;
    register(&ch, "spin", "1.0.0", LOOP).await;
    let mut inf = InferenceServiceClient::new(ch.clone());
    // Cheap warm-up calls teach the version that it is tiny.
    for _ in 0..20 {
        inf.infer(call("spin", &[("n", int(0))], 1))
            .await
            .unwrap_or_else(|e| panic!("warm-up: {e:?}"));
    }
    let m = server.metrics();
    let inline_before = metric_value(&m, "probserve_inference_inline_total");
    let pool_before = metric_value(&m, "probserve_inference_pool_total");
    assert!(
        inline_before > 0.0,
        "small fixed-size runs keep the inline path: {m}"
    );

    // Two calls whose loop runs a million times per draw.
    let mut heavy = Vec::new();
    for seed in 0..2u64 {
        let mut c = inf.clone();
        let mut r = call("spin", &[("n", int(1_000_000))], 200);
        r.seed = Some(seed);
        let mut req = tonic::Request::new(r);
        req.set_timeout(Duration::from_secs(60));
        heavy.push(tokio::spawn(async move { c.infer(req).await }));
    }
    // Health answers within its own deadline for as long as they run.
    let mut probes = 0u32;
    let mut slowest = Duration::ZERO;
    while heavy.iter().any(|h| !h.is_finished()) || probes < 5 {
        let mut h = HealthClient::new(ch.clone());
        let mut req = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        req.set_timeout(Duration::from_secs(1));
        let t = Instant::now();
        let r = h.check(req).await;
        slowest = slowest.max(t.elapsed());
        assert!(
            r.is_ok(),
            "health must answer while data-sized loops run: {r:?} after {probes} probes"
        );
        probes += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{probes} health probes during the heavy calls, slowest {slowest:?}");
    for h in heavy {
        // Finished or stopped by a budget, the server decides; it must not be inline.
        let r = h.await.unwrap_or_else(|e| panic!("join: {e}"));
        if let Err(e) = &r {
            assert_ne!(e.code(), Code::Internal, "{e:?}");
        }
    }
    let m = server.metrics();
    assert_eq!(
        metric_value(&m, "probserve_inference_inline_total"),
        inline_before,
        "the loop calls must not run inline"
    );
    assert_eq!(
        metric_value(&m, "probserve_inference_pool_total"),
        pool_before + 2.0,
        "both loop calls ran on the pool"
    );
    healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_memory_budget_are_refused_before_running_naming_the_option() {
    let server = Server::start(Options::default()).await;
    let ch = server.channel().await;
    register(&ch, "wide", "1.0.0", WIDE).await;
    register(&ch, "spin", "1.0.0", LOOP).await;
    let mut inf = InferenceServiceClient::new(ch.clone());

    // 1000 outputs × 10^6 samples: 8 GB of draws (the old server died allocating).
    let e = inf
        .infer(call("wide", &[("k", int(1000))], 1_000_000))
        .await
        .expect_err("over the memory budget");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert_eq!(reason(&e), "MEMORY_BUDGET", "{e:?}");
    assert!(e.message().contains("num_samples"), "{}", e.message());
    assert!(
        e.message().contains("max_request_memory_bytes"),
        "{}",
        e.message()
    );
    healthy(&server).await;

    // A 10^6-element output: refused while binding, before anything as wide as
    // the output is built (the old server computed and encoded 103 MB first).
    let t = Instant::now();
    let e = inf
        .infer(call("wide", &[("k", int(1_000_000))], 1))
        .await
        .expect_err("over the output width limit");
    eprintln!("the 10^6-element output was refused in {:?}", t.elapsed());
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("at most 262144"), "{}", e.message());

    // A 10^5-element output: within the width limit, refused by its response size
    // before it is computed.
    let e = inf
        .infer(call("wide", &[("k", int(100_000))], 1))
        .await
        .expect_err("response over max_message_bytes");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert_eq!(reason(&e), "MEMORY_BUDGET", "{e:?}");
    assert!(e.message().contains("output size"), "{}", e.message());
    assert!(e.message().contains("max_message_bytes"), "{}", e.message());

    // Returned draws over the message size name max_draws.
    let mut r = call("wide", &[("k", int(100))], 100_000);
    r.return_draws = true;
    r.max_draws = 100_000;
    let e = inf
        .infer(r)
        .await
        .expect_err("draws over max_message_bytes");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("max_draws"), "{}", e.message());

    // A trace that outgrows the request's budget inside one run stops there.
    let mut req = tonic::Request::new(call("spin", &[("n", int(5_000_000))], 1));
    req.set_timeout(Duration::from_secs(60));
    let e = inf.infer(req).await.expect_err("trace over the budget");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert_eq!(reason(&e), "MEMORY_BUDGET", "{e:?}");
    assert!(e.message().contains("site limit"), "{}", e.message());

    // The server is alive and still answers within budget.
    healthy(&server).await;
    let ok = inf
        .infer(call("wide", &[("k", int(1000))], 100))
        .await
        .unwrap_or_else(|e| panic!("a request within budget: {e:?}"))
        .into_inner();
    assert_eq!(ok.outputs.len(), 1000);
}

const NAN_MODELS: [(&str, &str); 3] = [
    (
        "nan_log",
        "model nan_log {\n  t ~ normal(0.0, 1.0);\n  let v = log(-1.0 - t * t);\n  output v;\n}\n",
    ),
    (
        "inf_div",
        "model inf_div {\n  t ~ normal(0.0, 1.0);\n  let v = t / 0.0;\n  output t, v;\n}\n",
    ),
    (
        "nan_mod",
        "model nan_mod {\n  k ~ poisson(3.0);\n  let v = 7 % (k - k);\n  output v;\n}\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_finite_outputs_fail_with_model_nan_or_warn_by_policy() {
    let server = Server::start(Options::default()).await;
    let ch = server.channel().await;
    let mut inf = InferenceServiceClient::new(ch.clone());
    for (name, src) in NAN_MODELS {
        register(&ch, name, "1.0.0", src).await;
        for method in [InferenceMethod::Prior, InferenceMethod::Importance] {
            let mut r = call(name, &[], 50);
            r.method = method as i32;
            let e = inf
                .infer(r)
                .await
                .expect_err("a non-finite output is an error by default");
            assert_eq!(e.code(), Code::Internal, "{name}: {e:?}");
            assert_eq!(reason(&e), "MODEL_NAN", "{name}: {e:?}");
            assert!(e.message().contains("`v`"), "{name}: {}", e.message());
            assert!(
                e.message().contains("of 50 draws"),
                "{name}: {}",
                e.message()
            );
        }
    }
    drop(server);

    let server = Server::start(Options {
        config_toml: Some("non_finite_outputs = \"warn\"\n".into()),
        ..Default::default()
    })
    .await;
    let ch = server.channel().await;
    let mut inf = InferenceServiceClient::new(ch.clone());
    let (name, src) = NAN_MODELS[1];
    register(&ch, name, "1.0.0", src).await;
    let r = inf
        .infer(call(name, &[], 50))
        .await
        .unwrap_or_else(|e| panic!("warn policy answers OK: {e:?}"))
        .into_inner();
    let warnings = r.diagnostics.map(|d| d.warnings).unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("NON_FINITE_OUTPUTS") && w.contains("`v` (50 of 50 draws)")),
        "{warnings:?}"
    );
}

fn reading_call(key: &str, seed: u64) -> InferRequest {
    InferRequest {
        model: "sensor".into(),
        inputs: [(
            "reading".to_owned(),
            Value {
                kind: Some(Kind::Real(22.0)),
            },
        )]
        .into(),
        routing_key: key.into(),
        options: Some(InferenceOptions {
            num_samples: 20,
            ..Default::default()
        }),
        seed: Some(seed),
        ..Default::default()
    }
}

fn step(bps: u32, samples: u64) -> RolloutStep {
    RolloutStep {
        candidate_bps: bps,
        min_samples_per_arm: samples,
        min_duration: Some(prost_types::Duration {
            seconds: 0,
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nan_canary_with_auto_promote_is_rolled_back_not_promoted() {
    for policy in ["error", "warn"] {
        let server = Server::start(Options {
            config_toml: Some(format!(
                "controller_interval_ms = 200\nnon_finite_outputs = \"{policy}\"\n"
            )),
            ..Default::default()
        })
        .await;
        let ch = server.channel().await;
        register(&ch, "sensor", "1.0.0", GOOD).await;
        register(&ch, "sensor", "2.0.0", NAN_CANDIDATE).await;
        let mut exp = ExperimentServiceClient::new(ch.clone());
        let mut inf = InferenceServiceClient::new(ch.clone());
        exp.create_rollout(CreateRolloutRequest {
            id: "nan-canary".into(),
            spec: Some(RolloutSpec {
                model: "sensor".into(),
                baseline_version: "1.0.0".into(),
                candidate_version: "2.0.0".into(),
                strategy: RolloutStrategy::Canary as i32,
                steps: vec![step(5000, 30), step(10_000, 30)],
                guardrails: Some(Guardrails {
                    min_samples_per_arm: 30,
                    ..Default::default()
                }),
                auto_promote: true,
                ..Default::default()
            }),
            start: true,
            actor: "ana".into(),
            reason: "try 2.0.0".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("create: {e:?}"));
        let mut final_phase = None;
        for i in 0..3000u64 {
            let _ = inf.infer(reading_call(&format!("u{i}"), i)).await;
            if i % 25 == 24 {
                let r = exp
                    .get_rollout(GetRolloutRequest {
                        id: "nan-canary".into(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("get: {e:?}"))
                    .into_inner()
                    .rollout
                    .unwrap_or_default();
                let phase = r.status.map(|s| s.phase).unwrap_or_default();
                if phase == RolloutPhase::RolledBack as i32
                    || phase == RolloutPhase::Promoted as i32
                {
                    final_phase = Some(phase);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(
            final_phase,
            Some(RolloutPhase::RolledBack as i32),
            "policy {policy}: a NaN canary must be rolled back, not promoted"
        );
        // Every default call is served by the baseline, with finite numbers.
        for i in 0..20u64 {
            let r = inf
                .infer(reading_call(&format!("u{i}"), i))
                .await
                .unwrap_or_else(|e| panic!("after rollback: {e:?}"))
                .into_inner();
            assert_eq!(r.served_by.unwrap_or_default().version, "1.0.0");
            assert!(r.outputs.iter().all(|o| o.mean.is_finite()));
        }
    }
}
