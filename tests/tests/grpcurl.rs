//! An operator's session with grpcurl: register a model version from a file with
//! `-d @`, call Infer, see a clear error.

use probserve_e2e::{Options, Server, workspace_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_from_a_file_and_infer_with_grpcurl() {
    let server = Server::start(Options::default()).await;
    let addr = server.addr.to_string();
    let source =
        std::fs::read_to_string(workspace_root().join("tests/models/temperature_v2.pm")).unwrap();
    let body = serde_json::json!({ "name": "temperature_sensor", "version": "2.0.0", "source": source, "description": "noisier sensor" });
    let (ok, out, err) = server.grpcurl_stdin(
        &[
            "-d",
            "@",
            &addr,
            "probserve.v1.ModelRegistryService/RegisterModel",
        ],
        &body.to_string(),
    );
    assert!(ok, "register failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["created"], true, "{out}");
    assert_eq!(v["model"]["version"], "2.0.0");

    let infer = r#"{"model": "temperature_sensor", "version": "2.0.0", "inputs": {"reading": {"real": 22.0}},
                    "method": "INFERENCE_METHOD_MCMC", "options": {"numSamples": 2000}, "seed": "5"}"#;
    let (ok, out, err) =
        server.grpcurl(&["-d", infer, &addr, "probserve.v1.InferenceService/Infer"]);
    assert!(ok, "infer failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let temp = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "temp")
        .unwrap();
    // Prior N(20, 25), noise sd 2: posterior mean 20 + 25/29 * 2 = 21.724.
    let mean = temp["mean"].as_f64().unwrap();
    let mcse = temp["mcseMean"].as_f64().unwrap();
    assert!(
        (mean - (20.0 + 25.0 / 29.0 * 2.0)).abs() < 5.0 * mcse + 0.01,
        "{out}"
    );
    assert_eq!(v["servedBy"]["version"], "2.0.0");

    // A bad request: grpcurl prints the code and the message naming the field.
    let (ok, _, err) = server.grpcurl(&[
        "-d",
        r#"{"model": "temperature_sensor"}"#,
        &addr,
        "probserve.v1.InferenceService/Infer",
    ]);
    assert!(!ok);
    assert!(
        err.contains("InvalidArgument") && err.contains("reading"),
        "{err}"
    );
}
