//! Rollouts through the real binary: sticky canary routing, overrides, kill switch,
//! Watch, automatic rollback on a guardrail breach, promotion moving `stable`,
//! outcomes, analysis, persistence across a restart, and error codes.

use std::time::Duration;

use probserve_e2e::{Options, Server};
use probserve_proto::v1::experiment_service_client::ExperimentServiceClient;
use probserve_proto::v1::inference_service_client::InferenceServiceClient;
use probserve_proto::v1::model_registry_service_client::ModelRegistryServiceClient;
use probserve_proto::v1::value::Kind;
use probserve_proto::v1::*;
use tonic::Code;
use tonic::transport::Channel;

const GOOD: &str = "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, 1.0);\n  output temp;\n}\n";
const GOOD2: &str = "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, 2.0);\n  output temp;\n}\n";
/// Fails at run time on every call: a negative scale.
const BROKEN: &str = "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, reading - 1000.0);\n  output temp;\n}\n";

async fn register(ch: &Channel, name: &str, version: &str, source: &str) {
    ModelRegistryServiceClient::new(ch.clone())
        .register_model(RegisterModelRequest {
            name: name.into(),
            version: version.into(),
            source: source.into(),
            ..Default::default()
        })
        .await
        .unwrap();
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
            num_samples: 50,
            ..Default::default()
        }),
        seed: Some(seed),
        ..Default::default()
    }
}

fn ctx(id: &str) -> Option<CommandContext> {
    Some(CommandContext {
        id: id.into(),
        actor: "ana".into(),
        reason: "e2e".into(),
        expected_revision: 0,
    })
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

fn spec(model: &str, base: &str, cand: &str, steps: Vec<RolloutStep>) -> RolloutSpec {
    RolloutSpec {
        model: model.into(),
        baseline_version: base.into(),
        candidate_version: cand.into(),
        strategy: RolloutStrategy::Canary as i32,
        steps,
        guardrails: Some(Guardrails {
            min_samples_per_arm: 30,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn phase(r: &Rollout) -> i32 {
    r.status.as_ref().unwrap().phase
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_routes_sticky_and_obeys_overrides_kill_switch_and_watch() {
    let server = Server::start(Options {
        config_toml: Some("controller_interval_ms = 60000\n".into()),
        ..Default::default()
    })
    .await;
    let ch = server.channel().await;
    register(&ch, "sensor", "1.0.0", GOOD).await;
    register(&ch, "sensor", "2.0.0", GOOD2).await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    let mut inf = InferenceServiceClient::new(ch.clone());

    // Errors first: unknown version, missing actor.
    let e = exp
        .create_rollout(CreateRolloutRequest {
            id: "bad".into(),
            spec: Some(spec("sensor", "1.0.0", "9.9.9", vec![])),
            actor: "ana".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = exp
        .create_rollout(CreateRolloutRequest {
            id: "bad".into(),
            spec: Some(spec("sensor", "1.0.0", "2.0.0", vec![])),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    let created = exp
        .create_rollout(CreateRolloutRequest {
            id: "sensor-canary".into(),
            spec: Some(spec(
                "sensor",
                "1.0.0",
                "2.0.0",
                vec![step(5000, 10), step(10_000, 10)],
            )),
            start: true,
            actor: "ana".into(),
            reason: "ticket 7".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(phase(&created), RolloutPhase::Running as i32);
    assert_eq!(created.status.as_ref().unwrap().candidate_bps, 5000);
    // A second active rollout for the same model is refused.
    let e = exp
        .create_rollout(CreateRolloutRequest {
            id: "other".into(),
            spec: Some(spec("sensor", "1.0.0", "2.0.0", vec![])),
            actor: "ana".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);

    let mut watch = exp
        .watch_rollout(WatchRolloutRequest {
            id: "sensor-canary".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.rollout.unwrap().id, "sensor-canary");

    // Sticky split: both arms serve, and a key always gets the same version.
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..200 {
        let r = inf
            .infer(infer("sensor", &format!("user-{i}"), i))
            .await
            .unwrap()
            .into_inner();
        let s = r.served_by.unwrap();
        assert_eq!(s.rollout_id, "sensor-canary");
        // Inside a running rollout every call is the split's: baseline ones too.
        assert_eq!(s.reason, RoutingReason::Split as i32, "{s:?}");
        *counts.entry(s.version.clone()).or_insert(0) += 1;
        let again = inf
            .infer(infer("sensor", &format!("user-{i}"), i + 1000))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            again.served_by.unwrap().version,
            s.version,
            "user-{i} must stick"
        );
    }
    assert!(
        counts.get("1.0.0").copied().unwrap_or(0) > 50
            && counts.get("2.0.0").copied().unwrap_or(0) > 50,
        "{counts:?}"
    );

    // An override pins a key; the kill switch sends everyone to the baseline.
    exp.set_override(SetOverrideRequest {
        context: ctx("sensor-canary"),
        routing_key: "vip".into(),
        version: "2.0.0".into(),
    })
    .await
    .unwrap();
    let r = inf
        .infer(infer("sensor", "vip", 1))
        .await
        .unwrap()
        .into_inner()
        .served_by
        .unwrap();
    assert_eq!(
        (r.version.as_str(), r.reason),
        ("2.0.0", RoutingReason::Override as i32)
    );
    exp.set_kill_switch(SetKillSwitchRequest {
        context: ctx("sensor-canary"),
        enabled: true,
    })
    .await
    .unwrap();
    for i in 0..20 {
        let r = inf
            .infer(infer("sensor", &format!("user-{i}"), 1))
            .await
            .unwrap()
            .into_inner()
            .served_by
            .unwrap();
        assert_eq!(
            (r.version.as_str(), r.reason),
            ("1.0.0", RoutingReason::KillSwitch as i32)
        );
    }
    exp.set_kill_switch(SetKillSwitchRequest {
        context: ctx("sensor-canary"),
        enabled: false,
    })
    .await
    .unwrap();

    // Watch saw the changes, with their audit records.
    let mut changes = Vec::new();
    for _ in 0..3 {
        let m = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        changes.push(m.change);
    }
    assert!(changes.iter().all(|c| c.contains("ana")), "{changes:?}");

    // Outcomes count for the key's arm; the analysis sees both arms.
    let v = exp
        .record_outcome(RecordOutcomeRequest {
            id: "sensor-canary".into(),
            routing_key: "user-1".into(),
            metric: "conversion".into(),
            value: 1.0,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    assert!(v == "1.0.0" || v == "2.0.0");
    let a = exp
        .get_analysis(GetAnalysisRequest {
            id: "sensor-canary".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.arms.len(), 2, "{a:?}");
    assert!(a.arms.iter().all(|arm| arm.calls > 0));

    // Stale revision is ABORTED; promote moves `stable`; a finished rollout refuses commands.
    let e = exp
        .pause_rollout(PauseRolloutRequest {
            context: Some(CommandContext {
                expected_revision: 1,
                ..ctx("sensor-canary").unwrap()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted, "{e:?}");
    let p = exp
        .promote_rollout(PromoteRolloutRequest {
            context: ctx("sensor-canary"),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(phase(&p), RolloutPhase::Promoted as i32);
    let r = inf
        .infer(infer("sensor", "anyone", 1))
        .await
        .unwrap()
        .into_inner()
        .served_by
        .unwrap();
    assert_eq!(
        (r.version.as_str(), r.reason, r.rollout_id.as_str()),
        ("2.0.0", RoutingReason::Default as i32, "")
    );
    let m = ModelRegistryServiceClient::new(ch.clone())
        .get_model(GetModelRequest {
            name: "sensor".into(),
            label: "stable".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.model.unwrap().version, "2.0.0");
    let e = exp
        .advance_rollout(AdvanceRolloutRequest {
            context: ctx("sensor-canary"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_candidate_is_rolled_back_automatically_and_it_persists() {
    let data = tempfile::tempdir().unwrap();
    let opts = Options {
        config_toml: Some("controller_interval_ms = 200\n".into()),
        data_dir: Some(data.path().join("d")),
        ..Default::default()
    };
    let mut server = Server::start(opts.clone()).await;
    let ch = server.channel().await;
    register(&ch, "flaky", "1.0.0", GOOD).await;
    register(&ch, "flaky", "2.0.0", BROKEN).await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    let mut inf = InferenceServiceClient::new(ch.clone());
    exp.create_rollout(CreateRolloutRequest {
        id: "flaky-canary".into(),
        spec: Some(spec(
            "flaky",
            "1.0.0",
            "2.0.0",
            vec![step(5000, 1000), step(10_000, 1000)],
        )),
        start: true,
        actor: "ana".into(),
        reason: "try 2.0.0".into(),
    })
    .await
    .unwrap();
    let mut rolled_back = false;
    let mut errors = 0;
    for i in 0..2000u64 {
        match inf.infer(infer("flaky", &format!("u{i}"), i)).await {
            Ok(r) => {
                let s = r.into_inner().served_by.unwrap();
                if s.rollout_id.is_empty() || s.reason == RoutingReason::Default as i32 {
                    // The rollout is over: traffic is back on the stable path.
                    assert_eq!(s.version, "1.0.0");
                }
            }
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
                errors += 1;
            }
        }
        if i % 50 == 49 {
            let r = exp
                .get_rollout(GetRolloutRequest {
                    id: "flaky-canary".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .rollout
                .unwrap();
            if phase(&r) == RolloutPhase::RolledBack as i32 {
                rolled_back = true;
                let reason = r.status.unwrap().reason;
                assert!(
                    reason.to_lowercase().contains("error"),
                    "the reason names the breach: {reason:?}"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if !rolled_back {
        let a = exp
            .get_analysis(GetAnalysisRequest {
                id: "flaky-canary".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let r = exp
            .get_rollout(GetRolloutRequest {
                id: "flaky-canary".into(),
            })
            .await
            .unwrap()
            .into_inner();
        panic!(
            "the controller must roll back a candidate that fails every call ({errors} errors seen): {a:?} {r:?}\n{}",
            server.stderr()
        );
    }
    // After the rollback every call is served by the baseline.
    for i in 0..50u64 {
        let s = inf
            .infer(infer("flaky", &format!("u{i}"), i))
            .await
            .unwrap()
            .into_inner()
            .served_by
            .unwrap();
        assert_eq!(s.version, "1.0.0");
    }
    // The decision survives a restart.
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).await.success());
    let server = Server::start(opts).await;
    let mut exp = ExperimentServiceClient::new(server.channel().await);
    let r = exp
        .get_rollout(GetRolloutRequest {
            id: "flaky-canary".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(phase(&r), RolloutPhase::RolledBack as i32);
    let list = exp
        .list_rollouts(ListRolloutsRequest {
            model: "flaky".into(),
            active_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.rollouts.len(), 1);
}

/// A shadow rollout answers every call from the baseline and mirrors calls to the
/// candidate off the request path; the analysis compares the two as distributions.
/// A candidate with the same posterior agrees; one whose posterior is far off does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_rollout_mirrors_calls_and_compares_posteriors() {
    // A posterior mean near 40 instead of about 21.9: must disagree.
    const SHIFTED: &str = "model m {\n  data reading: real;\n  temp ~ normal(40.0, 0.5);\n  reading ~ normal(temp, 100.0);\n  output temp;\n}\n";
    let server = Server::start(Options {
        config_toml: Some("controller_interval_ms = 60000\n".into()),
        ..Default::default()
    })
    .await;
    let ch = server.channel().await;
    register(&ch, "twin", "1.0.0", GOOD).await;
    register(
        &ch,
        "twin",
        "1.0.1",
        &GOOD.replace("model m {", "model m { // same model"),
    )
    .await;
    register(&ch, "far", "1.0.0", GOOD).await;
    register(&ch, "far", "2.0.0", SHIFTED).await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    let mut inf = InferenceServiceClient::new(ch.clone());

    // Criteria are checked: a bad one is INVALID_ARGUMENT naming the field.
    let mut bad = spec("twin", "1.0.0", "1.0.1", vec![]);
    bad.strategy = RolloutStrategy::Shadow as i32;
    bad.shadow_criteria = Some(ShadowCriteria {
        min_agreement: 1.5,
        ..Default::default()
    });
    let e = exp
        .create_rollout(CreateRolloutRequest {
            id: "bad-criteria".into(),
            spec: Some(bad),
            actor: "ana".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("min_agreement"), "{e:?}");

    for (id, model, cand) in [
        ("twin-shadow", "twin", "1.0.1"),
        ("far-shadow", "far", "2.0.0"),
    ] {
        let mut s = spec(model, "1.0.0", cand, vec![]);
        s.strategy = RolloutStrategy::Shadow as i32;
        if model == "twin" {
            s.shadow_criteria = Some(ShadowCriteria {
                min_compared: 50,
                ..Default::default()
            });
        }
        exp.create_rollout(CreateRolloutRequest {
            id: id.into(),
            spec: Some(s),
            start: true,
            actor: "ana".into(),
            reason: "e2e shadow".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("create {id}: {e:?}"));
    }

    let calls = 60u64;
    for (model, id) in [("twin", "twin-shadow"), ("far", "far-shadow")] {
        for i in 0..calls {
            let mut req = infer(model, &format!("user-{i}"), 1000 + i);
            req.options = Some(InferenceOptions {
                num_samples: 2000,
                ..Default::default()
            });
            let resp = inf.infer(req).await.unwrap().into_inner();
            let by = resp.served_by.unwrap();
            assert_eq!(by.version, "1.0.0", "shadow never serves the candidate");
            assert_eq!(by.rollout_id, id);
        }
    }

    // Mirrors run in the background: wait until every call was compared.
    let analysis = |id: &'static str| {
        let mut exp = exp.clone();
        async move {
            for _ in 0..200 {
                let a = exp
                    .get_analysis(GetAnalysisRequest { id: id.into() })
                    .await
                    .unwrap()
                    .into_inner();
                if a.shadow.as_ref().is_some_and(|s| s.mirrored_calls >= calls) {
                    return a;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("{id}: mirrored calls never all recorded");
        }
    };
    let twin = analysis("twin-shadow").await.shadow.unwrap();
    assert_eq!((twin.mirrored_calls, twin.mirror_errors), (calls, 0));
    assert_eq!(twin.compared, calls);
    // Same posterior, same seed: every call agrees.
    assert!(twin.agreement_rate > 0.95, "{twin:?}");
    assert!(
        !twin.blockers.iter().any(|b| b.contains("compared calls")),
        "60 compared calls meet this rollout's 50: {twin:?}"
    );

    let far = analysis("far-shadow").await.shadow.unwrap();
    assert_eq!(far.compared, calls);
    assert!(far.agreement_rate < 0.05, "{far:?}");
    assert!(far.agreement_high < 0.85, "{far:?}");
    assert!(
        far.blockers.iter().any(|b| b.contains("agreement")),
        "{far:?}"
    );
    assert!(
        far.blockers.iter().any(|b| b.contains("compared calls")),
        "the default needs 1,000: {far:?}"
    );

    // The rollout itself stays on its shadow step, serving the baseline.
    let r = exp
        .get_rollout(GetRolloutRequest {
            id: "far-shadow".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(phase(&r), RolloutPhase::Running as i32);
    assert_eq!(r.status.unwrap().candidate_bps, 0);
    let criteria = r.spec.unwrap().shadow_criteria.unwrap();
    assert_eq!((criteria.min_compared, criteria.agreement_k), (1000, 0.5));
}
