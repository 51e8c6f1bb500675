#!/usr/bin/env bash
# Regenerates the committed protobuf-es code in src/gen/ from ../../proto (the
# riverlog.v1 protos) and proto/ (google.rpc.ErrorInfo), with the buf CLI and
# protoc-gen-es pinned in package.json devDependencies (installed by `npm ci`
# into node_modules/; no system protoc or remote plugin is used). The output
# is deterministic: running it twice gives identical files.
#
#   ./generate.sh          regenerate src/gen/
#   ./generate.sh --check  fail if src/gen/ differs from what the protos give
set -euo pipefail
cd "$(dirname "$0")"

# Install the pinned tools unless node_modules already has exactly them.
pinned_tools_installed() {
  node --input-type=module -e '
    import { readFileSync } from "node:fs";
    const dev = JSON.parse(readFileSync("package.json", "utf8")).devDependencies;
    for (const name of ["@bufbuild/buf", "@bufbuild/protoc-gen-es"]) {
      let installed;
      try {
        installed = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")).version;
      } catch {
        process.exit(1);
      }
      if (installed !== dev[name]) process.exit(1);
    }
  '
}
if ! pinned_tools_installed; then
  npm ci --no-audit --no-fund
fi

buf=node_modules/.bin/buf
if [[ "${1:-}" == "--check" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$buf" generate --template buf.gen.yaml -o "$tmp"
  if ! diff -r src/gen "$tmp/src/gen"; then
    echo "src/gen is stale: run ./generate.sh" >&2
    exit 1
  fi
  echo "src/gen is up to date"
else
  "$buf" generate --template buf.gen.yaml
  echo "generated: $(find src/gen -name '*.ts' | sort | tr '\n' ' ')"
fi
