#!/usr/bin/env bash
# Fails when a tracked C++ file is not clang-formatted (.clang-format at the top).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cc' '*.h' | grep -v '^tests/fuzz/corpus/' || true)
if [ -z "$files" ]; then
  exit 0
fi
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files
echo "format: $(echo "$files" | wc -l) files are clang-formatted"
