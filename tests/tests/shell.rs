//! The server shell against the real binary: reflection with grpcurl, health and
//! drain, /metrics, configuration errors, OTLP traces and a Python client.

use std::process::Command;
use std::time::Duration;

use probserve_e2e::{Options, Server, binary, metric_value};
use probserve_proto::v1::GetHealthReportRequest;
use probserve_proto::v1::diagnostics_service_client::DiagnosticsServiceClient;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_every_service_and_describes_messages() {
    let server = Server::start(Options::default()).await;
    let addr = server.addr.to_string();
    let (ok, out, err) = server.grpcurl(&[&addr, "list"]);
    assert!(ok, "grpcurl list failed: {err}");
    for svc in [
        "probserve.v1.InferenceService",
        "probserve.v1.ModelRegistryService",
        "probserve.v1.ExperimentService",
        "probserve.v1.DiagnosticsService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            out.lines().any(|l| l.trim() == svc),
            "{svc} missing from `grpcurl list`:\n{out}"
        );
    }
    let (ok, out, err) = server.grpcurl(&[&addr, "describe", "probserve.v1.InferRequest"]);
    assert!(ok, "describe failed: {err}");
    assert!(out.contains("routing_key"), "{out}");
    assert!(
        out.contains("The sticky routing key"),
        "proto comments should be served: {out}"
    );
    let (ok, out, _) = server.grpcurl(&[&addr, "describe", "probserve.v1.InferenceService"]);
    assert!(ok && out.contains("rpc Infer"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_for_every_service_and_not_serving_while_draining() {
    let server = Server::start(Options {
        config_toml: Some("drain_grace_secs = 3.0\ndrain_timeout_secs = 5.0\n".into()),
        ..Default::default()
    })
    .await;
    for svc in [
        "",
        "probserve.v1.InferenceService",
        "probserve.v1.ModelRegistryService",
        "probserve.v1.ExperimentService",
        "probserve.v1.DiagnosticsService",
    ] {
        assert_eq!(
            server.health(svc).await.unwrap(),
            ServingStatus::Serving as i32,
            "service {svc:?}"
        );
    }
    let mut server = server;
    let ch = server.channel().await;
    server.signal("TERM");
    // During the grace period the health check answers NOT_SERVING…
    let mut saw_not_serving = false;
    for _ in 0..100 {
        let mut c = tonic_health::pb::health_client::HealthClient::new(ch.clone());
        if let Ok(r) = c
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            && r.into_inner().status == ServingStatus::NotServing as i32
        {
            saw_not_serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        saw_not_serving,
        "health never became NOT_SERVING during the drain"
    );
    // …and new calls are refused with UNAVAILABLE.
    let err = DiagnosticsServiceClient::new(ch.clone())
        .get_health_report(GetHealthReportRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "exit status {status}: {}",
        server.stderr()
    );
    assert!(server.stderr().contains("draining"), "{}", server.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_counters_move_after_calls() {
    let server = Server::start(Options::default()).await;
    let key = "probserve_rpc_handled_total{method=\"/probserve.v1.DiagnosticsService/GetHealthReport\",code=\"OK\"}";
    let before = metric_value(&server.metrics(), key);
    let mut c = DiagnosticsServiceClient::new(server.channel().await);
    for _ in 0..3 {
        c.get_health_report(GetHealthReportRequest {})
            .await
            .unwrap();
    }
    let text = server.metrics();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(metric_value(&text, key) - before, 3.0, "{text}");
    assert!(
        text.contains("probserve_rpc_duration_seconds_bucket"),
        "latency histogram missing"
    );
    assert!(
        metric_value(&text, "process_resident_memory_bytes") > 0.0,
        "process metrics missing"
    );
    // Errors are counted by status code.
    let mut inf = probserve_proto::v1::experiment_service_client::ExperimentServiceClient::new(
        server.channel().await,
    );
    let e = inf
        .get_rollout(probserve_proto::v1::GetRolloutRequest { id: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(e.message().contains("\"x\""), "{}", e.message());
    let text = server.metrics();
    assert_eq!(
        metric_value(
            &text,
            "probserve_rpc_handled_total{method=\"/probserve.v1.ExperimentService/GetRollout\",code=\"NOT_FOUND\"}"
        ),
        1.0,
        "{text}"
    );
    // The health report sees the same calls.
    let report = c
        .get_health_report(GetHealthReportRequest {})
        .await
        .unwrap()
        .into_inner();
    let m = report
        .methods
        .iter()
        .find(|m| m.method.ends_with("ExperimentService/GetRollout"))
        .expect("method stats");
    assert_eq!((m.calls, m.errors), (1, 1));
}

#[test]
fn bad_config_file_and_bad_flag_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:1\"\nmax_inflight = 5\n").unwrap();
    let out = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_inflight"),
        "the bad key must be named: {err}"
    );

    std::fs::write(&cfg, "max_in_flight = \"lots\"\n").unwrap();
    let out = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_in_flight"));

    let out = Command::new(binary())
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen"), "{err}");

    let out = Command::new(binary())
        .args(["serve", "--no-such-flag"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));

    // Environment variables are checked the same way.
    let out = Command::new(binary())
        .args(["check-config"])
        .env("PROBSERVE_MAX_IN_FLIGHT", "-3")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("max_in_flight")
    );
}

#[test]
fn precedence_is_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:1001\"\nmetrics_listen = \"127.0.0.1:1002\"\nmax_in_flight = 11\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:1003"])
        .env("PROBSERVE_METRICS_LISTEN", "127.0.0.1:1004")
        .env("PROBSERVE_LISTEN", "127.0.0.1:1005")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("listen = \"127.0.0.1:1003\""),
        "flag wins: {text}"
    );
    assert!(
        text.contains("metrics_listen = \"127.0.0.1:1004\""),
        "env beats file: {text}"
    );
    assert!(
        text.contains("max_in_flight = 11"),
        "file beats default: {text}"
    );
    let help = Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--metrics-listen",
        "--data-dir",
        "--config",
        "--log-format",
    ] {
        assert!(help.contains(flag), "--help must explain {flag}: {help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let mut server = Server::start(Options {
        args: vec!["--log-format".into(), "json".into()],
        ..Default::default()
    })
    .await;
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).await.success());
    let text = server.stderr();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some(), "{l}");
    }
}

/// Item 11 of issue 12: kubelet injects `PROBSERVE_SERVICE_HOST`, `PROBSERVE_PORT`, …
/// for a Service named `probserve`; the server used to read them as configuration
/// and exit 2. It now starts, warns about a real typo, and stays quiet about links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_service_link_variables_are_ignored_and_typos_are_warned() {
    let env: Vec<(String, String)> = [
        ("PROBSERVE_SERVICE_HOST", "10.96.0.10"),
        ("PROBSERVE_SERVICE_PORT", "50051"),
        ("PROBSERVE_SERVICE_PORT_GRPC", "50051"),
        ("PROBSERVE_PORT", "tcp://10.96.0.10:50051"),
        ("PROBSERVE_PORT_50051_TCP", "tcp://10.96.0.10:50051"),
        ("PROBSERVE_PORT_50051_TCP_PROTO", "tcp"),
        ("PROBSERVE_PORT_50051_TCP_PORT", "50051"),
        ("PROBSERVE_PORT_50051_TCP_ADDR", "10.96.0.10"),
        ("PROBSERVE_PORT_9464_TCP_ADDR", "10.96.0.10"),
        ("PROBSERVE_DRAIN_TIMEOUT_SECS", "7"),
        ("PROBSERVE_DRAIN_TIMOUT_SECS", "8"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let server = Server::start(Options {
        env,
        ..Default::default()
    })
    .await;
    let stderr = server.stderr();
    assert!(
        stderr.contains("PROBSERVE_DRAIN_TIMOUT_SECS")
            && stderr.contains("PROBSERVE_DRAIN_TIMEOUT_SECS?"),
        "the typo is named with a hint: {stderr}"
    );
    assert!(
        !stderr.contains("PROBSERVE_SERVICE_HOST") && !stderr.contains("PROBSERVE_PORT_50051"),
        "service links are not warned about: {stderr}"
    );
}

/// Item 13 of issue 12: `--listen localhost:PORT` (and the metrics address, file and
/// environment) accept host names; an unresolvable one is an error naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_addresses_accept_host_names() {
    let out = Command::new(binary())
        .args(["check-config", "--listen", "localhost:1003"])
        .env("PROBSERVE_METRICS_LISTEN", "localhost:1004")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("listen = \"127.0.0.1:1003\""), "{text}");
    assert!(
        text.contains("metrics_listen = \"127.0.0.1:1004\""),
        "{text}"
    );
    for (args, env, key) in [
        (vec!["--listen", "no-such-host.invalid:1"], None, "--listen"),
        (
            vec![],
            Some(("PROBSERVE_METRICS_LISTEN", "no-such-host.invalid:1")),
            "METRICS_LISTEN",
        ),
    ] {
        let mut cmd = Command::new(binary());
        cmd.arg("check-config").args(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(key) && err.contains("no-such-host.invalid"),
            "{err}"
        );
    }

    // A real server listening on a host name answers on the address it resolves to.
    let port = probserve_e2e::free_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args(["serve", "--listen", &format!("localhost:{port}")])
        .arg("--metrics-listen")
        .arg(probserve_e2e::free_addr().to_string())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut serving = false;
    for _ in 0..600 {
        if let Ok(ch) = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
            && let Ok(r) = tonic_health::pb::health_client::HealthClient::new(ch)
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
            && r.into_inner().status == ServingStatus::Serving as i32
        {
            serving = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        serving,
        "the server on localhost:{port} never answered health"
    );
}
