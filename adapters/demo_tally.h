// The book of `sigevents demo`: every event the services emitted, whether
// its transaction committed or rolled back, and every message read back from
// Kafka. From it come the summary table (per event type: emitted, received,
// duplicated, lost, rolled back, latency from commit to receipt) and the
// verdict.
//
//   demo::Tally tally;
//   tally.AddOutbox(outbox_id);             // the demo's own outboxes
//   service->Run(plan, stop);               // the services write to it
//   tally.Received(message);                // the consumer, per message
//   tally.PrintSummary(std::cout);
//   return tally.Ok() ? 0 : 1;
//
// A message is the demo's when its sigevents-outbox header names one of its
// outboxes; other messages on the topic are counted as foreign and
// otherwise ignored. A message of the demo is matched to its event by the
// CloudEvents id, and its type, key and data must equal what was emitted.
//
// Thread safety: all methods may be called from any thread; one mutex
// guards the book.

#ifndef SIGEVENTS_ADAPTERS_DEMO_TALLY_H_
#define SIGEVENTS_ADAPTERS_DEMO_TALLY_H_

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/demo_service.h"
#include "adapters/topic_consumer.h"
#include "emitter/catalog.h"

namespace sigevents::demo {

// What a message read from Kafka turned out to be.
enum class Arrival {
  kFirst,       // the first copy of a committed event
  kDuplicate,   // another copy of an event already received
  kRolledBack,  // an event whose transaction rolled back: must never happen
  kMismatch,    // type, key or data differ from what was emitted
  kUnknown,     // from a demo outbox, but no event of that id was emitted
  kForeign,     // not from the demo's outboxes
};

struct TypeCounts {
  std::int64_t emitted = 0;      // committed
  std::int64_t received = 0;     // committed and received at least once
  std::int64_t duplicated = 0;   // copies beyond the first
  std::int64_t lost = 0;         // committed and never received
  std::int64_t rolled_back = 0;  // emitted in a transaction that rolled back
  std::int64_t leaked = 0;       // rolled back, yet received
  std::vector<double> latencies_ms;  // commit to first receipt
};

struct Totals {
  std::int64_t emitted = 0;
  std::int64_t received = 0;
  std::int64_t duplicated = 0;
  std::int64_t lost = 0;
  std::int64_t rolled_back = 0;
  std::int64_t leaked = 0;
  std::int64_t mismatched = 0;
  std::int64_t unknown = 0;
  std::int64_t foreign = 0;
  std::int64_t open = 0;  // emitted in transactions not finished
};

class Tally final : public Ledger {
 public:
  using Clock = std::chrono::steady_clock;

  Tally() = default;

  // Messages whose sigevents-outbox header is `outbox_id` are the demo's.
  void AddOutbox(const std::string& outbox_id);

  void Emitted(const std::string& id, const Event& event) override;
  void Committed(const std::vector<std::string>& ids) override;
  void RolledBack(const std::vector<std::string>& ids) override;

  // Books one message read from the topic, received at
  // `message.received_at`. A message can arrive before Committed() is told
  // (the relay may be quicker than the service's thread); its latency then
  // counts as zero, and as a leak if the transaction rolls back after all.
  Arrival Received(const ConsumedMessage& message);

  Totals totals() const;
  // Whether every committed event has been received.
  bool AllReceived() const;

  // Counts per event type, in catalog order.
  std::vector<TypeCounts> ByType() const;

  // The table and, under it, what went wrong if anything did.
  void PrintSummary(std::ostream& out) const;

  // Nothing lost, duplicated, altered, unknown or rolled back yet received.
  bool Ok() const;

 private:
  enum class State { kOpen, kCommitted, kRolledBack };

  struct Entry {
    EventType type;
    std::string key;
    boost::json::object data;
    State state = State::kOpen;
    Clock::time_point committed_at;
    Clock::time_point first_received_at;
    int copies = 0;
  };

  Totals TotalsLocked() const;

  mutable std::mutex mu_;
  std::set<std::string> outboxes_;                  // guarded by mu_
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::int64_t mismatched_ = 0;                     // guarded by mu_
  std::int64_t unknown_ = 0;                        // guarded by mu_
  std::int64_t foreign_ = 0;                        // guarded by mu_
};

// The value at `fraction` (0.5, 0.99) of `values` by the nearest-rank
// method; 0 when there are none. Sorts `values`.
double Percentile(std::vector<double>& values, double fraction);

}  // namespace sigevents::demo

#endif  // SIGEVENTS_ADAPTERS_DEMO_TALLY_H_
