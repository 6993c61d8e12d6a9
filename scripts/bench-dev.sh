#!/usr/bin/env bash
# Edit-to-served time under `skyform dev` (Python, Node and Rust handlers) and under
# serverless-offline's `--reloadHandler` (Python and Node: it runs no Rust), side by side in
# one run: how long after a handler file is saved the first request gets the new answer.
#
#   scripts/bench-dev.sh [--rounds 7] [--rust-rounds 3]
#
# First use installs serverless@3 + serverless-offline@13 into target/bench/sls (npm, ~30 s);
# the Rust handler (providers/local/tests/fixtures/rust-hello, lambda_runtime) is built by
# `skyform dev` itself with CARGO_TARGET_DIR=$CARGO_TARGET_DIR/fixtures, which
# scripts/bench-local.sh shares (the first build of its dependencies takes a minute or more).
# The driver is scripts/bench_dev.py (standard library only). CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${CARGO_TARGET_DIR:-$ROOT/target}
case "$T" in /*) ;; *) T=$ROOT/$T ;; esac
export CARGO_TARGET_DIR=$T

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off

need() { command -v "$1" >/dev/null || { echo "bench-dev: needs $1 ($2)" >&2; exit 1; }; }
need node "apt-get install -y nodejs"
need npm "apt-get install -y npm"
need python3 "apt-get install -y python3"
need cargo "https://rustup.rs"

SLS=$ROOT/target/bench/sls
if [ ! -f "$SLS/node_modules/serverless-offline/package.json" ]; then
  echo "bench-dev: installing serverless@3 + serverless-offline@13 into $SLS" >&2
  mkdir -p "$SLS"
  (cd "$SLS" && { [ -f package.json ] || npm init -y >/dev/null; } \
     && npm install --no-fund --no-audit serverless@3 serverless-offline@13 >&2)
fi

echo "bench-dev: building skyform (release)" >&2
cargo build --release -q --bin skyform >&2

echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: node $(node --version), $(python3 --version), serverless $(node -p "require('$SLS/node_modules/serverless/package.json').version"), serverless-offline $(node -p "require('$SLS/node_modules/serverless-offline/package.json').version")"
exec python3 scripts/bench_dev.py \
  --skyform "$T/release/skyform" \
  --sls-dir "$SLS" \
  --rust-fixture providers/local/tests/fixtures/rust-hello \
  --rust-target "$T/fixtures" \
  "$@"
