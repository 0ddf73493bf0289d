#include "emitter/emitter.h"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include "emitter/envelope.h"
#include "emitter/utf8.h"
#include "outbox/commit_signal.h"
#include "outbox/schema.h"

namespace sigevents {
namespace {

std::string Describe(const Event& event, const EventStamp& stamp) {
  return "emit \"" + std::string(event.type()) + "\" (id " + stamp.id +
         ", key \"" + EscapeForMessage(event.key()) + "\")";
}

}  // namespace

Emitter::Emitter(SQLite::Database& db, EmitOptions options)
    : db_(db),
      options_(options),
      insert_((EnsureSchema(db), db),
              "INSERT INTO sigevents_outbox"
              " (event_id, type, partition_key, payload, created_at)"
              " VALUES (?, ?, ?, ?, ?)") {
  CommitSignal::Attach(db_, CommitSignal::ForFile(db_.getFilename()));
}

Emitter::~Emitter() = default;

EmitReceipt Emitter::Emit(const Event& event) {
  EventStamp stamp = NewEventStamp();
  if (sqlite3_get_autocommit(db_.getHandle()) != 0) {
    throw EmitError(Describe(event, stamp) +
                        ": no transaction is open on the connection; call "
                        "Emit() inside the transaction of the business change",
                    0);
  }

  std::string payload = SerializeEnvelope(event, stamp);
  if (payload.size() > options_.max_event_bytes) {
    throw EventError(EventErrorKind::kTooLarge, std::string(event.type()), "",
                     "event is " + std::to_string(payload.size()) +
                         " bytes, more than the maximum of " +
                         std::to_string(options_.max_event_bytes));
  }

  try {
    insert_.bindNoCopy(1, stamp.id);
    // Catalog names are string literals, so NUL-terminated.
    insert_.bindNoCopy(2, event.spec().type.data());
    insert_.bindNoCopy(3, event.key());
    insert_.bindNoCopy(4, payload.data(), static_cast<int>(payload.size()));
    insert_.bind(5, static_cast<std::int64_t>(stamp.unix_ms));
    insert_.exec();
    insert_.reset();
  } catch (const SQLite::Exception& e) {
    int code = e.getExtendedErrorCode();
    try {
      insert_.reset();
    } catch (const SQLite::Exception&) {
      // reset() repeats the step's error; the statement is reusable anyway.
    }
    throw EmitError(Describe(event, stamp) + ": " + e.what(), code);
  }
  return EmitReceipt{db_.getLastInsertRowid(), std::move(stamp.id),
                     payload.size()};
}

EmitReceipt Emit(SQLite::Database& db, const Event& event) {
  return Emitter(db).Emit(event);
}

EmitReceipt Emit(SQLite::Database& db, const EventBuilder& builder) {
  return Emitter(db).Emit(builder.Build());
}

}  // namespace sigevents
