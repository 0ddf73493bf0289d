// The outbox's tables inside a service's own SQLite database, and the
// connection settings the module relies on.
//
// Tables (schema version 1), all prefixed `sigevents_`:
//
//   sigevents_meta      key/value: schema_version, outbox_id (a UUID chosen
//                       when the outbox is created; it marks every Kafka
//                       message this outbox publishes), kafka_cluster_id.
//   sigevents_outbox    one row per event, `seq` increasing with commit order
//                       and never reused (AUTOINCREMENT). `state` is
//                       'pending' until Kafka acknowledges the event, then
//                       'delivered' with its topic, partition and offset, or
//                       'failed' with `last_error` when Kafka refused it for
//                       good.
//   sigevents_relay_lease      the single row naming the relay that drains
//                              this outbox and its last heartbeat.
//   sigevents_kafka_checkpoint per topic partition, the offset from which
//                              the relay must read back after a crash.
//
// Creating the tables is idempotent, so every process may call
// EnsureSchema() on start. A database whose outbox has a newer schema
// version than this build knows is refused, never altered.
//
// Thread safety: these functions use only the connection they are given; a
// SQLite::Database must not be used by two threads at once.

#ifndef SIGEVENTS_OUTBOX_SCHEMA_H_
#define SIGEVENTS_OUTBOX_SCHEMA_H_

#include <SQLiteCpp/Database.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace sigevents {

constexpr int kOutboxSchemaVersion = 1;

// The database holds no outbox, or one this build cannot use.
class SchemaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Creates the outbox tables if they are missing, in the caller's open
// transaction if there is one and in a transaction of its own otherwise.
// Throws SchemaError for an outbox of a newer version, SQLite::Exception
// when the database cannot be read or written (not a database, corrupt,
// read-only, full, busy); its message names the file and its
// getErrorCode() is SQLite's primary result code.
void EnsureSchema(SQLite::Database& db);

// Checks that `db` holds an outbox of a version this build reads, without
// writing anything. Throws SchemaError naming what is wrong.
void RequireSchema(SQLite::Database& db);

// The outbox id recorded when the outbox was created.
std::string ReadOutboxId(SQLite::Database& db);

// How the module opens its own connections (relay, command line).
struct OpenOptions {
  bool read_only = false;  // never create, never write
  bool create = true;      // create the file when missing (writers only)
  int busy_timeout_ms = 5000;
};

// Opens `path` with the settings the outbox needs: WAL journal mode (so the
// relay reads while services write), synchronous=NORMAL and a busy timeout.
// Services that open their own connections should set the same: WAL once for
// the file, a busy timeout on each connection. Throws SQLite::Exception
// naming `path`.
std::unique_ptr<SQLite::Database> OpenDatabase(const std::string& path,
                                               const OpenOptions& options);

}  // namespace sigevents

#endif  // SIGEVENTS_OUTBOX_SCHEMA_H_
