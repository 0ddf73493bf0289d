#!/usr/bin/env bash
# The independent CloudEvents check: publishes events of all 39 types through
# the real `sigevents` processes and has them judged by another
# implementation, the official CloudEvents SDK for JavaScript with kafkajs
# (tests/node/check_events.js).
#
#   tests/cloudevents_check.sh [SIGEVENTS_BINARY]
#
# Steps: start `sigevents kafka`; emit six events of every type (the
# specification's example and five variants with hostile strings: quotes,
# backslashes, control characters, non-ASCII, long text) with `sigevents emit
# --db` from NDJSON, recording the id of each; run `sigevents relay` until
# sqlite3 finds no row that is not delivered; then run check_events.js on the
# topic. Exits with the check's status (0 when every message passed), 1 when
# a step fails first. tests/run_tests.sh runs it and counts it as one test.
# Needs node, sqlite3 and tests/node/node_modules (third_party/install_deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d tests/node/node_modules ]; then
  echo "cloudevents check: tests/node/node_modules is missing;" \
    "run third_party/install_deps.sh" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sigevents-cloudevents-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "cloudevents check: $1" >&2
  shift
  for log in "$@"; do
    echo "--- $log" >&2
    tail -n 20 "$log" >&2
  done
  exit 1
}

if [ $# -ge 1 ]; then
  sigevents=$1
else
  bazel build //adapters:sigevents >"$work/build.log" 2>&1 ||
    fail "cannot build //adapters:sigevents" "$work/build.log"
  sigevents="$(bazel info bazel-bin 2>/dev/null)/adapters/sigevents"
fi

# An embedded Kafka, in a process of its own: it prints bootstrap.servers.
"$sigevents" kafka --partitions 4 >"$work/kafka.out" 2>"$work/kafka.err" &
pids+=($!)
for _ in $(seq 100); do
  [ -s "$work/kafka.out" ] && break
  sleep 0.1
done
servers=$(head -n 1 "$work/kafka.out")
[ -n "$servers" ] || fail "sigevents kafka printed no address" "$work/kafka.err"

# The events, and what must arrive.
node tests/node/make_events.js input tests/testdata/spec_examples.ndjson \
  >"$work/events.ndjson"
"$sigevents" emit --db "$work/service.db" --batch 25 \
  <"$work/events.ndjson" >"$work/ids.txt" 2>"$work/emit.err" ||
  fail "sigevents emit refused events" "$work/emit.err"
node tests/node/make_events.js expected "$work/events.ndjson" "$work/ids.txt" \
  >"$work/expected.jsonl"
echo "cloudevents check: emitted $(wc -l <"$work/ids.txt") events" \
  "into $work/service.db"

# The relay, until every row is delivered.
"$sigevents" relay --db "$work/service.db" --bootstrap-servers "$servers" \
  2>"$work/relay.err" &
relay=$!
pids+=("$relay")
left=unknown
for _ in $(seq 300); do
  left=$(sqlite3 -cmd ".timeout 5000" "$work/service.db" \
    "SELECT count(*) FROM sigevents_outbox WHERE state <> 'delivered'")
  [ "$left" = 0 ] && break
  sleep 0.1
done
[ "$left" = 0 ] || fail "$left event(s) not delivered after 30s" \
  "$work/relay.err"
kill -TERM "$relay"
wait "$relay" || fail "sigevents relay did not stop cleanly" "$work/relay.err"

node tests/node/check_events.js --bootstrap-servers "$servers" \
  --topic significant-events --expected "$work/expected.jsonl"
