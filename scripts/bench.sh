#!/usr/bin/env bash
# The probserve service benchmark in one command.
#
# Builds release binaries (probserve, loadgen, echo_server, bench_suite), then runs
# bench_suite: the echo floor and probserve on free 127.0.0.1 ports, closed-loop
# points at concurrency 1/8/32/128 (echo, probserve with 1 and 1,000 importance
# samples), a 10-minute soak at 70 % of capacity and a 20 s overload run at 2x
# capacity. JSON results, logs and summary.md land in target/bench-results/
# (BENCH_OUT overrides). About 13 minutes on 2 cores after the build.
#
# usage: scripts/bench.sh [--smoke] [--debug] [--with-fugue] [bench_suite flags...]
#   --smoke       a few seconds in total (tiny counts; numbers meaningless), for CI
#   --debug       use dev-profile binaries (faster to build, slower to run; with --smoke)
#   --with-fugue  also run `cargo bench -p probserve-runtime --bench vs_fugue`
#   other flags go to bench_suite, e.g. --soak-secs 120, --skip-overload
#   (see: target/release/bench_suite --help)
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
out="${BENCH_OUT:-$root/target/bench-results}"

profile=release
with_fugue=0
suite_args=()
for a in "$@"; do
  case "$a" in
    --debug) profile=dev ;;
    --with-fugue) with_fugue=1 ;;
    *) suite_args+=("$a") ;;
  esac
done

jobs="${CARGO_BUILD_JOBS:-2}"
if [ "$profile" = release ]; then
  cargo build --release -j "$jobs" -p probserve-server --bin probserve
  cargo build --release -j "$jobs" -p probserve-bench --bins
  bin="$CARGO_TARGET_DIR/release"
else
  cargo build -j "$jobs" -p probserve-server --bin probserve
  cargo build -j "$jobs" -p probserve-bench --bins
  bin="$CARGO_TARGET_DIR/debug"
fi

mkdir -p "$out"
cmd="scripts/bench.sh${*:+ $*}"
"$bin/bench_suite" --bin-dir "$bin" --out "$out" --command "$cmd" "${suite_args[@]}"

if [ "$with_fugue" = 1 ]; then
  echo "== cargo bench -p probserve-runtime --bench vs_fugue"
  cargo bench -j "$jobs" -p probserve-runtime --bench vs_fugue | tee "$out/vs_fugue.txt"
fi
echo "results: $out (suite.json, summary.md, points/*.json, logs/)"
