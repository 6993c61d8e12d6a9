#!/usr/bin/env bash
# skyform's local cloud vs serverless-offline, side by side in one run; then cold starts of a
# Python and a Rust (lambda_runtime) function and the daemon's peak memory.
#
#   scripts/bench-local.sh [--rounds 3] [--secs 10] [--conns 4] [--cold 5]
#
# First use installs serverless@3 + serverless-offline@13 into target/bench/sls (npm, ~30 s)
# and builds the Rust fixture (tests/fixtures/rust-hello, lambda_runtime, ~40 s). The load
# generator is providers/local/examples/local_bench.rs (no wrk needed): the same client
# measures both servers. CARGO_TARGET_DIR is honoured (default: target).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${CARGO_TARGET_DIR:-$ROOT/target}
case "$T" in /*) ;; *) T=$ROOT/$T ;; esac
export CARGO_TARGET_DIR=$T

# No SDK may reach for instance metadata; no telemetry from the Serverless Framework.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off

need() { command -v "$1" >/dev/null || { echo "bench-local: needs $1 ($2)" >&2; exit 1; }; }
need node "apt-get install -y nodejs"
need npm "apt-get install -y npm"
need python3 "apt-get install -y python3"
need cargo "https://rustup.rs"

SLS=$ROOT/target/bench/sls
if [ ! -f "$SLS/node_modules/serverless-offline/package.json" ]; then
  echo "bench-local: installing serverless@3 + serverless-offline@13 into $SLS" >&2
  mkdir -p "$SLS"
  (cd "$SLS" && { [ -f package.json ] || npm init -y >/dev/null; } \
     && npm install --no-fund --no-audit serverless@3 serverless-offline@13 >&2)
fi

echo "bench-local: building (release)" >&2
cargo build --release -q -p skyform-local --bin skyform-local-dev --example local_bench >&2
RUST_BOOT=$T/fixtures/release/rust-hello
CARGO_TARGET_DIR=$T/fixtures cargo build --release -q \
  --manifest-path providers/local/tests/fixtures/rust-hello/Cargo.toml >&2

echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: node $(node --version), $(python3 --version), serverless $(node -p "require('$SLS/node_modules/serverless/package.json').version"), serverless-offline $(node -p "require('$SLS/node_modules/serverless-offline/package.json').version")"
exec "$T/release/examples/local_bench" \
  --daemon-exe "$T/release/skyform-local-dev" \
  --sls-dir "$SLS" \
  --rust-bootstrap "$RUST_BOOT" \
  "$@"
