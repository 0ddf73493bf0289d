#!/usr/bin/python3
"""Proves that no committed event is lost or published twice across crashes.

Two modes, run by tests/crash_test.sh under Bazel (see tests/BUILD):

--mode=crash  Starts an embedded Kafka (`sigevents kafka --partitions 4`),
              the emitting service (tests/emitting_service.cc) and a relay,
              then kills the relay with SIGKILL at random moments (at least
              --relay-kills times; some restarts use tests/crash_relay.cc,
              which ends itself between Kafka's delivery reports and their
              recording; a few stops are SIGTERMs, some with a stop timeout
              too short to be clean) and the service (at least
              --service-kills times), restarting each. At the end a relay
              drains the outbox, and an independent consumer (kafka-python,
              not librdkafka) reads the topic from the beginning and checks:
              every committed event exactly once, nothing rolled back or
              uncommitted, and per key the Kafka order equals commit order
              (outbox seq).
--mode=naive  The naive duplicate window, deterministically: the relay ends
              right after the first delivery reports, before recording them.
              The rows must still be pending while Kafka has the messages; a
              restarted relay must reconcile at least those (RelayStats'
              reconciled_total in its stop line, and its read-back log line)
              and publish no second copy. The same holds when a relay in
              between is stopped with SIGTERM while it waits to read back:
              it must not release the lease as cleanly stopped. A control
              run bypasses the read-back (it marks the lease as cleanly
              released) and must show the duplicates, proving the check can
              see them.

The seed is printed first; --seed=N or CRASH_SEED=N replays a run's random
choices (kill moments, crash points, stop timeouts; not the processes'
timing). Exit status 0 when every check passes, 1 otherwise.
"""

import argparse
import collections
import os
import random
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time

import topic_reader

TOPIC = "significant-events"
PARTITIONS = 4
# Flags that keep relay restarts quick: a dead holder's lease is taken at
# once (same host, pid gone), the read-back waits 100 ms after its heartbeat.
RELAY_FLAGS = ["--lease", "2s", "-X", "reconnect.backoff.max.ms=1000"]
SETTLE_DELAY = "100ms"
RECONCILED_LINE = re.compile(
    r"read back \d+ partition\(s\): (\d+) message\(s\) of this outbox found, "
    r"(\d+) of them were still pending")
STOPPED_LINE = re.compile(
    r"relay: stopped (cleanly|uncleanly); delivered (\d+), failed (\d+), "
    r"reconciled (\d+)")


class TestFailure(Exception):
    """A check failed; the message says which and why."""


def log(message):
    print("crash_test: " + message, flush=True)


def now_ms():
    return int(time.time() * 1000)


class Process:
    """A child process whose stderr (and stdout, unless piped) goes to a log
    file shared by all runs of the same role, each run marked."""

    def __init__(self, label, argv, log_path, stdout_pipe=False):
        self.label = label
        self.log_path = log_path
        self.started_ms = now_ms()
        self.ended_ms = None
        self.ended_how = None
        self.log_offset = (os.path.getsize(log_path)
                           if os.path.exists(log_path) else 0)
        with open(log_path, "a") as out:
            out.write("===== %s %s: %s\n" % (
                time.strftime("%H:%M:%S", time.gmtime()), label,
                " ".join(argv)))
        self._log = open(log_path, "a")
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=self._log)

    @property
    def pid(self):
        return self.popen.pid

    def own_log(self):
        """What this run wrote to its log so far."""
        with open(self.log_path, errors="replace") as f:
            f.seek(self.log_offset)
            return f.read()

    def running(self):
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def kill(self):
        """SIGKILL, and reap, so that the pid is gone for the lease check."""
        if self.running():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self._ended("SIGKILL")

    def terminate(self, timeout):
        """SIGTERM; returns the exit status, or raises on timeout."""
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure("%s did not stop within %ss of SIGTERM; see %s"
                              % (self.label, timeout, self.log_path))
        self._ended("SIGTERM, exit %d" % code)
        return code

    def wait(self, timeout):
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure("%s did not finish within %ss; see %s"
                              % (self.label, timeout, self.log_path))
        self._ended("exit %d" % code)
        return code

    def mark_exited(self):
        self._ended("exit %d" % self.popen.returncode)

    def _ended(self, how):
        if self.ended_ms is None:
            self.ended_ms = now_ms()
            self.ended_how = how
            self._log.close()


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)\n"


class Outbox:
    """Read-only questions to the service's database, over one connection
    that holds no transaction between questions."""

    def __init__(self, path):
        self.path = path
        self._db = None

    def _conn(self):
        if self._db is None:
            self._db = sqlite3.connect(self.path, timeout=10,
                                       isolation_level=None)
        return self._db

    def scalar(self, sql, default=0):
        try:
            row = self._conn().execute(sql).fetchone()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return default
            raise
        return row[0] if row else default

    def rows(self, sql, params=()):
        return self._conn().execute(sql, params).fetchall()

    def execute(self, sql):
        self._conn().execute(sql)

    def committed_count(self):
        return self.scalar("SELECT count(*) FROM committed_events")

    def pending_count(self):
        return self.scalar(
            "SELECT count(*) FROM sigevents_outbox WHERE state = 'pending'")

    def failed_count(self):
        return self.scalar(
            "SELECT count(*) FROM sigevents_outbox WHERE state = 'failed'")

    def outbox_id(self):
        return self.scalar(
            "SELECT value FROM sigevents_meta WHERE key = 'outbox_id'", "")

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None


def read_topic(bootstrap):
    """Every message of TOPIC, read by kafka-python (topic_reader.py)."""
    return topic_reader.read_topic(bootstrap, TOPIC, PARTITIONS, 60)


def check_kafka(messages, outbox_id, committed, rolled_back, outbox_rows):
    """Compares Kafka with the service's record. `committed` maps event id
    to (seq, key); `outbox_rows` maps seq to (state, partition, offset).
    Returns the counts and details of every problem."""
    ours = [m for m in messages if m["outbox"] == outbox_id]
    copies = collections.defaultdict(list)
    for m in ours:
        copies[m["id"]].append(m)
    result = {
        "kafka_messages": len(ours),
        "foreign_messages": len(messages) - len(ours),
        "committed": len(committed),
        "delivered": sum(1 for i in committed if copies.get(i)),
        "lost": sorted(committed[i][0] for i in committed if i not in copies),
        "duplicated": sorted(
            (committed[i][0] if i in committed else -1, len(c))
            for i, c in copies.items() if len(c) > 1),
        "uncommitted": sorted(i for i in copies if i not in committed),
        "rolled_back_published": sorted(i for i in copies
                                        if i in rolled_back),
        "seq_mismatch": [],
        "key_mismatch": [],
        "out_of_order": [],
        "split_keys": [],
        "misrecorded": [],
    }
    # Order: per key, first copies must come in increasing seq, within one
    # partition.
    by_key = collections.defaultdict(list)
    seen = set()
    for m in ours:  # in (partition, offset) order
        expected = committed.get(m["id"])
        if expected is not None and m["seq"] != expected[0]:
            result["seq_mismatch"].append((m["id"], m["seq"], expected[0]))
        if expected is not None and m["key"] != expected[1]:
            result["key_mismatch"].append((m["id"], m["key"], expected[1]))
        if m["id"] in seen:
            continue
        seen.add(m["id"])
        by_key[m["key"]].append(m)
    for key, ms in sorted(by_key.items()):
        if len({m["partition"] for m in ms}) > 1:
            result["split_keys"].append(key)
            continue
        last = None
        for m in ms:
            if last is not None and m["seq"] <= last:
                result["out_of_order"].append((key, last, m["seq"]))
            last = m["seq"] if last is None else max(last, m["seq"])
    # The outbox must say where each event is.
    where = {(m["partition"], m["offset"]): m for m in ours}
    for event_id, (seq, _) in committed.items():
        state, partition, offset = outbox_rows.get(seq, (None, None, None))
        found = where.get((partition, offset))
        if state != "delivered" or found is None or found["id"] != event_id:
            result["misrecorded"].append((seq, state, partition, offset))
    return result


PROBLEMS = ["lost", "duplicated", "out_of_order", "uncommitted",
            "rolled_back_published", "seq_mismatch", "key_mismatch",
            "split_keys", "misrecorded"]


def problem_count(result):
    return sum(len(result[name]) for name in PROBLEMS)


def load_record(outbox, rolled_back_path):
    committed = {
        event_id: (seq, key)
        for event_id, seq, key in outbox.rows(
            "SELECT event_id, seq, entity_key FROM committed_events")}
    outbox_rows = {
        seq: (state, partition, offset)
        for seq, state, partition, offset in outbox.rows(
            "SELECT seq, state, kafka_partition, kafka_offset"
            " FROM sigevents_outbox")}
    rolled_back = set()
    if os.path.exists(rolled_back_path):
        with open(rolled_back_path) as f:
            rolled_back = {line.strip() for line in f if line.strip()}
    return committed, outbox_rows, rolled_back


class Harness:
    """Starts and stops the processes of one test run."""

    def __init__(self, args, workdir, logdir):
        self.args = args
        self.workdir = workdir
        self.logdir = logdir
        self.kafka = None
        self.bootstrap = None
        self.children = []
        self.relay_runs = []

    def start_kafka(self):
        self.kafka = Process(
            "kafka", [self.args.sigevents, "kafka", "--partitions",
                      str(PARTITIONS)],
            os.path.join(self.logdir, "kafka.log"), stdout_pipe=True)
        self.children.append(self.kafka)
        ready, _, _ = select.select([self.kafka.popen.stdout], [], [], 30)
        line = self.kafka.popen.stdout.readline().decode().strip() \
            if ready else ""
        if not line:
            raise TestFailure("sigevents kafka printed no bootstrap.servers "
                              "within 30s:\n" + tail(self.kafka.log_path))
        self.bootstrap = line
        log("embedded Kafka at %s (pid %d)" % (line, self.kafka.pid))

    def start_service(self, db, events, seed, rate, extra=()):
        argv = [self.args.emitting_service, "--db", db, "--events",
                str(events), "--seed", str(seed), "--rate", str(rate),
                "--examples", self.args.examples] + list(extra)
        process = Process("service", argv,
                          os.path.join(self.logdir, "service.log"))
        self.children.append(process)
        return process

    def start_relay(self, db, crash_after=0, label=None,
                    stop_timeout="10s", settle_delay=SETTLE_DELAY):
        """The real `sigevents relay`, or crash_relay when crash_after > 0.
        `stop_timeout` bounds how long SIGTERM waits for messages in
        flight."""
        flags = RELAY_FLAGS + ["--stop-timeout", stop_timeout,
                               "--settle-delay", settle_delay]
        if crash_after > 0:
            argv = [self.args.crash_relay, "--db", db, "--bootstrap-servers",
                    self.bootstrap, "--crash-after-reports",
                    str(crash_after)] + flags
        else:
            argv = [self.args.sigevents, "relay", "--db", db,
                    "--bootstrap-servers", self.bootstrap] + flags
        n = len(self.relay_runs) + 1
        label = label or ("relay run %d (%s)" % (
            n, "crash after %d reports" % crash_after if crash_after
            else "sigevents relay"))
        process = Process(label, argv, os.path.join(self.logdir, "relay.log"))
        process.crash_after = crash_after
        self.children.append(process)
        self.relay_runs.append(process)
        return process

    def stop_all(self):
        for process in reversed(self.children):
            if process.running():
                process.kill()


def wait_for(condition, timeout_s, what, interval=0.05):
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            raise TestFailure("timed out after %ss waiting for %s"
                              % (timeout_s, what))
        time.sleep(interval)


def relay_log_figures(path):
    """(messages found by read-backs, rows reconciled) summed over a log."""
    found = reconciled = 0
    with open(path, errors="replace") as f:
        for line in f:
            match = RECONCILED_LINE.search(line)
            if match:
                found += int(match.group(1))
                reconciled += int(match.group(2))
    return found, reconciled


def drain(harness, outbox, db, timeout_s):
    """Runs a fresh `sigevents relay` until no row is pending, stops it with
    SIGTERM and returns the match of its stop line (clean, delivered,
    failed, reconciled) and its log."""
    relay = harness.start_relay(db, label="final relay (sigevents relay)")

    # Drained by this relay: it holds the lease, has read back if it had to
    # (it is connected), and no row is pending.
    def drained():
        if not relay.running():
            return True
        holder = outbox.scalar(
            "SELECT pid FROM sigevents_relay_lease WHERE id = 1")
        return (holder == relay.pid and "-> connected" in relay.own_log()
                and outbox.pending_count() == 0)

    wait_for(drained, timeout_s, "the outbox to drain")
    if not relay.running():
        raise TestFailure("the final relay exited with %s:\n%s"
                          % (relay.returncode(), tail(relay.log_path)))
    code = relay.terminate(timeout=30)
    text = relay.own_log()
    match = None
    for match in STOPPED_LINE.finditer(text):
        pass
    if code != 0 or match is None:
        raise TestFailure("the final relay exited with %d without its "
                          "stop line:\n%s" % (code, text))
    return match, text


def describe_copies(messages, outbox_id, event_ids, runs):
    """Where each copy of the given events is, and which relay run was alive
    when Kafka stamped it."""
    lines = []
    for m in messages:
        if m["outbox"] != outbox_id or m["id"] not in event_ids:
            continue
        alive = ["%s, ended by %s" % (r.label, r.ended_how) for r in runs
                 if r.started_ms - 50 <= m["timestamp"]
                 <= (r.ended_ms or now_ms()) + 50]
        lines.append("  seq %s id %s key %s at partition %d offset %d, "
                     "timestamp %d, relay alive: %s"
                     % (m["seq"], m["id"], m["key"], m["partition"],
                        m["offset"], m["timestamp"], ", ".join(alive)))
    return "\n".join(lines[:60])


# ---- --mode=crash ----------------------------------------------------------

def terminate_relay(relay):
    """Stops a relay with SIGTERM and says how it ended."""
    code = relay.terminate(timeout=30)
    if code == 9 and relay.crash_after:
        return "crashed at the crash point"  # it fired while stopping
    if code == -signal.SIGTERM:
        return "ended before it handled signals"
    if code != 0:
        raise TestFailure("%s exited with %d after SIGTERM:\n%s"
                          % (relay.label, code, relay.own_log()))
    stop = None
    for stop in STOPPED_LINE.finditer(relay.own_log()):
        pass
    return "stopped " + (stop.group(1) if stop else "without its stop line")


def run_crash(args, harness, rng):
    started = time.time()
    deadline = started + args.budget
    db = os.path.join(harness.workdir, "service.db")
    rolled_back_path = os.path.join(harness.workdir, "rolled_back.txt")
    outbox = Outbox(db)
    rate = args.rate or max(1, int(args.events / args.emit_seconds))
    log("%d events at %d/s; at least %d relay kills and %d service kills"
        % (args.events, rate, args.relay_kills, args.service_kills))

    harness.start_kafka()
    service_seed = rng.randrange(1, 2 ** 31)
    service = harness.start_service(db, args.events, service_seed, rate)
    wait_for(lambda: os.path.exists(db) or not service.running(), 30,
             "the service to create its database")

    def new_relay():
        crash_after = 0
        if rng.random() < args.fault_fraction:
            crash_after = rng.randint(1, 80)
        # A short stop timeout makes some SIGTERM stops unclean (messages
        # purged while in flight).
        return harness.start_relay(
            db, crash_after, stop_timeout=rng.choice(["0s", "20ms", "10s"]))

    relay = new_relay()
    relay_kills = fault_crashes = relay_kills_busy = service_kills = 0
    relay_terms = collections.Counter()

    def relay_lifetime():
        # Some kills land while the relay starts or reads back, the others
        # while it sends.
        if rng.random() < 0.25:
            return rng.uniform(0.02, 0.4)
        return rng.uniform(*args.relay_interval)

    next_relay_kill = time.time() + relay_lifetime()
    thresholds = sorted(int(rng.uniform(0.03, 0.85) * args.events)
                        for _ in range(args.service_kills))
    service_done = False

    while True:
        now = time.time()
        if now > deadline:
            raise TestFailure(
                "budget of %ss spent before the kills were done: %d relay "
                "kills, %d service kills, %d committed"
                % (args.budget, relay_kills, service_kills,
                   outbox.committed_count()))
        if service_done and relay_kills >= args.relay_kills:
            break

        # The relay: ended by its crash point, or killed when due.
        if not relay.running():
            relay.mark_exited()
            if relay.crash_after and relay.returncode() == 9:
                fault_crashes += 1
            else:
                raise TestFailure("%s exited with %s:\n%s" % (
                    relay.label, relay.returncode(), tail(relay.log_path)))
            relay = new_relay()
        elif now >= next_relay_kill and rng.random() < args.term_fraction:
            # Now and then a SIGTERM instead: Stop(), clean or not.
            how = terminate_relay(relay)
            relay_terms[how] += 1
            fault_crashes += how == "crashed at the crash point"
            time.sleep(rng.uniform(0, 0.2))
            relay = new_relay()
            next_relay_kill = time.time() + relay_lifetime()
        elif now >= next_relay_kill:
            busy = outbox.pending_count() > 0
            relay.kill()
            relay_kills += 1
            relay_kills_busy += busy
            time.sleep(rng.uniform(0, 0.2))
            relay = new_relay()
            next_relay_kill = time.time() + relay_lifetime()

        # The service: killed when its count passes the next threshold.
        if not service_done and not service.running():
            code = service.returncode()
            service.mark_exited()
            if code != 0:
                raise TestFailure("the emitting service exited with %d:\n%s"
                                  % (code, tail(service.log_path)))
            if service_kills < args.service_kills:
                # It finished before every kill was made: the thresholds
                # are below --events, so this means a kill was missed.
                raise TestFailure("the service finished after only %d kills"
                                  % service_kills)
            service_done = True
        elif (not service_done and service_kills < len(thresholds)
              and outbox.committed_count() >= thresholds[service_kills]):
            time.sleep(rng.uniform(0, 0.03))
            service.kill()
            service_kills += 1
            time.sleep(rng.uniform(0, 0.2))
            service = harness.start_service(
                db, args.events, rng.randrange(1, 2 ** 31), rate)
        time.sleep(0.02)

    log("kills done after %.1fs: %d relay SIGKILLs (%d with rows pending), "
        "%d relay crashes before recording, %d relay SIGTERMs %s, %d service "
        "SIGKILLs" % (time.time() - started, relay_kills, relay_kills_busy,
                      fault_crashes, sum(relay_terms.values()),
                      dict(relay_terms), service_kills))

    # The end: a last kill of the running relay, then a fresh one drains.
    relay.kill()
    relay_kills += 1
    stop, _ = drain(harness, outbox, db, max(30, deadline - time.time()))
    committed, outbox_rows, rolled_back = load_record(outbox, rolled_back_path)
    failed = outbox.failed_count()
    outbox_id = outbox.outbox_id()
    types = outbox.scalar("SELECT count(DISTINCT type) FROM committed_events")
    messages = read_topic(harness.bootstrap)
    result = check_kafka(messages, outbox_id, committed, rolled_back,
                         outbox_rows)
    found, reconciled = relay_log_figures(
        os.path.join(harness.logdir, "relay.log"))
    elapsed = time.time() - started

    print("crash_test results (seed %d):" % args.seed)
    figures = [
        ("committed", result["committed"]),
        ("delivered", result["delivered"]),
        ("kafka messages", result["kafka_messages"]),
        ("  without this outbox's header", result["foreign_messages"]),
        ("lost", len(result["lost"])),
        ("duplicated", len(result["duplicated"])),
        ("out of order", len(result["out_of_order"])
         + len(result["split_keys"])),
        ("uncommitted published", len(result["uncommitted"])),
        ("  of which rolled back", len(result["rolled_back_published"])),
        ("rolled back (must not appear)", len(rolled_back)),
        ("seq/key header mismatches", len(result["seq_mismatch"])
         + len(result["key_mismatch"])),
        ("outbox rows misrecorded", len(result["misrecorded"])),
        ("failed rows", failed),
        ("event types committed", types),
        ("relay kills (SIGKILL)", relay_kills),
        ("  with rows pending", relay_kills_busy),
        ("relay crashes before record", fault_crashes),
        ("relay SIGTERMs", sum(relay_terms.values())),
        ("relay runs", len(harness.relay_runs)),
        ("service kills (SIGKILL)", service_kills),
        ("rows reconciled by read-backs", reconciled),
        ("final relay: delivered/reconciled",
         "%s/%s" % (stop.group(2), stop.group(4))),
        ("seconds", "%.1f" % elapsed),
    ]
    for name, value in figures:
        print("  %-34s %s" % (name, value))

    problems = []
    for name in PROBLEMS:
        if result[name]:
            problems.append("%s: %d, first: %s"
                            % (name, len(result[name]), result[name][:20]))
    if failed:
        problems.append("failed rows: %d" % failed)
    if result["foreign_messages"]:
        problems.append("%d message(s) in Kafka without this outbox's "
                        "header" % result["foreign_messages"])
    if result["committed"] < args.events:
        problems.append("only %d events committed, expected %d"
                        % (result["committed"], args.events))
    if types != 39:
        problems.append("only %d event types committed, expected 39" % types)
    if fault_crashes > 0 and reconciled == 0:
        problems.append("the relay crashed %d times before recording, yet no "
                        "read-back reconciled a row: the window was not "
                        "exercised" % fault_crashes)
    if relay_kills < args.relay_kills or service_kills < args.service_kills:
        problems.append("not enough kills")
    if problems:
        bad = {i for i in committed
               if committed[i][0] in {s for s, _ in result["duplicated"]}}
        bad |= set(result["uncommitted"])
        lost = set(result["lost"])
        for message in problems:
            log("FAILED: " + message)
        if bad:
            log("copies of the duplicated/uncommitted events:\n"
                + describe_copies(messages, outbox_id, bad,
                                  harness.relay_runs))
        if lost:
            log("lost seqs %s; their rows: %s" % (
                sorted(lost)[:20],
                [(s, outbox_rows.get(s)) for s in sorted(lost)[:20]]))
        log("logs in %s" % harness.logdir)
        return 1
    log("PASSED: %d committed events, each in Kafka exactly once and in "
        "order, across %d relay kills, %d crashes before recording and %d "
        "service kills" % (result["committed"], relay_kills, fault_crashes,
                           service_kills))
    return 0


# ---- --mode=naive ----------------------------------------------------------

def naive_scenario(args, harness, name, interlude=None):
    """One pass: emit, crash the relay before it records the first delivery
    reports, restart, and return the figures. Between the crash and the
    restart, `interlude` may be "bypass" (mark the lease as cleanly released,
    as a relay without the read-back would see it) or "stop-in-read-back"
    (start a relay and stop it with SIGTERM while it waits to read back)."""
    bypass_readback = interlude == "bypass"
    workdir = os.path.join(harness.workdir, name)
    os.makedirs(workdir)
    db = os.path.join(workdir, "service.db")
    outbox = Outbox(db)
    service = harness.start_service(db, args.naive_events, 1, 0,
                                    ["--rollback-fraction", "0"])
    if service.wait(60) != 0:
        raise TestFailure("%s: the service failed:\n%s"
                          % (name, tail(service.log_path)))
    outbox_id = outbox.outbox_id()
    committed, _, _ = load_record(outbox, "/nonexistent")

    crasher = harness.start_relay(db, crash_after=1,
                                  label="%s: relay crashing after the first "
                                        "reports" % name)
    code = crasher.wait(60)
    if code != 9 or "crashing after" not in tail(crasher.log_path, 5):
        raise TestFailure("%s: the relay should have ended itself with "
                          "status 9 at its first delivery reports; it "
                          "exited with %d:\n%s"
                          % (name, code, tail(crasher.log_path)))

    # The window: Kafka has messages whose rows are still pending.
    time.sleep(0.5)  # requests already on the wire reach the broker
    in_kafka = [m for m in read_topic(harness.bootstrap)
                if m["outbox"] == outbox_id]
    pending = {seq for (seq,) in outbox.rows(
        "SELECT seq FROM sigevents_outbox WHERE state = 'pending'")}
    if not in_kafka:
        raise TestFailure("%s: no message reached Kafka before the crash; "
                          "the window was not exercised" % name)
    recorded = [m["seq"] for m in in_kafka if m["seq"] not in pending]
    if recorded:
        raise TestFailure("%s: seqs %s were marked before the crash; the "
                          "crash point is not before the recording"
                          % (name, recorded[:20]))
    log("%s: after the crash, %d message(s) in Kafka whose rows are all "
        "still pending (%d rows pending)" % (name, len(in_kafka),
                                             len(pending)))

    if bypass_readback:
        # What a relay without the read-back would do: treat the previous
        # stop as clean and send every pending row.
        outbox.execute("UPDATE sigevents_relay_lease SET owner = NULL,"
                       " clean_stop = 1 WHERE id = 1")
    problems = []
    if interlude == "stop-in-read-back":
        problem = stop_during_read_back(harness, outbox, db, name)
        if problem:
            problems.append(problem)
    stop, relay_log = drain(harness, outbox, db, 60)
    reconciled = int(stop.group(4))
    read_back = RECONCILED_LINE.search(relay_log)
    if bool(read_back) == bypass_readback or (
            read_back and int(read_back.group(2)) != reconciled):
        problems.append(
            "the restarted relay's log should %s; it says:\n%s"
            % ("show no read-back" if bypass_readback else
               "show a read-back that marked as many rows as its stop line "
               "says it reconciled", relay_log))
    committed, outbox_rows, _ = load_record(outbox, "/nonexistent")
    messages = read_topic(harness.bootstrap)
    result = check_kafka(messages, outbox_id, committed, set(), outbox_rows)
    result["scenario_problems"] = problems
    outbox.close()
    log("%s: committed %d, in Kafka after the crash %d, reconciled %d, "
        "delivered %d, lost %d, duplicated %d, out of order %d"
        % (name, len(committed), len(in_kafka), reconciled,
           result["delivered"], len(result["lost"]),
           len(result["duplicated"]), len(result["out_of_order"])))
    return in_kafka, reconciled, result


def stop_during_read_back(harness, outbox, db, name):
    """Starts a relay with a long settle delay, stops it with SIGTERM while
    it waits to read back, and checks that it did not release the lease as
    cleanly stopped: it still owed the read-back, so the next relay must do
    it. Returns what is wrong, or None."""
    relay = harness.start_relay(db, settle_delay="5s",
                                label="%s: relay stopped in its read-back"
                                      % name)
    wait_for(lambda: "-> reconciling" in relay.own_log()
             or not relay.running(), 20, "the relay to start reconciling")
    code = relay.terminate(timeout=30)
    clean_stop = outbox.scalar(
        "SELECT clean_stop FROM sigevents_relay_lease WHERE id = 1")
    log("%s: relay stopped by SIGTERM while waiting to read back: exit %d, "
        "lease clean_stop=%s" % (name, code, clean_stop))
    if code != 0 or "read back" in relay.own_log():
        raise TestFailure("%s: the relay should have been stopped before its "
                          "read-back:\n%s" % (name, relay.own_log()))
    if clean_stop != 0:
        return ("a relay stopped before its read-back released the lease as "
                "cleanly stopped (clean_stop=1), so the next relay does not "
                "read back and sends the acknowledged but unrecorded "
                "messages again")
    return None


def run_naive(args, harness):
    started = time.time()
    harness.start_kafka()
    failures = []

    # The read-back must find every message of the window (a message still
    # on the wire at the crash may land after they were counted, so it may
    # find more, never fewer) and nothing may be published twice.
    for name, interlude in (("with-readback", None),
                            ("stop-in-read-back", "stop-in-read-back")):
        in_kafka, reconciled, result = naive_scenario(args, harness, name,
                                                      interlude)
        failures += ["%s: %s" % (name, p) for p in result["scenario_problems"]]
        if problem_count(result):
            failures.append("%s: %s" % (name, {
                k: result[k][:20] for k in PROBLEMS if result[k]}))
        if reconciled < len(in_kafka):
            failures.append("%s: the restarted relay reconciled %d row(s), "
                            "expected at least the %d message(s) Kafka had"
                            % (name, reconciled, len(in_kafka)))

    # The control: without the read-back, the same check must see every
    # message of the window twice.
    in_kafka, reconciled, result = naive_scenario(args, harness, "control",
                                                  "bypass")
    failures += ["control: " + p for p in result["scenario_problems"]]
    duplicated = {seq for seq, _ in result["duplicated"]}
    if not duplicated >= {m["seq"] for m in in_kafka} or reconciled != 0:
        failures.append("control: without the read-back the relay should "
                        "have published the %d message(s) of the window "
                        "twice and reconciled nothing; the check saw %d "
                        "duplicate(s) and %d reconciled, so it cannot tell"
                        % (len(in_kafka), len(duplicated), reconciled))
    else:
        log("control: without the read-back the check sees all %d "
            "duplicate(s), as it must" % len(duplicated))

    log("seconds: %.1f" % (time.time() - started))
    for message in failures:
        log("FAILED: " + message)
    if failures:
        log("logs in %s" % harness.logdir)
        return 1
    log("PASSED: a relay that died between delivery reports and their "
        "recording is followed by one that reconciles instead of resending, "
        "even when a relay was stopped before its read-back")
    return 0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["crash", "naive"], required=True)
    parser.add_argument("--sigevents", required=True)
    parser.add_argument("--emitting-service", required=True)
    parser.add_argument("--crash-relay", required=True)
    parser.add_argument("--examples", required=True)
    parser.add_argument("--seed", type=int,
                        default=int(os.environ.get("CRASH_SEED", "0")) or None)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--relay-kills", type=int, default=50)
    parser.add_argument("--service-kills", type=int, default=10)
    parser.add_argument("--fault-fraction", type=float, default=0.3,
                        help="share of relay restarts with the crash point")
    parser.add_argument("--term-fraction", type=float, default=0.15,
                        help="share of relay stops by SIGTERM, not SIGKILL")
    parser.add_argument("--relay-interval", type=float, nargs=2,
                        default=[0.4, 1.6], metavar=("MIN", "MAX"),
                        help="seconds between most relay kills")
    parser.add_argument("--emit-seconds", type=float, default=60,
                        help="pace the service to emit --events in this time")
    parser.add_argument("--rate", type=int, default=0,
                        help="events per second (overrides --emit-seconds)")
    parser.add_argument("--budget", type=float, default=180,
                        help="seconds the whole crash run may take")
    parser.add_argument("--naive-events", type=int, default=300)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2 ** 31)
    for name in ("sigevents", "emitting_service", "crash_relay", "examples"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    return args


def main():
    args = parse_args()
    log("seed %d (replay with --seed=%d or CRASH_SEED=%d)"
        % (args.seed, args.seed, args.seed))
    rng = random.Random(args.seed)
    base = args.workdir or os.environ.get("TEST_TMPDIR") or "/tmp"
    workdir = os.path.join(base, "crash-%s-%d-%d"
                           % (args.mode, args.seed, os.getpid()))
    os.makedirs(workdir)
    logdir = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or workdir
    logdir = os.path.join(logdir, "crash-%s" % args.mode)
    os.makedirs(logdir, exist_ok=True)
    log("work in %s, logs in %s" % (workdir, logdir))
    harness = Harness(args, workdir, logdir)
    try:
        if args.mode == "crash":
            return run_crash(args, harness, rng)
        return run_naive(args, harness)
    except (TestFailure, topic_reader.TopicReadError) as e:
        log("FAILED: %s" % e)
        log("logs in %s" % logdir)
        return 1
    finally:
        harness.stop_all()


if __name__ == "__main__":
    sys.exit(main())
