#!/usr/bin/env bash
# Runs every test of the module: installs what is missing, builds, runs the
# Bazel test targets, and ends with one line "N passed, N failed" counting
# test targets.
set -uo pipefail
cd "$(dirname "$0")/.."
third_party/install_deps.sh || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Runs `bazel test` with the given flags and adds its targets to the counts.
passed=0
failed=0
run_bazel_tests() {
  local label=$1
  shift
  echo "== $label"
  bazel test --test_summary=short "$@" 2>&1 | tee "$log" |
    grep -E "PASSED|FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD|ERROR:" || true
  local ok bad
  ok=$(grep -cE "^//[^ ]+ +(\(cached\) )?PASSED" "$log")
  bad=$(grep -cE "^//[^ ]+ +.*(FAILED|TIMEOUT|NO STATUS)" "$log")
  if grep -q "^ERROR:" "$log" && [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
    bad=1  # the build itself failed
  fi
  passed=$((passed + ok))
  failed=$((failed + bad))
}

run_bazel_tests "unit and integration tests" //...

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
