#!/usr/bin/env bash
# Benchmarks, printing their figures (see BENCHMARKS.md for recorded results and the machine).
#   bash scripts/bench.sh engine   # the engine with the fake provider
#   bash scripts/bench.sh local    # the local cloud vs serverless-offline, cold starts, memory
#   bash scripts/bench.sh sqs      # SQS on the local cloud vs moto and a null server; end to end; durable sends
#   bash scripts/bench.sh backend  # the s3:// state backend vs the folder, 452 AWS resources on moto (RUNS=N)
#   bash scripts/bench.sh sns      # SNS Publish on the local cloud vs moto and a null server
#   bash scripts/bench.sh s3       # the local cloud's S3 API vs moto, s3rver and a null server; 1 GiB with the AWS CLI
#   bash scripts/bench.sh dynamodb # the local cloud's DynamoDB API vs moto, dynalite and a null server
#   bash scripts/bench.sh dev      # skyform dev: edit to served, vs serverless-offline
#   bash scripts/bench.sh builds   # dependency installs and Rust builds, vs sam build
#   bash scripts/bench.sh trace    # what recording traces costs one request
# Arguments after the name go to the benchmark's own script.
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
  sns | s3 | dynamodb | dev | builds)
    shift
    exec bash "scripts/bench-$what.sh" "$@"
    ;;
  trace)
    shift
    exec cargo run --release -q -p skyform-local --example trace_cost -- "$@"
    ;;
  *) echo "scripts/bench.sh: unknown benchmark '$what' (known: engine, local, sqs, backend, sns, s3, dynamodb, dev, builds, trace)" >&2; exit 2 ;;
esac
