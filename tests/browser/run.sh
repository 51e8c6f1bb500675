#!/usr/bin/env bash
# The riverlog web console in a real headless browser.
#
#   tests/browser/run.sh
#
# Needs Node.js 20+ with npm, and Debian's Chromium (apt-get install -y chromium).
# Environment:
#   RIVERLOG_BIN          the riverlog binary to test (default: target/debug/riverlog)
#   RIVERLOG_CONSOLE_DIR  serve the console from this folder (--console-dir) instead of
#                         the copy embedded in the binary; for working on the console only
#   CHROMIUM_PATH         the browser (default /usr/bin/chromium)
# Screenshots go to tests/browser/output/.
set -euo pipefail
cd "$(dirname "$0")"

export RIVERLOG_BIN="${RIVERLOG_BIN:-${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}/debug/riverlog}"
CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
export CHROMIUM_PATH

if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "error: no Chromium at $CHROMIUM_PATH; install it with: apt-get update && apt-get install -y chromium" >&2
  exit 2
fi
if [ ! -x "$RIVERLOG_BIN" ]; then
  echo "error: no riverlog binary at $RIVERLOG_BIN; build one (cargo build --release) and set RIVERLOG_BIN" >&2
  exit 2
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is missing (Node.js 20+ is needed)" >&2
  exit 2
fi

# playwright-core only: it never downloads a browser of its own.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
rm -rf output
mkdir -p output
exec node --test --test-concurrency=1 --test-reporter=spec console.test.mjs
