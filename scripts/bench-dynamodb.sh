#!/usr/bin/env bash
# The local cloud's DynamoDB API side by side with moto server, dynalite (npm) and a null server
# (canned answers: the boto3 client's own ceiling), with one boto3 script
# (scripts/bench_dynamodb.py): PutItem, GetItem and Query (100 items), 1 and 4 client threads.
#
#   scripts/bench-dynamodb.sh [--ops 300] [--rounds 3] [--conns 16] [--secs 5] [--no-boto3]
#
# Then server capacity: the Rust load generator (providers/local/examples/ddb_load.rs) against
# each server, the same way.
#
# First use installs dynalite into target/bench/dynalite (npm) and the peers venv (moto, boto3;
# tests/peers/setup.sh). Every server listens on 127.0.0.1 only. dynalite keeps its data in
# LevelDB under a temporary folder (no fsync per write); the local cloud writes every
# acknowledged write to its write-ahead log first (kill -9-safe, no fsync) and fsyncs about once
# a second (SKYFORM_LOCAL_SYNC=always in its environment: an fsync before every answer); moto
# and the null server keep nothing on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${CARGO_TARGET_DIR:-$ROOT/target}
case "$T" in /*) ;; *) T=$ROOT/$T ;; esac
export CARGO_TARGET_DIR=$T
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

OPS=300 ROUNDS=3 CONNS=16 SECS=5 BOTO3=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ops) OPS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --no-boto3) BOTO3=0; shift ;;
    *) echo "bench-dynamodb: unknown argument $1" >&2; exit 2 ;;
  esac
done

VENV=$(bash tests/peers/setup.sh)
PY=$VENV/bin/python
DYNALITE=$ROOT/target/bench/dynalite
if [ ! -f "$DYNALITE/node_modules/dynalite/package.json" ]; then
  echo "bench-dynamodb: installing dynalite into $DYNALITE" >&2
  mkdir -p "$DYNALITE"
  (cd "$DYNALITE" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-fund --no-audit dynalite@3 >&2)
fi
echo "bench-dynamodb: building (release)" >&2
cargo build --release -q -p skyform-local --bin skyform-local-dev --example ddb_load >&2

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; echo "bench-dynamodb: nothing on port $1" >&2; exit 1; }

# The local cloud: a fresh project, its daemon, its endpoint and credentials.
mkdir -p "$WORK/project"
"$T/release/skyform-local-dev" local daemon --project-dir "$WORK/project" >"$WORK/daemon.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -f "$WORK/project/.skyform/local/endpoint.json" ] && break; sleep 0.1; done
LPORT=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['port'])" "$WORK/project/.skyform/local/endpoint.json")
LKEY=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['access_key_id'])" "$WORK/project/.skyform/local/credentials.json")
LSECRET=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['secret_access_key'])" "$WORK/project/.skyform/local/credentials.json")
wait_port "$LPORT"

MPORT=$(free_port); "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MPORT" >"$WORK/moto.log" 2>&1 & PIDS+=($!)
DPORT=$(free_port); mkdir -p "$WORK/dynalite"
# dynalite's CLI listens on every interface; started from its module, it listens on 127.0.0.1.
(cd "$DYNALITE" && exec node -e "require('dynalite')({path: process.argv[2], createTableMs: 0}).listen(+process.argv[1], '127.0.0.1')" "$DPORT" "$WORK/dynalite") >"$WORK/dynalite.log" 2>&1 & PIDS+=($!)
NPORT=$(free_port); "$PY" scripts/bench_dynamodb.py --null-server "$NPORT" & PIDS+=($!)
wait_port "$MPORT"; wait_port "$DPORT"; wait_port "$NPORT"

echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $("$PY" -c 'import boto3; print("boto3", boto3.__version__)'), moto $("$PY" -c 'import moto; print(moto.__version__)'), dynalite $(node -p "require('$DYNALITE/node_modules/dynalite/package.json').version"), node $(node --version)"
echo
TARGETS=(--target "local=http://127.0.0.1:$LPORT,$LKEY,$LSECRET"
  --target "moto=http://127.0.0.1:$MPORT,testing,testing"
  --target "dynalite=http://127.0.0.1:$DPORT,testing,testing"
  --target "null=http://127.0.0.1:$NPORT,testing,testing")
if [ "$BOTO3" = 1 ]; then
  "$PY" scripts/bench_dynamodb.py --ops "$OPS" --rounds "$ROUNDS" "${TARGETS[@]}"
else
  # The table and its 100 items, which the load generator reads.
  "$PY" scripts/bench_dynamodb.py --ops 1 --rounds 1 "${TARGETS[@]}" >/dev/null
fi

# Server capacity: the Rust load generator (providers/local/examples/ddb_load.rs), CONNS
# keep-alive connections sending signed requests for SECS seconds, the same for every server.
echo
echo "Server capacity (ddb_load: $CONNS connections, ${SECS} s after a 1 s warm-up; requests/s):"
echo
echo "| operation | local | moto | dynalite | null | local / best peer |"
echo "|---|---|---|---|---|---|"
for op in put get query; do
  row=()
  for t in "$LPORT $LKEY $LSECRET" "$MPORT testing testing" "$DPORT testing testing" "$NPORT testing testing"; do
    set -- $t
    r=$("$T/release/examples/ddb_load" --port "$1" --key "$2" --secret "$3" --op "$op" --conns "$CONNS" --secs "$SECS")
    row+=("${r%% *}")
  done
  best=$(( row[1] > row[2] ? row[1] : row[2] ))
  ratio=$("$PY" -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.1fx' % (a/b) if b else '-')" "${row[0]}" "$best")
  case $op in put) name=PutItem ;; get) name=GetItem ;; *) name="Query (100 items)" ;; esac
  echo "| $name | ${row[0]} | ${row[1]} | ${row[2]} | ${row[3]} | $ratio |"
done
