#!/usr/bin/env bash
# Edit -> served on the local cloud, side by side with serverless-offline's handler reload:
#   - Python: edit a handler's answer, then `skyform up --yes` until the API answers the new text;
#   - Rust: the same with a `lambda_runtime` function (examples/rust-api), rebuilt by `up`;
#   - no-op `up` (nothing changed);
#   - serverless-offline (`--reloadHandler`): edit the handler, request until the new answer.
# Each figure is the median of --rounds runs (default 5), in seconds, wall clock.
#
#   scripts/bench-builds.sh [--rounds 5]
#
# First use installs serverless@3 + serverless-offline@13 into target/bench/sls (npm, ~30 s),
# and builds the programs and the Rust function (minutes on a cold target folder; not timed).
# SKYFORM picks the binary (default: target/release/skyform, else target/debug/skyform).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "bench-builds: unknown argument $1" >&2; exit 2 ;;
  esac
done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off
SKYFORM=${SKYFORM:-}
if [ -z "$SKYFORM" ]; then
  if [ -x target/release/skyform ]; then SKYFORM=$ROOT/target/release/skyform; else SKYFORM=$ROOT/target/debug/skyform; fi
fi
[ -x "$SKYFORM" ] || { echo "bench-builds: build skyform first (cargo build --release)" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/bench/builds-target}

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# Requests URL until its body contains TEXT (up to 120 s); prints nothing.
wait_for() {
  local url=$1 text=$2 end=$(( $(date +%s) + 120 ))
  until curl -fsS "$url" 2>/dev/null | grep -q "$text"; do
    [ "$(date +%s)" -lt $end ] || { echo "bench-builds: $url never answered $text" >&2; exit 1; }
    sleep 0.02
  done
}

WORK=$(mktemp -d)
cleanup() {
  for p in "$WORK"/hello "$WORK"/rust; do [ -d "$p" ] && (cd "$p" && "$SKYFORM" local stop >/dev/null 2>&1 || true); done
  [ -n "${SLS_PID:-}" ] && kill "$SLS_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

project() { # copy an example, pointing its SDK dependency at this checkout
  cp -r "examples/$1" "$WORK/$2"
  sed -i "s|path = \"../../sdk\"|path = \"$ROOT/sdk\"|" "$WORK/$2/Cargo.toml"
  rm -rf "$WORK/$2/state" "$WORK/$2/.skyform"
}

echo "machine: $(nproc) cores, $(uname -sr); $("$SKYFORM" --version); rounds: $ROUNDS"

# --- Python
project hello-http hello
cd "$WORK/hello"
"$SKYFORM" up --yes >/dev/null 2>&1
URL=$("$SKYFORM" outputs url | tr -d '"')
wait_for "$URL/hello/x" "Hello"
py_times=() noop_times=()
for i in $(seq "$ROUNDS"); do
  sed -i "s/Hello[^,]*,/Hello$i,/" functions/hello/app.py
  t0=$(now); "$SKYFORM" up --yes >/dev/null 2>&1; wait_for "$URL/hello/x" "Hello$i,"; t1=$(now)
  py_times+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); "$SKYFORM" up --yes >/dev/null 2>&1; t1=$(now)
  noop_times+=("$(echo "$t1 - $t0" | bc)")
done
grep -q "Hello$ROUNDS," functions/hello/app.py || { echo "bench-builds: the Python edit did not apply" >&2; exit 1; }
"$SKYFORM" local stop >/dev/null 2>&1 || true
cd "$ROOT"

# --- Rust
project rust-api rust
cd "$WORK/rust"
"$SKYFORM" up --yes >/dev/null 2>&1
URL=$("$SKYFORM" outputs url | tr -d '"')
MAIN=functions/api/src/main.rs
grep -q '"Hello' "$MAIN" || { echo "bench-builds: $MAIN no longer has a \"Hello answer to edit" >&2; exit 1; }
rs_times=()
for i in $(seq "$ROUNDS"); do
  sed -i "s/\"Hello[0-9]*/\"Hello$i/" "$MAIN"
  t0=$(now); "$SKYFORM" up --yes >/dev/null 2>&1; wait_for "$URL/hello/x" "Hello$i"; t1=$(now)
  rs_times+=("$(echo "$t1 - $t0" | bc)")
done
"$SKYFORM" local stop >/dev/null 2>&1 || true
cd "$ROOT"

# --- serverless-offline
SLS=$ROOT/target/bench/sls
if [ ! -f "$SLS/node_modules/serverless-offline/package.json" ]; then
  echo "bench-builds: installing serverless@3 + serverless-offline@13 into $SLS" >&2
  mkdir -p "$SLS" && (cd "$SLS" && npm init -y >/dev/null && npm install --no-fund --no-audit serverless@3 serverless-offline@13 >&2)
fi
mkdir -p "$WORK/sls/home" && cd "$WORK/sls"
ln -s "$SLS/node_modules" node_modules
cat > serverless.yml <<'EOF'
service: bench
frameworkVersion: '3'
provider: {name: aws, runtime: nodejs20.x}
plugins: [serverless-offline]
custom: {serverless-offline: {host: 127.0.0.1, httpPort: 3791, lambdaPort: 3792, reloadHandler: true}}
functions:
  hello: {handler: handler.hello, events: [{httpApi: {path: /hello, method: get}}]}
EOF
echo 'exports.hello = async () => ({ statusCode: 200, body: "Hello0," });' > handler.js
HOME=$WORK/sls/home node node_modules/serverless/bin/serverless.js offline >/dev/null 2>&1 &
SLS_PID=$!
wait_for "http://127.0.0.1:3791/hello" "Hello0,"
sls_times=()
for i in $(seq "$ROUNDS"); do
  t0=$(now)
  echo "exports.hello = async () => ({ statusCode: 200, body: \"Hello$i,\" });" > handler.js
  wait_for "http://127.0.0.1:3791/hello" "Hello$i,"; t1=$(now)
  sls_times+=("$(echo "$t1 - $t0" | bc)")
done
kill "$SLS_PID" 2>/dev/null || true; SLS_PID=
cd "$ROOT"

py=$(printf '%s\n' "${py_times[@]}" | median)
rs=$(printf '%s\n' "${rs_times[@]}" | median)
noop=$(printf '%s\n' "${noop_times[@]}" | median)
sls=$(printf '%s\n' "${sls_times[@]}" | median)
echo
printf '%-52s %8s\n' "median of $ROUNDS, seconds" "value"
printf '%-52s %8.3f\n' "skyform: Python handler edit -> served (up)" "$py"
printf '%-52s %8.3f\n' "skyform: Rust handler edit -> served (up, cargo)" "$rs"
printf '%-52s %8.3f\n' "skyform: no-op up" "$noop"
printf '%-52s %8.3f\n' "serverless-offline: JS handler edit -> served" "$sls"
echo "raw: python ${py_times[*]} | rust ${rs_times[*]} | noop ${noop_times[*]} | sls ${sls_times[*]}"
