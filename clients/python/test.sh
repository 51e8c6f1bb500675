#!/usr/bin/env bash
# Runs the Python client's test suite against real riverlog servers.
#
# Usage: ./test.sh [pytest arguments]
# Environment:
#   RIVERLOG_BIN  the riverlog server binary (default: the first found of
#                 /tmp/riverlog-bin/riverlog, $CARGO_TARGET_DIR/{release,debug}/riverlog,
#                 ../../target/{release,debug}/riverlog)
#   PYTHON        interpreter for the virtualenv (default python3.11, else python3)
# Creates or reuses the git-ignored virtualenv .venv; needs PyPI the first time.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
if [ -z "${PYTHON:-}" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi

# (Re)install when pyproject.toml changed since the last install.
stamp="$VENV/.riverlog-install-stamp"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"
  echo "$want" > "$stamp"
fi

if [ -z "${RIVERLOG_BIN:-}" ]; then
  for candidate in \
    /tmp/riverlog-bin/riverlog \
    ${CARGO_TARGET_DIR:+"$CARGO_TARGET_DIR/release/riverlog" "$CARGO_TARGET_DIR/debug/riverlog"} \
    ../../target/release/riverlog ../../target/debug/riverlog; do
    if [ -x "$candidate" ]; then RIVERLOG_BIN=$candidate; break; fi
  done
fi
if [ -z "${RIVERLOG_BIN:-}" ] || [ ! -x "$RIVERLOG_BIN" ]; then
  echo "no riverlog server binary: set RIVERLOG_BIN, or run 'cargo build --release' at the repository root" >&2
  exit 1
fi
RIVERLOG_BIN=$(cd "$(dirname "$RIVERLOG_BIN")" && pwd)/$(basename "$RIVERLOG_BIN")
export RIVERLOG_BIN
echo "riverlog server: $RIVERLOG_BIN"

exec "$VENV/bin/python" -m pytest "$@"
