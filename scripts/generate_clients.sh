#!/usr/bin/env bash
# Regenerates every client's code from proto/ (each client's own
# generate.sh, with its pinned tools in its own ignored folder).
#   scripts/generate_clients.sh           regenerate
#   scripts/generate_clients.sh --check   regenerate and fail if anything
#                                         changed: the committed code was stale
set -euo pipefail
cd "$(dirname "$0")/.."

snapshot() {
  # Every file of clients/ that git tracks or would track, with its hash.
  git ls-files -z --cached --others --exclude-standard -- clients/ \
    | xargs -0 -r sha256sum 2>/dev/null | sort
}

check=false
[ "${1:-}" = "--check" ] && check=true
before="$(snapshot)"
for lang in python typescript go; do
  if [ "$lang" = go ] && ! command -v protoc-gen-go >/dev/null 2>&1; then
    echo "!!! protoc-gen-go not found: clients/go was NOT regenerated (clients/go/setup.sh installs it; the test command runs that first)" >&2
    [ -z "${CI:-}" ] || exit 1
    continue
  fi
  echo "--- generate clients/$lang"
  (cd "clients/$lang" && ./generate.sh)
done
if $check; then
  after="$(snapshot)"
  if [ "$before" != "$after" ]; then
    echo "!!! generated client code was stale; regenerated. Review and commit:" >&2
    diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print $3}' | sort -u >&2
    exit 1
  fi
  echo "generated client code is up to date"
fi
