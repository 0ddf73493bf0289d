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

# One test at a time: several tests time outages and takeovers, and two
# cores shared by parallel tests make those timings meaningless.
run_bazel_tests "unit and integration tests" --local_test_jobs=1 //...

# The independent CloudEvents check (Node.js: kafkajs and the official
# CloudEvents SDK) runs outside Bazel, whose sandbox does not see
# tests/node/node_modules. It counts as one test.
echo "== CloudEvents check with the official SDK (tests/cloudevents_check.sh)"
if tests/cloudevents_check.sh >"$log" 2>&1; then
  echo "tests/cloudevents_check.sh PASSED: $(tail -n 1 "$log")"
  passed=$((passed + 1))
else
  cat "$log"
  echo "tests/cloudevents_check.sh FAILED"
  failed=$((failed + 1))
fi

# The unit tests again under AddressSanitizer, UndefinedBehaviorSanitizer
# and LeakSanitizer, and the tests whose threads share a database (tagged
# "concurrent") under ThreadSanitizer: a few minutes on 2 cores. Each config
# builds into its own output directory (see .bazelrc).
run_bazel_tests "unit tests under ASan+UBSan" --config=asan \
  --local_test_jobs=1 \
  //emitter/... //adapters:ndjson_test //tests:emit_faults_test \
  //tests:hostile_input_test //outbox:relay_test //outbox:relay_faults_test \
  //adapters:cli_ops_test //adapters:cli_emit_test
# The relay's tests are not run under TSan: librdkafka comes from Debian,
# built without TSan's instrumentation, and TSan crashes in its threads.
run_bazel_tests "concurrent tests under TSan" --config=tsan \
  --build_tests_only --test_tag_filters=concurrent //...

# The libFuzzer targets, built with clang outside Bazel; all of them count
# as one entry. FUZZ_SECONDS sets the time per target.
echo "== fuzzers"
if tests/fuzz/run_fuzzers.sh "${FUZZ_SECONDS:-30}"; then
  echo "tests/fuzz/run_fuzzers.sh PASSED"
  passed=$((passed + 1))
else
  echo "tests/fuzz/run_fuzzers.sh FAILED"
  failed=$((failed + 1))
fi

# The benchmark in its quick form (under 30 seconds), built optimized, so
# that it keeps working; its figures are printed, not asserted. It counts
# as one entry when it exits 0.
echo "== benchmark, quick (sigevents bench --quick)"
if bazel run -c opt //adapters:sigevents -- bench --quick; then
  echo "sigevents bench --quick PASSED"
  passed=$((passed + 1))
else
  echo "sigevents bench --quick FAILED"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
