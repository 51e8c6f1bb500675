#!/usr/bin/env bash
# Runs every riverlog test: unit tests and the black-box integration tests
# against real servers on SQLite (the crash and fault suite among them), the
# integration tests again on PostgreSQL, a short run of the fuzz targets,
# buf lint, the README's grpcurl, CLI and HTTP walkthrough, the
# web console in headless Chromium, the Helm chart (rendered by the real
# Helm engine, validated, and driving the real binary), and the Python,
# TypeScript and Go clients against live servers. It first installs what
# those tests need (see "Set-up" below), so that it runs everything on a
# fresh clone.
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

# --- Set-up: the Debian packages the tests need beyond Rust, Python and
# Node.js, installed here so that this one command runs everything on a
# fresh clone:
#   chromium      the web console's test in a real browser (tests/browser)
#   redis-server  the benchmark tool's Redis target (it runs its own instance)
#   python3-venv  when python3 cannot make the tools' virtual environments
#   postgresql-client  when psql is missing (the PostgreSQL pass uses it)
#   and the Go client's toolchain and library sources, which
#   clients/go/setup.sh names (and clients/go/README.md explains).
# As root with apt-get, what is missing is installed (apt-get update only
# when installing from the current package lists fails). Elsewhere nothing
# is installed: the exact command to run is printed, the tests that need
# the packages are skipped loudly, and under CI=1 the run fails instead.
debian_packages="chromium redis-server"
python3 -c 'import ensurepip, venv' 2>/dev/null || debian_packages="$debian_packages python3-venv"
command -v psql >/dev/null 2>&1 || debian_packages="$debian_packages postgresql-client"

debian_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

install_debian_packages() {
  local missing="" p complete=true
  if command -v dpkg-query >/dev/null 2>&1; then
    for p in $debian_packages; do debian_installed "$p" || missing="$missing $p"; done
  else
    missing=" $debian_packages"
  fi
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "=== set-up: apt-get install$missing"
      export DEBIAN_FRONTEND=noninteractive
      # shellcheck disable=SC2086
      apt-get install -y -q -o DPkg::Lock::Timeout=300 $missing >/dev/null ||
        { apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null &&
          apt-get install -y -q -o DPkg::Lock::Timeout=300 $missing >/dev/null; } ||
        { loud "apt-get could not install:$missing"; exit 1; }
    else
      loud "Missing Debian packages:$missing (the tests that need them will be SKIPPED)." \
           "Install them as root:  apt-get update && apt-get install -y$missing" \
           "(not Debian? install Chromium as /usr/bin/chromium and redis-server on the PATH)"
      complete=false
    fi
  fi
  # The Go client's packages: setup.sh installs them as root, and otherwise
  # prints its apt-get line and fails (clients/go/test.sh then fails too).
  if ! clients/go/setup.sh; then
    loud "The Go client's Debian packages are missing: its tests will FAIL (the line to run is above)."
    complete=false
  fi
  $complete || [ -z "${CI:-}" ] || { loud "CI must run every test: failing."; exit 1; }
}

install_debian_packages

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
# pid_alive PID: whether that process runs (another user's too: kill then
# says "not permitted"); anything but "no such process" counts as alive.
pid_alive() {
  case "$(LC_ALL=C kill -0 "$1" 2>&1)" in
    *"No such process"*) return 1 ;;
    *) return 0 ;;
  esac
}
# The test schemas (rl_t_<pid>_...) whose test process is gone, one a line.
orphan_test_schemas() {
  local schema pid
  psql "$pg_url" -qAt -c "SELECT schema_name FROM information_schema.schemata \
    WHERE schema_name LIKE 'rl\_t\_%'" | while read -r schema; do
    pid="${schema#rl_t_}"; pid="${pid%%_*}"
    pid_alive "$pid" || echo "$schema"
  done
}
# Drops the schemas named on stdin.
drop_schemas() {
  sed 's/.*/DROP SCHEMA IF EXISTS "&" CASCADE;/' |
    PGOPTIONS='-c client_min_messages=warning' psql "$pg_url" -q >/dev/null
}
# The databases of tests that need a whole one (rl_t_db_<pid>_..., see
# tests/it/postgres/outages.rs) whose test process is gone, dropped.
drop_orphan_test_databases() {
  local db pid
  psql "$pg_url" -qAt -c "SELECT datname FROM pg_database WHERE datname LIKE 'rl\_t\_db\_%'" |
    while read -r db; do
      pid="${db#rl_t_db_}"; pid="${pid%%_*}"
      pid_alive "$pid" || echo "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE);"
    done | psql "$pg_url" -q >/dev/null
}
if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -d "$pg_url"; then
  echo "=== PostgreSQL ($pg_url): integration tests"
  # Each test drops the schema it made (rl_t_<pid>_..., see
  # src/storage/testing.rs) when it ends, passed or failed. A test process
  # that was killed leaves its own behind: those of pids that are gone are
  # dropped here, never those of a process still running (another run).
  orphan_test_schemas | drop_schemas
  drop_orphan_test_databases
  # The tests mark their schemas with this run's name (a COMMENT), so what
  # this pass left behind is told apart from other runs' live schemas.
  run="riverlog test run $$ $(date -u +%FT%TZ)"
  status=0
  RIVERLOG_TEST_RUN="$run" RIVERLOG_TEST_BACKEND=postgres RIVERLOG_TEST_DATABASE_URL="$pg_url" \
    run_tests --test it --lib || status=$?
  left="$(psql "$pg_url" -qAt -v run="$run" <<'SQL'
SELECT nspname FROM pg_namespace WHERE obj_description(oid, 'pg_namespace') = :'run'
SQL
)"
  if [ -n "$left" ]; then
    loud "Tests of the PostgreSQL pass left their schemas behind (dropping them now):" $left
    printf '%s\n' "$left" | drop_schemas
    exit 1
  fi
  [ "$status" = 0 ] || exit "$status"
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
# The web console in headless Chromium (Debian's, from the set-up above).
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
