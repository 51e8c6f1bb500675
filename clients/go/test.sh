#!/bin/sh
# Checks and tests the Go client offline, against a real riverlog server.
#
# Needs Debian bookworm's Go toolchain, protoc and plugins, and the sources of
# grpc-go and its dependencies: setup.sh (run first) installs what is missing
# when run as root, and otherwise prints the apt-get line to run and stops.
#
# Environment:
#   RIVERLOG_BIN  server binary (default /tmp/riverlog-bin/riverlog, then
#                 ../../target/{release,debug}/riverlog)
#   GOCACHE       Go build cache (default: Go's own, else a temp dir)
#
# Steps: the committed generated code equals a fresh generation (and
# generation is deterministic); gofmt; go vet; unit tests; the quick start
# program (examples/quickstart, also the README's quick start verbatim) against
# a server without auth, and against a server with a bearer token (the right
# token passes; none and a wrong one fail with Unauthenticated); the tests
# named Live (the Producer) against both servers.
#
# Builds in GOPATH mode (GO111MODULE=off) over /usr/share/gocode, where the
# Debian -dev packages put their sources: the Go module proxy is not used.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "test.sh: FAIL: $*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------
"$here/setup.sh" || fail "the Go client's Debian packages are missing (see above)"
for tool in go gofmt protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found although setup.sh passed"
done
src=/usr/share/gocode/src
for d in google.golang.org/grpc google.golang.org/protobuf \
  google.golang.org/genproto/googleapis/rpc/errdetails github.com/golang/protobuf \
  golang.org/x/net; do
  [ -d "$src/$d" ] || fail "$src/$d missing although setup.sh passed"
done
grep -q google.golang.org/protobuf "$src/github.com/golang/protobuf/go.mod" ||
  fail "$src/github.com/golang/protobuf is the old 1.3 (golang-github-golang-protobuf-1-3-dev); run: apt-get install -y golang-github-golang-protobuf-1-5-dev"

bin=${RIVERLOG_BIN:-}
if [ -z "$bin" ]; then
  for b in /tmp/riverlog-bin/riverlog "$here/../../target/release/riverlog" "$here/../../target/debug/riverlog"; do
    if [ -x "$b" ]; then bin=$b; break; fi
  done
fi
[ -n "$bin" ] || fail "no riverlog server binary found; set RIVERLOG_BIN"
[ -x "$bin" ] || fail "RIVERLOG_BIN=$bin is not an executable"

tmp=$(mktemp -d)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== versions"
go version
protoc --version
protoc-gen-go --version
protoc-gen-go-grpc --version
dpkg-query -W -f='${Package} ${Version}\n' golang-google-grpc-dev golang-google-protobuf-dev \
  golang-github-golang-protobuf-1-5-dev golang-google-genproto-dev 2>/dev/null || true

# --- generated code ------------------------------------------------------------
echo "== generated code is current and deterministic"
"$here/generate.sh" "$tmp/gen1" >/dev/null
"$here/generate.sh" "$tmp/gen2" >/dev/null
diff -r "$tmp/gen1" "$tmp/gen2" >/dev/null || fail "generate.sh is not deterministic"
diff -r "$tmp/gen1" "$here/riverlogv1" || fail "riverlogv1/ is stale: run ./generate.sh"

echo "== README quick start is examples/quickstart/main.go"
sed -n '/<!-- quickstart:start -->/,/<!-- quickstart:end -->/p' "$here/README.md" |
  sed '1,2d;$d' | sed '$d' >"$tmp/readme.go"
diff "$here/examples/quickstart/main.go" "$tmp/readme.go" ||
  fail "README quick start differs from examples/quickstart/main.go"

# --- build (GOPATH mode, offline) ---------------------------------------------
ws=$tmp/gopath
mkdir -p "$ws/src/riverlog.dev/client"
cp -R "$here" "$ws/src/riverlog.dev/client/go"
rm -rf "$ws/src/riverlog.dev/client/go/bin"
export GO111MODULE=off GOPATH="$ws:/usr/share/gocode" GOPROXY=off GOFLAGS=
case "$(go env GOCACHE 2>/dev/null)" in "" | off) export GOCACHE="$tmp/gocache" ;; esac
cd "$ws/src/riverlog.dev/client/go"

echo "== gofmt, go vet, unit tests"
unformatted=$(gofmt -l . )
[ -z "$unformatted" ] || fail "gofmt needed: $unformatted"
go vet ./... || fail "go vet"
go test ./... || fail "go test"
go build -o "$tmp/quickstart" ./examples/quickstart || fail "build quickstart"

# --- against a real server ------------------------------------------------------
# start_server NAME [ARGS...]: starts riverlog, sets $addr to its gRPC address.
start_server() {
  name=$1; shift
  mkdir -p "$tmp/$name"
  "$bin" serve --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --database-url "sqlite://$tmp/$name/r.db" "$@" 2>"$tmp/$name/stderr" &
  pid=$!
  pids="$pids $pid"
  addr=""
  i=0
  while [ $i -lt 100 ]; do
    addr=$(grep -o 'grpc=127\.0\.0\.1:[0-9]*' "$tmp/$name/stderr" | head -n1 | cut -d= -f2) || true
    [ -n "$addr" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/$name/stderr" >&2; fail "server $name exited"; }
    sleep 0.1
    i=$((i + 1))
  done
  cat "$tmp/$name/stderr" >&2
  fail "server $name did not start in 10 s"
}

echo "== quick start against a server without auth"
start_server plain
plain_addr=$addr
"$tmp/quickstart" -addr "$addr" || fail "quick start (no auth)"

echo "== quick start against a server with a bearer token"
token=go-client-test-token
sha=$(printf %s "$token" | "$bin" hash-token)
cat >"$tmp/auth.toml" <<TOML
[[auth.tokens]]
name = "go-client-test"
sha256 = "$sha"
publish = ["*"]
subscribe = ["*"]
admin = true

[[auth.tokens]]
name = "go-client-orders"
sha256 = "$(printf %s "$token-orders" | "$bin" hash-token)"
publish = ["orders:*"]
subscribe = ["orders:*"]
admin = false
TOML
start_server auth --config "$tmp/auth.toml"
"$tmp/quickstart" -addr "$addr" -token "$token" || fail "quick start (token)"
for bad in "" wrong-token; do
  if "$tmp/quickstart" -addr "$addr" -token "$bad" >"$tmp/bad.out" 2>&1; then
    fail "token '$bad' was accepted"
  fi
  grep -q 'code = Unauthenticated' "$tmp/bad.out" || { cat "$tmp/bad.out" >&2; fail "token '$bad': no Unauthenticated"; }
done
echo "missing and wrong tokens: Unauthenticated"

echo "== the Producer against both servers"
if ! RIVERLOG_ADDR=$plain_addr RIVERLOG_AUTH_ADDR=$addr RIVERLOG_TOKEN=$token-orders \
  go test -count=1 -run Live -v ./... >"$tmp/live.out" 2>&1; then
  cat "$tmp/live.out" >&2
  fail "Producer tests"
fi
grep -E '^(--- |ok)' "$tmp/live.out"
if grep -q -- '--- SKIP' "$tmp/live.out"; then fail "Producer tests were skipped"; fi

echo "test.sh: all passed"
