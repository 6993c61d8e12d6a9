#!/usr/bin/env bash
# Creates (once) the Python venv with the real peers the tests talk to: moto server (an
# AWS-compatible API), boto3 and the AWS CLI (real clients), awslambdaric (the official Python
# Lambda runtime client), jsonschema (validates the documented --json schemas). It lives under
# target/ so a clean clone builds it on first use.
# Prints the venv's path. Fails loudly when python3 or pip cannot do it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/target/peers/venv"
stamp="$venv/.skyform-peers-v1"
if [ ! -f "$stamp" ]; then
  command -v python3 >/dev/null || { echo "tests/peers/setup.sh: python3 is required (install Python 3.9+)" >&2; exit 1; }
  mkdir -p "$root/target/peers"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || { echo "tests/peers/setup.sh: 'python3 -m venv' failed; install the venv module (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6' boto3 awscli 'awslambdaric>=3' jsonschema >&2 \
    || { echo "tests/peers/setup.sh: pip could not install moto, boto3, awscli and awslambdaric; is PyPI reachable?" >&2; exit 1; }
  touch "$stamp"
fi
echo "$venv"
