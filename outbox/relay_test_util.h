// Helpers shared by the relay's tests: a service database that emits, an
// embedded Kafka, a log capture, waiting, and the audit that compares what
// was committed with what reached Kafka. Test-only; thread safety as noted.

#ifndef SIGEVENTS_OUTBOX_RELAY_TEST_UTIL_H_
#define SIGEVENTS_OUTBOX_RELAY_TEST_UTIL_H_

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/embedded_kafka.h"
#include "emitter/emitter.h"
#include "outbox/relay.h"
#include "tests/kafka_reader.h"
#include "tests/test_util.h"

namespace sigevents::testing {

constexpr char kTopic[] = "significant-events";

// Collects log lines so tests can check what the relay said. Thread-safe.
class LogCapture {
 public:
  LogSink sink();
  bool Contains(const std::string& text) const;
  std::string All() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

struct Committed {
  std::int64_t seq;
  std::string id;
  std::string key;
};

// A service database with its Emitter, emitting user events, one event per
// transaction. Thread-compatible.
class Service {
 public:
  explicit Service(const std::string& path);

  Committed EmitOne(const std::string& key, std::size_t message_bytes = 40);
  // `count` events over `keys` keys.
  std::vector<Committed> Emit(int count, int keys);

  SQLite::Database& db() { return *db_; }

 private:
  std::unique_ptr<SQLite::Database> db_;
  Emitter emitter_;
};

// Rows of the outbox in `state`, counted on a connection of its own.
std::int64_t CountState(const std::string& path, const std::string& state);

template <typename Predicate>
bool WaitUntil(Predicate predicate, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

// A relay configuration for tests: quick reconnects, short lease, settle
// delay and backoff.
RelayConfig TestConfig(const std::string& db_path, const EmbeddedKafka& kafka,
                       LogCapture& log);

// What reached Kafka compared with what was committed.
struct Audit {
  std::int64_t committed = 0;
  std::int64_t delivered = 0;
  std::int64_t lost = 0;
  std::int64_t duplicated = 0;
  std::int64_t out_of_order = 0;
  std::int64_t unknown = 0;           // messages of no committed event
  std::vector<std::string> lost_ids;  // the first few
};

Audit AuditTopic(const std::vector<Committed>& committed,
                 const std::vector<ConsumedMessage>& messages);

// Checks (with Boost.Test) that the audit shows no loss, no duplicate, no
// reordering and nothing unknown, and prints its figures.
void CheckExactlyOnceInOrder(const Audit& audit);

// A scratch directory, a 3-broker embedded Kafka with 4 partitions, and a
// service database.
struct RelayFixture {
  RelayFixture();
  std::vector<ConsumedMessage> Topic();

  ScratchDir dir;
  std::unique_ptr<EmbeddedKafka> kafka;
  std::string path;
  Service service;
  LogCapture log;
};

}  // namespace sigevents::testing

#endif  // SIGEVENTS_OUTBOX_RELAY_TEST_UTIL_H_
