#!/usr/bin/env bash
# Sets up what the console's browser test needs (tests/local_console.rs), once:
#   - a headless Chromium: Debian's `chromium` package, installed with apt-get when missing;
#   - playwright-core (npm) under target/peers/console/, which drives that Chromium over the
#     DevTools protocol (it downloads no browser of its own).
# Prints two lines: the Chromium executable and the node_modules folder. Fails loudly, saying
# what to install, when it cannot.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$root/target/peers/console"
version="1.57.0"

chromium="${SKYFORM_CHROMIUM:-}"
if [ -z "$chromium" ]; then
  for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null 2>&1; then chromium="$(command -v "$c")"; break; fi
  done
fi
if [ -z "$chromium" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "tests/peers/console-setup.sh: installing Debian's chromium package" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2 \
      || { echo "tests/peers/console-setup.sh: 'apt-get install chromium' failed" >&2; exit 1; }
    chromium="$(command -v chromium)"
  else
    echo "tests/peers/console-setup.sh: no Chromium found; install it (Debian: apt-get install chromium) or set SKYFORM_CHROMIUM to its path" >&2
    exit 1
  fi
fi

command -v node >/dev/null || { echo "tests/peers/console-setup.sh: node is required (install Node.js 18+)" >&2; exit 1; }
if [ ! -f "$dir/node_modules/playwright-core/.skyform-v$version" ]; then
  command -v npm >/dev/null || { echo "tests/peers/console-setup.sh: npm is required (Debian: apt-get install npm)" >&2; exit 1; }
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"private": true}' > "$dir/package.json"
  npm install --prefix "$dir" --no-audit --no-fund --silent "playwright-core@$version" >&2 \
    || { echo "tests/peers/console-setup.sh: npm could not install playwright-core@$version; is the npm registry reachable?" >&2; exit 1; }
  touch "$dir/node_modules/playwright-core/.skyform-v$version"
fi
echo "$chromium"
echo "$dir/node_modules"
