#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (Bazel's gcc
# toolchain cannot build them) under ASan and UBSan, and runs each for a
# bounded time from a seed corpus made of the specification's examples.
# Exits non-zero if any target finds a crash, a hang, a leak or a broken
# invariant; the input that did it is kept and its path printed.
#
#   tests/fuzz/run_fuzzers.sh [SECONDS_PER_TARGET]   (default 30)
#
# FUZZ_WORK_DIR keeps the build, corpora and findings in a given directory
# (reused by the next run, so the corpora grow); by default a temporary one
# is removed when nothing was found.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-30}
targets=(event_fuzzer ndjson_fuzzer)
cxx=${FUZZ_CXX:-clang++}
work=${FUZZ_WORK_DIR:-$(mktemp -d -t sigevents-fuzz-XXXXXX)}
mkdir -p "$work/obj" "$work/findings"

sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=all)
cxxflags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -I. "${sanitize[@]}")

# The code under test, instrumented for coverage. Boost.JSON is built from
# its sources so that the parser is instrumented too.
sources=(emitter/catalog.cc emitter/event.cc emitter/json_parse.cc
  emitter/utf8.cc emitter/envelope.cc adapters/ndjson.cc
  tests/fuzz/boost_json.cc)
echo "building ${targets[*]} with $("$cxx" --version | head -1)"
build_start=$SECONDS
pids=()
for source in "${sources[@]}"; do
  "$cxx" "${cxxflags[@]}" -fsanitize=fuzzer-no-link -c "$source" \
    -o "$work/obj/$(basename "$source" .cc).o" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
for target in "${targets[@]}"; do
  "$cxx" "${cxxflags[@]}" -fsanitize=fuzzer "tests/fuzz/$target.cc" \
    "$work"/obj/*.o -o "$work/$target"
done
"$cxx" -std=c++17 -I. tests/fuzz/make_seeds.cc emitter/catalog.cc \
  -lboost_json -o "$work/make_seeds"
echo "built in $((SECONDS - build_start)) s"

# Seeds: one per example of the specification, for each target.
mkdir -p "$work/seeds/event_fuzzer" "$work/seeds/ndjson_fuzzer"
"$work/make_seeds" tests/testdata/spec_examples.ndjson \
  "$work/seeds/event_fuzzer" "$work/seeds/ndjson_fuzzer" "$work/json.dict"

status=0
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus/$target" "$work/findings/$target"
  echo "== $target for ${seconds} s"
  start=$SECONDS
  if "$work/$target" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=16384 -dict="$work/json.dict" \
      -print_final_stats=1 -artifact_prefix="$work/findings/$target/" \
      "$work/corpus/$target" "$work/seeds/$target" \
      >"$work/$target.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
      "$work/$target.log")
    echo "$target: ${runs:-?} inputs in $((SECONDS - start)) s," \
      "corpus $(ls "$work/corpus/$target" | wc -l) files, nothing found"
  else
    status=1
    echo "$target: FAILED after $((SECONDS - start)) s; log and input:"
    grep -E "ERROR|invariant broken|SUMMARY|Test unit written" \
      "$work/$target.log" | head -20 || tail -20 "$work/$target.log"
    ls "$work/findings/$target"
  fi
done

if [ "$status" -eq 0 ] && [ -z "${FUZZ_WORK_DIR:-}" ]; then
  rm -rf "$work"
else
  echo "fuzz work directory kept: $work"
fi
exit "$status"
