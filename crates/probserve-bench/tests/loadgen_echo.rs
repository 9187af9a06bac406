//! The load generator against the echo server: in-process (closed and open loop,
//! about a second in all) and as the `loadgen` binary (a child process writing its
//! JSON result). No timing thresholds: only counts, outcomes and the result's shape.

use std::net::SocketAddr;
use std::process::Command;

use clap::Parser as _;
use probserve_bench::loadgen::{LoadgenArgs, run};
use probserve_bench::result::{Mode, RUN_SCHEMA, RunResult};

/// Starts the echo server on a free port in this process.
async fn start_echo() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(probserve_bench::echo::serve(listener, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

fn args(addr: SocketAddr, extra: &[&str]) -> LoadgenArgs {
    let addr = addr.to_string();
    let mut v = vec![
        "loadgen",
        "--target",
        "echo",
        "--addr",
        &addr,
        "--quiet",
        "--samples",
        "1",
    ];
    v.extend_from_slice(extra);
    LoadgenArgs::try_parse_from(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_and_open_loop_against_the_echo_server() {
    let (addr, stop) = start_echo().await;

    let closed = run(&args(
        addr,
        &[
            "--concurrency",
            "8",
            "--duration",
            "0.5",
            "--warmup",
            "0.1",
            "--window-secs",
            "0.1",
            "--drift-secs",
            "0.1",
            "--rss-pid",
            &std::process::id().to_string(),
        ],
    ))
    .await
    .unwrap();
    assert_eq!(closed.spec.mode, Mode::Closed);
    assert_eq!(closed.spec.connections, 4);
    assert!(closed.ok > 0);
    assert_eq!(closed.ok, closed.sent, "errors: {:?}", closed.errors);
    assert_eq!(closed.shed, 0);
    assert!(closed.warmup_calls > 0);
    assert_eq!(closed.latency_us.count, closed.ok);
    assert!(closed.latency_us.p50 <= closed.latency_us.p99);
    assert!(closed.mean_response_bytes > 100.0);
    assert!(closed.drift.is_some());
    let rss = closed.rss.as_ref().expect("rss sampled");
    assert!(rss.start_kib > 0 && rss.samples.len() >= 2);

    let open = run(&args(
        addr,
        &[
            "--rate",
            "400",
            "--requests",
            "200",
            "--max-outstanding",
            "64",
        ],
    ))
    .await
    .unwrap();
    assert_eq!(open.spec.mode, Mode::Open);
    assert_eq!(open.sent, 200);
    assert_eq!(open.ok, 200, "errors: {:?}", open.errors);
    assert!(open.offered_rps.is_some());

    // Counting bound in closed loop: exactly the requested calls.
    let counted = run(&args(addr, &["--concurrency", "3", "--requests", "150"]))
        .await
        .unwrap();
    assert_eq!(counted.sent, 150);
    assert_eq!(counted.spec.connections, 3);

    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_binary_writes_its_json_result() {
    let (addr, stop) = start_echo().await;
    let dir = std::env::temp_dir().join(format!("probserve-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("run.json");
    let addr_s = addr.to_string();
    let json_s = json.to_string_lossy().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args([
                "--target",
                "echo",
                "--addr",
                &addr_s,
                "--concurrency",
                "4",
                "--requests",
                "300",
                "--label",
                "child",
                "--json",
                &json_s,
                "--threads",
                "1",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("300 ok"), "{stdout}");
    let result: RunResult = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(result.schema, RUN_SCHEMA);
    assert_eq!(result.spec.label, "child");
    assert_eq!((result.sent, result.ok), (300, 300));
    let _ = std::fs::remove_dir_all(&dir);

    // Bad arguments fail with a message, not a panic.
    let bad = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--target",
            "echo",
            "--addr",
            &addr.to_string(),
            "--rate",
            "0",
            "--requests",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("rate"));
    let _ = stop.send(());
}
