#!/usr/bin/env bash
# Benchmarks, printing their figures (see BENCHMARKS.md for recorded results and the machine).
#   bash scripts/bench.sh engine   # the engine with the fake provider
#   bash scripts/bench.sh local    # the local cloud vs serverless-offline, cold starts, memory
#   bash scripts/bench.sh sqs      # SQS on the local cloud vs moto and a null server; end to end; durable sends
#   bash scripts/bench.sh backend  # the s3:// state backend vs the folder, 452 AWS resources on moto (RUNS=N)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
what="${1:-engine}"
case "$what" in
  engine)
    cargo build --release -q -p skyform -p skyform-provider-fake
    cargo bench -q --bench engine
    ;;
  local)
    shift
    exec bash scripts/bench-local.sh "$@"
    ;;
  sqs)
    shift
    exec bash scripts/bench-sqs.sh "$@"
    ;;
  backend)
    cargo build --release -q -p skyform -p skyform-aws
    cargo bench -q --bench backend
    ;;
  *) echo "scripts/bench.sh: unknown benchmark '$what' (known: engine, local, sqs, backend)" >&2; exit 2 ;;
esac
