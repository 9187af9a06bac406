//! Rollout commands through the real binary, after the audit of issue 12's
//! fixes: a command cancelled by its caller is done whole or not at all (memory
//! and store agree, also after a restart), a rollback after a promotion moves
//! default traffic back, and a rollout starts from the version `stable` serves
//! and owns `stable` (and its versions) while it is active.

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
const GOOD3: &str = "model m {\n  data reading: real;\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(temp, 3.0);\n  output temp;\n}\n";

fn quiet() -> Options {
    Options {
        // The controller never acts on its own during these tests.
        config_toml: Some("controller_interval_ms = 600000\n".into()),
        ..Default::default()
    }
}

async fn register_all(ch: &Channel, name: &str) {
    let mut reg = ModelRegistryServiceClient::new(ch.clone());
    for (version, source) in [("1.0.0", GOOD), ("2.0.0", GOOD2), ("3.0.0", GOOD3)] {
        reg.register_model(RegisterModelRequest {
            name: name.into(),
            version: version.into(),
            source: source.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("register {name}@{version}: {e:?}"));
    }
}

async fn stable(ch: &Channel, name: &str) -> Option<String> {
    ModelRegistryServiceClient::new(ch.clone())
        .list_models(ListModelsRequest::default())
        .await
        .expect("list models")
        .into_inner()
        .models
        .into_iter()
        .find(|m| m.name == name)
        .and_then(|m| m.labels.get("stable").cloned())
}

/// The version an un-pinned, un-keyed call is served.
async fn default_version(ch: &Channel, model: &str) -> String {
    InferenceServiceClient::new(ch.clone())
        .infer(InferRequest {
            model: model.into(),
            inputs: [(
                "reading".to_owned(),
                Value {
                    kind: Some(Kind::Real(22.0)),
                },
            )]
            .into(),
            options: Some(InferenceOptions {
                num_samples: 20,
                ..Default::default()
            }),
            seed: Some(1),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("infer: {e:?}"))
        .into_inner()
        .served_by
        .expect("served_by")
        .version
}

fn ctx(id: &str) -> Option<CommandContext> {
    Some(CommandContext {
        id: id.into(),
        actor: "ana".into(),
        reason: "hardening".into(),
        expected_revision: 0,
    })
}

fn create(
    id: &str,
    model: &str,
    base: &str,
    cand: &str,
    strategy: RolloutStrategy,
) -> CreateRolloutRequest {
    let step = |bps| RolloutStep {
        candidate_bps: bps,
        min_samples_per_arm: 1_000_000,
        ..Default::default()
    };
    CreateRolloutRequest {
        id: id.into(),
        spec: Some(RolloutSpec {
            model: model.into(),
            baseline_version: base.into(),
            candidate_version: cand.into(),
            strategy: strategy as i32,
            steps: match strategy {
                RolloutStrategy::Canary => vec![step(1000), step(10_000)],
                _ => Vec::new(),
            },
            ..Default::default()
        }),
        start: true,
        actor: "ana".into(),
        reason: "hardening".into(),
    }
}

/// A request its client gives up on after 1 ms.
fn short<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(Duration::from_millis(1));
    r
}

fn phase(r: &Rollout) -> (i32, u64) {
    let s = r.status.as_ref().expect("status");
    (s.phase, s.revision)
}

/// (phase, revision) of each rollout the server knows, by GetRollout.
async fn states(
    exp: &mut ExperimentServiceClient<Channel>,
    ids: &[String],
) -> Vec<Option<(i32, u64)>> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            match exp.get_rollout(GetRolloutRequest { id: id.clone() }).await {
                Ok(r) => Some(phase(&r.into_inner().rollout.expect("rollout"))),
                Err(e) if e.code() == Code::NotFound => None,
                Err(e) => panic!("get {id}: {e:?}"),
            },
        );
    }
    out
}

fn active(states: &[Option<(i32, u64)>]) -> usize {
    let live = [
        RolloutPhase::Pending as i32,
        RolloutPhase::Running as i32,
        RolloutPhase::Paused as i32,
    ];
    states
        .iter()
        .flatten()
        .filter(|(p, _)| live.contains(p))
        .count()
}

/// Item 1 of the audit: create and command calls abandoned by their caller at
/// 1 ms (the deadline drops the handler, often mid-commit) leave memory and
/// store in step: every later command is accepted (no ABORTED), at most one
/// rollout per model is active, and a restart finds exactly what was answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_commands_never_split_memory_from_the_store() {
    let mut server = Server::start(quiet()).await;
    let ch = server.channel().await;
    register_all(&ch, "cx").await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    let ids: Vec<String> = (0..30).map(|i| format!("cx-{i}")).collect();
    for id in &ids {
        let strategy = RolloutStrategy::Canary;
        let _ = exp
            .create_rollout(short(create(id, "cx", "1.0.0", "2.0.0", strategy)))
            .await;
        let _ = exp
            .pause_rollout(short(PauseRolloutRequest { context: ctx(id) }))
            .await;
        let _ = exp
            .abort_rollout(short(AbortRolloutRequest { context: ctx(id) }))
            .await;
    }
    // Commands already accepted finish on their own. Commands are serialized
    // (first come, first served): once a later one has answered, they are done.
    let e = exp
        .create_rollout(create(
            "cx-sync",
            "cx",
            "9.0.0",
            "2.0.0",
            RolloutStrategy::Canary,
        ))
        .await
        .expect_err("9.0.0 is not stable");
    assert!(
        matches!(e.code(), Code::FailedPrecondition | Code::AlreadyExists),
        "{e:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = states(&mut exp, &ids).await;
    assert!(
        active(&before) <= 1,
        "one active rollout per model: {before:?}"
    );
    // Every rollout the server knows accepts a command: none is ABORTED.
    for (id, s) in ids.iter().zip(&before) {
        if active(std::slice::from_ref(s)) == 1 {
            exp.abort_rollout(AbortRolloutRequest { context: ctx(id) })
                .await
                .unwrap_or_else(|e| panic!("abort {id} after cancelled calls: {e:?}"));
        }
    }
    let settled = states(&mut exp, &ids).await;
    assert_eq!(active(&settled), 0, "{settled:?}");

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(60)).await.success());
    let server = Server::start(Options {
        data_dir: Some(server.data_dir.clone()),
        ..quiet()
    })
    .await;
    let mut exp = ExperimentServiceClient::new(server.channel().await);
    let after = states(&mut exp, &ids).await;
    assert_eq!(
        after, settled,
        "the store holds exactly what memory answered"
    );
}

/// Item 2: a blue-green rollout promoted and then rolled back sends default
/// traffic back to the baseline, in the rollback's transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_after_a_blue_green_promotion_moves_default_traffic_back() {
    let server = Server::start(quiet()).await;
    let ch = server.channel().await;
    register_all(&ch, "bg").await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    exp.create_rollout(create(
        "bg-r",
        "bg",
        "1.0.0",
        "2.0.0",
        RolloutStrategy::BlueGreen,
    ))
    .await
    .expect("create");
    exp.promote_rollout(PromoteRolloutRequest {
        context: ctx("bg-r"),
    })
    .await
    .expect("promote");
    assert_eq!(stable(&ch, "bg").await.as_deref(), Some("2.0.0"));
    assert_eq!(default_version(&ch, "bg").await, "2.0.0");
    let r = exp
        .rollback_rollout(RollbackRolloutRequest {
            context: ctx("bg-r"),
        })
        .await
        .expect("rollback after promotion")
        .into_inner()
        .rollout
        .expect("rollout");
    assert_eq!(phase(&r).0, RolloutPhase::RolledBack as i32);
    assert_eq!(stable(&ch, "bg").await.as_deref(), Some("1.0.0"));
    assert_eq!(default_version(&ch, "bg").await, "1.0.0");
}

/// Item 3: the baseline must be the version `stable` serves; while the rollout
/// is active nobody else moves `stable` or archives its versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_starts_from_stable_and_owns_it_while_active() {
    let server = Server::start(quiet()).await;
    let ch = server.channel().await;
    register_all(&ch, "own").await;
    let mut exp = ExperimentServiceClient::new(ch.clone());
    let mut reg = ModelRegistryServiceClient::new(ch.clone());
    let canary = RolloutStrategy::Canary;
    let e = exp
        .create_rollout(create("own-a", "own", "2.0.0", "3.0.0", canary))
        .await
        .expect_err("baseline is not stable");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("\"1.0.0\"") && e.message().contains("\"2.0.0\""),
        "{e:?}"
    );
    exp.create_rollout(create("own-b", "own", "1.0.0", "3.0.0", canary))
        .await
        .expect("from stable");
    let set_stable = |version: &str| SetVersionLabelRequest {
        name: "own".into(),
        label: "stable".into(),
        version: version.into(),
    };
    let e = reg
        .set_version_label(set_stable("2.0.0"))
        .await
        .expect_err("stable is the rollout's");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("own-b"), "{e:?}");
    let e = reg
        .archive_model(ArchiveModelRequest {
            name: "own".into(),
            version: "3.0.0".into(),
        })
        .await
        .expect_err("the candidate is in use");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("own-b"), "{e:?}");
    assert_eq!(stable(&ch, "own").await.as_deref(), Some("1.0.0"));

    exp.abort_rollout(AbortRolloutRequest {
        context: ctx("own-b"),
    })
    .await
    .expect("abort");
    reg.set_version_label(set_stable("2.0.0"))
        .await
        .expect("free again");
    reg.archive_model(ArchiveModelRequest {
        name: "own".into(),
        version: "3.0.0".into(),
    })
    .await
    .expect("free again");
}
