//! The deployment files agree with the binary: every `PROBSERVE_*` setting in the
//! container image and the Kubernetes manifest is a configuration key the real
//! binary accepts with that value, and the ports the manifest probes and exposes are
//! the ones the image listens on. (No container runtime or cluster is available to
//! the tests, so this is what can be checked without one.)

use std::collections::BTreeMap;
use std::process::Command;

use probserve_e2e::{binary, workspace_root};

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `PROBSERVE_X=value` pairs of the Dockerfile's ENV instruction.
fn dockerfile_env(text: &str) -> BTreeMap<String, String> {
    text.split_whitespace()
        .filter_map(|w| w.trim_end_matches('\\').split_once('='))
        .filter(|(k, _)| k.starts_with("PROBSERVE_"))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// `{name: PROBSERVE_X, value: "v"}` entries of the manifest.
fn manifest_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("- ");
            let name = l.split("name: ").nth(1)?.split(',').next()?.trim();
            let value = l.split("value: ").nth(1)?.trim_end_matches('}').trim();
            name.starts_with("PROBSERVE_")
                .then(|| (name.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// The variables kubelet injects into every pod of the namespace for a Service
/// (unless `enableServiceLinks: false`): `<NAME>_SERVICE_HOST`, `<NAME>_PORT`, …
fn service_link_env(service: &str, ports: &[(&str, u16)]) -> BTreeMap<String, String> {
    let name = service.to_uppercase().replace('-', "_");
    let ip = "10.96.0.10";
    let mut env = BTreeMap::new();
    env.insert(format!("{name}_SERVICE_HOST"), ip.to_owned());
    env.insert(format!("{name}_SERVICE_PORT"), ports[0].1.to_string());
    env.insert(format!("{name}_PORT"), format!("tcp://{ip}:{}", ports[0].1));
    for (port_name, port) in ports {
        let p = format!("{name}_PORT_{port}_TCP");
        env.insert(
            format!("{name}_SERVICE_PORT_{}", port_name.to_uppercase()),
            port.to_string(),
        );
        env.insert(p.clone(), format!("tcp://{ip}:{port}"));
        env.insert(format!("{p}_PROTO"), "tcp".to_owned());
        env.insert(format!("{p}_PORT"), port.to_string());
        env.insert(format!("{p}_ADDR"), ip.to_owned());
    }
    env
}

/// `(name, port)` of each port of the manifest's Service.
fn service_ports(yaml: &str) -> Vec<(String, u16)> {
    let service = yaml.split("kind: Service").nth(1).expect("a Service");
    service
        .lines()
        .filter_map(|l| {
            let name = l.split("{name: ").nth(1)?.split(',').next()?.trim();
            let port = l.split(" port: ").nth(1)?.split(',').next()?.trim();
            Some((name.to_owned(), port.parse().ok()?))
        })
        .collect()
}

fn check_config(env: &BTreeMap<String, String>) -> String {
    let out = Command::new(binary())
        .arg("check-config")
        .env_remove("PROBSERVE_BIN")
        .envs(env)
        .output()
        .expect("run probserve check-config");
    assert!(
        out.status.success(),
        "probserve rejects the deployment's settings {env:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn image_and_manifest_settings_are_accepted_by_the_binary() {
    let image = dockerfile_env(&read("deploy/Dockerfile"));
    assert!(
        image.len() >= 4,
        "the parser found the image's settings: {image:?}"
    );
    let manifest = manifest_env(&read("deploy/kubernetes/probserve.yaml"));
    assert!(
        !manifest.is_empty(),
        "the parser found the manifest's settings"
    );

    // The pod runs the image's environment with the manifest's on top.
    let mut pod = image.clone();
    pod.extend(manifest.clone());
    let printed = check_config(&pod);
    for (k, v) in &pod {
        let key = k.trim_start_matches("PROBSERVE_").to_lowercase();
        let line = printed
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("{key} missing from\n{printed}"));
        assert!(line.contains(v.as_str()), "{key}: expected {v} in {line:?}");
    }

    // The ports the manifest names are the ones the image listens on.
    let yaml = read("deploy/kubernetes/probserve.yaml");
    let grpc_port = image["PROBSERVE_LISTEN"]
        .rsplit(':')
        .next()
        .unwrap_or_default();
    let metrics_port = image["PROBSERVE_METRICS_LISTEN"]
        .rsplit(':')
        .next()
        .unwrap_or_default();
    assert!(yaml.contains(&format!("containerPort: {grpc_port}")));
    assert!(yaml.contains(&format!("containerPort: {metrics_port}")));
    assert!(
        yaml.contains(&format!("grpc: {{port: {grpc_port}")),
        "probes use the gRPC port"
    );
    assert!(yaml.contains(&format!("prometheus.io/port: \"{metrics_port}\"")));
    let liveness_service = "probserve.v1.DiagnosticsService";
    assert!(
        yaml.contains(liveness_service),
        "the liveness probe names a service the health server reports"
    );
}

#[test]
fn pod_survives_kubernetes_service_links_and_can_write_its_volume() {
    let yaml = read("deploy/kubernetes/probserve.yaml");
    let dockerfile = read("deploy/Dockerfile");
    // Even if service links were enabled, the binary starts with kubelet's
    // variables for the manifest's Service `probserve` and warns about none of them.
    let ports = service_ports(&yaml);
    assert!(
        ports.len() >= 2,
        "the parser found the Service's ports: {ports:?}"
    );
    let ports: Vec<(&str, u16)> = ports.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    let mut pod = dockerfile_env(&dockerfile);
    pod.extend(manifest_env(&yaml));
    pod.extend(service_link_env("probserve", &ports));
    pod.extend(service_link_env("probserve-metrics", &ports));
    assert!(pod.contains_key("PROBSERVE_SERVICE_HOST") && pod.contains_key("PROBSERVE_PORT"));
    let out = Command::new(binary())
        .arg("check-config")
        .env_remove("PROBSERVE_BIN")
        .envs(&pod)
        .output()
        .expect("run probserve check-config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubelet's service-link variables break start-up: {stderr}"
    );
    assert!(
        !stderr.contains("warning"),
        "service links are expected, not typos: {stderr}"
    );
    assert!(
        yaml.contains("enableServiceLinks: false"),
        "service links are off"
    );

    // The volume is writable for the image's user: fsGroup (and runAsUser) is the
    // uid the Dockerfile creates.
    let uid = dockerfile
        .split("--uid ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the Dockerfile creates a user with --uid");
    for key in ["fsGroup", "runAsUser", "runAsGroup"] {
        assert!(
            yaml.contains(&format!("{key}: {uid}")),
            "the pod's securityContext sets {key}: {uid}"
        );
    }
    assert!(
        dockerfile.contains(&format!("--gid {uid}")),
        "the image's group is gid {uid}, the manifest's runAsGroup"
    );
}
