#!/usr/bin/env bash
# Benchmarks, printing their figures (see BENCHMARKS.md for recorded results and the machine).
#   bash scripts/bench.sh engine   # the engine with the fake provider
#   bash scripts/bench.sh local    # the local cloud vs serverless-offline, cold starts, memory
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
  *) echo "scripts/bench.sh: unknown benchmark '$what' (known: engine, local)" >&2; exit 2 ;;
esac
