//! Hardening of the registry, rollouts and store through the real binary (issue 12,
//! items 8, 9, 10 and the registry/rollout parts of 12): default traffic never
//! moves by itself, every rollout command is one transaction, a bad store file
//! stops the server with a clear message, and rollout plans and names outside the
//! documented ranges are refused naming the field.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use probserve_e2e::{Options, Server, binary, free_addr};
use probserve_proto::v1::experiment_service_client::ExperimentServiceClient;
use probserve_proto::v1::inference_service_client::InferenceServiceClient;
use probserve_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use probserve_proto::v1::value::Kind;
use probserve_proto::v1::*;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

const GOOD: &str = "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, 1.0);\n  output temp;\n}\n";
const GOOD2: &str = "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, 2.0);\n  output temp;\n}\n";
const GOOD3: &str = "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, 3.0);\n  output temp;\n}\n";

fn violations(s: &tonic::Status) -> Vec<String> {
    s.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|f| f.field.clone()).collect())
        .unwrap_or_default()
}

async fn register(ch: &Channel, name: &str, version: &str, source: &str) {
    ModelRegistryServiceClient::new(ch.clone())
        .register_model(RegisterModelRequest {
            name: name.into(),
            version: version.into(),
            source: source.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("register {name}@{version}: {e:?}"));
}

async fn archive(ch: &Channel, name: &str, version: &str) {
    ModelRegistryServiceClient::new(ch.clone())
        .archive_model(ArchiveModelRequest {
            name: name.into(),
            version: version.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("archive {name}@{version}: {e:?}"));
}

async fn stable(ch: &Channel, name: &str) -> Option<String> {
    let page = ModelRegistryServiceClient::new(ch.clone())
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    page.models
        .into_iter()
        .find(|m| m.name == name)
        .and_then(|m| m.labels.get("stable").cloned())
}

fn infer(model: &str, key: &str, seed: u64) -> InferRequest {
    InferRequest {
        model: model.into(),
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

async fn served(ch: &Channel, req: InferRequest) -> ServedBy {
    InferenceServiceClient::new(ch.clone())
        .infer(req)
        .await
        .unwrap_or_else(|e| panic!("infer: {e:?}"))
        .into_inner()
        .served_by
        .expect("served_by")
}

fn ctx(id: &str) -> Option<CommandContext> {
    Some(CommandContext {
        id: id.into(),
        actor: "ana".into(),
        reason: "hardening".into(),
        expected_revision: 0,
    })
}

fn step(bps: u32) -> RolloutStep {
    RolloutStep {
        candidate_bps: bps,
        min_samples_per_arm: 1_000_000,
        ..Default::default()
    }
}

fn spec(model: &str, base: &str, cand: &str) -> RolloutSpec {
    RolloutSpec {
        model: model.into(),
        baseline_version: base.into(),
        candidate_version: cand.into(),
        strategy: RolloutStrategy::Canary as i32,
        steps: vec![step(1000), step(10_000)],
        ..Default::default()
    }
}

fn create(id: &str, spec: RolloutSpec, start: bool) -> CreateRolloutRequest {
    CreateRolloutRequest {
        id: id.into(),
        spec: Some(spec),
        start,
        actor: "ana".into(),
        reason: "hardening".into(),
    }
}

fn status(r: &Rollout) -> &RolloutStatus {
    r.status.as_ref().expect("status")
}

async fn get(exp: &mut ExperimentServiceClient<Channel>, id: &str) -> Rollout {
    exp.get_rollout(GetRolloutRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap()
}

fn quiet() -> Options {
    Options {
        // The controller never acts on its own during these tests.
        config_toml: Some("controller_interval_ms = 600000\n".into()),
        ..Default::default()
    }
}

/// Item 8: registering `temperature_sensor@99.0.0` must not move un-pinned traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_never_takes_default_traffic_by_itself() {
    let server = Server::start(quiet()).await;
    let ch = server.channel().await;
    let mut reg = ModelRegistryServiceClient::new(ch.clone());
    let builtin = reg
        .get_model(GetModelRequest {
            name: "temperature_sensor".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(
        stable(&ch, "temperature_sensor").await.as_deref(),
        Some(builtin.version.as_str()),
        "built-ins carry a stable label"
    );
    register(&ch, "temperature_sensor", "99.0.0", &builtin.source).await;
    let by_default = reg
        .get_model(GetModelRequest {
            name: "temperature_sensor".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(by_default.version, builtin.version, "default did not move");
    let mut req = infer("temperature_sensor", "", 1);
    req.inputs.clear();
    for d in builtin
        .interface
        .as_ref()
        .map(|i| i.data.clone())
        .unwrap_or_default()
    {
        let kind = match DataType::try_from(d.r#type) {
            Ok(DataType::Int) => Kind::Int(1),
            Ok(DataType::Bool) => Kind::Bool(true),
            Ok(DataType::RealVector) => Kind::Reals(RealVector { values: vec![1.0] }),
            Ok(DataType::IntVector) => Kind::Ints(IntVector { values: vec![1] }),
            Ok(DataType::BoolVector) => Kind::Bools(BoolVector { values: vec![true] }),
            _ => Kind::Real(21.0),
        };
        req.inputs.insert(d.name, Value { kind: Some(kind) });
    }
    let s = served(&ch, req).await;
    assert_eq!(s.version, builtin.version, "Infer did not move either");

    // A brand-new model is served at once by its first version, but not its second.
    register(&ch, "fresh", "1.0.0", GOOD).await;
    register(&ch, "fresh", "2.0.0", GOOD2).await;
    assert_eq!(served(&ch, infer("fresh", "", 1)).await.version, "1.0.0");
    reg.set_version_label(SetVersionLabelRequest {
        name: "fresh".into(),
        label: "stable".into(),
        version: "2.0.0".into(),
    })
    .await
    .unwrap();
    assert_eq!(served(&ch, infer("fresh", "", 1)).await.version, "2.0.0");
}

/// Item 9: a create refused for an archived baseline stores nothing, also after a
/// restart, and the model can then get a valid rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_an_archived_baseline_stores_nothing() {
    let mut server = Server::start(quiet()).await;
    let ch = server.channel().await;
    for (v, src) in [("1.0.0", GOOD), ("2.0.0", GOOD2), ("3.0.0", GOOD3)] {
        register(&ch, "arch", v, src).await;
    }
    archive(&ch, "arch", "2.0.0").await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    let e = exp
        .create_rollout(create("arch-r1", spec("arch", "2.0.0", "3.0.0"), true))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = exp
        .create_rollout(create("arch-r2", spec("arch", "1.0.0", "2.0.0"), false))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::FailedPrecondition,
        "archived candidate: {e:?}"
    );
    let none = |exp: ExperimentServiceClient<Channel>| async move {
        let mut exp = exp;
        exp.list_rollouts(ListRolloutsRequest {
            model: "arch".into(),
            active_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .rollouts
    };
    assert!(none(exp.clone()).await.is_empty());
    assert_eq!(stable(&ch, "arch").await.as_deref(), Some("1.0.0"));

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(60)).await.success());
    let data_dir = server.data_dir.clone();
    let server = Server::start(Options {
        data_dir: Some(data_dir),
        ..quiet()
    })
    .await;
    let ch = server.channel().await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    assert!(none(exp.clone()).await.is_empty(), "nothing after restart");
    let ok = exp
        .create_rollout(create("arch-r3", spec("arch", "1.0.0", "3.0.0"), true))
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(status(&ok).phase, RolloutPhase::Running as i32);
}

/// Item 9: the candidate of an active rollout cannot be archived (the store
/// refuses it, naming the rollout), so a promotion can no longer fail half-way
/// on an archived candidate (the commit would still check it and change
/// nothing); the state is untouched and Pause, the kill switch and Rollback work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_an_active_rollouts_candidate_is_refused_and_it_stays_usable() {
    let server = Server::start(quiet()).await;
    let ch = server.channel().await;
    register(&ch, "promo", "1.0.0", GOOD).await;
    register(&ch, "promo", "2.0.0", GOOD2).await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    exp.create_rollout(create("promo-r", spec("promo", "1.0.0", "2.0.0"), true))
        .await
        .unwrap();
    let before = get(&mut exp, "promo-r").await;
    let e = ModelRegistryServiceClient::new(ch.clone())
        .archive_model(ArchiveModelRequest {
            name: "promo".into(),
            version: "2.0.0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("promo-r"), "{e:?}");
    let after = get(&mut exp, "promo-r").await;
    assert_eq!(after, before, "state untouched");
    assert_eq!(stable(&ch, "promo").await.as_deref(), Some("1.0.0"));

    let r = exp
        .set_kill_switch(SetKillSwitchRequest {
            context: ctx("promo-r"),
            enabled: true,
        })
        .await
        .unwrap_or_else(|e| panic!("kill switch after a refused promote: {e:?}"))
        .into_inner()
        .rollout
        .unwrap();
    assert!(status(&r).kill_switch);
    exp.pause_rollout(PauseRolloutRequest {
        context: ctx("promo-r"),
    })
    .await
    .unwrap_or_else(|e| panic!("pause after a refused promote: {e:?}"));
    let r = exp
        .rollback_rollout(RollbackRolloutRequest {
            context: ctx("promo-r"),
        })
        .await
        .unwrap_or_else(|e| panic!("rollback after a refused promote: {e:?}"))
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(status(&r).phase, RolloutPhase::RolledBack as i32);
    assert_eq!(served(&ch, infer("promo", "k", 1)).await.version, "1.0.0");
}

/// Item 12: a PENDING rollout can be started; finished rollouts refuse the kill
/// switch and overrides; baseline calls inside a running rollout say SPLIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_rollouts_start_and_finished_ones_refuse_switches() {
    let server = Server::start(quiet()).await;
    let ch = server.channel().await;
    register(&ch, "life", "1.0.0", GOOD).await;
    register(&ch, "life", "2.0.0", GOOD2).await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    let r = exp
        .create_rollout(create("life-r", spec("life", "1.0.0", "2.0.0"), false))
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(status(&r).phase, RolloutPhase::Pending as i32);
    let r = exp
        .start_rollout(StartRolloutRequest {
            context: ctx("life-r"),
        })
        .await
        .unwrap_or_else(|e| panic!("start a pending rollout: {e:?}"))
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(status(&r).phase, RolloutPhase::Running as i32);
    let e = exp
        .start_rollout(StartRolloutRequest {
            context: ctx("life-r"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // 10% canary: calls on the baseline are the split's too.
    let mut baseline_calls = 0;
    for i in 0..40 {
        let s = served(&ch, infer("life", &format!("user-{i}"), i)).await;
        assert_eq!(s.rollout_id, "life-r");
        assert_eq!(s.reason, RoutingReason::Split as i32, "{s:?}");
        baseline_calls += usize::from(s.version == "1.0.0");
    }
    assert!(baseline_calls > 0);

    let e = exp
        .set_override(SetOverrideRequest {
            context: ctx("life-r"),
            routing_key: "k".repeat(257),
            version: "2.0.0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(violations(&e), ["routing_key"]);

    exp.abort_rollout(AbortRolloutRequest {
        context: ctx("life-r"),
    })
    .await
    .unwrap();
    let e = exp
        .set_kill_switch(SetKillSwitchRequest {
            context: ctx("life-r"),
            enabled: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = exp
        .set_override(SetOverrideRequest {
            context: ctx("life-r"),
            routing_key: "vip".into(),
            version: "2.0.0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
}

/// Item 12: CreateRollout refuses out-of-range plans with INVALID_ARGUMENT naming
/// the field, and stores none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rollout_plans_are_refused_naming_the_field() {
    let server = Server::start(quiet()).await;
    let ch = server.channel().await;
    register(&ch, "plan", "1.0.0", GOOD).await;
    register(&ch, "plan", "2.0.0", GOOD2).await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    let base = || spec("plan", "1.0.0", "2.0.0");
    let duration = |seconds: i64, nanos: i32| {
        let mut s = base();
        s.steps[0].min_duration = Some(prost_types::Duration { seconds, nanos });
        s
    };
    let guard = |f: fn(&mut Guardrails)| {
        let mut s = base();
        let mut g = Guardrails::default();
        f(&mut g);
        s.guardrails = Some(g);
        s
    };
    let mut unknown = base();
    unknown.strategy = 99;
    let mut many = base();
    many.steps = (0..101).map(|i| step(i * 99)).collect();
    let ab = |bps: u32| {
        let mut s = base();
        s.strategy = RolloutStrategy::AbTest as i32;
        s.steps = vec![step(bps)];
        s
    };
    let cases: Vec<(&str, RolloutSpec, &str)> = vec![
        ("strategy 99", unknown, "spec.strategy"),
        (
            "negative duration",
            duration(-5, 0),
            "spec.steps.min_duration",
        ),
        ("negative nanos", duration(0, -1), "spec.steps.min_duration"),
        (
            "2^63-1 seconds",
            duration(i64::MAX, 0),
            "spec.steps.min_duration",
        ),
        (
            "NaN error ratio",
            guard(|g| g.max_error_rate_ratio = f64::NAN),
            "spec.guardrails.max_error_rate_ratio",
        ),
        (
            "negative timeout ratio",
            guard(|g| g.max_timeout_rate_ratio = -1.0),
            "spec.guardrails.max_timeout_rate_ratio",
        ),
        (
            "infinite latency ratio",
            guard(|g| g.max_p95_latency_ratio = f64::INFINITY),
            "spec.guardrails.max_p95_latency_ratio",
        ),
        ("101 steps", many, "spec.steps"),
        ("A/B split of 0", ab(0), "spec.steps.candidate_bps"),
        ("A/B split of 10000", ab(10_000), "spec.steps.candidate_bps"),
        (
            "unbounded guardrail samples",
            guard(|g| g.min_samples_per_arm = u64::MAX),
            "spec.guardrails.min_samples_per_arm",
        ),
    ];
    for (what, s, field) in cases {
        let e = exp
            .create_rollout(create("plan-r", s, true))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert_eq!(violations(&e), [field], "{what}: {e:?}");
    }
    let e = exp
        .create_rollout(create("Plan.R", base(), true))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(violations(&e), ["id"]);
    let mut long_reason = create("plan-r", base(), true);
    long_reason.reason = "x".repeat(5000);
    let e = exp.create_rollout(long_reason).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(violations(&e), ["reason"]);
    let left = exp
        .list_rollouts(ListRolloutsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .rollouts;
    assert!(left.is_empty(), "{left:?}");
}

/// Item 12: names follow `[a-z][a-z0-9_-]{0,62}`; versions and metadata are capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_outside_the_documented_rules_are_refused() {
    let server = Server::start(quiet()).await;
    let mut reg = ModelRegistryServiceClient::new(server.channel().await);
    let req = |name: &str, version: &str| RegisterModelRequest {
        name: name.into(),
        version: version.into(),
        source: GOOD.into(),
        ..Default::default()
    };
    let long_pre = format!("1.0.0-{}", "a".repeat(100 * 1024));
    let mut many = req("meta", "1.0.0");
    many.metadata = (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
    let mut big = req("meta", "1.0.0");
    big.metadata = [("k".to_owned(), "v".repeat(2048))].into();
    let cases = [
        ("a..b", req("a..b", "1.0.0"), "name"),
        ("uppercase", req("Model", "1.0.0"), "name"),
        ("leading digit", req("1abc", "1.0.0"), "name"),
        ("100 KB pre-release", req("pre", &long_pre), "version"),
        ("65 metadata entries", many, "metadata"),
        ("2 KiB metadata value", big, "metadata"),
    ];
    for (what, r, field) in cases {
        let e = reg.register_model(r).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert_eq!(violations(&e), [field], "{what}: {e:?}");
        assert!(e.message().len() < 1024, "{what}: short message");
    }
}

/// Item 10: a zero-length store file stops the server (non-zero exit) with a
/// message saying what is wrong and what to do; the file is left as it was.
#[test]
fn a_zero_length_store_file_is_refused_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let file = data.join("probserve.redb");
    std::fs::write(&file, b"").expect("write");
    let stderr_path = tmp.path().join("stderr.log");
    let mut child = Command::new(binary())
        .arg("serve")
        .arg("--listen")
        .arg(free_addr().to_string())
        .arg("--metrics-listen")
        .arg(free_addr().to_string())
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr"))
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("probserve kept running on an empty store file");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(!status.success(), "exit status {status}: {stderr}");
    assert!(
        stderr.contains("not a valid probserve store") && stderr.contains("empty"),
        "{stderr}"
    );
    assert!(
        stderr.contains("backup") && stderr.contains("move it away"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::metadata(&file).expect("meta").len(), 0);
}
