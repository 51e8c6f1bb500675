#!/usr/bin/env bash
# Installs the locked dependencies, checks that the generated code is fresh,
# type-checks with tsc --strict, builds dist/, and runs node's test runner on
# the compiled tests against real riverlog servers (RIVERLOG_BIN, default
# /tmp/riverlog-bin/riverlog). Among them, test/install.test.ts installs the
# package the two ways the README gives (the `npm pack` tarball, and the
# folder) into fresh consumer projects and runs a program there. Exits
# non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"

export RIVERLOG_BIN="${RIVERLOG_BIN:-/tmp/riverlog-bin/riverlog}"
if [[ ! -x "$RIVERLOG_BIN" ]]; then
  echo "test.sh: no riverlog server binary at $RIVERLOG_BIN (set RIVERLOG_BIN)" >&2
  exit 1
fi

# --ignore-scripts: the build below is the one to check (prepare would build
# too), and buf's postinstall only shortcuts its binary lookup.
npm ci --ignore-scripts --no-audit --no-fund
./generate.sh --check
node_modules/.bin/tsc -p tsconfig.json --strict --noEmit
rm -rf dist
node_modules/.bin/tsc -p tsconfig.json
node --test dist/test/*.test.js
