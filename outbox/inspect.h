// The operator's view of an outbox: the queries behind `sigevents status`,
// `list`, `show`, `check`, `metrics`, and the two repairs, `retry` (failed
// events back to pending) and `purge` (old delivered rows deleted). They run
// against a live database while services emit and a relay drains it.
//
//   auto db = sigevents::OpenOutbox("app.db", sigevents::Access::kReadOnly);
//   sigevents::OutboxSummary summary =
//       sigevents::Summarize(*db, sigevents::UnixMillisNow());
//   if (summary.failed > 0) { ... }
//
// How it behaves
// - OpenOutbox() never creates a file and never alters one that holds no
//   outbox. A read-only connection writes nothing to the database, but in
//   WAL mode SQLite needs the file's `-shm` index: it is created next to the
//   database when missing, and the open fails when it is missing and the
//   directory is not writable.
// - Readers see one consistent snapshot per call and never block writers
//   (WAL). Repairs take the write lock in short transactions (BEGIN
//   IMMEDIATE, at most `batch_size` rows each) and wait for it up to the
//   connection's busy timeout.
// - Repairs only move rows the relay no longer handles: retry changes rows
//   whose state is 'failed' at the moment of the update, purge deletes rows
//   whose state is 'delivered'. A pending row is never touched, so an event
//   is neither lost nor sent twice because of them.
// - Times are milliseconds since the Unix epoch; "now" is a parameter, so
//   ages are reproducible.
//
// Errors: OpenOutbox() throws OutboxUnavailable; every query throws
// SQLite::Exception when SQLite fails (busy past the timeout, I/O error).
//
// Thread safety: the functions use only the connection they are given; a
// SQLite::Database must not be used by two threads at once.

#ifndef SIGEVENTS_OUTBOX_INSPECT_H_
#define SIGEVENTS_OUTBOX_INSPECT_H_

#include <SQLiteCpp/Database.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sigevents {

// The file cannot be used as an outbox: it is missing, not a SQLite
// database, unreadable, holds no outbox, or an outbox of a newer schema
// version. what() names the file and the cause.
class OutboxUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Access { kReadOnly, kReadWrite };

// Opens an existing outbox. kReadOnly opens with SQLITE_OPEN_READONLY;
// kReadWrite opens for the repairs without changing the journal mode.
// Either waits up to `busy_timeout_ms` for locks.
std::unique_ptr<SQLite::Database> OpenOutbox(const std::string& path,
                                             Access access,
                                             int busy_timeout_ms = 5000);

std::int64_t UnixMillisNow();

enum class EventState { kPending, kDelivered, kFailed };

// "pending", "delivered", "failed": the values of the `state` column.
std::string_view EventStateName(EventState state);
std::optional<EventState> ParseEventState(std::string_view name);

// The row of sigevents_relay_lease.
struct LeaseInfo {
  std::string owner;  // "" when no relay holds the lease
  std::string host;
  std::optional<std::int64_t> pid;
  std::optional<std::int64_t> acquired_at_ms;
  std::optional<std::int64_t> heartbeat_at_ms;
  bool clean_stop = true;

  bool held() const { return !owner.empty(); }
};

struct OutboxSummary {
  int schema_version = 0;
  std::string outbox_id;
  std::int64_t pending = 0;
  std::int64_t failed = 0;
  std::int64_t delivered = 0;
  // created_at of the oldest pending event; unset when none is pending.
  std::optional<std::int64_t> oldest_pending_ms;
  std::int64_t delivered_last_minute = 0;  // by delivered_at, up to now_ms
  std::int64_t delivered_last_hour = 0;
  LeaseInfo lease;
};

// Counts and lease, from one snapshot. Counting delivered rows reads the
// whole table once (there is no index on delivered_at).
OutboxSummary Summarize(SQLite::Database& db, std::int64_t now_ms);

// One outbox row. `payload` is filled by FindEvent() only.
struct OutboxRecord {
  std::int64_t seq = 0;
  std::string id;
  std::string type;
  std::string key;
  EventState state = EventState::kPending;
  std::int64_t attempts = 0;
  std::optional<std::string> last_error;
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> delivered_at_ms;
  std::optional<std::string> topic;
  std::optional<std::int64_t> partition;
  std::optional<std::int64_t> offset;
  std::string payload;  // the CloudEvent as stored, compact JSON
};

struct EventFilter {
  std::optional<EventState> state;  // unset: every state
  // A type name, or a prefix ending in '*' ("server.*"); "" matches all.
  std::string type_pattern;
  std::optional<std::string> key;
  std::optional<std::int64_t> created_before_ms;  // created_at <= this
  std::size_t limit = 100;                        // 0: no limit
};

// Throws std::invalid_argument when a '*' is anywhere but at the end.
void CheckTypePattern(const std::string& pattern);

// The rows that match, oldest (lowest seq) first, at most filter.limit.
// Throws std::invalid_argument for a bad type pattern.
std::vector<OutboxRecord> ListEvents(SQLite::Database& db,
                                     const EventFilter& filter);

// An event named on the command line: by sequence number or by id.
struct EventRef {
  std::optional<std::int64_t> seq;  // set when the text was all digits
  std::string id;                   // otherwise the event id

  // "42" -> seq 42; anything else is an id. Event ids are UUIDs, never
  // all digits.
  static EventRef Parse(const std::string& text);
  std::string ToString() const;  // "seq 42" or "id 0193..."
};

std::optional<OutboxRecord> FindEvent(SQLite::Database& db,
                                      const EventRef& ref);

// Sets one failed event back to pending, keeping `attempts` and
// `last_error` as a record of the failure; the relay sends it again and
// overwrites them. Returns the row as it was before (unset when there is no
// such event); only when its state was kFailed, and `dry_run` is false, has
// it changed.
std::optional<OutboxRecord> RetryEvent(SQLite::Database& db,
                                       const EventRef& ref, bool dry_run);

// Sets every failed event back to pending, `batch_size` rows per
// transaction, and returns how many it changed (or would change). Events
// that fail again while it runs are not retried a second time.
std::int64_t RetryAllFailed(SQLite::Database& db, bool dry_run,
                            std::size_t batch_size = 1000);

// Deletes delivered events whose delivered_at is before `before_ms`,
// `batch_size` rows per transaction, and returns how many it deleted (or
// would delete). Pending and failed rows are never deleted.
std::int64_t PurgeDelivered(SQLite::Database& db, std::int64_t before_ms,
                            bool dry_run, std::size_t batch_size = 1000);

}  // namespace sigevents

#endif  // SIGEVENTS_OUTBOX_INSPECT_H_
