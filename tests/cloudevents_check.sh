#!/usr/bin/env bash
# The independent CloudEvents check: publishes events of all 39 types through
# the real `sigevents` processes, in both CloudEvents content modes of the
# Kafka protocol binding, and has them judged by another implementation, the
# official CloudEvents SDK for JavaScript with kafkajs
# (tests/node/check_events.js).
#
#   tests/cloudevents_check.sh [SIGEVENTS_BINARY]
#
# Steps: start `sigevents kafka` with the topics significant-events and
# significant-events-binary; make six events of every type (the
# specification's example and five variants with hostile strings: quotes,
# backslashes, control characters, non-ASCII, long text) and emit them all
# twice with `sigevents emit --db` from NDJSON, into two outbox databases,
# recording the id of each and, with sqlite3, the envelope each row stored;
# run `sigevents relay` on the first (structured mode: the value is the
# envelope) and `sigevents relay --binary --topic significant-events-binary`
# on the second (binary mode: ce_ headers, the data as the value), both until
# sqlite3 finds no row that is not delivered; then run check_events.js on
# each topic in its mode, side by side. The output of each check follows:
# a table per type, the failures, which name the message, its type and id
# and what is wrong, and one summary line, "OK (MODE mode): all N messages
# ... passed" or "FAILED (MODE mode): N of M messages ... passed"; the last
# line sums up both modes. Exits 0 when every message of both modes passed,
# 1 when a check or a step before them fails. tests/run_tests.sh runs it and
# counts it as one test.
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
"$sigevents" kafka --partitions 4 \
  --topics significant-events,significant-events-binary \
  >"$work/kafka.out" 2>"$work/kafka.err" &
pids+=($!)
for _ in $(seq 100); do
  [ -s "$work/kafka.out" ] && break
  sleep 0.1
done
servers=$(head -n 1 "$work/kafka.out")
[ -n "$servers" ] || fail "sigevents kafka printed no address" "$work/kafka.err"

# The events, each mode's own outbox of them, and what must arrive.
modes=(structured binary)
declare -A topic=([structured]=significant-events
                  [binary]=significant-events-binary)
node tests/node/make_events.js input tests/testdata/spec_examples.ndjson \
  >"$work/events.ndjson"
for mode in "${modes[@]}"; do
  db="$work/$mode.db"
  "$sigevents" emit --db "$db" --batch 25 <"$work/events.ndjson" \
    >"$work/$mode.ids" 2>"$work/$mode.emit.err" ||
    fail "sigevents emit refused events ($mode mode)" "$work/$mode.emit.err"
  sqlite3 -cmd ".timeout 5000" "$db" \
    "SELECT event_id, hex(payload) FROM sigevents_outbox ORDER BY seq" \
    >"$work/$mode.stored" 2>"$work/$mode.sqlite.err" ||
    fail "cannot read the outbox $db" "$work/$mode.sqlite.err"
  node tests/node/make_events.js expected "$work/events.ndjson" \
    "$work/$mode.ids" "$work/$mode.stored" >"$work/$mode.expected.jsonl"
  echo "cloudevents check: emitted $(wc -l <"$work/$mode.ids") events" \
    "into $db ($mode mode, topic ${topic[$mode]})"
done

# The relays, one per mode, until every row is delivered.
declare -A relay
for mode in "${modes[@]}"; do
  flags=(--topic "${topic[$mode]}")
  if [ "$mode" = binary ]; then flags+=(--binary); fi
  "$sigevents" relay --db "$work/$mode.db" --bootstrap-servers "$servers" \
    "${flags[@]}" 2>"$work/$mode.relay.err" &
  relay[$mode]=$!
  pids+=("${relay[$mode]}")
done
for mode in "${modes[@]}"; do
  left=unknown
  for _ in $(seq 300); do
    left=$(sqlite3 -cmd ".timeout 5000" "$work/$mode.db" \
      "SELECT count(*) FROM sigevents_outbox WHERE state <> 'delivered'")
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  [ "$left" = 0 ] ||
    fail "$left event(s) not delivered after 30s ($mode mode)" \
      "$work/$mode.relay.err"
done
for mode in "${modes[@]}"; do
  kill -TERM "${relay[$mode]}"
  wait "${relay[$mode]}" ||
    fail "sigevents relay did not stop cleanly ($mode mode)" \
      "$work/$mode.relay.err"
done

# The checks, one per mode, side by side (each waits seconds for its
# consumer group), then their output one after the other. The last line
# sums up their summary lines.
declare -A check
for mode in "${modes[@]}"; do
  node tests/node/check_events.js --bootstrap-servers "$servers" \
    --topic "${topic[$mode]}" --mode "$mode" \
    --expected "$work/$mode.expected.jsonl" >"$work/$mode.check.out" 2>&1 &
  check[$mode]=$!
  pids+=("${check[$mode]}")
done
status=0
summary=
for mode in "${modes[@]}"; do
  mode_status=0
  wait "${check[$mode]}" || mode_status=$?
  cat "$work/$mode.check.out"
  passed=$(sed -n \
    -e 's/^OK ([a-z]* mode): all \([0-9]*\) messages .*/\1 of \1/p' \
    -e 's/^FAILED ([a-z]* mode): \([0-9]* of [0-9]*\) messages .*/\1/p' \
    "$work/$mode.check.out")
  if [ "$mode_status" = 0 ]; then
    result="$mode mode OK, $passed messages passed"
  elif [ -n "$passed" ]; then
    result="$mode mode FAILED, $passed messages passed"
    status=1
  else
    result="$mode mode FAILED, check_events.js exited $mode_status"
    status=1
  fi
  summary="${summary:+$summary; }$result"
done
echo "cloudevents check: $([ "$status" = 0 ] && echo PASSED || echo FAILED):" \
  "$summary"
exit "$status"
