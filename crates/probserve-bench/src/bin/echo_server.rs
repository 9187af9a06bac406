//! `echo_server`: the bare-tonic floor (`probserve_bench::echo`), on the same default
//! multi-threaded tokio runtime and the same global allocator (mimalloc) as
//! `probserve serve`, so the ratio measures our request path and nothing else.
//! Stops on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A bare tonic server answering probserve's Infer with a canned response.
#[derive(Debug, Parser)]
#[command(name = "echo_server", version)]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:50061")]
    listen: SocketAddr,
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("echo_server: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("binding {}: {e}", args.listen))?;
        probserve_bench::echo::serve(listener, shutdown_signal())
            .await
            .map_err(|e| format!("serving: {e}"))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}
