// The relay's queries over the outbox tables: reading pending rows in
// sequence order, recording Kafka's answers, the lease, the read-back
// checkpoints and retention. Every write is one short transaction that
// first checks the lease, so a relay that has lost the lease cannot mark
// anything.
//
// Thread safety: a RelayStore owns its connection and is used by the relay
// thread only.

#ifndef SIGEVENTS_OUTBOX_RELAY_STORE_H_
#define SIGEVENTS_OUTBOX_RELAY_STORE_H_

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "adapters/kafka.h"

namespace sigevents {

struct PendingRow {
  std::int64_t seq = 0;
  std::string event_id;
  std::string type;
  std::string key;
  std::string payload;
};

// What Kafka said about one row.
struct RowOutcome {
  enum class Kind {
    kDelivered,  // acknowledged at topic/partition/offset
    kFailed,     // refused for good; `error` says why
    kRetry,      // not written; stays pending, `error` recorded
  };
  std::int64_t seq = 0;
  Kind kind = Kind::kDelivered;
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::string error;
};

struct LeaseInfo {
  std::string owner;  // "" when free
  std::string host;
  std::int64_t pid = 0;
  std::int64_t heartbeat_at_ms = 0;
  bool clean_stop = true;
};

using TopicPartition = std::pair<std::string, std::int32_t>;

class RelayStore {
 public:
  // Opens `db_path` (creating the outbox if missing). Throws.
  explicit RelayStore(const std::string& db_path);

  SQLite::Database& db() { return *db_; }
  const std::string& outbox_id() const { return outbox_id_; }

  // Tries to take or renew the lease for `owner`. Returns the lease as it
  // was before (so the caller knows whether the previous holder stopped
  // cleanly), or nullopt when another live relay holds it.
  std::optional<LeaseInfo> AcquireLease(const std::string& owner,
                                        const std::string& host,
                                        std::int64_t pid,
                                        std::int64_t lease_ms);
  LeaseInfo ReadLease();

  // Renews the lease; false when `owner` no longer holds it.
  bool Heartbeat(const std::string& owner);

  // Gives the lease up, recording whether the stop was clean.
  void ReleaseLease(const std::string& owner, bool clean);

  // Up to `limit` pending rows with seq > after_seq, in seq order.
  std::vector<PendingRow> ReadPending(std::int64_t after_seq,
                                      std::size_t limit);

  // True when another connection committed since the last call.
  bool DataChanged();

  // Records outcomes and advances checkpoints, in one transaction that
  // first renews the lease. Returns false (writing nothing) when `owner`
  // lost the lease. Throws SQLite::Exception on storage errors; nothing is
  // then written and the caller keeps the outcomes to try again.
  bool RecordOutcomes(const std::string& owner,
                      const std::vector<RowOutcome>& outcomes);

  // Marks the rows found by a read-back as delivered (those still pending)
  // and moves the checkpoints to `read_to`. Returns how many rows changed,
  // or -1 (writing nothing) when `owner` lost the lease.
  std::int64_t RecordFound(
      const std::string& owner, const std::vector<ReadBackHit>& found,
      const std::map<TopicPartition, std::int64_t>& read_to);

  // The offset to read back from, per topic partition.
  std::map<TopicPartition, std::int64_t> Checkpoints();

  // Sets checkpoints for partitions that have none.
  void AddMissingCheckpoints(
      const std::map<TopicPartition, std::int64_t>& offsets);

  // The Kafka cluster id the checkpoints belong to. Setting a different one
  // drops every checkpoint: offsets of another cluster mean nothing.
  std::string ClusterId();
  void SetClusterId(const std::string& cluster_id);

  // Copies the WAL back into the database file as far as readers allow
  // (SQLite's passive checkpoint). The relay's connection does not
  // checkpoint by itself.
  void Checkpoint();

  // Deletes the rows delivered before `before_ms` among the `window` rows
  // that follow `after_seq`, so that one call touches a bounded part of the
  // table. Sets `next_seq` to where the next call should start, or to 0
  // when no later row can be old enough. Returns how many it deleted.
  int PurgeDelivered(std::int64_t before_ms, std::int64_t after_seq, int window,
                     std::int64_t* next_seq);

  struct Counts {
    std::int64_t pending = 0;
    std::int64_t failed = 0;
    std::int64_t oldest_pending_created_ms = 0;  // 0 when none
  };
  Counts Count();

 private:
  // Marks one pending row delivered; returns 1, or 0 if it was not pending.
  int MarkDelivered(std::int64_t seq, const std::string& topic,
                    std::int32_t partition, std::int64_t offset,
                    std::int64_t now_ms);
  // Moves checkpoints forward (never back) to the given next offsets.
  void AdvanceCheckpoints(
      const std::map<TopicPartition, std::int64_t>& next_offsets);

  std::unique_ptr<SQLite::Database> db_;
  std::string outbox_id_;
  std::int64_t data_version_ = -1;
  std::chrono::steady_clock::time_point busy_since_;  // of the current wait
  SQLite::Statement read_pending_;
  SQLite::Statement mark_delivered_;
  SQLite::Statement mark_failed_;
  SQLite::Statement mark_retry_;
  SQLite::Statement renew_;
  SQLite::Statement advance_checkpoint_;
};

std::int64_t NowMillis();

}  // namespace sigevents

#endif  // SIGEVENTS_OUTBOX_RELAY_STORE_H_
