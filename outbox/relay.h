// The relay: a background thread that drains one outbox to Kafka, in
// sequence order, and marks each event delivered once Kafka has
// acknowledged it. It is the half of the module that makes sure no
// committed event is ever lost.
//
//   sigevents::RelayConfig config;
//   config.db_path = "/var/lib/inventory/inventory.db";
//   config.kafka["bootstrap.servers"] = "kafka-1:9092,kafka-2:9092";
//   config.log = my_sink;
//   std::unique_ptr<sigevents::Relay> relay = sigevents::Relay::Start(config);
//   ...
//   relay->Stop(std::chrono::seconds(5));
//
// How it behaves
// - It opens its own SQLite connection; its transactions are short and it
//   never holds the write lock while it waits for Kafka.
// - One relay drains an outbox at a time. A lease row in the database names
//   it; other relays (other processes) stand by and take over when the lease
//   expires, or at once when its holder was a process of this host that no
//   longer exists.
// - Events committed in this process wake it at once (commit_signal.h);
//   events committed by other processes are noticed by a `PRAGMA
//   data_version` check every `poll_interval`.
// - Messages: key = the event's entity id, value = the stored JSON bytes,
//   headers content-type (structured mode), sigevents-outbox and
//   sigevents-seq. The producer is idempotent with acks=all and never
//   times messages out by default, so an outage only delays them; order per
//   key is Kafka's partition order, which equals outbox order.
// - A row becomes delivered only from a delivery report, with its partition
//   and offset. Kafka's permanent refusals (message too large, topic not
//   authorised, invalid topic) mark the row failed with the reason; later
//   rows go on.
// - Duplicates after a crash: a relay that starts after an unclean stop, or
//   that meets a send whose outcome is unknown, first reads back the
//   partitions it wrote, from the last offset Kafka acknowledged to it, and
//   marks what it finds there as delivered before sending anything again.
//   See README.md, "Delivery guarantee", for what this does and does not
//   cover on a real cluster.
//
// Thread safety: Start() and Stop() must be called from one thread; stats()
// may be called from any thread at any time. The log sink is called from
// the relay's thread.

#ifndef SIGEVENTS_OUTBOX_RELAY_H_
#define SIGEVENTS_OUTBOX_RELAY_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "outbox/log.h"

namespace sigevents {

// Structured: the whole CloudEvent is the message value. Binary: ce_*
// headers carry the attributes and the value is the data object only.
enum class ContentMode { kStructured, kBinary };

struct RelayConfig {
  // The service's database file. The outbox tables are created if missing.
  std::string db_path;

  // librdkafka properties, passed through unchanged ("bootstrap.servers",
  // "security.protocol", "sasl.*", "ssl.*", ...). They override the relay's
  // defaults (idempotence, acks=all, linger.ms=1, no message timeout).
  std::map<std::string, std::string> kafka;

  // Where events go: the first route whose pattern matches the type wins;
  // a pattern is a type name or a prefix ending in '*' ("server.*").
  std::string default_topic = "significant-events";
  std::vector<std::pair<std::string, std::string>> routes;

  ContentMode content_mode = ContentMode::kStructured;

  // How often to look for events committed by other processes.
  std::chrono::milliseconds poll_interval{100};

  // The lease on the outbox: a relay that has not renewed it for this long
  // is presumed dead.
  std::chrono::milliseconds lease_duration{10000};

  // Delivered rows older than this are deleted; zero keeps them forever.
  std::chrono::milliseconds retention{std::chrono::hours(24)};

  // Before reading back after an unclean stop, wait until this long has
  // passed since the previous relay's last heartbeat, so that its last
  // writes are visible on every replica.
  std::chrono::milliseconds settle_delay{std::chrono::seconds(2)};

  // Retry delays after errors: capped exponential backoff with jitter.
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(10)};

  // Events handed to librdkafka and not yet acknowledged, at most. Bounds
  // memory while Kafka is slow or away.
  std::size_t max_in_flight = 50000;

  // Rows read from the outbox per query.
  std::size_t batch_size = 2000;

  LogSink log = NullLogSink();

  // Tests only: called on the relay thread when delivery reports have been
  // received and before they are recorded, with the number of reports. A
  // crash test ends the process here to open the window between Kafka's
  // acknowledgement and the row being marked.
  std::function<void(std::size_t reports)> before_record_for_testing;
};

enum class RelayState {
  kStarting,
  kStandby,      // another relay holds the lease
  kReconciling,  // reading back Kafka before sending again
  kConnected,
  kUnreachable,  // no broker answers; events wait in the outbox
  kStopped,
};

std::string_view RelayStateName(RelayState state);

struct RelayStats {
  RelayState state = RelayState::kStarting;
  std::string lease_owner;            // who holds the lease, "" when nobody
  bool lease_held = false;            // whether this relay holds it
  std::int64_t pending = 0;           // rows waiting, from the last count
  std::int64_t failed = 0;            // rows Kafka refused for good
  std::int64_t in_flight = 0;         // handed to librdkafka, not yet reported
  std::int64_t delivered_total = 0;   // marked delivered by this relay
  std::int64_t failed_total = 0;      // marked failed by this relay
  std::int64_t reconciled_total = 0;  // found in Kafka by a read-back
  std::int64_t purged_total = 0;      // deleted by retention
  double oldest_pending_age_s = 0;
  std::map<std::string, std::int64_t> errors_by_kind;
};

// The line a relay process logs when it has stopped, which scripts and the
// process tests read: "relay: stopped cleanly; delivered 12, failed 0,
// reconciled 3" (or "uncleanly"; the totals are this relay's).
std::string DescribeStop(bool clean, const RelayStats& stats);

class Relay {
 public:
  // Starts the relay thread. Throws std::invalid_argument for a bad
  // configuration (bad librdkafka property, bad route) and
  // SQLite::Exception or SchemaError when the database cannot be opened.
  static std::unique_ptr<Relay> Start(RelayConfig config);

  virtual ~Relay() = default;

  // Stops sending, waits up to `timeout` for the events in flight, marks
  // what was acknowledged and releases the lease. Returns true when nothing
  // was left in flight (a clean stop); otherwise the next relay reads back
  // before sending. Idempotent.
  virtual bool Stop(std::chrono::milliseconds timeout) = 0;

  virtual RelayStats stats() const = 0;
};

}  // namespace sigevents

#endif  // SIGEVENTS_OUTBOX_RELAY_H_
