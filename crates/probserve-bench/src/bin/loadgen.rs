//! `loadgen`: closed- or open-loop load against probserve's Infer or the echo floor;
//! prints a summary and writes a JSON result (see `probserve_bench::loadgen`).
#![allow(clippy::print_stdout)] // a command-line tool: its report goes to stdout

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use probserve_bench::loadgen::{LoadgenArgs, run};

fn main() -> ExitCode {
    let args = LoadgenArgs::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match runtime.block_on(run(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let json = match serde_json::to_string_pretty(&result) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("loadgen: encoding the result: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{json}"),
        Some(p) => {
            if let Err(e) = std::fs::write(p, json + "\n") {
                eprintln!("loadgen: writing {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
            print!("{}", result.human());
        }
        None => print!("{}", result.human()),
    }
    let _ = std::io::stdout().flush();
    ExitCode::SUCCESS
}
