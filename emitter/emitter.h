// emit(): writes a significant event into the outbox table of the caller's
// own SQLite database, inside the caller's open transaction, so that the
// event exists if and only if the caller's business change commits.
//
//   SQLite::Database db("inventory.db", SQLite::OPEN_READWRITE);
//   sigevents::Emitter emitter(db);  // creates the outbox on first use
//   SQLite::Transaction txn(db);
//   db.exec("UPDATE servers SET status = 'AVAILABLE' WHERE id = 123");
//   emitter.Emit(sigevents::events::ServerRegistered()
//                    .serverId(123).serverStatus("AVAILABLE")
//                    .serverTypeId(25).siteId(1).userId(456));
//   txn.commit();  // the event is now durable; a relay will publish it
//
// Contract
// - Emit() requires an open transaction on the connection; with none it
//   throws EmitError and writes nothing. It never commits or rolls back.
// - Bad input throws EventError naming the type, field and cause: unknown
//   type or field, missing field, wrong shape, empty entity id, ill-formed
//   UTF-8, too deep, or an envelope larger than max_event_bytes. Nothing is
//   written. A storage failure (disk full, database busy, read-only) throws
//   EmitError carrying SQLite's error code. Either exception leaving a
//   SQLite::Transaction's scope rolls the whole business change back.
// - Busy: SQLite waits up to the connection's busy timeout for the write
//   lock, except in a transaction that has already read: there it fails at
//   once (SQLITE_BUSY, or SQLITE_BUSY_SNAPSHOT if another connection
//   committed since), since waiting could deadlock. Begin transactions that
//   write with BEGIN IMMEDIATE (SQLite::TransactionBehavior::IMMEDIATE) to
//   wait for the lock up front.
// - Durability: once the caller's COMMIT returns, the event is in the
//   database file with the durability of the caller's connection settings
//   (in WAL mode, synchronous=FULL survives power loss; NORMAL survives a
//   process crash but may lose the last commits on power loss).
// - Order: `seq` grows with commit order across all connections and
//   processes, because SQLite admits one writer at a time.
// - Commits on the connection wake relays in this process at once (see
//   outbox/commit_signal.h, including what that does to the connection's
//   WAL hook).
//
// Thread safety: an Emitter is bound to one connection and is as
// thread-compatible as that connection: use each from one thread at a time.
// Many threads, each with its own connection and Emitter, may emit at once.
// The connection must outlive the Emitter.

#ifndef SIGEVENTS_EMITTER_EMITTER_H_
#define SIGEVENTS_EMITTER_EMITTER_H_

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "emitter/event.h"
#include "emitter/events.h"

namespace sigevents {

class CommitSignal;

struct EmitOptions {
  // The largest envelope accepted, in bytes: Kafka's default largest
  // message (message.max.bytes of brokers, 1,000,000 bytes).
  std::size_t max_event_bytes = 1000000;
};

// emit() could not write a valid event: no transaction open, or SQLite
// failed. sqlite_code() is SQLite's extended result code, or 0.
class EmitError : public std::runtime_error {
 public:
  EmitError(const std::string& message, int sqlite_code)
      : std::runtime_error(message), sqlite_code_(sqlite_code) {}
  int sqlite_code() const { return sqlite_code_; }

 private:
  int sqlite_code_;
};

// What Emit() wrote.
struct EmitReceipt {
  std::int64_t seq = 0;  // the outbox sequence number
  std::string id;        // the CloudEvents id, a UUID version 7
  std::size_t size = 0;  // bytes of the published JSON
};

class Emitter {
 public:
  // Creates the outbox tables in `db` if they are missing (in the caller's
  // open transaction, if any) and prepares the insert. Throws SchemaError or
  // SQLite::Exception.
  explicit Emitter(SQLite::Database& db, EmitOptions options = {});
  ~Emitter();

  Emitter(const Emitter&) = delete;
  Emitter& operator=(const Emitter&) = delete;

  EmitReceipt Emit(const Event& event);
  EmitReceipt Emit(const EventBuilder& builder) {
    return Emit(builder.Build());
  }

 private:
  SQLite::Database& db_;
  EmitOptions options_;
  SQLite::Statement insert_;
};

// One-off forms for callers that emit rarely: each call prepares its
// statement again. Hold an Emitter per connection on hot paths.
EmitReceipt Emit(SQLite::Database& db, const Event& event);
EmitReceipt Emit(SQLite::Database& db, const EventBuilder& builder);

}  // namespace sigevents

#endif  // SIGEVENTS_EMITTER_EMITTER_H_
