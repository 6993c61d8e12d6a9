#!/usr/bin/env bash
# Two or more builds of the daemon side by side on PutItem capacity: each round starts every
# given daemon binary in turn on a fresh project, makes the bench table, runs the Rust load
# generator (providers/local/examples/ddb_load.rs, PutItem) against it and prints requests/s
# and the daemon's CPU (utime+stime from /proc/PID/stat over the run, warm-up included) per
# request answered.
#
#   scripts/bench-daemons-putitem.sh [--rounds 3] [--conns 16] [--secs 5] BIN [BIN ...]
#
# BIN: a `skyform-local-dev` (or `skyform`) binary, e.g. one copied aside before a change and
# target/release/skyform-local-dev after it. Every daemon listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${CARGO_TARGET_DIR:-$ROOT/target}
case "$T" in /*) ;; *) T=$ROOT/$T ;; esac
export CARGO_TARGET_DIR=$T
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

ROUNDS=3 CONNS=16 SECS=5 BINS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    -*) echo "bench-daemons-putitem: unknown argument $1" >&2; exit 2 ;;
    *) [ -x "$1" ] || { echo "bench-daemons-putitem: $1 is not an executable daemon binary" >&2; exit 2; }
       BINS+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift ;;
  esac
done
[ ${#BINS[@]} -ge 1 ] || { echo "usage: scripts/bench-daemons-putitem.sh [--rounds N] BIN [BIN ...]" >&2; exit 2; }

VENV=$(bash tests/peers/setup.sh)
PY=$VENV/bin/python
cargo build --release -q -p skyform-local --example ddb_load >&2

WORK=$(mktemp -d)
P=
cleanup() { [ -n "$P" ] && kill "$P" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
json() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | daemon | PutItem requests/s | answered | daemon CPU per request (µs) |"
echo "|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
  for i in "${!BINS[@]}"; do
    D=$WORK/p$r-$i; mkdir -p "$D"
    "${BINS[$i]}" local daemon --project-dir "$D" >"$D.log" 2>&1 & P=$!
    for _ in $(seq 100); do [ -f "$D/.skyform/local/credentials.json" ] && [ -f "$D/.skyform/local/endpoint.json" ] && break; sleep 0.1; done
    [ -f "$D/.skyform/local/endpoint.json" ] || { echo "bench-daemons-putitem: ${BINS[$i]} did not start; its log:" >&2; cat "$D.log" >&2; exit 1; }
    PORT=$(json "$D/.skyform/local/endpoint.json" port)
    KEY=$(json "$D/.skyform/local/credentials.json" access_key_id)
    SEC=$(json "$D/.skyform/local/credentials.json" secret_access_key)
    "$PY" scripts/bench_dynamodb.py --ops 1 --rounds 1 --target "local=http://127.0.0.1:$PORT,$KEY,$SEC" >/dev/null
    a=$(awk '{print $14+$15}' "/proc/$P/stat")
    read -r rate _ answered < <("$T/release/examples/ddb_load" --port "$PORT" --key "$KEY" --secret "$SEC" --op put --conns "$CONNS" --secs "$SECS")
    b=$(awk '{print $14+$15}' "/proc/$P/stat")
    tck=$(getconf CLK_TCK)
    cpu=$("$PY" -c "import sys; print('%.1f' % ((int(sys.argv[1]) - int(sys.argv[2])) / int(sys.argv[3]) * 1e6 / int(sys.argv[4])))" "$b" "$a" "$tck" "$answered")
    echo "| $r | $i: ${BINS[$i]} | $rate | $answered | $cpu |"
    kill "$P"; wait "$P" 2>/dev/null || true; P=
  done
done
