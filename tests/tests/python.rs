//! A Python client generated from proto/ with grpcio-tools talks to the real binary.

use std::path::Path;
use std::process::Command;

use probserve_e2e::{Options, Server, workspace_root};

/// Generates Python stubs for every proto file into `dir`.
pub fn generate_stubs(dir: &Path) {
    let root = workspace_root();
    let protos: Vec<String> = std::fs::read_dir(root.join("proto/probserve/v1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .map(|p| {
            p.strip_prefix(root.join("proto"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert!(protos.len() >= 5, "{protos:?}");
    let out = Command::new("python3")
        .current_dir(root.join("proto"))
        .args(["-m", "grpc_tools.protoc", "-I", "."])
        .arg(format!("--python_out={}", dir.display()))
        .arg(format!("--grpc_python_out={}", dir.display()))
        .args(&protos)
        .output()
        .expect("python3 -m grpc_tools.protoc (pip install grpcio-tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs tests/python/client.py and parses its JSON output.
pub fn run_client(stubs: &Path, addr: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(workspace_root().join("tests/python/client.py"))
        .arg(stubs)
        .arg(addr)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stubs_call_health_and_diagnostics() {
    let stubs = tempfile::tempdir().unwrap();
    generate_stubs(stubs.path());
    let server = Server::start(Options::default()).await;
    let v = run_client(stubs.path(), &server.addr.to_string(), &["health"]);
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
