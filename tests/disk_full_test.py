#!/usr/bin/python3
"""Proves that a really full file system loses and duplicates no event, in
`sigevents emit` and in `sigevents relay`.

Run by tests/disk_full_test.sh inside a private mount namespace (see
tests/BUILD). Each part mounts its own tmpfs of a few MiB for the outbox
database, its WAL and its shared-memory file, and fills it with a filler
file, so that SQLite's write() calls fail with ENOSPC on the WAL or on the
database file. Nothing is simulated: no PRAGMA max_page_count, no
RLIMIT_FSIZE.

Part 1, `sigevents emit --db DB --batch N` (NDJSON from a file on stdin):
  1a  an already full tmpfs and no database yet: emit must fail, naming the
      file and the cause, and leave no outbox.
  1b  --batch 50 until the tmpfs fills: the failures come at COMMIT.
  1c  a little space freed, one batch larger than SQLite's page cache: the
      failure comes inside the batch, when SQLite spills pages to the WAL.
  1d  the tmpfs grown (mount -o remount,size=...): emitting works again.
  For each run: a non-zero exit status exactly when something failed, every
  input line either committed (its id printed) or reported with "database
  or disk is full", every failed batch rolled back whole (no half-written
  batch), the outbox rows exactly the committed lines in input order with
  the printed ids, and PRAGMA integrity_check "ok".

Part 2, `sigevents relay` and `sigevents kafka`, with a connection held
open on the database as a service holds it:
  2a  a backlog pending, the tmpfs full to the brim (WAL truncated, so any
      write needs new space), then the relay started: it must keep running,
      log the storage failure and leave the rows pending; once the filler is
      deleted every event is delivered.
  2b  the relay holds the lease (long, so no heartbeat falls due); while it
      is paused with SIGSTOP a backlog is emitted and the tmpfs filled.
      Resumed, it publishes and Kafka acknowledges, but it cannot mark the
      rows: they must stay pending while Kafka has them (checked), and after
      the space is freed they must be marked from the delivery reports, not
      sent again. SIGTERM must stop it cleanly: exit 0, "stopped cleanly".
  2c  a relay with a 2 s lease (a heartbeat UPDATE every 500 ms) holds the
      lease while the tmpfs is full, so its heartbeats fail; after the space
      is freed it must deliver events emitted then, and stop cleanly. If it
      does not, a fresh relay drains the outbox so the Kafka check still
      runs, and the test fails.
  At the end an independent consumer (kafka-python, not librdkafka) reads
  the topic from the beginning: every committed event exactly once (by
  CloudEvent id), per key in outbox seq order on one partition, every row
  delivered at the partition and offset where Kafka has it.

Figures for each part (attempted, committed, lost, duplicated, the errors
seen) are printed either way. Exit status 0 when every check passes, 1
otherwise.
"""

import argparse
import collections
import copy
import errno
import json
import os
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
KEYS = 8  # entity ids k0..k7, so events spread over partitions
FULL = "database or disk is full"
KIB = 1024
# Relay flags shared by every run: quick reconnects, quick read-backs.
RELAY_FLAGS = ["--settle-delay", "100ms",
               "-X", "reconnect.backoff.max.ms=1000"]
STOPPED_LINE = re.compile(
    r"relay: stopped (cleanly|uncleanly); delivered (\d+), failed (\d+), "
    r"reconciled (\d+)")
# What `sigevents emit` prints on standard error for a line it did not
# commit: "line N: CAUSE" or "line N: rolled back with line F: CAUSE".
REJECTED_LINE = re.compile(r"^line (\d+): (?:rolled back with line (\d+): )?"
                           r"(.*)$")
EMIT_ERROR = re.compile(r'^emit "([^"]+)" \(id ([0-9a-f-]+), key "([^"]*)"\)'
                        r": (.*)$")


class TestFailure(Exception):
    """The harness could not run a step; the message says why."""


def log(message):
    print("disk_full_test: " + message, flush=True)


def wait_for(condition, timeout_s, interval=0.05):
    """True once condition() holds, False after timeout_s."""
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(interval)
    return True


# ---- The file system -------------------------------------------------------

class Tmpfs:
    """A tmpfs mounted in this process's private mount namespace."""

    def __init__(self, path, size):
        self.path = path
        os.makedirs(path)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size,
             "tmpfs", path], capture_output=True, text=True)
        if result.returncode != 0:
            raise TestFailure("mount -t tmpfs -o size=%s failed (exit %d): "
                              "%s; the test needs root (CAP_SYS_ADMIN)"
                              % (size, result.returncode,
                                 result.stderr.strip()))
        self.mounted = True

    def file(self, name):
        return os.path.join(self.path, name)

    def free_bytes(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def reserve(self, name, size):
        """A file of exactly `size` bytes, deleted later to free space."""
        with open(self.file(name), "wb") as f:
            f.write(b"\0" * size)

    def fill(self, name="filler"):
        """Appends to a filler file until the file system refuses even one
        more byte with ENOSPC. Returns the bytes written."""
        fd = os.open(self.file(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o600)
        chunk = 64 * KIB
        written = 0
        try:
            while True:
                try:
                    written += os.write(fd, b"\0" * chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    if chunk == 1:
                        break
                    chunk = max(1, chunk // 16)
        finally:
            os.close(fd)
        return written

    def remove(self, name):
        os.unlink(self.file(name))

    def remount(self, size):
        result = subprocess.run(
            ["mount", "-o", "remount,size=%s" % size, self.path],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise TestFailure("mount -o remount,size=%s failed: %s"
                              % (size, result.stderr.strip()))

    def umount(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
            self.mounted = False


def size_of(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def describe_files(fs):
    return ", ".join("%s %s" % (name, size_of(fs.file(name)))
                     for name in sorted(os.listdir(fs.path)))


# ---- Events ----------------------------------------------------------------

class Event:
    """One NDJSON input line. `n` is unique over the whole test and is
    written into a data field of the event (its marker), so every outbox row
    can be traced back to its line."""

    def __init__(self, n, event_type, key, line):
        self.n = n
        self.type = event_type
        self.key = key
        self.line = line


class Catalog:
    """The spec's example of each type, its key field and a string field
    that carries the marker."""

    def __init__(self, sigevents, examples_path):
        types = json.loads(subprocess.run(
            [sigevents, "types", "--json"], capture_output=True, text=True,
            check=True).stdout)
        key_field = {t["type"]: t["key"] for t in types}
        strings = {t["type"]: [f["name"] for f in t["fields"]
                               if f["shape"] == "string"] for t in types}
        self.templates = []
        self.marker_field = {}
        with open(examples_path) as f:
            for text in f:
                if not text.strip():
                    continue
                example = json.loads(text)
                event_type = example["type"]
                key = key_field[event_type]
                marker = [name for name in strings[event_type]
                          if name != key and name in example["data"]][0]
                self.marker_field[event_type] = marker
                self.templates.append((event_type, example["data"], key,
                                       marker))
        if len(self.templates) != len(types):
            raise TestFailure("%d examples for %d catalog types"
                              % (len(self.templates), len(types)))

    def events(self, first, count):
        """Events first..first+count-1; any len(templates) consecutive ones
        hold every type once."""
        events = []
        for n in range(first, first + count):
            event_type, data, key_field, marker = self.templates[
                n % len(self.templates)]
            data = copy.deepcopy(data)
            data[key_field] = "k%d" % (n % KEYS)
            data[marker] = "ev-%d" % n
            events.append(Event(n, event_type, data[key_field], json.dumps(
                {"type": event_type, "data": data}, separators=(",", ":"))))
        return events

    def marker_of(self, event_type, payload):
        value = json.loads(payload)["data"][self.marker_field[event_type]]
        return int(value[len("ev-"):])


# ---- The outbox ------------------------------------------------------------

class Row:
    def __init__(self, seq, event_id, event_type, key, marker, state,
                 partition, offset):
        self.seq = seq
        self.event_id = event_id
        self.type = event_type
        self.key = key
        self.marker = marker
        self.state = state
        self.partition = partition
        self.offset = offset


ROWS_SQL = ("SELECT seq, event_id, type, partition_key, payload, state,"
            " kafka_partition, kafka_offset FROM sigevents_outbox"
            " ORDER BY seq")


def rows_from(conn, catalog):
    return [Row(seq, event_id, event_type, key,
                catalog.marker_of(event_type, payload), state, partition,
                offset)
            for seq, event_id, event_type, key, payload, state, partition,
            offset in conn.execute(ROWS_SQL).fetchall()]


def read_outbox(db, catalog):
    """(rows, integrity_check result) through a read-only connection, which
    neither checkpoints nor deletes the WAL when it closes, so the check
    does not change what is on the full disk. No outbox: ([], result)."""
    conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        integrity = "; ".join(
            r[0] for r in conn.execute("PRAGMA integrity_check").fetchall())
        has_outbox = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name ="
            " 'sigevents_outbox'").fetchone()[0]
        rows = rows_from(conn, catalog) if has_outbox else []
        return rows, integrity
    finally:
        conn.close()


def status_json(sigevents, db):
    result = subprocess.run([sigevents, "status", "--db", db, "--json"],
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        return None, result.stderr.strip()
    return json.loads(result.stdout), None


# ---- sigevents emit --------------------------------------------------------

class EmitRun:
    """One `sigevents emit` run and what it said."""

    def __init__(self, label, events, batch, code, ids, errors, seconds):
        self.label = label
        self.events = events
        self.batch = batch
        self.code = code
        self.ids = ids
        self.errors = errors  # standard error, line by line
        self.seconds = seconds


def run_emit(args, label, db, events, batch, workdir, logdir):
    """Feeds `events` from a file (always ready, so batches are exactly
    --batch lines) to `sigevents emit`."""
    input_path = os.path.join(workdir, label + ".ndjson")
    with open(input_path, "w") as f:
        for event in events:
            f.write(event.line + "\n")
    started = time.time()
    with open(input_path) as stdin:
        result = subprocess.run(
            [args.sigevents, "emit", "--db", db, "--batch", str(batch)],
            stdin=stdin, capture_output=True, text=True, timeout=120)
    seconds = time.time() - started
    for suffix, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        with open(os.path.join(logdir, "emit-%s.%s" % (label, suffix)),
                  "w") as f:
            f.write(text)
    return EmitRun(label, events, batch, result.returncode,
                   result.stdout.split(), result.stderr.splitlines(), seconds)


class EmitFigures:
    def __init__(self, label):
        self.label = label
        self.attempted = 0
        self.committed = 0       # ids printed
        self.in_outbox = 0       # rows the run added
        self.refused = 0         # lines reported on standard error
        self.lost = 0            # printed ids missing from the outbox
        self.phantom = 0         # refused lines found in the outbox
        self.half_written = 0    # batches neither wholly in nor wholly out
        self.commit_failures = 0  # batches refused at COMMIT
        self.emit_failures = 0    # batches refused inside, at a line
        self.messages = collections.OrderedDict()  # form -> first example
        self.code = None
        self.seconds = 0.0


def message_form(text):
    """A message with its numbers and ids blanked, to group the forms."""
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "ID", text)
    return re.sub(r"\d+", "N", text)


def check_emit_run(run, added_rows, problems):
    """Checks one emit run against the rows it added to the outbox (in seq
    order). Returns its figures; appends what is wrong to `problems`."""
    fig = EmitFigures(run.label)
    fig.code = run.code
    fig.seconds = run.seconds
    fig.attempted = len(run.events)
    fig.committed = len(run.ids)
    fig.in_outbox = len(added_rows)
    where = "%s:" % run.label

    def problem(text):
        problems.append("%s %s" % (where, text))

    # Every line not committed is reported once, with the cause.
    refused = {}  # line number (1-based) -> (rolled back with, cause)
    for text in run.errors:
        fig.messages.setdefault(message_form(text), text)
        match = REJECTED_LINE.match(text)
        if not match:
            problem("unexpected message on standard error: %r" % text)
            continue
        line = int(match.group(1))
        if line in refused:
            problem("line %d reported twice" % line)
        refused[line] = (int(match.group(2)) if match.group(2) else None,
                         match.group(3))
        if FULL not in match.group(3):
            problem("line %d's message does not name the cause (%r): %r"
                    % (line, FULL, text))
    fig.refused = len(refused)
    if any(not 1 <= line <= len(run.events) for line in refused):
        problem("reports for lines beyond the input: %s"
                % sorted(line for line in refused
                         if not 1 <= line <= len(run.events))[:10])

    # A line whose own Emit() failed names the event: its type and key as
    # given, and an id that was never committed.
    failed_at = set()
    for line, (with_line, cause) in refused.items():
        if with_line is not None:
            failed_at.add(with_line)
        match = EMIT_ERROR.match(cause)
        if with_line is None and match:
            failed_at.add(line)
            event = run.events[line - 1]
            if (match.group(1), match.group(3)) != (event.type, event.key):
                problem("line %d's message names %s/%s, the line is %s/%s"
                        % (line, match.group(1), match.group(3), event.type,
                           event.key))
            if match.group(2) in {row.event_id for row in added_rows}:
                problem("line %d failed, yet its id %s is in the outbox"
                        % (line, match.group(2)))
    for line in failed_at:
        if line not in refused or refused[line][0] is not None:
            problem("lines were rolled back with line %d, which is not "
                    "reported as failed itself" % line)

    # Batches, as emit forms them from input that is always ready: --batch
    # lines, or fewer when a line fails inside (then the next batch starts
    # after it). Each must be wholly committed or wholly refused.
    start = 1
    last = len(run.events)
    while start <= last:
        end = min(start + run.batch - 1, last)
        inside = sorted(f for f in failed_at if start <= f <= end)
        if inside:
            end = inside[0]
            fig.emit_failures += 1
            wrong = [line for line in range(start, end)
                     if refused.get(line, (None,))[0] != end]
            if wrong:
                problem("batch %d-%d failed at line %d, but lines %s are not "
                        "reported as rolled back with it"
                        % (start, end, end, wrong[:10]))
                fig.half_written += 1
        else:
            out = [line for line in range(start, end + 1) if line in refused]
            if out and len(out) != end - start + 1:
                problem("batch %d-%d is half written: lines %s refused, the "
                        "others committed" % (start, end, out[:10]))
                fig.half_written += 1
            elif out:
                fig.commit_failures += 1
                causes = {refused[line] for line in out}
                if any(with_line is not None for with_line, _ in causes):
                    problem("batch %d-%d was refused as a whole but names a "
                            "failing line: %s" % (start, end, causes))
        start = end + 1

    # The outbox holds exactly the committed lines, in order, with the
    # printed ids; a refused line is nowhere.
    committed = [run.events[i].n for i in range(len(run.events))
                 if i + 1 not in refused]
    markers = [row.marker for row in added_rows]
    refused_markers = {run.events[line - 1].n for line in refused
                       if 1 <= line <= len(run.events)}
    fig.phantom = sum(1 for m in markers if m in refused_markers)
    fig.lost = len(set(run.ids) - {row.event_id for row in added_rows})
    if markers != committed:
        missing = sorted(set(committed) - set(markers))
        extra = sorted(set(markers) - set(committed))
        problem("the outbox does not hold exactly the committed lines in "
                "order: %d rows for %d committed lines; missing events %s, "
                "events that should not be there %s"
                % (len(markers), len(committed), missing[:10], extra[:10]))
    if [row.event_id for row in added_rows] != run.ids:
        problem("the ids printed (%d) are not the ids of the rows added (%d)"
                % (len(run.ids), len(added_rows)))
    if (run.code == 0) != (not refused):
        problem("exit status %d with %d line(s) refused"
                % (run.code, len(refused)))
    return fig


# ---- Processes -------------------------------------------------------------

class Child:
    """A child process logging to its own file."""

    def __init__(self, label, argv, log_path, stdout_pipe=False):
        self.label = label
        self.log_path = log_path
        self._log = open(log_path, "w")
        self._log.write("===== %s: %s\n" % (label, " ".join(argv)))
        self._log.flush()
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=self._log)
        self.code = None

    @property
    def pid(self):
        return self.popen.pid

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def running(self):
        return self.popen.poll() is None

    def signal(self, number):
        if self.running():
            self.popen.send_signal(number)

    def terminate(self, timeout):
        """SIGTERM; the exit status, or None after a SIGKILL on timeout."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        return self.code

    def kill(self):
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        self.code = self.popen.wait()

    def close(self):
        if self.running():
            self.kill()
        self._log.close()


def tail(text, lines=25):
    return "".join(text.splitlines(True)[-lines:])


def relay_errors(text):
    """The relay's warning and error lines, timestamps removed."""
    return [line.split(" ", 1)[1] for line in text.splitlines()
            if re.match(r"\S+ (warning|error) ", line)]


def read_topic(bootstrap):
    """Every message of TOPIC, read by kafka-python (topic_reader.py)."""
    return topic_reader.read_topic(bootstrap, TOPIC, PARTITIONS, 30)


class Part2:
    """The relay on a full disk: one database on one tmpfs, one embedded
    Kafka, a service connection held open."""

    def __init__(self, args, catalog, workdir, logdir, problems):
        self.args = args
        self.catalog = catalog
        self.workdir = workdir
        self.logdir = logdir
        self.problems = problems
        self.children = []
        self.relays = []
        self.fs = None
        self.svc = None
        self.kafka = None
        self.bootstrap = None
        self.next_event = 100001
        self.figures = collections.OrderedDict()
        self.errors_seen = collections.Counter()
        self.emitted = {}  # backlog label -> events

    # -- helpers

    def problem(self, text):
        self.problems.append("part 2: " + text)
        log("PROBLEM: part 2: " + text)

    def scalar(self, sql):
        return self.svc.execute(sql).fetchone()[0]

    def pending(self):
        return self.scalar("SELECT count(*) FROM sigevents_outbox"
                           " WHERE state = 'pending'")

    def lease(self):
        return self.svc.execute(
            "SELECT owner, pid, clean_stop FROM sigevents_relay_lease"
            " WHERE id = 1").fetchone()

    def wal_bytes(self):
        return size_of(self.db + "-wal") or 0

    def truncate_wal(self, relay=None):
        """Checkpoints everything into the database file and truncates the
        WAL to 0 bytes, so that the next write needs new space. A paused
        relay may hold a lock: it is let run a moment and paused again."""
        for _ in range(50):
            busy, _, _ = self.svc.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy == 0 and self.wal_bytes() == 0:
                return
            if relay is not None:
                relay.signal(signal.SIGCONT)
                time.sleep(0.02)
                relay.signal(signal.SIGSTOP)
            time.sleep(0.05)
        raise TestFailure("could not truncate the WAL (still %d bytes)"
                          % self.wal_bytes())

    def fill(self):
        written = self.fs.fill()
        if self.fs.free_bytes() != 0:
            raise TestFailure("the tmpfs still has %d bytes free after the "
                              "filler" % self.fs.free_bytes())
        return written

    def emit(self, label, count):
        events = self.catalog.events(self.next_event, count)
        self.next_event += count
        run = run_emit(self.args, "part2-" + label, self.db, events, 20,
                       self.workdir, self.logdir)
        if run.code != 0 or len(run.ids) != count:
            raise TestFailure("emitting %s with free space failed (exit %d, "
                              "%d ids):\n%s" % (label, run.code, len(run.ids),
                                                "\n".join(run.errors[:10])))
        self.emitted[label] = events
        return run.ids

    def start_kafka(self):
        self.kafka = Child(
            "kafka", [self.args.sigevents, "kafka", "--partitions",
                      str(PARTITIONS)],
            os.path.join(self.logdir, "kafka.log"), stdout_pipe=True)
        self.children.append(self.kafka)
        ready, _, _ = select.select([self.kafka.popen.stdout], [], [], 30)
        line = (self.kafka.popen.stdout.readline().decode().strip()
                if ready else "")
        if not line:
            raise TestFailure("sigevents kafka printed no bootstrap.servers "
                              "within 30s:\n" + tail(self.kafka.text()))
        self.bootstrap = line
        log("embedded Kafka at %s" % line)

    def start_relay(self, label, lease):
        relay = Child(label, [self.args.sigevents, "relay", "--db", self.db,
                              "--bootstrap-servers", self.bootstrap,
                              "--lease", lease] + RELAY_FLAGS,
                      os.path.join(self.logdir, "relay-%s.log"
                                   % label.split()[-1]))
        self.children.append(relay)
        self.relays.append(relay)
        return relay

    def ours_in_kafka(self):
        outbox_id = self.scalar(
            "SELECT value FROM sigevents_meta WHERE key = 'outbox_id'")
        return [m for m in read_topic(self.bootstrap)
                if m["outbox"] == outbox_id]

    def wait_drained(self, relay, timeout_s):
        return wait_for(lambda: self.pending() == 0 or not relay.running(),
                        timeout_s) and relay.running()

    def stop_relay(self, relay, expect_clean=True):
        """SIGTERM; checks exit 0 and the stop line. Returns the match."""
        code = relay.terminate(timeout=30)
        text = relay.text()
        stop = None
        for stop in STOPPED_LINE.finditer(text):
            pass
        if code is None:
            self.problem("%s did not exit within 30s of SIGTERM" % relay.label)
        elif code != 0 or stop is None:
            self.problem("%s exited with %s after SIGTERM, stop line %s:\n%s"
                         % (relay.label, code, stop and stop.group(0),
                            tail(text)))
        elif expect_clean and stop.group(1) != "cleanly":
            self.problem("%s stopped uncleanly after SIGTERM with the disk "
                         "free again (%s):\n%s"
                         % (relay.label, stop.group(0), tail(text)))
        return stop

    # -- the scenario

    def run(self):
        started = time.time()
        self.fs = Tmpfs(os.path.join(self.workdir, "part2"), "4m")
        self.db = self.fs.file("outbox.db")
        self.start_kafka()

        self.emit("backlog1", 300)
        self.svc = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        self.step_2a()
        relay = self.relays[-1]
        if relay.running() and self.pending() == 0:
            self.step_2b(relay)
        else:
            self.problem("2b not run: relay A is not running or not drained")
        if relay.running():
            stop = self.stop_relay(relay)
            expected = len(self.emitted.get("backlog1", [])) + len(
                self.emitted.get("backlog2", []))
            if stop and (int(stop.group(2)), int(stop.group(4))) != (
                    expected, 0):
                self.problem("relay A's stop line says %s; expected "
                             "delivered %d, reconciled 0"
                             % (stop.group(0), expected))
            self.figures["2b relay A stop line"] = (stop.group(0) if stop
                                                    else None)
        self.step_2c()
        self.final_check()
        self.figures["seconds"] = "%.1f" % (time.time() - started)

    def step_2a(self):
        """A full disk before the relay starts."""
        backlog = len(self.emitted["backlog1"])
        self.truncate_wal()
        filled = self.fill()
        log("2a: %d events pending; tmpfs filled (filler %d bytes; %s)"
            % (backlog, filled, describe_files(self.fs)))
        relay = self.start_relay("relay A", "120s")
        if not wait_for(lambda: FULL in relay.text() or not relay.running(),
                        15):
            self.problem("2a: relay A logged no %r within 15s on a full "
                         "disk:\n%s" % (FULL, tail(relay.text())))
        time.sleep(2)  # it goes on failing, and must go on running
        running = relay.running()
        pending = self.pending()
        lease = self.lease()
        in_kafka = len(self.ours_in_kafka())
        self.figures["2a relay running on the full disk"] = running
        self.figures["2a pending while full"] = "%d of %d" % (pending,
                                                              backlog)
        self.figures["2a lease while full (owner, pid, clean_stop)"] = lease
        self.figures["2a in Kafka while full"] = in_kafka
        if not running:
            self.problem("2a: relay A exited with %s on a full disk:\n%s"
                         % (relay.popen.returncode, tail(relay.text())))
            return
        if pending != backlog:
            self.problem("2a: %d of %d rows changed state although nothing "
                         "can be written" % (backlog - pending, backlog))

        self.fs.remove("filler")
        freed = time.time()
        if not self.wait_drained(relay, 30):
            self.problem("2a: %d events still pending 30s after the space "
                         "was freed (relay running: %s):\n%s"
                         % (self.pending(), relay.running(),
                            tail(relay.text())))
            return
        self.figures["2a seconds from free to drained"] = "%.1f" % (
            time.time() - freed)
        log("2a: relay A delivered the backlog %.1fs after the space was "
            "freed" % (time.time() - freed))

    def step_2b(self, relay):
        """Kafka acknowledges what the relay cannot record."""
        wait_for(lambda: "-> connected" in relay.text(), 10)
        relay.signal(signal.SIGSTOP)
        self.truncate_wal(relay)
        ids = set(self.emit("backlog2", 300))
        wal = self.wal_bytes()
        filled = self.fill()
        log("2b: relay A paused, 300 events emitted (WAL %d bytes), tmpfs "
            "filled (filler %d bytes); resuming the relay" % (wal, filled))
        mark = len(relay.text())
        relay.signal(signal.SIGCONT)

        seen = []

        def all_in_kafka():
            seen[:] = [m for m in self.ours_in_kafka() if m["id"] in ids]
            return len({m["id"] for m in seen}) == len(ids)

        acked = wait_for(all_in_kafka, 20, interval=0.5)
        pending = self.pending()
        new_log = relay.text()[mark:]
        self.figures["2b in Kafka while full"] = "%d of %d" % (
            len({m["id"] for m in seen}), len(ids))
        self.figures["2b pending while full"] = "%d of %d" % (pending,
                                                              len(ids))
        if not acked:
            self.problem("2b: only %d of %d events reached Kafka within 20s "
                         "of resuming the relay" % (len(seen), len(ids)))
        elif pending != len(ids):
            self.problem("2b: not exercised: %d of %d rows were marked "
                         "although the disk was full" % (len(ids) - pending,
                                                         len(ids)))
        if FULL not in new_log:
            self.problem("2b: relay A logged no %r after it resumed on a "
                         "full disk:\n%s" % (FULL, tail(new_log)))
        time.sleep(1)
        if not relay.running():
            self.problem("2b: relay A exited with %s when it could not mark "
                         "delivered events:\n%s"
                         % (relay.popen.returncode, tail(relay.text())))
            return
        if self.pending() != len(ids):
            self.problem("2b: rows changed state on a full disk")

        self.fs.remove("filler")
        freed = time.time()
        if not self.wait_drained(relay, 30):
            self.problem("2b: %d events still pending 30s after the space "
                         "was freed (relay running: %s):\n%s"
                         % (self.pending(), relay.running(),
                            tail(relay.text()[mark:])))
            return
        self.figures["2b seconds from free to drained"] = "%.1f" % (
            time.time() - freed)
        log("2b: Kafka had all 300 while their rows were pending; relay A "
            "marked them %.1fs after the space was freed"
            % (time.time() - freed))

    def step_2c(self):
        """Heartbeats fail while the relay holds the lease."""
        relay = self.start_relay("relay B", "2s")
        if not wait_for(lambda: not relay.running() or (
                self.lease()[1] == relay.pid
                and "-> connected" in relay.text()), 20):
            self.problem("2c: relay B did not take the lease and connect "
                         "within 20s:\n%s" % tail(relay.text()))
        for attempt in range(20):
            self.truncate_wal()
            filled = self.fill()
            # The relay wrote nothing in between: its next write needs
            # new space.
            if self.wal_bytes() == 0:
                break
            self.fs.remove("filler")
        else:
            raise TestFailure("2c: relay B kept writing between truncating "
                              "the WAL and filling the disk")
        log("2c: tmpfs filled (filler %d bytes) under relay B, which holds "
            "the lease; heartbeats due every 500 ms" % filled)
        mark = len(relay.text())
        time.sleep(3)
        new_log = relay.text()[mark:]
        self.figures["2c relay running on the full disk"] = relay.running()
        if not relay.running():
            self.problem("2c: relay B exited with %s when its heartbeat "
                         "failed:\n%s" % (relay.popen.returncode,
                                          tail(relay.text())))
        if FULL not in new_log:
            self.problem("2c: not exercised: relay B logged no %r in 3s on "
                         "a full disk:\n%s" % (FULL, tail(new_log)))

        self.fs.remove("filler")
        freed = time.time()
        ids = self.emit("backlog3", 100)
        drained = self.wait_drained(relay, 20)
        self.figures["2c delivered by relay B after the free"] = "%d of %d" % (
            len(ids) - self.pending(), len(ids))
        if not drained:
            self.problem(
                "2c: relay B delivered %d of the %d events emitted after the "
                "space was freed within 20s; it is wedged. Its log since the "
                "disk filled:\n%s" % (len(ids) - self.pending(), len(ids),
                                      tail(relay.text()[mark:], 12)))
        else:
            self.figures["2c seconds from free to drained"] = "%.1f" % (
                time.time() - freed)
        stop = self.stop_relay(relay)
        self.figures["2c relay B stop line"] = stop and stop.group(0)
        lease = self.lease()
        self.figures["2c lease after relay B stopped (owner, pid, "
                     "clean_stop)"] = lease

        if self.pending() > 0:
            # So that the Kafka check still runs: a fresh relay recovers.
            recovery = self.start_relay("relay C", "2s")
            ok = self.wait_drained(recovery, 30)
            stop = self.stop_relay(recovery)
            self.figures["2c recovery relay C stop line"] = (
                stop and stop.group(0))
            if not ok:
                self.problem("2c: even a fresh relay left %d events pending"
                             % self.pending())
            log("2c: a fresh relay drained what relay B left: %s"
                % (stop and stop.group(0)))

    def final_check(self):
        rows = rows_from(self.svc, self.catalog)
        integrity = self.scalar("PRAGMA integrity_check")
        messages = self.ours_in_kafka()
        outbox_id = self.scalar(
            "SELECT value FROM sigevents_meta WHERE key = 'outbox_id'")
        all_messages = read_topic(self.bootstrap)
        foreign = len(all_messages) - len(messages)
        committed = {row.event_id: row for row in rows}
        copies = collections.defaultdict(list)
        for m in messages:
            copies[m["id"]].append(m)
        attempted = sum(len(e) for e in self.emitted.values())
        lost = sorted(row.seq for row in rows if row.event_id not in copies)
        duplicated = sorted((committed[i].seq if i in committed else -1,
                             len(c)) for i, c in copies.items() if len(c) > 1)
        uncommitted = sorted(i for i in copies if i not in committed)
        not_delivered = [(row.seq, row.state) for row in rows
                         if row.state != "delivered"]
        misrecorded = []
        where = {(m["partition"], m["offset"]): m for m in messages}
        for row in rows:
            found = where.get((row.partition, row.offset))
            if row.state == "delivered" and (
                    found is None or found["id"] != row.event_id):
                misrecorded.append(row.seq)
        mismatched = [m["id"] for m in messages if m["id"] in committed and (
            m["seq"] != committed[m["id"]].seq
            or m["key"] != committed[m["id"]].key)]
        out_of_order = []
        split_keys = []
        by_key = collections.defaultdict(list)
        first_copies = set()
        for m in messages:
            if m["id"] not in first_copies:
                first_copies.add(m["id"])
                by_key[m["key"]].append(m)
        for key, ms in sorted(by_key.items()):
            if len({m["partition"] for m in ms}) > 1:
                split_keys.append(key)
            seqs = [m["seq"] for m in ms]
            if seqs != sorted(seqs):
                out_of_order.append(key)
        markers = collections.Counter(row.marker for row in rows)
        expected_markers = {e.n for events in self.emitted.values()
                            for e in events}
        self.figures.update([
            ("attempted (emitted with free space)", attempted),
            ("committed (outbox rows)", len(rows)),
            ("delivered rows", len(rows) - len(not_delivered)),
            ("Kafka messages of this outbox", len(messages)),
            ("  other messages in the topic", foreign),
            ("lost", len(lost)),
            ("duplicated", len(duplicated)),
            ("uncommitted published", len(uncommitted)),
            ("out of order keys", len(out_of_order) + len(split_keys)),
            ("rows misrecorded", len(misrecorded)),
            ("integrity_check", integrity),
        ])
        checks = [
            ("lost (outbox seqs not in Kafka)", lost),
            ("duplicated (seq, copies)", duplicated),
            ("published but not committed", uncommitted),
            ("rows not delivered (seq, state)", not_delivered),
            ("rows whose partition/offset is not their message", misrecorded),
            ("messages whose seq/key header is not their row's", mismatched),
            ("keys out of seq order", out_of_order),
            ("keys split over partitions", split_keys),
        ]
        for name, items in checks:
            if items:
                self.problem("%s: %d, first %s" % (name, len(items),
                                                   items[:10]))
        if foreign:
            self.problem("%d message(s) in the topic without this outbox's "
                         "header %s" % (foreign, outbox_id))
        if set(markers) != expected_markers or max(markers.values()) > 1:
            self.problem("the outbox rows are not the events emitted, once "
                         "each")
        if integrity != "ok":
            self.problem("integrity_check: %s" % integrity)

    def close(self):
        if self.svc is not None:
            self.svc.close()
        for child in reversed(self.children):
            child.close()
        if self.fs is not None:
            self.fs.umount()


# ---- Part 1 ----------------------------------------------------------------

def run_part1(args, catalog, workdir, logdir, problems):
    started = time.time()
    figures = []
    fs = Tmpfs(os.path.join(workdir, "part1"), "4m")
    try:
        fs.reserve("reserve", 512 * KIB)

        # 1a: no database yet, and no space for one.
        fresh = fs.file("fresh.db")
        fs.fill()
        run = run_emit(args, "1a-fresh-on-full", fresh, catalog.events(1, 3),
                       50, workdir, logdir)
        text = "\n".join(run.errors)
        fig = EmitFigures(run.label)
        fig.code, fig.attempted, fig.committed = run.code, 3, len(run.ids)
        fig.refused = 3 if run.code != 0 else 0
        fig.messages[message_form(text)] = text
        if run.code == 0 or run.ids or fresh not in text or FULL not in text:
            problems.append("1a: emit on a full disk without a database "
                            "should fail naming %s and %r; exit %d, ids %d, "
                            "said: %r" % (fresh, FULL, run.code, len(run.ids),
                                          text))
        if size_of(fresh):
            rows, _ = read_outbox(fresh, catalog)
            fig.in_outbox = len(rows)
            if rows:
                problems.append("1a: %d rows in %s" % (len(rows), fresh))
        figures.append(fig)
        fs.remove("filler")
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(fresh + suffix):
                os.unlink(fresh + suffix)

        db = fs.file("outbox.db")
        before = []
        steps = [
            # label, first event, count, batch, what to do first
            ("1b-batch-50-until-full", 1, 20000, 50, None),
            ("1c-one-batch-over-the-cache", 20001, 6000, 6000,
             lambda: fs.remove("reserve")),
            ("1d-after-remount", 26001, len(catalog.templates), 39,
             lambda: fs.remount("16m")),
        ]
        for label, first, count, batch, prepare in steps:
            if prepare:
                prepare()
            free_before = fs.free_bytes()
            run = run_emit(args, label, db, catalog.events(first, count),
                           batch, workdir, logdir)
            rows, integrity = read_outbox(db, catalog)
            if [r.seq for r in rows[:len(before)]] != [
                    r.seq for r in before]:
                problems.append("%s: rows committed before the run changed"
                                % label)
            fig = check_emit_run(run, rows[len(before):], problems)
            fig.integrity = integrity
            fig.free_before = free_before
            fig.free_after = fs.free_bytes()
            fig.files = describe_files(fs)
            status, error = status_json(args.sigevents, db)
            fig.status_total = (sum(status["events"].values()) if status
                                else error)
            figures.append(fig)
            if integrity != "ok":
                problems.append("%s: integrity_check says %s"
                                % (label, integrity))
            if fig.status_total != len(rows):
                problems.append("%s: sigevents status counts %s events, the "
                                "outbox has %d rows"
                                % (label, fig.status_total, len(rows)))
            before = rows
            log("%s: exit %d, %d attempted, %d committed, %d refused "
                "(%d batch(es) at COMMIT, %d inside), %d rows in the outbox, "
                "integrity %s; %s"
                % (label, run.code, fig.attempted, fig.committed, fig.refused,
                   fig.commit_failures, fig.emit_failures, len(rows),
                   integrity, fig.files))

        # Each step must have met what it is for.
        by_label = {fig.label: fig for fig in figures}
        b = by_label["1b-batch-50-until-full"]
        if b.commit_failures == 0 or b.committed == 0:
            problems.append("1b: not exercised: %d batch(es) committed and "
                            "%d refused at COMMIT; the disk should fill part "
                            "way" % (b.committed // 50, b.commit_failures))
        c = by_label["1c-one-batch-over-the-cache"]
        if c.emit_failures == 0:
            problems.append("1c: not exercised: no batch failed inside, at a "
                            "line (exit %d, %d refused)"
                            % (c.code, c.refused))
        d = by_label["1d-after-remount"]
        if d.code != 0 or d.committed != d.attempted:
            problems.append("1d: emit after the space was grown: exit %d, %d "
                            "of %d committed" % (d.code, d.committed,
                                                 d.attempted))
        markers = collections.Counter(row.marker for row in before)
        duplicated = sum(1 for count in markers.values() if count > 1)
        if duplicated:
            problems.append("part 1: %d events are in the outbox more than "
                            "once" % duplicated)
        return figures, duplicated, time.time() - started
    finally:
        fs.umount()


def print_part1(figures, duplicated, seconds):
    print("part 1: sigevents emit on a full tmpfs (%.1fs)" % seconds)
    print("  %-30s %6s %9s %9s %7s %6s %5s %7s %7s %6s"
          % ("run", "exit", "attempted", "committed", "refused", "rows",
             "lost", "phantom", "COMMIT", "inside"))
    for fig in figures:
        print("  %-30s %6s %9d %9d %7d %6d %5d %7d %7d %6d"
              % (fig.label, fig.code, fig.attempted, fig.committed,
                 fig.refused, fig.in_outbox, fig.lost, fig.phantom,
                 fig.commit_failures, fig.emit_failures))
    print("  (COMMIT/inside: batches refused at COMMIT / at a line inside)")
    print("  duplicated events in the outbox: %d" % duplicated)
    for fig in figures:
        if hasattr(fig, "files"):
            print("  %s: free %s -> %s bytes; files after: %s; integrity %s; "
                  "status --json total %s; %.2fs"
                  % (fig.label, fig.free_before, fig.free_after, fig.files,
                     fig.integrity, fig.status_total, fig.seconds))
    print("  messages seen (one example of each form):")
    for fig in figures:
        for example in fig.messages.values():
            print("    %s: %s" % (fig.label, example))


def print_part2(part2):
    print("part 2: sigevents relay on a full tmpfs")
    for name, value in part2.figures.items():
        print("  %-48s %s" % (name, value))
    print("  relay warnings and errors seen (count, message):")
    for message, count in part2.errors_seen.most_common():
        print("    %4d  %s" % (count, message))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sigevents", required=True)
    parser.add_argument("--examples", required=True)
    parser.add_argument("--outer-mount-ns", required=True,
                        help="the mount namespace the wrapper started in")
    parser.add_argument("--workdir")
    args = parser.parse_args()
    args.sigevents = os.path.abspath(args.sigevents)
    args.examples = os.path.abspath(args.examples)
    return args


def main():
    args = parse_args()
    started = time.time()
    own_ns = os.readlink("/proc/self/ns/mnt")
    if own_ns == args.outer_mount_ns:
        log("FAILED: not in a private mount namespace (%s); refusing to "
            "mount anything" % own_ns)
        return 1
    base = args.workdir or os.environ.get("TEST_TMPDIR") or "/tmp"
    workdir = os.path.join(base, "disk-full-%d" % os.getpid())
    os.makedirs(workdir)
    logdir = os.path.join(os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
                          or workdir, "disk-full")
    os.makedirs(logdir, exist_ok=True)
    log("mount namespace %s (outer %s); work in %s, logs in %s"
        % (own_ns, args.outer_mount_ns, workdir, logdir))
    catalog = Catalog(args.sigevents, args.examples)
    problems = []
    part2 = None
    try:
        figures, duplicated, seconds = run_part1(args, catalog, workdir,
                                                 logdir, problems)
        print_part1(figures, duplicated, seconds)
        part2 = Part2(args, catalog, workdir, logdir, problems)
        try:
            part2.run()
        finally:
            part2.close()
            for relay in part2.relays:
                part2.errors_seen.update(relay_errors(relay.text()))
        print_part2(part2)
    except (TestFailure, topic_reader.TopicReadError) as e:
        if part2 is not None:
            print_part2(part2)
        log("FAILED: %s" % e)
        log("logs in %s" % logdir)
        return 1
    log("seconds: %.1f" % (time.time() - started))
    if problems:
        for text in problems:
            log("FAILED: " + text)
        log("logs in %s" % logdir)
        return 1
    log("PASSED: on a really full file system emit refused whole batches "
        "with the cause and lost nothing; the relay kept running, lost and "
        "duplicated nothing, and recovered when space came back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
