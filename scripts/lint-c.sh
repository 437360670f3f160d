#!/usr/bin/env bash
# The launcher's C in the layout .clang-format describes (npm run lint runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "lint-c: clang-format is missing: run 'bash scripts/provision.sh cross' as root (or apt-get install clang-format)" >&2
  exit 1
fi
clang-format --dry-run -Werror launcher/*.c launcher/*.h
