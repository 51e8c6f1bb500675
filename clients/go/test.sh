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
# generation is deterministic); the README quick start is
# examples/quickstart; go.mod names Debian's versions (bar the documented
# exceptions) and every go.sum line recomputes from Debian's files; in
# module mode, offline, with go.mod's modules replaced by Debian's sources:
# gofmt, go vet, unit tests; a consumer module using this one beside a newer
# grpc-go gets no "ambiguous import" (stand-ins; the old go.mod, as a
# control, does); the quick start program against a server without auth, and
# against a server with a bearer token (the right token passes; none and a
# wrong one fail with Unauthenticated); the tests named Live (the Producer)
# against both servers.
#
# The Go module proxy is not used (GOPROXY=off): the Debian -dev packages'
# sources under /usr/share/gocode stand in for the modules go.mod names.
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
  github.com/google/go-cmp golang.org/x/net golang.org/x/sys golang.org/x/text; do
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
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
case "$(go env GOCACHE 2>/dev/null)" in "" | off) export GOCACHE="$tmp/gocache" ;; esac

echo "== versions"
go version
protoc --version
protoc-gen-go --version
protoc-gen-go-grpc --version
dpkg-query -W -f='${Package} ${Version}\n' golang-google-grpc-dev golang-google-protobuf-dev \
  golang-github-golang-protobuf-1-5-dev golang-google-genproto-dev golang-golang-x-net-dev \
  golang-golang-x-sys-dev golang-golang-x-text-dev golang-github-google-go-cmp-dev 2>/dev/null || true

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

# --- go.mod and go.sum against Debian's packages --------------------------------
# Each module go.mod lists, the Debian package with its sources, and the
# version go.mod must name: "=" for the package's own version, else the
# version and why it is higher (the offline module build below fails if
# go.mod names less than a listed module requires). The split
# google.golang.org/genproto/googleapis/rpc is not packaged (Debian has the
# monolithic genproto of 2020-04-13) and is not listed.
cat >"$tmp/versions" <<'EOF'
google.golang.org/grpc golang-google-grpc-dev =
google.golang.org/protobuf golang-google-protobuf-dev v1.30.0 the split genproto module requires it
github.com/golang/protobuf golang-github-golang-protobuf-1-5-dev =
golang.org/x/net golang-golang-x-net-dev =
golang.org/x/sys golang-golang-x-sys-dev v0.5.0 golang.org/x/net v0.7.0 requires it
golang.org/x/text golang-golang-x-text-dev =
EOF
# debian_version PACKAGE: its upstream version as a Go version (1:0.7.0+dfsg-1 -> v0.7.0).
debian_version() {
  echo "v$(dpkg-query -W -f='${Version}' "$1" | sed -e 's/^[0-9]*://' -e 's/-[^-]*$//' -e 's/+.*$//')"
}
# gomod_version MODULE: the version go.mod requires.
gomod_version() { awk -v m="$1" '$1 == m { print $2 }' "$here/go.mod"; }

echo "== go.mod names Debian's versions"
listed=$(awk '/^require \(/ { r = 1; next } /^\)/ { r = 0 } r { print $1 }' "$here/go.mod" | sort)
[ "$listed" = "$(printf '%s\n' google.golang.org/genproto/googleapis/rpc $(cut -d' ' -f1 "$tmp/versions") | sort)" ] ||
  fail "go.mod lists other modules than test.sh's table: $listed"
! grep -q '^[[:space:]]*google.golang.org/genproto ' "$here/go.mod" ||
  fail "go.mod requires the monolithic google.golang.org/genproto"
while read -r mod pkg want why; do
  debian=$(debian_version "$pkg")
  have=$(gomod_version "$mod")
  if [ "$want" = "=" ]; then
    [ "$have" = "$debian" ] || fail "go.mod: $mod $have, but Debian's $pkg is $debian"
    echo "$mod $have (Debian's $pkg)"
  else
    [ "$have" = "$want" ] || fail "go.mod: $mod $have, test.sh expects $want ($why)"
    echo "$mod $have (Debian's $pkg is $debian; $why)"
  fi
done <"$tmp/versions"
echo "google.golang.org/genproto/googleapis/rpc $(gomod_version google.golang.org/genproto/googleapis/rpc) (not packaged; built against the same packages of Debian's monolithic genproto)"

# go.sum holds only the lines this machine can compute and that match what
# upstream publishes: the go.mod hashes of modules whose go.mod Debian ships
# at that version. (Debian's module contents differ from upstream's zips,
# so no zip hash can be computed here.)
echo "== go.sum lines recompute from Debian's go.mod files"
mkdir -p "$tmp/h1"
cat >"$tmp/h1/main.go" <<'EOF'
// Prints the go.sum hash of a go.mod file: dirhash.Hash1 of the one file "go.mod".
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
)

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%x  go.mod\n", sha256.Sum256(data))))
	fmt.Println("h1:" + base64.StdEncoding.EncodeToString(sum[:]))
}
EOF
GO111MODULE=off GOFLAGS= go build -o "$tmp/h1/h1" "$tmp/h1/main.go" || fail "build the go.sum hasher"
[ -s "$here/go.sum" ] || fail "go.sum is empty"
while read -r mod ver hash; do
  case "$ver" in */go.mod) ver=${ver%/go.mod} ;; *) fail "go.sum: $mod $ver: only go.mod hashes can be computed here" ;; esac
  pkg=$(awk -v m="$mod" '$1 == m { print $2 }' "$tmp/versions")
  [ -n "$pkg" ] || fail "go.sum: $mod is not one of Debian's packages in test.sh's table"
  [ "$ver" = "$(debian_version "$pkg")" ] || fail "go.sum: $mod $ver, but Debian's $pkg is $(debian_version "$pkg")"
  computed=$("$tmp/h1/h1" "$src/$mod/go.mod")
  [ "$hash" = "$computed" ] || fail "go.sum: $mod $ver/go.mod $hash, but Debian's go.mod gives $computed"
  echo "$mod $ver/go.mod $hash (Debian's $pkg)"
done <"$here/go.sum"

# --- module mode, offline ---------------------------------------------------------
# A copy of go.mod whose modules are replaced by Debian's sources (directory
# replacements: nothing is downloaded or hashed). Go 1.19 builds from the
# modules go.mod lists alone (lazy loading) when go.mod is consistent: a
# listed module requiring more than go.mod says makes it load the whole
# module graph, which fails offline.
# The split genproto module is not packaged: a stand-in of the same packages
# from Debian's monolithic genproto, whose go.mod has the requirements of the
# version go.mod names.
rpc=$tmp/genproto-rpc
mkdir -p "$rpc"
cp -R "$src/google.golang.org/genproto/googleapis/rpc/." "$rpc/"
cat >"$rpc/go.mod" <<'EOF'
module google.golang.org/genproto/googleapis/rpc

go 1.19

require (
	google.golang.org/genproto v0.0.0-20230525234025-438c736192d0
	google.golang.org/protobuf v1.30.0
)
EOF
cp "$here/go.mod" "$tmp/offline.mod"
cp "$here/go.sum" "$tmp/offline.sum"
export GO111MODULE=on GOPROXY=off GOSUMDB=off GOWORK=off GOFLAGS= GOMODCACHE="$tmp/gomodcache"
replace_debian() { # FILE: replaces go.mod's modules (and go-cmp) with Debian's sources
  for mod in $(cut -d' ' -f1 "$tmp/versions") github.com/google/go-cmp; do
    go mod edit -replace="$mod=$src/$mod" "$1"
  done
  go mod edit -replace="google.golang.org/genproto/googleapis/rpc=$rpc" "$1"
}
replace_debian "$tmp/offline.mod"
export GOFLAGS="-modfile=$tmp/offline.mod"
cd "$here"

echo "== module mode (offline, Debian's sources): gofmt, go vet, unit tests"
unformatted=$(gofmt -l .)
[ -z "$unformatted" ] || fail "gofmt needed: $unformatted"
go vet ./... || fail "go vet"
go test ./... || fail "go test"
go build -o "$tmp/quickstart" ./examples/quickstart || fail "build quickstart"

# --- a consumer module ------------------------------------------------------------
# A module that imports this one and a newer grpc-go, which requires the
# split genproto module (as grpc-go's go.mod has since mid-2023). Real: this
# go.mod, Go's module rules, Debian's sources. Stand-ins (replace
# directives): "grpc-go v1.99.0" is Debian's grpc-go with a go.mod requiring
# the split module; the split module is $rpc above; the monolithic genproto
# at the version the split module requires is an empty module (that version
# no longer holds googleapis/rpc); the monolithic genproto of 2020 is
# Debian's. As a control, the same consumer of this module with the
# monolithic genproto of 2020 in its go.mod (as go.mod had before) must get
# "ambiguous import".
echo "== a consumer module beside a newer grpc-go: no ambiguous import (offline, stand-ins)"
export GOFLAGS=
mkdir -p "$tmp/grpc-new" "$tmp/genproto-split"
cp -R "$src/google.golang.org/grpc/." "$tmp/grpc-new/"
cat >"$tmp/grpc-new/go.mod" <<'EOF'
module google.golang.org/grpc

go 1.19

require (
	github.com/golang/protobuf v1.5.2
	golang.org/x/net v0.7.0
	golang.org/x/sys v0.5.0
	golang.org/x/text v0.7.0
	google.golang.org/genproto/googleapis/rpc v0.0.0-20240101000000-000000000000
	google.golang.org/protobuf v1.30.0
)
EOF
printf 'module google.golang.org/genproto\n\ngo 1.19\n' >"$tmp/genproto-split/go.mod"
printf '// Package genproto stands in for the monolithic module once googleapis/rpc is split out.\npackage genproto\n' \
  >"$tmp/genproto-split/doc.go"
# consumer NAME CLIENT_DIR: a module importing riverlog.dev/client/go from CLIENT_DIR; go mod tidy, go build.
consumer() {
  dir=$tmp/consumer-$1
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<EOF
module example.com/consumer

go 1.19

require (
	google.golang.org/grpc v1.99.0
	riverlog.dev/client/go v0.0.0
)

replace (
	riverlog.dev/client/go => $2
	google.golang.org/genproto v0.0.0-20230525234025-438c736192d0 => $tmp/genproto-split
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013 => $src/google.golang.org/genproto
)
EOF
  replace_debian "$dir/go.mod"
  go mod edit -replace="google.golang.org/grpc=$tmp/grpc-new" "$dir/go.mod"
  cat >"$dir/main.go" <<'EOF'
package main

import (
	"fmt"

	"google.golang.org/grpc"
	riverlog "riverlog.dev/client/go"
)

func main() { fmt.Println(grpc.Version, riverlog.Reason(nil) == "") }
EOF
  (cd "$dir" && go mod tidy && go build -o /dev/null .) >"$dir/out" 2>&1
}
consumer new "$here" || { cat "$tmp/consumer-new/out" >&2; fail "a consumer of this module beside a newer grpc-go"; }
echo "this go.mod: go mod tidy and go build pass"
mkdir -p "$tmp/old-client"
cp -R "$here/." "$tmp/old-client/"
go mod edit -droprequire=google.golang.org/genproto/googleapis/rpc \
  -require=google.golang.org/genproto@v0.0.0-20200526211855-cb27e3aa2013 "$tmp/old-client/go.mod"
if consumer old "$tmp/old-client"; then
  fail "control: the old go.mod (monolithic genproto of 2020) passed: the consumer check proves nothing"
fi
grep -q 'ambiguous import' "$tmp/consumer-old/out" || { cat "$tmp/consumer-old/out" >&2; fail "control: no ambiguous import"; }
echo "control, go.mod with the monolithic genproto of 2020: $(grep -m1 -o 'ambiguous import: found package [^ ]* in multiple modules' "$tmp/consumer-old/out")"
export GOFLAGS="-modfile=$tmp/offline.mod"

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
    addr=$(grep -o 'grpc=127\.0\.0\.1:[0-9]*' "$tmp/$name/stderr" 2>/dev/null | head -n1 | cut -d= -f2) || true
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
