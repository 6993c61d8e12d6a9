#!/usr/bin/env bash
# SNS Publish ops/s of one boto3 client against the local cloud, moto server and a null server
# (canned answers: the client's own ceiling), side by side in one run, rounds interleaved.
#
#   scripts/bench-sns.sh [--rounds 3] [--secs 5]
#
# Needs the peers venv (tests/peers/setup.sh makes it: boto3, moto[server]). Builds the daemon
# (skyform-local-dev) and the null server (providers/local/examples/null_aws.rs) in release.
# The client is providers/local/examples/sns_bench.py, the same script for all three. Two local
# cases: a topic without subscribers (Publish alone) and one with a subscribed queue (Publish
# then waits for the fan-out to put the envelope on disk in the queue).
# Everything listens on 127.0.0.1 and is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${CARGO_TARGET_DIR:-$ROOT/target}
case "$T" in /*) ;; *) T=$ROOT/$T ;; esac
export CARGO_TARGET_DIR=$T

ROUNDS=3
SECS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    *) echo "usage: scripts/bench-sns.sh [--rounds N] [--secs S]" >&2; exit 2 ;;
  esac
done

VENV=$(bash tests/peers/setup.sh)
PY=$VENV/bin/python
echo "bench-sns: building (release)" >&2
cargo build --release -q -p skyform-local --bin skyform-local-dev --example null_aws >&2

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The local cloud: a daemon for an empty project; its endpoint and credentials from its files.
mkdir -p "$WORK/project"
"$T/release/skyform-local-dev" local daemon --project-dir "$WORK/project" 2>"$WORK/daemon.log" &
DAEMON_PID=$!
PIDS+=($DAEMON_PID)
for _ in $(seq 100); do [ -f "$WORK/project/.skyform/local/endpoint.json" ] && break; sleep 0.1; done
LOCAL_PORT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$WORK/project/.skyform/local/endpoint.json")
read -r LOCAL_KEY LOCAL_SECRET < <("$PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["access_key_id"], c["secret_access_key"])' "$WORK/project/.skyform/local/credentials.json")

# moto server.
MOTO_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
PIDS+=($MOTO_PID)

# The null server prints its port.
"$T/release/examples/null_aws" >"$WORK/null.port" &
NULL_PID=$!
PIDS+=($NULL_PID)
for _ in $(seq 100); do
  [ -s "$WORK/null.port" ] && "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
NULL_PORT=$(cat "$WORK/null.port")

# A queue for the fan-out case, made through the daemon's control API (as `local:Queue` is).
QUEUE_ARN=$(AWS_ACCESS_KEY_ID=$LOCAL_KEY AWS_SECRET_ACCESS_KEY=$LOCAL_SECRET AWS_DEFAULT_REGION=us-east-1 "$PY" - "$WORK/project" <<'EOF'
import json, sys, urllib.request
root = sys.argv[1] + "/.skyform/local/"
token = open(root + "token").read().strip()
port = json.load(open(root + "daemon.json"))["port"]
req = urllib.request.Request(
    f"http://127.0.0.1:{port}/v1/stacks/bench/queues/bench-fanout",
    data=b"{}",
    method="PUT",
    headers={"Authorization": f"Bearer {token}"},
)
try:
    print(json.load(urllib.request.urlopen(req))["arn"])
except Exception as e:
    print("bench-sns: cannot make the fan-out queue:", e, file=sys.stderr)
    print("")
EOF
)

# CPU time (clock ticks) of a process, to report the server's CPU per request.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
declare -A CPU_TICKS OPS
run() { # name endpoint key secret server-pid [queue-arn]
  local before after out
  before=$(ticks "$5")
  out=$(AWS_ACCESS_KEY_ID=$3 AWS_SECRET_ACCESS_KEY=$4 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    "$PY" providers/local/examples/sns_bench.py "$2" "$SECS" ${6:-})
  after=$(ticks "$5")
  # Counts the warm-up's calls too (about one second's worth): an upper bound per request.
  CPU_TICKS[$1]=$(( ${CPU_TICKS[$1]:-0} + after - before ))
  OPS[$1]=$(( ${OPS[$1]:-0} + $("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["ops"])' "$out") ))
  "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["ops_per_sec"])' "$out"
}

echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $("$PY" --version), boto3 $("$PY" -c 'import boto3; print(boto3.__version__)'), moto $("$PY" -c 'import moto; print(moto.__version__)')"
echo "Publish, one boto3 client, ${SECS} s per case, $ROUNDS rounds (interleaved), 100-byte message + 1 attribute"
declare -A R
for i in $(seq "$ROUNDS"); do
  # `run` keeps CPU counters in this shell: its output goes through a file, not $(...).
  run local "http://127.0.0.1:$LOCAL_PORT" "$LOCAL_KEY" "$LOCAL_SECRET" "$DAEMON_PID" >"$WORK/r"; l=$(cat "$WORK/r")
  f=""
  if [ -n "$QUEUE_ARN" ]; then
    # A second topic keeps the subscription off the first case.
    SNS_BENCH_TOPIC=bench-fanout run local_fanout "http://127.0.0.1:$LOCAL_PORT" "$LOCAL_KEY" "$LOCAL_SECRET" \
      "$DAEMON_PID" "$QUEUE_ARN" >"$WORK/r"
    f=$(cat "$WORK/r")
  fi
  run moto "http://127.0.0.1:$MOTO_PORT" testing testing "$MOTO_PID" >"$WORK/r"; m=$(cat "$WORK/r")
  run null "http://127.0.0.1:$NULL_PORT" testing testing "$NULL_PID" >"$WORK/r"; n=$(cat "$WORK/r")
  R[local]+="$l "; R[local_fanout]+="${f:+$f }"; R[moto]+="$m "; R[null]+="$n "
  echo "round $i: local $l, with a queue ${f:-n/a}, moto $m, null $n" >&2
done
"$PY" - "${R[local]}" "${R[local_fanout]:-}" "${R[moto]}" "${R[null]}" <<'EOF'
import statistics, sys
names = ["local", "local, 1 queue subscribed", "moto server", "null server"]
vals = [[float(x) for x in a.split()] for a in sys.argv[1:]]
med = [statistics.median(v) if v else None for v in vals]
print(f"{'target':<28}{'median ops/s':>14}   rounds")
for n, m, v in zip(names, med, vals):
    if m is not None:
        print(f"{n:<28}{m:>14.0f}   {' '.join(f'{x:.0f}' for x in v)}")
local, fan, moto, null = med
print(f"local / moto: {local / moto:.2f}x   local / null: {100 * local / null:.0f}%")
if fan is not None:
    print(f"local with a subscribed queue / moto: {fan / moto:.2f}x   / null: {100 * fan / null:.0f}%")
EOF
for k in local local_fanout moto null; do
  [ -n "${OPS[$k]:-}" ] && [ "${OPS[$k]}" -gt 0 ] || continue
  echo "server CPU per request ($k): at most $(( CPU_TICKS[$k] * TICK_US / OPS[$k] )) µs"
done
