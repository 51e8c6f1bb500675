#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of what the server parses
# from untrusted input; the targets are in fuzz/fuzz_targets/ and say what
# each checks.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Builds the targets, then runs each (default: all) for SECONDS_PER_TARGET
# (default 20: the smoke run of the test command, under 2 minutes for all
# five once built) from the seeds in fuzz/seeds/<target>/ and the corpus
# kept in fuzz/corpus/<target>/ (ignored by git). Exits non-zero on any
# crash, leak, timeout or out-of-memory, and prints the input that caused
# it (fuzz/artifacts/<target>/). libFuzzer's full output of the last run
# of each target is kept in fuzz/logs/<target>.log.
#
# Long run, 10 minutes per target, on a shared machine:
#   nice -n 19 scripts/fuzz.sh 600
# One target:
#   nice -n 19 scripts/fuzz.sh 600 cloudevent
# Reproduce a crash (prints the panic):
#   "$CARGO_TARGET_DIR"/x86_64-unknown-linux-gnu/release/<target> <artifact>
#
# Only the stable toolchain is needed: cargo-fuzz's default AddressSanitizer
# build needs nightly (-Zsanitizer), so the targets are built with
# `--sanitizer none`, which instruments for coverage with stable -C flags
# only (-Cpasses=sancov-module and the sanitizer-coverage LLVM options).
# Rust code needs no AddressSanitizer to be memory-safe; what the fuzzers
# look for are panics (debug assertions and overflow checks are on), hangs
# and runaway memory.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(names cloudevent cloudevents_json http_binary start_position)
seconds="${1:-20}"
shift || true
[ "$#" -gt 0 ] && TARGETS=("$@")
case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

# Outside the clone, so a fresh clone reuses an earlier build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riverlog/fuzz-target}"

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  echo "=== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi

echo "=== building the fuzz targets ($CARGO_TARGET_DIR)"
build_log="$(mktemp)"
if ! cargo fuzz build --sanitizer none >"$build_log" 2>&1; then
  grep -v '^\s*Compiling ' "$build_log" | tail -n 60
  echo "!!! building the fuzz targets failed" >&2
  exit 1
fi
rm -f "$build_log"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bindir="$CARGO_TARGET_DIR/$triple/release"

# Longest input per target: room for the largest valid input of each
# format, not more, so time goes to structure rather than size.
max_len() {
  case "$1" in
    start_position) echo 256 ;;
    names) echo 600 ;;
    *) echo 4096 ;;
  esac
}

failed=()
for target in "${TARGETS[@]}"; do
  corpus="fuzz/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts" fuzz/logs
  log="fuzz/logs/$target.log"
  echo "=== $target: ${seconds}s"
  status=0
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: memory
  # runaway; the corpus dir comes first, so new inputs are saved there.
  "$bindir/$target" \
    -max_total_time="$seconds" \
    -max_len="$(max_len "$target")" \
    -rss_limit_mb=2048 \
    -timeout=10 \
    -print_final_stats=1 \
    -artifact_prefix="$artifacts/" \
    "$corpus" "fuzz/seeds/$target" >"$log" 2>&1 || status=$?
  grep -E '^(#[0-9]+\s+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    grep -A 2 'panicked at' "$log" | head -n 12 || true
    tail -n 15 "$log"
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    echo "!!! $target FAILED (exit $status); input: ${artifact:+$PWD/$artifact}" >&2
    echo "!!! full output: $PWD/$log" >&2
    failed+=("$target")
  elif grep -q 'no interesting inputs were found' "$log" || ! grep -qE 'cov: [1-9]' "$log"; then
    tail -n 20 "$log"
    echo "!!! $target: no coverage feedback: the build is not instrumented" >&2
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "!!! fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, ${seconds}s each, no crash"
