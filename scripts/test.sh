#!/usr/bin/env bash
# Runs every test of the project, doing all the set-up a fresh machine needs first:
#   - checks the toolchain (cargo, python3, node, script);
#   - creates the Python venv with the real peers (moto server, boto3, the AWS CLI, awslambdaric)
#     under target/peers/ on first use (tests/peers/setup.sh);
#   - runs cargo fmt --check and cargo clippy -D warnings, then the whole workspace's tests.
# It fails with a clear message, never skips, when something is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "scripts/test.sh: '$1' is required: $2" >&2; exit 1; }; }
need cargo "install Rust (https://rustup.rs)"
need python3 "install Python 3.9+ with the venv module"
need node "install Node.js 18+ (the local cloud's nodejs runtime is tested with it)"
need script "install util-linux (the colour and prompt tests run skyform on a pseudo-terminal)"

export AWS_EC2_METADATA_DISABLED=true
venv="$(bash tests/peers/setup.sh)"
export SKYFORM_PEERS_VENV="$venv"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast -- --test-threads "${SKYFORM_TEST_THREADS:-4}"
