#!/usr/bin/env bash
# Edit -> served on the local cloud, side by side with serverless-offline's handler reload:
#   - Python: edit a handler's answer, then `skyform up --yes` until the API answers the new text;
#   - Rust: the same with a `lambda_runtime` function (examples/rust-api), rebuilt by `up`;
#   - no-op `up` (nothing changed);
#   - serverless-offline (`--reloadHandler`): edit the handler, request until the new answer;
#   - `sam build` (AWS SAM CLI, no container) of a Python function with a requirements.txt, after
#     a handler edit (plain and `--cached`) and after a requirement change, next to skyform's
#     `up` until served for the same function and the same edits.
# Each figure is the median of --rounds runs (default 5), in seconds, wall clock.
#
#   scripts/bench-builds.sh [--rounds 5] [--only python,rust,sls,sam]
#
# The SAM part installs aws-sam-cli into target/bench/samcli (pip, a venv; ~1 min) on first use
# (SAMV names another venv that has it).
#
# First use installs serverless@3 + serverless-offline@13 into target/bench/sls (npm, ~30 s),
# and builds the programs and the Rust function (minutes on a cold target folder; not timed).
# SKYFORM picks the binary (default: target/release/skyform, else target/debug/skyform).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=5
ONLY=python,rust,sls,sam
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
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

want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
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
  for p in "$WORK"/hello "$WORK"/rust "$WORK"/pyreq; do [ -d "$p" ] && (cd "$p" && "$SKYFORM" local stop >/dev/null 2>&1 || true); done
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

py_times=() noop_times=() rs_times=() sls_times=()
# --- Python
if want python; then
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
fi

# --- Rust
if want rust; then
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
fi

# --- serverless-offline
if want sls; then
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
fi

# --- sam build, next to skyform up, for a Python function with a requirements.txt
sam_edit=() sam_cached=() sam_req=() sky_edit=() sky_req=()
if want sam; then
SAMV=${SAMV:-$ROOT/target/bench/samcli}
if [ ! -x "$SAMV/bin/sam" ]; then
  echo "bench-builds: installing aws-sam-cli into $SAMV" >&2
  python3 -m venv "$SAMV" && "$SAMV/bin/pip" install -q aws-sam-cli >&2
fi
export SAM_CLI_TELEMETRY=0
# Round i changes the requirement to idna 3.(10-i): one neither tool has installed before in
# this run (skyform's cache is a fresh folder; pip's own download cache serves both alike).
project hello-http pyreq
cd "$WORK/pyreq"
export SKYFORM_CACHE_DIR=$WORK/skyform-cache
echo "idna==3.10" > functions/hello/requirements.txt
"$SKYFORM" up --yes >/dev/null 2>&1
URL=$("$SKYFORM" outputs url | tr -d '"')
wait_for "$URL/hello/x" "Hello"
mkdir -p "$WORK/sam/hello"
cat > "$WORK/sam/template.yaml" <<'YAML'
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: hello/, Handler: app.handler, Runtime: python3.11}
YAML
cp functions/hello/app.py functions/hello/requirements.txt "$WORK/sam/hello/"
(cd "$WORK/sam" && "$SAMV/bin/sam" build >/dev/null 2>&1 && "$SAMV/bin/sam" build --cached >/dev/null 2>&1)
for i in $(seq "$ROUNDS"); do
  # A handler edit.
  sed -i "s/Hello[^,]*,/Hello$i,/" functions/hello/app.py
  cp functions/hello/app.py "$WORK/sam/hello/"
  t0=$(now); "$SKYFORM" up --yes >/dev/null 2>&1; wait_for "$URL/hello/x" "Hello$i,"; t1=$(now)
  sky_edit+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); (cd "$WORK/sam" && "$SAMV/bin/sam" build >/dev/null 2>&1); t1=$(now)
  sam_edit+=("$(echo "$t1 - $t0" | bc)")
  sed -i "s/Hello[^,]*,/Hello${i}c,/" "$WORK/sam/hello/app.py"
  t0=$(now); (cd "$WORK/sam" && "$SAMV/bin/sam" build --cached >/dev/null 2>&1); t1=$(now)
  sam_cached+=("$(echo "$t1 - $t0" | bc)")
  grep -q "Hello${i}c," "$WORK/sam/.aws-sam/build/Hello/app.py" || { echo "bench-builds: sam build did not take the edit" >&2; exit 1; }
  # A requirement change.
  echo "idna==3.$((10 - i))" > functions/hello/requirements.txt
  cp functions/hello/requirements.txt "$WORK/sam/hello/"
  sed -i "s/Hello[^,]*,/Hello${i}r,/" functions/hello/app.py
  t0=$(now); "$SKYFORM" up --yes >/dev/null 2>&1; wait_for "$URL/hello/x" "Hello${i}r,"; t1=$(now)
  sky_req+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); (cd "$WORK/sam" && "$SAMV/bin/sam" build >/dev/null 2>&1); t1=$(now)
  sam_req+=("$(echo "$t1 - $t0" | bc)")
  [ -d "$WORK/sam/.aws-sam/build/Hello/idna-3.$((10 - i)).dist-info" ] || { echo "bench-builds: sam build did not install idna 3.$((10 - i))" >&2; exit 1; }
  [ "$(ls -d "$SKYFORM_CACHE_DIR"/deps/*/ | wc -l)" -eq $((i + 1)) ] || { echo "bench-builds: skyform did not install idna 3.$((10 - i))" >&2; exit 1; }
done
"$SKYFORM" local stop >/dev/null 2>&1 || true
unset SKYFORM_CACHE_DIR
cd "$ROOT"
fi

med() { if [ $# -gt 0 ]; then printf '%s\n' "$@" | median; else echo "-"; fi; }
row() { if [ "$2" = "-" ]; then printf '%-60s %8s\n' "$1" "-"; else printf '%-60s %8.3f\n' "$1" "$2"; fi; }
echo
printf '%-60s %8s\n' "median of $ROUNDS, seconds" "value"
row "skyform: Python handler edit -> served (up)" "$(med "${py_times[@]}")"
row "skyform: Rust handler edit -> served (up, cargo)" "$(med "${rs_times[@]}")"
row "skyform: no-op up" "$(med "${noop_times[@]}")"
row "serverless-offline: JS handler edit -> served" "$(med "${sls_times[@]}")"
row "skyform, requirements.txt: handler edit -> served (up)" "$(med "${sky_edit[@]}")"
row "sam build: handler edit (reinstalls requirements)" "$(med "${sam_edit[@]}")"
row "sam build --cached: handler edit" "$(med "${sam_cached[@]}")"
row "skyform: requirement change -> served (up, pip)" "$(med "${sky_req[@]}")"
row "sam build: requirement change" "$(med "${sam_req[@]}")"
echo "raw: python ${py_times[*]} | rust ${rs_times[*]} | noop ${noop_times[*]} | sls ${sls_times[*]}"
echo "raw: sky-edit ${sky_edit[*]} | sam-edit ${sam_edit[*]} | sam-cached ${sam_cached[*]} | sky-req ${sky_req[*]} | sam-req ${sam_req[*]}"
