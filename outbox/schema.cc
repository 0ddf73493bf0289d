#include "outbox/schema.h"

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include "emitter/envelope.h"

namespace sigevents {
namespace {

constexpr const char* kCreateStatements[] = {
    "CREATE TABLE IF NOT EXISTS sigevents_meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ") WITHOUT ROWID",

    "CREATE TABLE IF NOT EXISTS sigevents_outbox ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  event_id TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL,"
    "  partition_key TEXT NOT NULL,"
    "  payload BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"  // milliseconds since the Unix epoch
    "  state TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (state IN ('pending', 'delivered', 'failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  delivered_at INTEGER,"
    "  topic TEXT,"
    "  kafka_partition INTEGER,"
    "  kafka_offset INTEGER"
    ")",

    // The relay's work list and the operators' list of stuck events stay
    // small however many delivered rows are kept.
    "CREATE INDEX IF NOT EXISTS sigevents_outbox_pending"
    "  ON sigevents_outbox (seq) WHERE state = 'pending'",
    "CREATE INDEX IF NOT EXISTS sigevents_outbox_failed"
    "  ON sigevents_outbox (seq) WHERE state = 'failed'",

    "CREATE TABLE IF NOT EXISTS sigevents_relay_lease ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  owner TEXT,"
    "  host TEXT,"
    "  pid INTEGER,"
    "  acquired_at INTEGER,"
    "  heartbeat_at INTEGER,"
    "  clean_stop INTEGER NOT NULL DEFAULT 1"
    ")",
    "INSERT OR IGNORE INTO sigevents_relay_lease (id) VALUES (1)",

    "CREATE TABLE IF NOT EXISTS sigevents_kafka_checkpoint ("
    "  topic TEXT NOT NULL,"
    "  kafka_partition INTEGER NOT NULL,"
    "  next_offset INTEGER NOT NULL,"
    "  PRIMARY KEY (topic, kafka_partition)"
    ") WITHOUT ROWID",
};

bool HasMetaTable(SQLite::Database& db) {
  return db.tableExists("sigevents_meta");
}

int ReadSchemaVersion(SQLite::Database& db) {
  SQLite::Statement query(
      db, "SELECT value FROM sigevents_meta WHERE key = 'schema_version'");
  if (!query.executeStep()) return 0;
  return std::stoi(query.getColumn(0).getString());
}

void CheckVersion(SQLite::Database& db, int version) {
  if (version > kOutboxSchemaVersion) {
    throw SchemaError("outbox in " + db.getFilename() + " has schema version " +
                      std::to_string(version) + ", newer than version " +
                      std::to_string(kOutboxSchemaVersion) +
                      " that this build knows; upgrade sigevents");
  }
}

void CreateTables(SQLite::Database& db) {
  if (HasMetaTable(db)) {
    int version = ReadSchemaVersion(db);
    CheckVersion(db, version);
    if (version == kOutboxSchemaVersion) return;
  }
  for (const char* statement : kCreateStatements) db.exec(statement);

  SQLite::Statement meta(
      db, "INSERT OR IGNORE INTO sigevents_meta (key, value) VALUES (?, ?)");
  auto put = [&meta](const char* key, const std::string& value) {
    meta.bind(1, key);
    meta.bind(2, value);
    meta.exec();
    meta.reset();
  };
  put("schema_version", std::to_string(kOutboxSchemaVersion));
  put("outbox_id", NewEventStamp().id);
}

// SQLite's messages name neither the file nor the operation ("file is not a
// database"); this one names both and keeps SQLite's result code.
[[noreturn]] void ThrowNamingFile(const std::string& operation,
                                  const std::string& path,
                                  const SQLite::Exception& e) {
  throw SQLite::Exception(operation + " " + path + ": " + e.what(),
                          e.getErrorCode());
}

void EnsureSchemaInOwnTransaction(SQLite::Database& db) {
  // BEGIN IMMEDIATE: two processes creating the outbox at once queue on the
  // write lock instead of failing on a lock upgrade.
  db.exec("BEGIN IMMEDIATE");
  try {
    CreateTables(db);
    db.exec("COMMIT");
  } catch (...) {
    // After some errors (disk full, I/O error) SQLite has already rolled
    // the transaction back; a failing ROLLBACK must not hide the cause.
    if (sqlite3_get_autocommit(db.getHandle()) == 0) {
      sqlite3_exec(db.getHandle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    throw;
  }
}

}  // namespace

void EnsureSchema(SQLite::Database& db) {
  try {
    if (sqlite3_get_autocommit(db.getHandle()) == 0) {
      CreateTables(db);
    } else {
      EnsureSchemaInOwnTransaction(db);
    }
  } catch (const SQLite::Exception& e) {
    ThrowNamingFile("create or check the sigevents outbox in", db.getFilename(),
                    e);
  }
}

void RequireSchema(SQLite::Database& db) {
  if (!HasMetaTable(db) || !db.tableExists("sigevents_outbox")) {
    throw SchemaError(db.getFilename() + " holds no sigevents outbox");
  }
  int version = ReadSchemaVersion(db);
  if (version == 0) {
    throw SchemaError(db.getFilename() +
                      ": outbox has no schema_version; it is damaged");
  }
  CheckVersion(db, version);
}

std::string ReadOutboxId(SQLite::Database& db) {
  SQLite::Statement query(
      db, "SELECT value FROM sigevents_meta WHERE key = 'outbox_id'");
  if (!query.executeStep()) {
    throw SchemaError(db.getFilename() + ": outbox has no outbox_id");
  }
  return query.getColumn(0).getString();
}

std::unique_ptr<SQLite::Database> OpenDatabase(const std::string& path,
                                               const OpenOptions& options) {
  int flags =
      options.read_only ? SQLite::OPEN_READONLY : SQLite::OPEN_READWRITE;
  if (!options.read_only && options.create) flags |= SQLite::OPEN_CREATE;
  try {
    auto db = std::make_unique<SQLite::Database>(path, flags,
                                                 options.busy_timeout_ms);
    if (!options.read_only) {
      db->exec("PRAGMA journal_mode = WAL");
      db->exec("PRAGMA synchronous = NORMAL");
    }
    return db;
  } catch (const SQLite::Exception& e) {
    ThrowNamingFile("open", path, e);
  }
}

}  // namespace sigevents
