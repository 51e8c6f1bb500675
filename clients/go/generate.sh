#!/bin/sh
# Regenerates riverlogv1/*.pb.go and riverlogv1/*_grpc.pb.go from
# ../../proto/riverlog/v1/*.proto.
#
#   ./generate.sh            # rewrite the committed files in riverlogv1/
#   ./generate.sh DIR        # write them to DIR instead (test.sh diffs it)
#
# Assumes the Debian bookworm packages (see the apt-get line at the top of
# test.sh): protobuf-compiler (protoc 3.21.12), libprotobuf-dev (the
# google/protobuf/*.proto well-known types under /usr/include),
# protoc-gen-go (1.28.1) and protoc-gen-go-grpc (built from grpc-go 1.33.3;
# prints "protoc-gen-go-grpc 1.0"). Other plugin versions produce different output;
# the version comment at the top of each generated file says which made it.
#
# The protos have no go_package option (and must not get one): the import
# path is given with M<file>=<importpath> mappings instead.
#
# Deterministic: running it twice gives identical files.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
proto_root=$(cd "$here/../../proto" && pwd)
pkg=riverlog.dev/client/go/riverlogv1
out=${1:-"$here/riverlogv1"}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "generate.sh: $tool not found; apt-get install -y protobuf-compiler protoc-gen-go protoc-gen-go-grpc" >&2
    exit 1
  }
done
[ -f /usr/include/google/protobuf/empty.proto ] || {
  echo "generate.sh: /usr/include/google/protobuf/*.proto missing; apt-get install -y libprotobuf-dev" >&2
  exit 1
}

cd "$proto_root"
files=$(ls riverlog/v1/*.proto | LC_ALL=C sort)

maps=""
for f in $files; do
  maps="$maps,M$f=$pkg"
done
maps=${maps#,}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# paths=source_relative writes riverlog/v1/*.go (the proto's own path);
# generate into a temp dir and copy them flat into riverlogv1/.
# shellcheck disable=SC2086
protoc -I "$proto_root" -I /usr/include \
  --go_out="$tmp" --go_opt=paths=source_relative --go_opt="$maps" \
  --go-grpc_out="$tmp" --go-grpc_opt=paths=source_relative --go-grpc_opt="$maps" \
  $files

rm -f "$out"/*.pb.go
cp "$tmp"/riverlog/v1/*.pb.go "$out/"
echo "generated $(ls "$out"/*.pb.go | wc -l) files in $out"
