#!/usr/bin/env bash
# Tests of the Helm chart (helm/riverlog) and the Dockerfile.
# Creates or reuses tests/helm/.venv, installs pinned tools, runs pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
export RIVERLOG_BIN="${RIVERLOG_BIN:-$root/target/debug/riverlog}"
[ -x "$RIVERLOG_BIN" ] || { echo "riverlog binary not found at $RIVERLOG_BIN (set RIVERLOG_BIN)" >&2; exit 1; }

pins=(
  helm-python-sdk==0.2.2
  kubernetes-validate==1.37.0
  jsonschema==4.26.0
  PyYAML==6.0.4
  pytest==9.2.0
  grpcio==1.85.3
  grpcio-health-checking==1.85.1
)
stamp="$venv/.pins"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  "$venv/bin/pip" install --quiet "${pins[@]}"
  echo "${pins[*]}" > "$stamp"
fi
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q "$@" test_chart.py
