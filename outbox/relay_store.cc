#include "outbox/relay_store.h"

#include <SQLiteCpp/Transaction.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "outbox/schema.h"

namespace sigevents {
namespace {

// How long a write waits for the lock before failing with SQLITE_BUSY.
constexpr std::chrono::milliseconds kBusyTimeout{5000};

// Runs `body` in a BEGIN IMMEDIATE transaction: the write lock is taken up
// front, so the busy timeout applies instead of a failed lock upgrade.
template <typename Body>
auto InWriteTransaction(SQLite::Database& db, Body body) {
  SQLite::Transaction txn(db, SQLite::TransactionBehavior::IMMEDIATE);
  auto result = body();
  txn.commit();
  return result;
}

// Resets a statement kept for reuse when the scope ends, whether its step
// succeeded or threw. A statement whose step failed (a full disk, a busy
// database) refuses every later bind with SQLITE_MISUSE until it is reset,
// so without this one failure would stop the relay for good; reset() would
// throw the step's error again, hence tryReset().
class ResetOnExit {
 public:
  explicit ResetOnExit(SQLite::Statement& statement) : statement_(statement) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit() { statement_.tryReset(); }

 private:
  SQLite::Statement& statement_;
};

}  // namespace

std::int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

RelayStore::RelayStore(const std::string& db_path)
    : db_(OpenDatabase(db_path, OpenOptions{})),
      outbox_id_((EnsureSchema(*db_), ReadOutboxId(*db_))),
      read_pending_(*db_,
                    "SELECT seq, event_id, type, partition_key, payload"
                    " FROM sigevents_outbox"
                    " WHERE state = 'pending' AND seq > ?"
                    " ORDER BY seq LIMIT ?"),
      mark_delivered_(*db_,
                      "UPDATE sigevents_outbox SET state = 'delivered',"
                      " attempts = attempts + 1, delivered_at = ?,"
                      " topic = ?, kafka_partition = ?, kafka_offset = ?"
                      " WHERE seq = ? AND state = 'pending'"),
      mark_failed_(*db_,
                   "UPDATE sigevents_outbox SET state = 'failed',"
                   " attempts = attempts + 1, last_error = ?, topic = ?"
                   " WHERE seq = ? AND state = 'pending'"),
      mark_retry_(*db_,
                  "UPDATE sigevents_outbox SET attempts = attempts + 1,"
                  " last_error = ? WHERE seq = ? AND state = 'pending'"),
      renew_(*db_,
             "UPDATE sigevents_relay_lease SET heartbeat_at = ?"
             " WHERE id = 1 AND owner = ?"),
      advance_checkpoint_(*db_,
                          "INSERT INTO sigevents_kafka_checkpoint"
                          " (topic, kafka_partition, next_offset)"
                          " VALUES (?, ?, ?)"
                          " ON CONFLICT (topic, kafka_partition) DO UPDATE"
                          " SET next_offset = max(next_offset,"
                          " excluded.next_offset)") {
  // Waiting for the write lock: retry every 100 microseconds rather than
  // SQLite's default sleeps of up to 100 ms, which delayed every event
  // behind a mark that met an emitter's commit. Gives up after about the
  // usual busy timeout.
  sqlite3_busy_handler(
      db_->getHandle(),
      [](void* self, int attempts) -> int {
        auto& since = static_cast<RelayStore*>(self)->busy_since_;
        auto now = std::chrono::steady_clock::now();
        if (attempts == 0) since = now;
        if (now - since >= kBusyTimeout) return 0;
        usleep(100);
        return 1;
      },
      this);
  // No checkpoint inside the relay's commits, which it makes while events
  // wait; Checkpoint() runs between sends instead.
  db_->exec("PRAGMA wal_autocheckpoint = 0");
}

void RelayStore::Checkpoint() {
  sqlite3_wal_checkpoint_v2(db_->getHandle(), nullptr,
                            SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

LeaseInfo RelayStore::ReadLease() {
  SQLite::Statement query(*db_,
                          "SELECT coalesce(owner, ''), coalesce(host, ''),"
                          " coalesce(pid, 0), coalesce(heartbeat_at, 0),"
                          " clean_stop FROM sigevents_relay_lease"
                          " WHERE id = 1");
  LeaseInfo lease;
  if (query.executeStep()) {
    lease.owner = query.getColumn(0).getString();
    lease.host = query.getColumn(1).getString();
    lease.pid = query.getColumn(2).getInt64();
    lease.heartbeat_at_ms = query.getColumn(3).getInt64();
    lease.clean_stop = query.getColumn(4).getInt() != 0;
  }
  return lease;
}

std::optional<LeaseInfo> RelayStore::AcquireLease(const std::string& owner,
                                                  const std::string& host,
                                                  std::int64_t pid,
                                                  std::int64_t lease_ms) {
  return InWriteTransaction(*db_, [&]() -> std::optional<LeaseInfo> {
    LeaseInfo before = ReadLease();
    std::int64_t now = NowMillis();
    bool free = before.owner.empty() || before.owner == owner ||
                now - before.heartbeat_at_ms > lease_ms;
    // A holder on this host whose process is gone died without releasing
    // the lease: no need to wait for it to expire.
    bool holder_dead =
        !free && before.host == host && before.pid != pid && before.pid > 0 &&
        kill(static_cast<pid_t>(before.pid), 0) != 0 && errno == ESRCH;
    if (!free && !holder_dead) return std::nullopt;
    SQLite::Statement take(*db_,
                           "UPDATE sigevents_relay_lease SET owner = ?,"
                           " host = ?, pid = ?, acquired_at = ?,"
                           " heartbeat_at = ?, clean_stop = 0 WHERE id = 1");
    take.bind(1, owner);
    take.bind(2, host);
    take.bind(3, static_cast<std::int64_t>(pid));
    take.bind(4, now);
    take.bind(5, now);
    take.exec();
    if (before.owner == owner) before.clean_stop = true;
    return before;
  });
}

bool RelayStore::Heartbeat(const std::string& owner) {
  ResetOnExit reset(renew_);
  renew_.bind(1, NowMillis());
  renew_.bind(2, owner);
  return renew_.exec() == 1;
}

void RelayStore::ReleaseLease(const std::string& owner, bool clean) {
  SQLite::Statement release(*db_,
                            "UPDATE sigevents_relay_lease SET owner = NULL,"
                            " clean_stop = ? WHERE id = 1 AND owner = ?");
  release.bind(1, clean ? 1 : 0);
  release.bind(2, owner);
  release.exec();
}

std::vector<PendingRow> RelayStore::ReadPending(std::int64_t after_seq,
                                                std::size_t limit) {
  std::vector<PendingRow> rows;
  rows.reserve(limit);
  ResetOnExit reset(read_pending_);
  read_pending_.bind(1, after_seq);
  read_pending_.bind(2, static_cast<std::int64_t>(limit));
  while (read_pending_.executeStep()) {
    PendingRow row;
    row.seq = read_pending_.getColumn(0).getInt64();
    row.event_id = read_pending_.getColumn(1).getString();
    row.type = read_pending_.getColumn(2).getString();
    row.key = read_pending_.getColumn(3).getString();
    SQLite::Column payload = read_pending_.getColumn(4);
    row.payload.assign(static_cast<const char*>(payload.getBlob()),
                       static_cast<std::size_t>(payload.getBytes()));
    rows.push_back(std::move(row));
  }
  return rows;
}

bool RelayStore::DataChanged() {
  std::int64_t version = db_->execAndGet("PRAGMA data_version").getInt64();
  bool changed = version != data_version_;
  data_version_ = version;
  return changed;
}

int RelayStore::MarkDelivered(std::int64_t seq, const std::string& topic,
                              std::int32_t partition, std::int64_t offset,
                              std::int64_t now_ms) {
  ResetOnExit reset(mark_delivered_);
  mark_delivered_.bind(1, now_ms);
  mark_delivered_.bind(2, topic);
  mark_delivered_.bind(3, partition);
  mark_delivered_.bind(4, offset);
  mark_delivered_.bind(5, seq);
  return mark_delivered_.exec();
}

void RelayStore::AdvanceCheckpoints(
    const std::map<TopicPartition, std::int64_t>& next_offsets) {
  for (const auto& [partition, next] : next_offsets) {
    ResetOnExit reset(advance_checkpoint_);
    advance_checkpoint_.bind(1, partition.first);
    advance_checkpoint_.bind(2, partition.second);
    advance_checkpoint_.bind(3, next);
    advance_checkpoint_.exec();
  }
}

bool RelayStore::RecordOutcomes(const std::string& owner,
                                const std::vector<RowOutcome>& outcomes) {
  return InWriteTransaction(*db_, [&] {
    if (!Heartbeat(owner)) return false;
    std::int64_t now = NowMillis();
    std::map<TopicPartition, std::int64_t> next_offsets;
    for (const RowOutcome& outcome : outcomes) {
      switch (outcome.kind) {
        case RowOutcome::Kind::kDelivered: {
          MarkDelivered(outcome.seq, outcome.topic, outcome.partition,
                        outcome.offset, now);
          std::int64_t& next = next_offsets[{outcome.topic, outcome.partition}];
          next = std::max(next, outcome.offset + 1);
          break;
        }
        case RowOutcome::Kind::kFailed: {
          ResetOnExit reset(mark_failed_);
          mark_failed_.bind(1, outcome.error);
          mark_failed_.bind(2, outcome.topic);
          mark_failed_.bind(3, outcome.seq);
          mark_failed_.exec();
          break;
        }
        case RowOutcome::Kind::kRetry: {
          ResetOnExit reset(mark_retry_);
          mark_retry_.bind(1, outcome.error);
          mark_retry_.bind(2, outcome.seq);
          mark_retry_.exec();
          break;
        }
      }
    }
    AdvanceCheckpoints(next_offsets);
    return true;
  });
}

std::int64_t RelayStore::RecordFound(
    const std::string& owner, const std::vector<ReadBackHit>& found,
    const std::map<TopicPartition, std::int64_t>& read_to) {
  return InWriteTransaction(*db_, [&]() -> std::int64_t {
    if (!Heartbeat(owner)) return -1;
    std::int64_t changed = 0;
    std::int64_t now = NowMillis();
    for (const ReadBackHit& hit : found) {
      changed +=
          MarkDelivered(hit.seq, hit.topic, hit.partition, hit.offset, now);
    }
    AdvanceCheckpoints(read_to);
    return changed;
  });
}

std::map<TopicPartition, std::int64_t> RelayStore::Checkpoints() {
  std::map<TopicPartition, std::int64_t> checkpoints;
  SQLite::Statement query(*db_,
                          "SELECT topic, kafka_partition, next_offset"
                          " FROM sigevents_kafka_checkpoint");
  while (query.executeStep()) {
    checkpoints[{query.getColumn(0).getString(), query.getColumn(1).getInt()}] =
        query.getColumn(2).getInt64();
  }
  return checkpoints;
}

void RelayStore::AddMissingCheckpoints(
    const std::map<TopicPartition, std::int64_t>& offsets) {
  InWriteTransaction(*db_, [&] {
    SQLite::Statement insert(*db_,
                             "INSERT OR IGNORE INTO sigevents_kafka_checkpoint"
                             " (topic, kafka_partition, next_offset)"
                             " VALUES (?, ?, ?)");
    for (const auto& [partition, offset] : offsets) {
      insert.bind(1, partition.first);
      insert.bind(2, partition.second);
      insert.bind(3, offset);
      insert.exec();
      insert.reset();
    }
    return 0;
  });
}

std::string RelayStore::ClusterId() {
  SQLite::Statement query(
      *db_, "SELECT value FROM sigevents_meta WHERE key = 'kafka_cluster_id'");
  return query.executeStep() ? query.getColumn(0).getString() : "";
}

void RelayStore::SetClusterId(const std::string& cluster_id) {
  InWriteTransaction(*db_, [&] {
    db_->exec("DELETE FROM sigevents_kafka_checkpoint");
    SQLite::Statement put(*db_,
                          "INSERT OR REPLACE INTO sigevents_meta (key, value)"
                          " VALUES ('kafka_cluster_id', ?)");
    put.bind(1, cluster_id);
    put.exec();
    return 0;
  });
}

int RelayStore::PurgeDelivered(std::int64_t before_ms, std::int64_t after_seq,
                               int window, std::int64_t* next_seq) {
  // The window: the `window` rows after `after_seq`, by seq. created_at
  // grows with seq, so once a window reaches rows created after the cutoff
  // no later row can have been delivered before it.
  SQLite::Statement bounds(*db_,
                           "SELECT max(seq), max(created_at) FROM"
                           " (SELECT seq, created_at FROM sigevents_outbox"
                           "  WHERE seq > ? ORDER BY seq LIMIT ?)");
  bounds.bind(1, after_seq);
  bounds.bind(2, window);
  bounds.executeStep();
  if (bounds.getColumn(0).isNull()) {
    *next_seq = 0;
    return 0;
  }
  std::int64_t last = bounds.getColumn(0).getInt64();
  *next_seq = bounds.getColumn(1).getInt64() < before_ms ? last : 0;

  SQLite::Statement purge(*db_,
                          "DELETE FROM sigevents_outbox"
                          " WHERE seq > ? AND seq <= ?"
                          " AND state = 'delivered' AND delivered_at < ?");
  purge.bind(1, after_seq);
  purge.bind(2, last);
  purge.bind(3, before_ms);
  return purge.exec();
}

RelayStore::Counts RelayStore::Count() {
  Counts counts;
  counts.pending = db_->execAndGet(
                          "SELECT count(*) FROM sigevents_outbox"
                          " WHERE state = 'pending'")
                       .getInt64();
  // created_at grows with seq, so the oldest pending row is the first one.
  SQLite::Statement oldest(*db_,
                           "SELECT created_at FROM sigevents_outbox"
                           " WHERE state = 'pending' ORDER BY seq LIMIT 1");
  if (oldest.executeStep()) {
    counts.oldest_pending_created_ms = oldest.getColumn(0).getInt64();
  }
  counts.failed = db_->execAndGet(
                         "SELECT count(*) FROM sigevents_outbox"
                         " WHERE state = 'failed'")
                      .getInt64();
  return counts;
}

}  // namespace sigevents
