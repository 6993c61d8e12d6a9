#!/usr/bin/env bash
# The main job: build skyform, deploy examples/hello-http to the local cloud, and print the URL
# to curl (and curl it once).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "scripts/demo.sh: cargo is required (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "scripts/demo.sh: python3 is required for the example's function" >&2; exit 1; }
cargo build --release --quiet
skyform="$PWD/target/release/skyform"
cd examples/hello-http
"$skyform" up --yes
url="$("$skyform" outputs url)"
echo
echo "deployed: curl $url/hello/ada"
curl -s "$url/hello/ada" || true
echo
echo "(tear it down with: target/release/skyform -C examples/hello-http destroy --yes)"
