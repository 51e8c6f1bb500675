#!/usr/bin/env bash
# Runs every riverlog test: unit tests and the black-box integration tests
# against real servers on SQLite (the crash and fault suite among them), the
# integration tests again on PostgreSQL, a short run of the fuzz targets,
# buf lint, the README's grpcurl, CLI and HTTP walkthrough, the
# web console in headless Chromium, the Helm chart (rendered by the real
# Helm engine, validated, and driving the real binary), and the Python,
# TypeScript and Go clients against live servers.
set -euo pipefail
cd "$(dirname "$0")/.."

run_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast "$@"
  else
    cargo test --no-fail-fast "$@"
  fi
}

loud() { printf '\n!!! %s\n' "$@" >&2; }

# The disk-full test mounts a small tmpfs (root only). Where that is not
# allowed, say so and let it skip; elsewhere a failed mount fails it.
probe_dir="$(mktemp -d)"
if mount -t tmpfs -o size=1m tmpfs "$probe_dir" 2>/dev/null; then
  umount "$probe_dir"
else
  loud "Cannot mount a tmpfs here (not root?): the real disk-full test is SKIPPED."
  export RIVERLOG_TEST_NO_TMPFS=1
fi
rmdir "$probe_dir"

echo "=== SQLite: unit and integration tests (the postgres:: module needs PostgreSQL),"
echo "    and the benchmark tool's (bench/: every workload at tiny scale; Redis's if redis-server is installed)"
command -v redis-server >/dev/null 2>&1 ||
  loud "redis-server not found: the benchmark tool's Redis target was NOT tested." \
       "Install it with: apt-get install -y redis-server"
run_tests --workspace --all-targets -- --skip postgres::
cargo test --doc

# The same integration suite on PostgreSQL, one fresh schema per test, and
# the unit tests whose postgres:: variants run the writer on PostgreSQL.
pg_url="${RIVERLOG_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -d "$pg_url"; then
  echo "=== PostgreSQL ($pg_url): integration tests"
  # Schemas of earlier runs (a run that was killed leaves its own behind):
  # rl_t_<pid>_..., dropped only when that test process is gone, so a run
  # never pulls the schemas from under another one still running.
  psql "$pg_url" -qAt -c "SELECT schema_name FROM information_schema.schemata \
    WHERE schema_name LIKE 'rl\_t\_%'" | while read -r schema; do
    pid="${schema#rl_t_}"; pid="${pid%%_*}"
    kill -0 "$pid" 2>/dev/null || echo "DROP SCHEMA \"$schema\" CASCADE;"
  done | PGOPTIONS='-c client_min_messages=warning' psql "$pg_url" -q >/dev/null
  RIVERLOG_TEST_BACKEND=postgres RIVERLOG_TEST_DATABASE_URL="$pg_url" run_tests --test it --lib
else
  loud "PostgreSQL at $pg_url is NOT reachable: the PostgreSQL tests were SKIPPED." \
       "Start it (or set RIVERLOG_TEST_DATABASE_URL) to run them."
  [ -z "${CI:-}" ] || { loud "CI must run the PostgreSQL tests: failing."; exit 1; }
fi

# API tooling (buf, grpcurl), pinned and installed into tools/.
eval "$(scripts/tools.sh)"

echo "=== buf lint"
buf lint

# The README walkthrough and CLI examples, pasted command by command into a
# shell, against a fresh server.
echo "=== README walkthrough (grpcurl by reflection, the riverlog CLI)"
python3 scripts/check_walkthrough.py
echo "=== CloudEvents over HTTP, parsed by the official Python SDK" && python3 scripts/check_cloudevents_http.py

# Coverage-guided fuzzing of what the server parses from clients: a short
# smoke run per target here; long runs are in RELIABILITY.md.
echo "=== fuzz targets (cargo-fuzz, 20 s each)"
scripts/fuzz.sh 20

echo "=== OpenAPI: schemathesis against the HTTP API's own document"
scripts/check_openapi.sh

# The generated clients, against real servers started by their tests.
# Python and TypeScript install their pinned tools into ignored folders of
# their own; Go builds offline from Debian's packages, which
# clients/go/setup.sh installs when they are missing and this runs as root.
cargo build --quiet
RIVERLOG_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/riverlog"
export RIVERLOG_BIN

echo "=== Helm chart: render, lint, Kubernetes 1.30 schemas, and the real binary from the pod spec"
tests/helm/run.sh -q

echo "=== generated client code is up to date"
# protoc and protoc-gen-go for clients/go. Where they cannot be installed
# (not root), setup.sh prints the apt-get line; the check below then skips
# Go (under CI it fails), and clients/go/test.sh fails at the end with the
# same line.
clients/go/setup.sh || true
scripts/generate_clients.sh --check

echo "=== clients/python"
clients/python/test.sh
echo "=== clients/typescript"
clients/typescript/test.sh
# The web console in headless Chromium (Debian's; .ci/run installs it).
if [ -x /usr/bin/chromium ]; then
  echo "=== web console in headless Chromium"
  tests/browser/run.sh
else
  loud "Chromium not found: the web console was NOT tested in a browser." \
       "Install it with: apt-get install -y chromium"
  [ -z "${CI:-}" ] || exit 1
fi

# Installs Debian's Go packages first (clients/go/setup.sh); where it cannot
# (not root), it fails, printing the apt-get line to run.
echo "=== clients/go"
clients/go/test.sh
