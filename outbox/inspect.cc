#include "outbox/inspect.h"

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "outbox/schema.h"

namespace sigevents {
namespace {

constexpr const char* kRecordColumns =
    "seq, event_id, type, partition_key, state, attempts, last_error,"
    " created_at, delivered_at, topic, kafka_partition, kafka_offset";

std::optional<std::int64_t> OptionalInt(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getInt64();
}

std::optional<std::string> OptionalText(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getString();
}

// Reads the columns of kRecordColumns, in that order.
OutboxRecord ReadRecord(SQLite::Statement& row) {
  OutboxRecord record;
  record.seq = row.getColumn(0).getInt64();
  record.id = row.getColumn(1).getString();
  record.type = row.getColumn(2).getString();
  record.key = row.getColumn(3).getString();
  // The table's CHECK constraint admits only the three names.
  record.state = ParseEventState(row.getColumn(4).getString())
                     .value_or(EventState::kPending);
  record.attempts = row.getColumn(5).getInt64();
  record.last_error = OptionalText(row.getColumn(6));
  record.created_at_ms = row.getColumn(7).getInt64();
  record.delivered_at_ms = OptionalInt(row.getColumn(8));
  record.topic = OptionalText(row.getColumn(9));
  record.partition = OptionalInt(row.getColumn(10));
  record.offset = OptionalInt(row.getColumn(11));
  return record;
}

std::string DescribeOpenFailure(const std::string& path, Access access,
                                const SQLite::Exception& e) {
  int code = e.getErrorCode() & 0xff;
  if (code == SQLITE_NOTADB) return path + " is not a SQLite database";
  if (access == Access::kReadOnly && code == SQLITE_READONLY) {
    // SQLite reports a missing -shm file it may not create this way.
    return "cannot read " + path + " (" + e.what() +
           "): a WAL database opened read-only needs " + path +
           "-shm, which is missing and cannot be created; run as a user who "
           "may write to the database's directory";
  }
  return "cannot open " + path + ": " + e.what();
}

// A read transaction, unless the caller has one open: every query inside
// sees the same snapshot.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(SQLite::Database& db)
      : db_(db), own_(sqlite3_get_autocommit(db.getHandle()) != 0) {
    if (own_) db_.exec("BEGIN");
  }
  ~ReadSnapshot() {
    if (own_ && sqlite3_get_autocommit(db_.getHandle()) == 0) {
      sqlite3_exec(db_.getHandle(), "COMMIT", nullptr, nullptr, nullptr);
    }
  }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

 private:
  SQLite::Database& db_;
  bool own_;
};

std::int64_t CountWhere(SQLite::Database& db, const std::string& where,
                        std::optional<std::int64_t> bound = std::nullopt) {
  SQLite::Statement count(
      db, "SELECT count(*) FROM sigevents_outbox WHERE " + where);
  if (bound) count.bind(1, *bound);
  count.executeStep();
  return count.getColumn(0).getInt64();
}

LeaseInfo ReadLease(SQLite::Database& db) {
  LeaseInfo lease;
  if (!db.tableExists("sigevents_relay_lease")) return lease;
  SQLite::Statement row(db,
                        "SELECT owner, host, pid, acquired_at, heartbeat_at,"
                        " clean_stop FROM sigevents_relay_lease WHERE id = 1");
  if (!row.executeStep()) return lease;
  lease.owner = OptionalText(row.getColumn(0)).value_or("");
  lease.host = OptionalText(row.getColumn(1)).value_or("");
  lease.pid = OptionalInt(row.getColumn(2));
  lease.acquired_at_ms = OptionalInt(row.getColumn(3));
  lease.heartbeat_at_ms = OptionalInt(row.getColumn(4));
  lease.clean_stop = row.getColumn(5).getInt() != 0;
  return lease;
}

// The highest seq among the first `limit` rows after `after` that match
// `where`, or unset when there are none.
std::optional<std::int64_t> BatchEnd(SQLite::Database& db,
                                     const std::string& where,
                                     std::int64_t after, std::size_t limit,
                                     std::optional<std::int64_t> bound) {
  SQLite::Statement query(db,
                          "SELECT max(seq) FROM (SELECT seq FROM"
                          " sigevents_outbox WHERE seq > ?1 AND " +
                              where + " ORDER BY seq LIMIT ?2)");
  query.bind(1, after);
  query.bind(2, static_cast<std::int64_t>(limit));
  if (bound) query.bind(3, *bound);
  query.executeStep();
  return OptionalInt(query.getColumn(0));
}

// Applies `change` (an UPDATE or DELETE of sigevents_outbox whose WHERE
// clause ends with "seq > ?1 AND seq <= ?2 AND " + where) to the rows that
// match `where`, in seq order, `batch_size` rows per write transaction.
// `where` may refer to `bound` as ?3. Returns the rows changed.
std::int64_t ChangeInBatches(SQLite::Database& db, const std::string& change,
                             const std::string& where, std::size_t batch_size,
                             std::optional<std::int64_t> bound) {
  if (batch_size == 0) batch_size = 1;
  std::int64_t changed = 0;
  std::int64_t after = 0;
  for (;;) {
    SQLite::Transaction txn(db, SQLite::TransactionBehavior::IMMEDIATE);
    std::optional<std::int64_t> end =
        BatchEnd(db, where, after, batch_size, bound);
    if (!end) break;  // the transaction rolls back: nothing was written
    SQLite::Statement statement(
        db, change + " WHERE seq > ?1 AND seq <= ?2 AND " + where);
    statement.bind(1, after);
    statement.bind(2, *end);
    if (bound) statement.bind(3, *bound);
    changed += statement.exec();
    txn.commit();
    after = *end;
  }
  return changed;
}

}  // namespace

std::unique_ptr<SQLite::Database> OpenOutbox(const std::string& path,
                                             Access access,
                                             int busy_timeout_ms) {
  std::error_code ec;
  std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    throw OutboxUnavailable(path + ": no such file");
  }
  if (std::filesystem::is_directory(status)) {
    throw OutboxUnavailable(path + " is a directory, not a database file");
  }
  std::unique_ptr<SQLite::Database> db;
  try {
    if (access == Access::kReadOnly) {
      OpenOptions options;
      options.read_only = true;
      options.create = false;
      options.busy_timeout_ms = busy_timeout_ms;
      db = OpenDatabase(path, options);
    } else {
      // Not OpenDatabase(): it would switch a database that turns out to
      // hold no outbox to WAL mode.
      db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE,
                                              busy_timeout_ms);
    }
    RequireSchema(*db);
  } catch (const SchemaError& e) {
    throw OutboxUnavailable(e.what());
  } catch (const SQLite::Exception& e) {
    throw OutboxUnavailable(DescribeOpenFailure(path, access, e));
  }
  return db;
}

std::int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view EventStateName(EventState state) {
  switch (state) {
    case EventState::kPending:
      return "pending";
    case EventState::kDelivered:
      return "delivered";
    case EventState::kFailed:
      return "failed";
  }
  return "pending";
}

std::optional<EventState> ParseEventState(std::string_view name) {
  for (EventState state :
       {EventState::kPending, EventState::kDelivered, EventState::kFailed}) {
    if (name == EventStateName(state)) return state;
  }
  return std::nullopt;
}

OutboxSummary Summarize(SQLite::Database& db, std::int64_t now_ms) {
  OutboxSummary summary;
  ReadSnapshot snapshot(db);

  SQLite::Statement meta(db,
                         "SELECT key, value FROM sigevents_meta"
                         " WHERE key IN ('schema_version', 'outbox_id')");
  while (meta.executeStep()) {
    std::string key = meta.getColumn(0).getString();
    std::string value = meta.getColumn(1).getString();
    if (key == "schema_version") {
      summary.schema_version = std::atoi(value.c_str());
    } else {
      summary.outbox_id = value;
    }
  }

  // The literal states let SQLite use the partial indexes of pending and
  // failed rows.
  SQLite::Statement pending(db,
                            "SELECT count(*), min(created_at) FROM"
                            " sigevents_outbox WHERE state = 'pending'");
  pending.executeStep();
  summary.pending = pending.getColumn(0).getInt64();
  summary.oldest_pending_ms = OptionalInt(pending.getColumn(1));
  summary.failed = CountWhere(db, "state = 'failed'");
  summary.delivered = CountWhere(db, "1") - summary.pending - summary.failed;

  SQLite::Statement recent(
      db,
      "SELECT count(*), coalesce(sum(delivered_at >= ?1), 0) FROM"
      " sigevents_outbox WHERE state = 'delivered' AND delivered_at >= ?2");
  recent.bind(1, now_ms - 60 * 1000);
  recent.bind(2, now_ms - 3600 * 1000);
  recent.executeStep();
  summary.delivered_last_hour = recent.getColumn(0).getInt64();
  summary.delivered_last_minute = recent.getColumn(1).getInt64();

  summary.lease = ReadLease(db);
  return summary;
}

void CheckTypePattern(const std::string& pattern) {
  std::size_t star = pattern.find('*');
  if (star != std::string::npos && star + 1 != pattern.size()) {
    throw std::invalid_argument(
        "bad type pattern \"" + pattern +
        "\": expected a type name or a prefix ending in '*' (server.*)");
  }
}

std::vector<OutboxRecord> ListEvents(SQLite::Database& db,
                                     const EventFilter& filter) {
  CheckTypePattern(filter.type_pattern);
  std::string sql = std::string("SELECT ") + kRecordColumns +
                    " FROM sigevents_outbox WHERE 1";
  if (filter.state) {
    // A literal, not a parameter, so the partial indexes apply.
    sql += " AND state = '" + std::string(EventStateName(*filter.state)) + "'";
  }
  std::string type = filter.type_pattern;
  bool prefix = !type.empty() && type.back() == '*';
  if (prefix) type.pop_back();
  if (prefix && !type.empty()) {
    sql += " AND substr(type, 1, length(:type)) = :type";
  } else if (!prefix && !type.empty()) {
    sql += " AND type = :type";
  }
  if (filter.key) sql += " AND partition_key = :key";
  if (filter.created_before_ms) sql += " AND created_at <= :before";
  sql += " ORDER BY seq";
  if (filter.limit > 0) sql += " LIMIT :limit";

  SQLite::Statement query(db, sql);
  if (!type.empty()) query.bind(":type", type);
  if (filter.key) query.bind(":key", *filter.key);
  if (filter.created_before_ms) {
    query.bind(":before", *filter.created_before_ms);
  }
  if (filter.limit > 0) {
    query.bind(":limit", static_cast<std::int64_t>(filter.limit));
  }
  std::vector<OutboxRecord> records;
  while (query.executeStep()) records.push_back(ReadRecord(query));
  return records;
}

EventRef EventRef::Parse(const std::string& text) {
  EventRef ref;
  bool digits = !text.empty() && text.size() <= 18;
  for (char c : text) {
    digits = digits && std::isdigit(static_cast<unsigned char>(c));
  }
  if (digits) {
    ref.seq = std::stoll(text);
  } else {
    ref.id = text;
  }
  return ref;
}

std::string EventRef::ToString() const {
  return seq ? "seq " + std::to_string(*seq) : "id " + id;
}

std::optional<OutboxRecord> FindEvent(SQLite::Database& db,
                                      const EventRef& ref) {
  SQLite::Statement query(db, std::string("SELECT ") + kRecordColumns +
                                  ", payload FROM sigevents_outbox WHERE " +
                                  (ref.seq ? "seq = ?" : "event_id = ?"));
  if (ref.seq) {
    query.bind(1, *ref.seq);
  } else {
    query.bind(1, ref.id);
  }
  if (!query.executeStep()) return std::nullopt;
  OutboxRecord record = ReadRecord(query);
  const SQLite::Column payload = query.getColumn(12);
  record.payload.assign(static_cast<const char*>(payload.getBlob()),
                        static_cast<std::size_t>(payload.getBytes()));
  return record;
}

std::optional<OutboxRecord> RetryEvent(SQLite::Database& db,
                                       const EventRef& ref, bool dry_run) {
  // The write lock first, so that the state read is the state changed.
  SQLite::Transaction txn(db, dry_run ? SQLite::TransactionBehavior::DEFERRED
                                      : SQLite::TransactionBehavior::IMMEDIATE);
  std::optional<OutboxRecord> before = FindEvent(db, ref);
  if (before && before->state == EventState::kFailed && !dry_run) {
    SQLite::Statement update(db,
                             "UPDATE sigevents_outbox SET state = 'pending'"
                             " WHERE seq = ? AND state = 'failed'");
    update.bind(1, before->seq);
    update.exec();
  }
  txn.commit();
  return before;
}

std::int64_t RetryAllFailed(SQLite::Database& db, bool dry_run,
                            std::size_t batch_size) {
  if (dry_run) return CountWhere(db, "state = 'failed'");
  return ChangeInBatches(db, "UPDATE sigevents_outbox SET state = 'pending'",
                         "state = 'failed'", batch_size, std::nullopt);
}

std::int64_t PurgeDelivered(SQLite::Database& db, std::int64_t before_ms,
                            bool dry_run, std::size_t batch_size) {
  if (dry_run) {
    return CountWhere(db, "state = 'delivered' AND delivered_at < ?",
                      before_ms);
  }
  return ChangeInBatches(db, "DELETE FROM sigevents_outbox",
                         "state = 'delivered' AND delivered_at < ?3",
                         batch_size, before_ms);
}

}  // namespace sigevents
