#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, npm packages, lint (ESLint + Prettier), type check, then
# jest. Lint runs first so a style error fails CI as early as a failing test would.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_CHROMIUM=1 bash scripts/system-deps.sh
[ -d node_modules/.bin ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
echo "npm test on Node $(node -v)"
step() {
  local start=$SECONDS
  "$@"
  echo "($* took $((SECONDS - start)) s)"
}
step npm run -s lint
step npx tsc -p tsconfig.json --noEmit
step npx jest "$@"
