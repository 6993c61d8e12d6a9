#!/usr/bin/env bash
# SQS benchmarks, side by side in one run (rounds interleaved):
#  1. SendMessage ops/s and ReceiveMessage+DeleteMessage pairs/s of one boto3 client
#     (providers/local/examples/sqs_bench.py, the same script) against the local cloud, moto
#     server and a null server (providers/local/examples/null_sqs.rs: canned answers, the
#     client's own ceiling);
#  2. messages/s end to end, from SendMessageBatch (2 boto3 threads) to a subscribed Python
#     handler with batches of 10, on the local cloud;
#  3. durable SendMessage/s from 16 concurrent raw HTTP clients
#     (providers/local/examples/sqs_durable_bench.rs), with the log syncs per message.
#
#   scripts/bench-sqs.sh [--rounds 3] [--secs 5]
#
# Needs the peers venv (tests/peers/setup.sh: boto3, moto[server]). Builds the daemon and the
# examples in release. Everything listens on 127.0.0.1 and is stopped at exit.
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
    *) echo "usage: scripts/bench-sqs.sh [--rounds N] [--secs S]" >&2; exit 2 ;;
  esac
done

VENV=$(bash tests/peers/setup.sh)
PY=$VENV/bin/python
echo "bench-sqs: building (release)" >&2
cargo build --release -q -p skyform-local --bin skyform-local-dev --example null_sqs --example sqs_durable_bench >&2

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

P=$WORK/project/.skyform/local
mkdir -p "$WORK/project"
"$T/release/skyform-local-dev" local daemon --project-dir "$WORK/project" 2>"$WORK/daemon.log" &
PIDS+=($!)
declare -A SERVER_PID
SERVER_PID[local]=$!
for _ in $(seq 100); do [ -f "$P/endpoint.json" ] && [ -f "$P/daemon.json" ] && break; sleep 0.1; done
jget() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
LOCAL_PORT=$(jget "$P/endpoint.json" port)
CONTROL_PORT=$(jget "$P/daemon.json" port)
LOCAL_KEY=$(jget "$P/credentials.json" access_key_id)
LOCAL_SECRET=$(jget "$P/credentials.json" secret_access_key)
TOKEN=$(cat "$P/token")
control() { # METHOD PATH [BODY]
  curl -sf -X "$1" -H "Authorization: Bearer $TOKEN" --data-binary "${3:-}" "http://127.0.0.1:$CONTROL_PORT$2" >/dev/null
}

MOTO_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
SERVER_PID[moto]=$!
"$T/release/examples/null_sqs" >"$WORK/null.port" &
PIDS+=($!)
SERVER_PID[null]=$!
for _ in $(seq 100); do
  [ -s "$WORK/null.port" ] && "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
NULL_PORT=$(cat "$WORK/null.port")

# The end-to-end case: a Python handler that only counts, subscribed with batches of 10.
mkdir -p "$P/artifacts/bench-sink"
printf 'def handler(event, context):\n    return {"n": len(event["Records"])}\n' >"$P/artifacts/bench-sink/app.py"
control PUT /v1/stacks/bench/functions/bench-sink '{"code_hash":"bench-sink","handler":"app.handler","runtime":"python3","environment":{},"memory":128,"timeout":30,"reserved_concurrency":null}'
control PUT /v1/stacks/bench/queues/bench-e2e '{}'
control PUT /v1/stacks/bench/queue-subscriptions/bench-e2e-sink '{"queue":"arn:aws:sqs:us-east-1:000000000000:bench-e2e","function":"bench-sink","batch_size":10}'
control PUT /v1/stacks/bench/queues/bench-durable '{}'

# A server's CPU time so far (utime+stime, clock ticks), for the CPU cost per request.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A CPU OPS
bench() { # mode endpoint key secret
  AWS_ACCESS_KEY_ID=$3 AWS_SECRET_ACCESS_KEY=$4 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    "$PY" providers/local/examples/sqs_bench.py "$1" "$2" "$SECS" \
    | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["ops_per_sec"])'
}
syncs() { # queue -> "syncs records"
  curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$CONTROL_PORT/v1/status" \
    | "$PY" -c 'import json,sys; q=[q for q in json.load(sys.stdin)["queues"] if q["name"]==sys.argv[1]][0]; print(q["log_syncs"], q["log_records"])' "$1"
}

echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $("$PY" --version), boto3 $("$PY" -c 'import boto3; print(boto3.__version__)'), moto $("$PY" -c 'import moto; print(moto.__version__)')"
echo "one boto3 client, ${SECS} s per case, $ROUNDS rounds (interleaved), 100-byte messages"
declare -A R
for i in $(seq "$ROUNDS"); do
  for mode in send recv; do
    for target in local moto null; do
      case $target in
        local) args=("http://127.0.0.1:$LOCAL_PORT" "$LOCAL_KEY" "$LOCAL_SECRET") ;;
        moto) args=("http://127.0.0.1:$MOTO_PORT" testing testing) ;;
        null) args=("http://127.0.0.1:$NULL_PORT" testing testing) ;;
      esac
      t0=$(ticks "${SERVER_PID[$target]}")
      r=$(bench $mode "${args[@]}")
      t1=$(ticks "${SERVER_PID[$target]}")
      R[${target}_$mode]+="$r "
      # CPU over the whole case (fill and warm-up included: an upper bound per request).
      CPU[${target}_$mode]=$(( ${CPU[${target}_$mode]:-0} + t1 - t0 ))
      OPS[${target}_$mode]=$("$PY" -c "print(${OPS[${target}_$mode]:-0} + $r * $SECS)")
    done
  done
  R[e2e]+="$(AWS_ACCESS_KEY_ID=$LOCAL_KEY AWS_SECRET_ACCESS_KEY=$LOCAL_SECRET AWS_DEFAULT_REGION=us-east-1 \
    "$PY" providers/local/examples/sqs_bench.py e2e "http://127.0.0.1:$LOCAL_PORT" 20000 "$CONTROL_PORT" "$TOKEN" \
    | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["messages_per_sec"])') "
  read -r s0 r0 < <(syncs bench-durable)
  out=$("$T/release/examples/sqs_durable_bench" "$LOCAL_PORT" "$LOCAL_KEY" "$LOCAL_SECRET" \
    "http://127.0.0.1:$LOCAL_PORT/000000000000/bench-durable" 16 "$SECS")
  read -r s1 r1 < <(syncs bench-durable)
  R[durable]+="$(echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["ops_per_sec"])') "
  R[durable_p99]+="$(echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["p99_ms"])') "
  R[syncs_per_msg]+="$("$PY" -c "print(round(($s1-$s0)/max(1,$r1-$r0), 4))") "
  control PUT /v1/stacks/bench/queues/bench-durable '{}'
  curl -sf -X POST -H "X-Amz-Target: AmazonSQS.PurgeQueue" "http://127.0.0.1:$LOCAL_PORT/" >/dev/null 2>&1 || true
  last() { local a=($1); echo "${a[-1]}"; }
  echo "round $i: send local $(last "${R[local_send]}") moto $(last "${R[moto_send]}") null $(last "${R[null_send]}"); recv local $(last "${R[local_recv]}") moto $(last "${R[moto_recv]}") null $(last "${R[null_recv]}"); e2e $(last "${R[e2e]}"); durable $(last "${R[durable]}")" >&2
done
HZ=$(getconf CLK_TCK)
for k in local_send moto_send null_send local_recv moto_recv null_recv; do
  # recv counts pairs: two requests each; the fill adds about as many again (an upper bound).
  echo "server CPU per request, ${k/_/ }: <= $("$PY" -c "print(round(1e6 * ${CPU[$k]} / $HZ / max(1, ${OPS[$k]} * (2 if '$k'.endswith('recv') else 1))))") us"
done
"$PY" - "${R[local_send]}" "${R[moto_send]}" "${R[null_send]}" "${R[local_recv]}" "${R[moto_recv]}" "${R[null_recv]}" \
  "${R[e2e]}" "${R[durable]}" "${R[durable_p99]}" "${R[syncs_per_msg]}" <<'EOF'
import statistics, sys
v = [[float(x) for x in a.split()] for a in sys.argv[1:]]
m = [statistics.median(x) for x in v]
rounds = lambda x: " ".join(f"{y:g}" for y in x)
print(f"{'case':<44}{'median':>10}   rounds")
rows = [
    ("SendMessage ops/s, local cloud", 0), ("SendMessage ops/s, moto server", 1), ("SendMessage ops/s, null server", 2),
    ("Receive+Delete pairs/s, local cloud", 3), ("Receive+Delete pairs/s, moto server", 4), ("Receive+Delete pairs/s, null server", 5),
    ("end to end messages/s (batches of 10, Python)", 6), ("durable SendMessage/s, 16 raw clients", 7),
    ("  p99 latency ms", 8), ("  log syncs per message", 9),
]
for name, i in rows:
    print(f"{name:<44}{m[i]:>10.4g}   {rounds(v[i])}")
print(f"SendMessage: local / moto {m[0] / m[1]:.2f}x, local / null {100 * m[0] / m[2]:.0f}%")
print(f"Receive+Delete: local / moto {m[3] / m[4]:.2f}x, local / null {100 * m[3] / m[5]:.0f}%")
EOF
