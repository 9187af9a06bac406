//! A Python client generated from proto/ with grpcio-tools talks to the real binary.

use probserve_e2e::{Options, Server, generate_python_stubs, run_python_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stubs_call_health_and_diagnostics() {
    let stubs = tempfile::tempdir().unwrap();
    generate_python_stubs(stubs.path());
    let server = Server::start(Options::default()).await;
    let v = run_python_client(stubs.path(), &server.addr.to_string(), &["health"]);
    assert_eq!(v["health"], "SERVING", "{v}");
    assert_eq!(v["state"], "HEALTH_STATE_HEALTHY", "{v}");
    assert!(
        v["subsystems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "server"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stubs_run_inference_and_see_field_violations() {
    let stubs = tempfile::tempdir().unwrap();
    generate_python_stubs(stubs.path());
    let server = Server::start(Options::default()).await;
    let v = run_python_client(
        stubs.path(),
        &server.addr.to_string(),
        &["infer", "temperature_sensor", "22.0", "7"],
    );
    let mean = v["outputs"]["temp"]["mean"].as_f64().unwrap();
    let mcse = v["outputs"]["temp"]["mcse"].as_f64().unwrap();
    assert!(
        (mean - (20.0 + 25.0 / 26.0 * 2.0)).abs() < 5.0 * mcse + 0.01,
        "{v}"
    );
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["seed"], 7);
    assert_eq!(v["bad_request_code"], "INVALID_ARGUMENT", "{v}");
}
