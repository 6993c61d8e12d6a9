#!/usr/bin/env bash
# The local cloud's S3 API side by side with moto server, s3rver (npm) and a null server (canned
# answers: the boto3 client's own ceiling), with one boto3 script (scripts/bench_s3.py: 1 and 4
# client threads); then each server's capacity with a Rust load generator
# (providers/local/examples/s3_load.rs: CONNS keep-alive connections of signed requests); then
# the AWS CLI copying a 1 GiB file in and out of the local cloud, and of the null server (the
# CLI's own ceiling), against the disk's own sequential write speed (dd with fdatasync).
#
#   scripts/bench-s3.sh [--ops 300] [--rounds 3] [--conns 8] [--secs 5] [--no-gib | --gib-only]
#
# First use installs s3rver into target/bench/s3rver (npm) and the peers venv (moto, boto3, the
# AWS CLI; tests/peers/setup.sh). Every server listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${CARGO_TARGET_DIR:-$ROOT/target}
case "$T" in /*) ;; *) T=$ROOT/$T ;; esac
export CARGO_TARGET_DIR=$T
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=

OPS=300 ROUNDS=3 GIB=1 CONNS=8 SECS=5 REST=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ops) OPS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-gib) GIB=0; shift ;;
    --gib-only) REST=0; shift ;;
    --conns) CONNS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    *) echo "bench-s3: unknown argument $1" >&2; exit 2 ;;
  esac
done

VENV=$(bash tests/peers/setup.sh)
PY=$VENV/bin/python
S3RVER=$ROOT/target/bench/s3rver
if [ ! -f "$S3RVER/node_modules/s3rver/package.json" ]; then
  echo "bench-s3: installing s3rver into $S3RVER" >&2
  mkdir -p "$S3RVER"
  (cd "$S3RVER" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-fund --no-audit s3rver@3 >&2)
fi
echo "bench-s3: building (release)" >&2
cargo build --release -q -p skyform-local --bin skyform-local-dev --example s3_load >&2

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; echo "bench-s3: nothing on port $1" >&2; exit 1; }

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
SPORT=$(free_port); mkdir -p "$WORK/s3rver"
node "$S3RVER/node_modules/s3rver/bin/s3rver.js" -a 127.0.0.1 -p "$SPORT" -d "$WORK/s3rver" --silent >"$WORK/s3rver.log" 2>&1 & PIDS+=($!)
NPORT=$(free_port); "$PY" scripts/bench_s3.py --null-server "$NPORT" & PIDS+=($!)
wait_port "$MPORT"; wait_port "$SPORT"; wait_port "$NPORT"

echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $("$PY" -c 'import boto3; print("boto3", boto3.__version__)'), moto $("$PY" -c 'import moto; print(moto.__version__)'), s3rver $(node -p "require('$S3RVER/node_modules/s3rver/package.json').version"), node $(node --version)"
if [ "$REST" = 1 ]; then
echo
"$PY" scripts/bench_s3.py --ops "$OPS" --rounds "$ROUNDS" \
  --target "local=http://127.0.0.1:$LPORT,$LKEY,$LSECRET" \
  --target "moto=http://127.0.0.1:$MPORT,testing,testing" \
  --target "s3rver=http://127.0.0.1:$SPORT,S3RVER,S3RVER" \
  --target "null=http://127.0.0.1:$NPORT,testing,testing"

echo
echo "capacity: $CONNS connections x ${SECS} s, requests/s (errors)"
echo
echo "| operation | local | moto | s3rver | local / fastest peer |"
echo "|---|---|---|---|---|"
for op in put get; do
  for size in 4096 1048576; do
    row=()
    for t in "local $LPORT $LKEY $LSECRET" "moto $MPORT testing testing" "s3rver $SPORT S3RVER S3RVER"; do
      set -- $t
      row+=("$("$T/release/examples/s3_load" --port "$2" --key "$3" --secret "$4" --op "$op" --size "$size" --conns "$CONNS" --secs "$SECS")")
    done
    "$PY" - "$op" "$size" "${row[@]}" <<'EOF'
import sys
op, size, *cells = sys.argv[1:]
rates = [float(c.split()[0]) for c in cells]
errs = [c.split()[1] for c in cells]
peer = max(rates[1:]) or 1
name = "%s %s" % ("PutObject" if op == "put" else "GetObject", "4 KiB" if size == "4096" else "1 MiB")
print("| %s | %s | %.1fx |" % (name, " | ".join("%.0f (%s)" % (r, e) for r, e in zip(rates, errs)), rates[0] / peer))
EOF
  done
done
fi

if [ "$GIB" = 1 ]; then
  # The AWS CLI copying 1 GiB in and out of the local cloud, and of the null server (which takes
  # multipart uploads and serves ranges of a 1 GiB object: the CLI's own ceiling), against the
  # disk's sequential write (dd with fdatasync); the three alternate, ROUNDS times.
  echo
  export AWS_DEFAULT_REGION=us-east-1
  F=$WORK/gib.bin
  head -c 1073741824 /dev/urandom >"$F"
  cli() { # endpoint key secret args...
    AWS_ENDPOINT_URL=$1 AWS_ACCESS_KEY_ID=$2 AWS_SECRET_ACCESS_KEY=$3 "$VENV/bin/aws" "${@:4}"
  }
  now() { date +%s.%N; }
  L=("http://127.0.0.1:$LPORT" "$LKEY" "$LSECRET")
  N=("http://127.0.0.1:$NPORT" testing testing)
  cli "${L[@]}" s3 mb s3://gib >/dev/null
  # Each step starts with nothing left to write back (`sync`, untimed): the local cloud's
  # upload is answered before its flusher has the bytes on disk, and that writeback would
  # otherwise slow the next step.
  T=()
  for _ in $(seq "$ROUNDS"); do
    sync; T+=("$(now)"); dd if=/dev/zero of="$WORK/dd.bin" bs=8M count=128 conv=fdatasync status=none; T+=("$(now)")
    rm -f "$WORK/dd.bin"
    sync; T+=("$(now)"); cli "${L[@]}" s3 cp --only-show-errors "$F" s3://gib/gib.bin; T+=("$(now)")
    sync; T+=("$(now)"); cli "${L[@]}" s3 cp --only-show-errors s3://gib/gib.bin "$WORK/back.bin"; T+=("$(now)")
    cmp "$F" "$WORK/back.bin"
    rm -f "$WORK/back.bin"
    sync; T+=("$(now)"); cli "${N[@]}" s3 cp --only-show-errors "$F" s3://bench/gib.bin; T+=("$(now)")
    sync; T+=("$(now)"); cli "${N[@]}" s3 cp --only-show-errors s3://bench/gib.bin "$WORK/back.bin"; T+=("$(now)")
    rm -f "$WORK/back.bin"
  done
  "$PY" - "${T[@]}" <<'EOF'
import statistics, sys
t = [float(x) for x in sys.argv[1:]]
rates = [1024 / (t[i + 1] - t[i]) for i in range(0, len(t), 2)]
dd, lup, ldown, nup, ndown = (rates[k::5] for k in range(5))
m = statistics.median
r = lambda v: "/".join("%.0f" % x for x in v)
print("| 1 GiB, MiB/s: median (rounds) | local cloud | null server: the CLI's ceiling | local / null | local / disk (target >= 50%) |")
print("|---|---|---|---|---|")
print("| disk: `dd` of 8 MiB blocks, `fdatasync` | %.0f (%s) | | | |" % (m(dd), r(dd)))
print("| `aws s3 cp` file -> bucket | %.0f (%s) | %.0f (%s) | %.0f%% | %.0f%% |" % (m(lup), r(lup), m(nup), r(nup), 100 * m(lup) / m(nup), 100 * m(lup) / m(dd)))
print("| `aws s3 cp` bucket -> file | %.0f (%s) | %.0f (%s) | %.0f%% | %.0f%% |" % (m(ldown), r(ldown), m(ndown), r(ndown), 100 * m(ldown) / m(ndown), 100 * m(ldown) / m(dd)))
EOF
fi
