#!/usr/bin/env bash
# Validate every *.yaml in a directory of real device configs with the built CLI, e.g.
#   bash scripts/check-compat.sh ../shared/compat/skiffos
# Warnings are allowed; any file with errors makes this exit 1. Not part of the test suite: the
# configs are not ours to ship.
set -euo pipefail
dir=${1:?usage: check-compat.sh DIR}
cli="$(dirname "$0")/../dist/skiff-core.mjs"
[ -x "$cli" ] || { echo "build first: npm run build" >&2; exit 2; }
failed=0 total=0
for file in "$dir"/*.yaml; do
  total=$((total + 1))
  if ! out=$(node "$cli" config validate "$file"); then
    failed=$((failed + 1))
    printf '%s\n' "$out"
  fi
done
echo "$((total - failed))/$total configs valid"
[ "$failed" -eq 0 ]
