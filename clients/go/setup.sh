#!/bin/sh
# Installs the Debian bookworm packages the Go client is generated, built and
# tested with (test.sh runs this first), unless they are all installed.
#
#   ./setup.sh          install what is missing (as root), else say what to run
#   ./setup.sh --check  only check; exit 1 and print the command if any is missing
#
# As root, it runs apt-get install, and apt-get update only when the package
# lists are missing or too old to install from. As another user it installs
# nothing: it prints the exact command to run and exits 1.
#
# Why each package (clients/go/README.md has the versions):
#   golang-go                    the Go toolchain (1.19)
#   protobuf-compiler            protoc, for generate.sh
#   libprotobuf-dev              google/protobuf/*.proto (only a recommendation
#                                of protobuf-compiler, so it is named)
#   protoc-gen-go                the message generator (1.28.1)
#   protoc-gen-go-grpc           the service generator (from grpc-go 1.33.3)
#   golang-google-grpc-dev       grpc-go's sources under /usr/share/gocode
#   golang-google-protobuf-dev   google.golang.org/protobuf's sources
#   golang-github-golang-protobuf-1-5-dev
#                                must be named: golang-google-grpc-dev depends
#                                on "1-3 | 1-5" and apt picks the old 1.3,
#                                whose runtime predates protobuf APIv2
set -eu

packages="golang-go protobuf-compiler libprotobuf-dev protoc-gen-go protoc-gen-go-grpc \
golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev"
command_line="apt-get update && apt-get install -y $packages"

check_only=false
[ "${1:-}" = "--check" ] && check_only=true

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $packages; do installed "$p" || missing="$missing $p"; done
else
  missing=" (no dpkg: not a Debian system)"
fi
[ -z "$missing" ] && exit 0

echo "setup.sh: Debian packages missing:$missing" >&2
if $check_only || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup.sh: cannot install them here; as root, run:" >&2
  echo "  $command_line" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt-get install -y -q -o DPkg::Lock::Timeout=300 $packages; then
  echo "setup.sh: apt-get install failed; updating the package lists and retrying" >&2
  apt-get update -q -o DPkg::Lock::Timeout=300
  # shellcheck disable=SC2086
  apt-get install -y -q -o DPkg::Lock::Timeout=300 $packages
fi

missing=""
for p in $packages; do installed "$p" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup.sh: still missing after apt-get:$missing; run: $command_line" >&2
  exit 1
fi
echo "setup.sh: installed the Go client's Debian packages" >&2
