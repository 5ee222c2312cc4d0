#!/usr/bin/env bash
# Quick start on a fresh Debian machine with Node 20: installs what is missing, builds the bridge,
# starts a local Orthanc PACS holding sample studies, syncs them and serves the API.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
[ -d node_modules/.bin ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
npm run --silent build
exec npx ts-node --transpile-only scripts/quickstart.ts "$@"
