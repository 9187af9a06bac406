//! Models as data, end to end through the real binary: register, validate, label,
//! archive, Infer (importance sampling and MCMC against the analytic posterior),
//! determinism, input validation, budgets and deadlines, streaming, persistence.

use std::time::Duration;

use probserve_e2e::{Options, Server, workspace_root};
use probserve_proto::v1::inference_service_client::InferenceServiceClient;
use probserve_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use probserve_proto::v1::value::Kind;
use probserve_proto::v1::*;
use tonic::Code;
use tonic_types::StatusExt as _;

/// Posterior mean of temp for reading 22.0: normal-normal, prior N(20, 5²), noise sd 1.
const ANALYTIC_TEMP_MEAN: f64 = 20.0 + 25.0 / 26.0 * 2.0;

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

fn temp_of(r: &InferResponse) -> &OutputSummary {
    r.outputs
        .iter()
        .find(|o| o.name == "temp")
        .expect("temp output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temperature_posterior_matches_the_analytic_value() {
    let server = Server::start(Options::default()).await;
    let mut c = InferenceServiceClient::new(server.channel().await);
    for (method, samples) in [
        (InferenceMethod::Importance, 20_000),
        (InferenceMethod::Mcmc, 5_000),
        (InferenceMethod::Smc, 5_000),
    ] {
        let r = c
            .infer(temp_request(method, samples, 11))
            .await
            .unwrap()
            .into_inner();
        let t = temp_of(&r);
        // 5 Monte Carlo standard errors plus a little for the MCSE's own error.
        let tol = 5.0 * t.mcse_mean + 0.01;
        assert!(
            (t.mean - ANALYTIC_TEMP_MEAN).abs() < tol,
            "{method:?}: mean {} vs {ANALYTIC_TEMP_MEAN} (mcse {})",
            t.mean,
            t.mcse_mean
        );
        // Posterior sd is 5/sqrt(26) = 0.981.
        assert!((t.sd - 0.9806).abs() < 0.1, "{method:?}: sd {}", t.sd);
        let served = r.served_by.as_ref().unwrap();
        assert_eq!(served.version, "1.0.0");
        assert_eq!(served.reason, RoutingReason::Default as i32);
        assert!(!served.content_hash.is_empty());
        assert_eq!(r.method, method as i32);
        if method == InferenceMethod::Mcmc {
            let rhat = t.rhat.expect("R-hat for MCMC");
            assert!(rhat < 1.05, "R-hat {rhat}");
        } else {
            let ev = r.log_evidence.expect("log evidence");
            // log N(22 | 20, sqrt(26)) = -0.5 ln(2π·26) - 4/52
            let analytic = -0.5 * (2.0 * std::f64::consts::PI * 26.0).ln() - 4.0 / 52.0;
            assert!(
                (ev - analytic).abs() < 0.05,
                "{method:?}: log evidence {ev} vs {analytic}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_numbers_and_draws_on_request() {
    let server = Server::start(Options::default()).await;
    let mut c = InferenceServiceClient::new(server.channel().await);
    for method in [
        InferenceMethod::Importance,
        InferenceMethod::Mcmc,
        InferenceMethod::Smc,
        InferenceMethod::Prior,
    ] {
        let mut req = temp_request(method, 2000, 42);
        req.return_draws = true;
        req.max_draws = 500;
        let a = c.infer(req.clone()).await.unwrap().into_inner();
        let b = c.infer(req.clone()).await.unwrap().into_inner();
        assert_eq!(a.outputs, b.outputs, "{method:?}");
        assert_eq!(a.draws, b.draws, "{method:?}");
        assert_eq!(a.log_evidence, b.log_evidence);
        assert_eq!(a.seed, 42);
        assert_eq!(a.draws.len(), 2, "temp and fahrenheit");
        assert_eq!(a.draws[0].values.len(), 500);
        req.seed = Some(43);
        let d = c.infer(req).await.unwrap().into_inner();
        assert_ne!(
            a.outputs, d.outputs,
            "{method:?}: another seed must give other numbers"
        );
    }
    // No seed: the server picks one and says which, so the call can be replayed.
    let mut req = temp_request(InferenceMethod::Importance, 1000, 0);
    req.seed = None;
    let r = c.infer(req.clone()).await.unwrap().into_inner();
    req.seed = Some(r.seed);
    assert_eq!(c.infer(req).await.unwrap().into_inner().outputs, r.outputs);
}

fn violations(s: &tonic::Status) -> Vec<(String, String)> {
    s.get_error_details()
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|f| (f.field.clone(), f.description.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_one_field_violation_each() {
    let server = Server::start(Options::default()).await;
    let mut c = InferenceServiceClient::new(server.channel().await);
    // Missing.
    let mut req = temp_request(InferenceMethod::Importance, 100, 1);
    req.inputs.clear();
    let e = c.infer(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violations(&e).len(), 1, "{e:?}");
    assert_eq!(violations(&e)[0].0, "inputs.reading");
    // Extra + wrong type at once.
    let mut req = temp_request(InferenceMethod::Importance, 100, 1);
    req.inputs.insert(
        "reading".into(),
        Value {
            kind: Some(Kind::Bool(true)),
        },
    );
    req.inputs.insert("humidity".into(), real(0.3));
    let e = c.infer(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&e).into_iter().map(|(f, _)| f).collect();
    assert!(
        fields.contains(&"inputs.reading".to_owned())
            && fields.contains(&"inputs.humidity".to_owned()),
        "{fields:?}"
    );
    // Non-finite.
    let mut req = temp_request(InferenceMethod::Importance, 100, 1);
    req.inputs.insert("reading".into(), real(f64::NAN));
    let e = c.infer(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(violations(&e)[0].1.contains("finite"), "{e:?}");
    // Wrong length.
    let req = InferRequest {
        model: "linear_regression".into(),
        inputs: [
            (
                "x".to_owned(),
                Value {
                    kind: Some(Kind::Reals(RealVector {
                        values: vec![1.0, 2.0, 3.0],
                    })),
                },
            ),
            (
                "y".to_owned(),
                Value {
                    kind: Some(Kind::Reals(RealVector {
                        values: vec![1.0, 2.0],
                    })),
                },
            ),
        ]
        .into(),
        ..Default::default()
    };
    let e = c.infer(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violations(&e)[0].0, "inputs.y", "{e:?}");
    // Options out of range, unknown model.
    let mut req = temp_request(InferenceMethod::Mcmc, 100, 1);
    req.options = Some(InferenceOptions {
        num_chains: 1000,
        ..Default::default()
    });
    let e = c.infer(req).await.unwrap_err();
    assert_eq!(violations(&e)[0].0, "options.num_chains");
    let mut req = temp_request(InferenceMethod::Importance, 100, 1);
    req.model = "no_such_model".into();
    assert_eq!(c.infer(req).await.unwrap_err().code(), Code::NotFound);
}

const LOOPY: &str = "model loopy {\n  data n: int;\n  mu ~ normal(0.0, 1.0);\n  for i in 0..n {\n    let b = mu + 1.0;\n  }\n  output mu;\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_semantics_and_budgets() {
    let server = Server::start(Options::default()).await;
    let ch = server.channel().await;
    let mut reg = ModelRegistryServiceClient::new(ch.clone());
    let mut inf = InferenceServiceClient::new(ch);
    let src =
        std::fs::read_to_string(workspace_root().join("tests/models/temperature_v2.pm")).unwrap();
    let register = |version: &str, source: &str| RegisterModelRequest {
        name: "temperature_sensor".into(),
        version: version.into(),
        source: source.into(),
        description: "noisier".into(),
        ..Default::default()
    };
    let r = reg
        .register_model(register("2.0.0", &src))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
    let iface = r.model.as_ref().unwrap().interface.as_ref().unwrap();
    assert_eq!(iface.data[0].name, "reading");
    // Idempotent, then a conflict.
    assert!(
        !reg.register_model(register("2.0.0", &src))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    let e = reg
        .register_model(register("2.0.0", LOOPY))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    // Source that does not compile names line and column.
    let e = reg
        .register_model(register("3.0.0", "model m {\n  x ~ normal(0.0, );\n}\n"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(violations(&e)[0].1.starts_with("2:"), "{e:?}");
    let v = reg
        .validate_model(ValidateModelRequest {
            source: "model m {\n  y ~ normal(mu, 1.0);\n}\n".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!v.valid);
    assert!(v.diagnostics[0].message.contains("mu"), "{v:?}");
    assert!(v.diagnostics[0].rendered.contains('^'), "{v:?}");
    // A new version takes no default traffic: `stable` (1.0.0, the first version)
    // keeps serving; an explicit version reaches 2.0.0.
    let r = inf
        .infer(temp_request(InferenceMethod::Importance, 500, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.served_by.unwrap().version, "1.0.0");
    let mut req = temp_request(InferenceMethod::Importance, 500, 1);
    req.version = "2.0.0".into();
    assert_eq!(
        inf.infer(req)
            .await
            .unwrap()
            .into_inner()
            .served_by
            .unwrap()
            .version,
        "2.0.0"
    );
    // Moving `stable` moves default traffic; archiving a labelled version is refused.
    let label = |version: &str| SetVersionLabelRequest {
        name: "temperature_sensor".into(),
        label: "stable".into(),
        version: version.into(),
    };
    let l = reg
        .set_version_label(label("2.0.0"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.previous_version, "1.0.0");
    let r = inf
        .infer(temp_request(InferenceMethod::Importance, 500, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.served_by.unwrap().version, "2.0.0");
    let l = reg
        .set_version_label(label("1.0.0"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.previous_version, "2.0.0");
    let r = inf
        .infer(temp_request(InferenceMethod::Importance, 500, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.served_by.unwrap().version, "1.0.0");
    let e = reg
        .archive_model(ArchiveModelRequest {
            name: "temperature_sensor".into(),
            version: "1.0.0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let a = reg
        .archive_model(ArchiveModelRequest {
            name: "temperature_sensor".into(),
            version: "2.0.0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(a.model.unwrap().archived);
    let list = reg
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = list.models.iter().map(|m| m.name.as_str()).collect();
    for builtin in [
        "beta_binomial",
        "eight_schools",
        "linear_regression",
        "temperature_sensor",
    ] {
        assert!(names.contains(&builtin), "{names:?}");
    }
    let versions = reg
        .list_model_versions(ListModelVersionsRequest {
            name: "temperature_sensor".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.versions.len(), 2);

    // The step budget stops a runaway loop with RESOURCE_EXHAUSTED, quickly.
    reg.register_model(RegisterModelRequest {
        name: "loopy".into(),
        version: "1.0.0".into(),
        source: LOOPY.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let req = InferRequest {
        model: "loopy".into(),
        inputs: [(
            "n".to_owned(),
            Value {
                kind: Some(Kind::Int(100_000_000)),
            },
        )]
        .into(),
        options: Some(InferenceOptions {
            num_samples: 10,
            ..Default::default()
        }),
        seed: Some(1),
        ..Default::default()
    };
    let e = inf.infer(req.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // The client's deadline stops a long run with DEADLINE_EXCEEDED.
    let mut long = tonic::Request::new(InferRequest {
        inputs: [(
            "n".to_owned(),
            Value {
                kind: Some(Kind::Int(100_000)),
            },
        )]
        .into(),
        options: Some(InferenceOptions {
            num_samples: 1_000_000,
            ..Default::default()
        }),
        ..req
    });
    long.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let e = inf.infer(long).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The server is still fine afterwards.
    inf.infer(temp_request(InferenceMethod::Importance, 100, 1))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_stream_answers_every_item_by_id() {
    let server = Server::start(Options::default()).await;
    let mut c = InferenceServiceClient::new(server.channel().await);
    let mut items: Vec<InferStreamRequest> = (0..20)
        .map(|i| InferStreamRequest {
            request_id: format!("r{i}"),
            request: Some(temp_request(InferenceMethod::Importance, 200, i)),
        })
        .collect();
    items[7].request.as_mut().unwrap().inputs.clear();
    let mut stream = c
        .infer_stream(tokio_stream::iter(items))
        .await
        .unwrap()
        .into_inner();
    let mut seen = std::collections::BTreeMap::new();
    while let Some(item) = stream.message().await.unwrap() {
        seen.insert(item.request_id.clone(), item);
    }
    assert_eq!(seen.len(), 20);
    assert_eq!(
        seen["r7"].status.as_ref().unwrap().code,
        Code::InvalidArgument as i32
    );
    assert_eq!(
        seen["r7"].status.as_ref().unwrap().field_violations[0].field,
        "inputs.reading"
    );
    assert_eq!(seen["r3"].status.as_ref().unwrap().code, 0);
    let single = c
        .infer(temp_request(InferenceMethod::Importance, 200, 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        seen["r3"].response.as_ref().unwrap().outputs,
        single.outputs,
        "stream and unary agree"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_versions_survive_restart_and_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let opts = Options {
        data_dir: Some(data.path().join("d")),
        ..Default::default()
    };
    let mut server = Server::start(opts.clone()).await;
    let mut reg = ModelRegistryServiceClient::new(server.channel().await);
    let src = |i: usize| format!("model m {{\n  mu ~ normal({i}.0, 1.0);\n  output mu;\n}}\n");
    reg.register_model(RegisterModelRequest {
        name: "restart".into(),
        version: "1.0.0".into(),
        source: src(0),
        ..Default::default()
    })
    .await
    .unwrap();
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).await.success());

    // Restart, then kill -9 in the middle of a registration load.
    let mut server = Server::start(opts.clone()).await;
    let ch = server.channel().await;
    let acked = std::sync::Arc::new(parking_lot_free::Acked::default());
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (ch, acked) = (ch.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut reg = ModelRegistryServiceClient::new(ch);
            for i in 0..10_000 {
                let version = format!("{w}.{i}.0");
                let r = reg
                    .register_model(RegisterModelRequest {
                        name: "load".into(),
                        version: version.clone(),
                        source: src(i),
                        ..Default::default()
                    })
                    .await;
                match r {
                    Ok(_) => acked.push(version),
                    Err(_) => break,
                }
            }
        }));
    }
    while acked.len() < 40 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal("KILL");
    let _ = server.wait_exit(Duration::from_secs(10)).await;
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.take();
    assert!(acked.len() >= 40);

    let server = Server::start(opts).await;
    let mut reg = ModelRegistryServiceClient::new(server.channel().await);
    let m = reg
        .get_model(GetModelRequest {
            name: "restart".into(),
            version: "1.0.0".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.model.unwrap().source, src(0));
    for v in &acked {
        reg.get_model(GetModelRequest {
            name: "load".into(),
            version: v.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("acknowledged version {v} lost after kill -9: {e:?}"));
    }
}

/// A tiny thread-safe list (std only).
mod parking_lot_free {
    use std::sync::Mutex;

    /// Acknowledged versions.
    #[derive(Debug, Default)]
    pub struct Acked(Mutex<Vec<String>>);

    impl Acked {
        pub fn push(&self, v: String) {
            self.0.lock().unwrap().push(v);
        }
        pub fn len(&self) -> usize {
            self.0.lock().unwrap().len()
        }
        pub fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_infer_finishes_during_the_drain() {
    let mut server = Server::start(Options {
        config_toml: Some("drain_grace_secs = 0.5\ndrain_timeout_secs = 30.0\n".into()),
        ..Default::default()
    })
    .await;
    let ch = server.channel().await;
    ModelRegistryServiceClient::new(ch.clone())
        .register_model(RegisterModelRequest {
            name: "loopy".into(),
            version: "1.0.0".into(),
            source: LOOPY.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // About a second of work (10,000 steps per run × 15,000 runs).
    let req = InferRequest {
        model: "loopy".into(),
        inputs: [(
            "n".to_owned(),
            Value {
                kind: Some(Kind::Int(10_000)),
            },
        )]
        .into(),
        options: Some(InferenceOptions {
            num_samples: 15_000,
            ..Default::default()
        }),
        seed: Some(1),
        ..Default::default()
    };
    let mut c = InferenceServiceClient::new(ch.clone());
    let call = tokio::spawn(async move { c.infer(req).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signal("TERM");
    let r = call
        .await
        .unwrap()
        .expect("the in-flight call must finish during the drain");
    assert_eq!(r.into_inner().outputs.len(), 1);
    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "{}", server.stderr());
}
