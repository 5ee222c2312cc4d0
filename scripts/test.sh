#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, npm packages, type check, then jest.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_CHROMIUM=1 bash scripts/system-deps.sh
[ -d node_modules/.bin ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
npx tsc -p tsconfig.json --noEmit
npx jest "$@"
