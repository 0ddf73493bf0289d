// The module's benchmark: each figure of sigevents measured next to the raw
// part it is built from, in the same run, so that a noisy machine moves both
// and the ratio stays meaningful.
//
//   sigevents::bench::BenchOptions options;
//   options.quick = true;
//   sigevents::bench::BenchResults results =
//       sigevents::bench::RunBenchmarks(options);
//   double ratio = results.emit_batch_ratio;  // target >= 0.8
//
// What is measured (every rate in events per second):
// - emit, batched and single: Emitter::Emit of pre-validated events, 1,000
//   per caller transaction or one, against a plain prepared INSERT of the
//   same bytes (made beforehand) into a copy of the outbox table (same DDL
//   and indexes, read from the outbox's own sqlite_master) in another file.
//   The two alternate in slices of a tenth of a round; the rates are the
//   medians over the rounds and the ratio is the median of the rounds'
//   ratios.
// - relay drain: a relay started on an outbox holding `backlog` pending
//   events, timed from Relay::Start until RelayStats counts every one
//   delivered; against librdkafka producing the same messages (sizes, keys,
//   headers, idempotent, acks=all, the relay's producer defaults) to the
//   same embedded Kafka, timed until the last delivery report.
// - drain memory: VmRSS sampled every 100 ms during the drain, minus VmRSS
//   just before it. The embedded Kafka runs in this process, so its logs
//   (at most 5 MB per partition in librdkafka's mock cluster) count too.
// - end to end: one thread emits at `rate` events per second, one event
//   per transaction, with a relay in this process; a consumer of the topic
//   stamps each message when it receives it. Latency is from the return of
//   the caller's COMMIT to that receipt (steady clock, microseconds), which
//   is later than the relay's delivery report by the consumer's fetch (at
//   most 1 ms of fetch.wait.max.ms plus a loopback round trip). The
//   message's CreateTime (set when the relay hands it to librdkafka, in
//   milliseconds) splits off the relay's pick-up time. Baseline: plain
//   librdkafka producing the same messages at the same rate, timed from
//   the produce call to the same kind of consumer.
// - 8 emitters: 8 threads, each with its own connection (busy timeout
//   5 s) and Emitter, one event per transaction, the relay running;
//   against 8 threads of plain INSERTs with no relay.
//
// Every database goes to a fresh directory that is removed at the end.
//
// Thread safety: RunBenchmarks() starts and joins its own threads; run one
// at a time per process (the embedded Kafka and the CPU are shared).

#ifndef SIGEVENTS_ADAPTERS_BENCH_H_
#define SIGEVENTS_ADAPTERS_BENCH_H_

#include <cstdint>
#include <string>

#include "outbox/log.h"

namespace sigevents::bench {

struct BenchOptions {
  // Smaller samples, for CI: the whole run takes well under 30 seconds.
  bool quick = false;

  // Pending events the relay drains. RunBenchmarks() does not change it
  // for `quick`; the caller chooses.
  std::int64_t backlog = 1000000;

  // Events per second of the end-to-end measurement.
  double rate = 1000;

  // Which measurements run; all by default. The figures of the others stay
  // 0, and relay_vs_insert_ratio needs run_inserts.
  bool run_inserts = true;  // emit batched and single against raw INSERT
  bool run_drain = true;    // relay drain, raw produce, drain memory
  bool run_e2e = true;      // end-to-end latency
  bool run_writers = true;  // 8 emitters against 8 raw inserters

  // Where the scratch directory is made; "" for $TMPDIR or /tmp.
  std::string parent_dir;

  // Progress ("bench: ..." lines, at kInfo) and the relays' warnings. Called
  // from the benchmark's threads, possibly several at once.
  LogSink log = NullLogSink();
};

struct BenchResults {
  // Emit against a plain INSERT, 1,000 events per transaction.
  double emit_batch_per_s = 0;
  double raw_insert_batch_per_s = 0;
  double emit_batch_ratio = 0;

  // The same, one event per transaction.
  double emit_single_per_s = 0;
  double raw_insert_single_per_s = 0;
  double emit_single_ratio = 0;

  // Filling the drain's backlog with Emit, 1,000 per transaction (not a
  // target; the table is larger than in the emit rounds).
  double backlog_fill_per_s = 0;

  // Draining the backlog, against plain production and batched inserts.
  std::int64_t backlog = 0;
  double relay_drain_per_s = 0;
  double raw_produce_per_s = 0;
  double relay_vs_insert_ratio = 0;
  double relay_vs_produce_ratio = 0;

  // Resident memory around the drain, in MB.
  double drain_rss_idle_mb = 0;
  double drain_rss_peak_mb = 0;
  double drain_rss_growth_mb = 0;

  // Commit to consumer receipt, in ms, and commit to the relay's produce
  // call (from the message's CreateTime; millisecond resolution).
  double e2e_rate = 0;
  double e2e_seconds = 0;
  std::int64_t e2e_events = 0;
  std::int64_t e2e_missing = 0;  // committed but not received in time
  double e2e_p50_ms = 0;
  double e2e_p99_ms = 0;
  double e2e_max_ms = 0;
  double e2e_pickup_p50_ms = 0;
  double e2e_pickup_p99_ms = 0;

  // The same measure for plain librdkafka producing at the same rate, from
  // the produce call to the consumer: what Kafka and the consumer add.
  double raw_e2e_p50_ms = 0;
  double raw_e2e_p99_ms = 0;
  double raw_e2e_max_ms = 0;

  // 8 threads, one event per transaction.
  double emitters_8_per_s = 0;
  std::int64_t emitters_8_errors = 0;  // transactions that threw (busy)
  double raw_insert_8_per_s = 0;
  double emitters_8_ratio = 0;
};

// Runs every measurement in turn. Throws std::runtime_error when one cannot
// complete (the relay stalls, Kafka refuses events, SQLite fails).
BenchResults RunBenchmarks(const BenchOptions& options);

}  // namespace sigevents::bench

#endif  // SIGEVENTS_ADAPTERS_BENCH_H_
