// emit() inside the caller's transaction, against a real SQLite file.

#define BOOST_TEST_MODULE emitter_test
#include "emitter/emitter.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "emitter/envelope.h"
#include "outbox/schema.h"
#include "tests/test_util.h"

namespace json = boost::json;

namespace sigevents {
namespace {

using testing::ScratchDir;

events::UserSuspended Suspension(const std::string& user_id) {
  events::UserSuspended event;
  event.userId(user_id)
      .userEmail("user@example.com")
      .loggedInUserId("456")
      .loggedInUserEmail("admin@example.com")
      .message("User suspended due to policy violation");
  return event;
}

std::unique_ptr<SQLite::Database> OpenService(const std::string& path) {
  auto db = OpenDatabase(path, OpenOptions{});
  db->exec(
      "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, state TEXT)");
  return db;
}

long long OutboxRows(SQLite::Database& db) {
  return db.execAndGet("SELECT count(*) FROM sigevents_outbox").getInt64();
}

BOOST_AUTO_TEST_CASE(committed_event_is_stored_byte_for_byte) {
  ScratchDir dir;
  auto db = OpenService(dir.File("auth.db"));
  Emitter emitter(*db);

  SQLite::Transaction txn(*db);
  db->exec("INSERT INTO users VALUES ('123', 'suspended')");
  EmitReceipt receipt = emitter.Emit(Suspension("123"));
  txn.commit();

  SQLite::Statement row(*db,
                        "SELECT seq, event_id, type, partition_key, payload,"
                        " state, attempts FROM sigevents_outbox");
  BOOST_REQUIRE(row.executeStep());
  BOOST_TEST(row.getColumn(0).getInt64() == receipt.seq);
  BOOST_TEST(row.getColumn(1).getString() == receipt.id);
  BOOST_TEST(row.getColumn(2).getString() == "user.suspended");
  BOOST_TEST(row.getColumn(3).getString() == "123");
  BOOST_TEST(row.getColumn(5).getString() == "pending");
  BOOST_TEST(row.getColumn(6).getInt() == 0);

  std::string payload = row.getColumn(4).getString();
  BOOST_TEST(payload.size() == receipt.size);
  json::object envelope = json::parse(payload).as_object();
  BOOST_TEST(envelope.at("id").as_string() == receipt.id);
  BOOST_TEST(envelope.at("data").at("userId").as_string() == "123");
  BOOST_TEST(envelope.at("source").as_string() ==
             "https://metalsoft.io/auth-microservice");
  BOOST_TEST(!row.executeStep());
}

BOOST_AUTO_TEST_CASE(rolled_back_transaction_leaves_no_event) {
  ScratchDir dir;
  auto db = OpenService(dir.File("auth.db"));
  Emitter emitter(*db);
  {
    SQLite::Transaction txn(*db);
    db->exec("INSERT INTO users VALUES ('123', 'suspended')");
    emitter.Emit(Suspension("123"));
    // No commit: the transaction rolls back when it leaves scope.
  }
  BOOST_TEST(OutboxRows(*db) == 0);
  BOOST_TEST(db->execAndGet("SELECT count(*) FROM users").getInt() == 0);
}

BOOST_AUTO_TEST_CASE(emit_outside_a_transaction_is_refused) {
  ScratchDir dir;
  auto db = OpenService(dir.File("auth.db"));
  Emitter emitter(*db);
  try {
    emitter.Emit(Suspension("123"));
    BOOST_ERROR("accepted");
  } catch (const EmitError& e) {
    BOOST_TEST(std::string(e.what()).find("no transaction is open") !=
               std::string::npos);
    BOOST_TEST(std::string(e.what()).find("\"user.suspended\"") !=
               std::string::npos);
  }
  BOOST_TEST(OutboxRows(*db) == 0);
}

BOOST_AUTO_TEST_CASE(bad_event_writes_nothing_and_keeps_the_transaction) {
  ScratchDir dir;
  auto db = OpenService(dir.File("auth.db"));
  Emitter emitter(*db, EmitOptions{/*max_event_bytes=*/2000});

  SQLite::Transaction txn(*db);
  BOOST_CHECK_THROW(emitter.Emit(Suspension("")), EventError);
  BOOST_CHECK_THROW(
      emitter.Emit(Suspension("1").message(std::string(3000, 'x'))),
      EventError);
  emitter.Emit(Suspension("2"));
  txn.commit();
  BOOST_TEST(OutboxRows(*db) == 1);
}

BOOST_AUTO_TEST_CASE(schema_is_created_once_and_is_versioned) {
  ScratchDir dir;
  auto db = OpenService(dir.File("auth.db"));
  Emitter first(*db);
  std::string outbox_id = ReadOutboxId(*db);
  Emitter second(*db);
  BOOST_TEST(ReadOutboxId(*db) == outbox_id);
  BOOST_TEST(db->execAndGet("SELECT value FROM sigevents_meta"
                            " WHERE key = 'schema_version'")
                 .getString() == "1");

  db->exec(
      "UPDATE sigevents_meta SET value = '2'"
      " WHERE key = 'schema_version'");
  BOOST_CHECK_THROW(Emitter third(*db), SchemaError);
}

BOOST_AUTO_TEST_CASE(eight_threads_emit_in_commit_order) {
  ScratchDir dir;
  const std::string path = dir.File("inventory.db");
  {
    auto db = OpenService(path);
    Emitter create(*db);
    db->exec("CREATE TABLE commits (n INTEGER NOT NULL)");
    db->exec("INSERT INTO commits VALUES (0)");
  }

  constexpr int kThreads = 8;
  constexpr int kPerThread = 1000;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        auto db = OpenDatabase(path, OpenOptions{});
        db->setBusyTimeout(60000);
        Emitter emitter(*db);
        for (int i = 0; i < kPerThread; ++i) {
          // The business change takes the write lock first; the counter
          // then records the order in which transactions commit.
          SQLite::Transaction txn(*db, SQLite::TransactionBehavior::IMMEDIATE);
          db->exec("UPDATE commits SET n = n + 1");
          long long n = db->execAndGet("SELECT n FROM commits").getInt64();
          emitter.Emit(
              Suspension(std::to_string(t)).message(std::to_string(n)));
          txn.commit();
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    BOOST_TEST_CONTEXT("thread " << t) { BOOST_TEST(errors[t] == ""); }
  }

  auto db = OpenDatabase(path, OpenOptions{});
  SQLite::Statement rows(*db,
                         "SELECT seq, event_id, payload FROM sigevents_outbox"
                         " ORDER BY seq");
  std::set<std::string> ids;
  long long count = 0, previous_commit = 0, previous_seq = 0;
  while (rows.executeStep()) {
    ++count;
    long long seq = rows.getColumn(0).getInt64();
    ids.insert(rows.getColumn(1).getString());
    json::value payload = json::parse(rows.getColumn(2).getString());
    long long commit =
        std::stoll(std::string(payload.at("data").at("message").as_string()));
    BOOST_TEST_REQUIRE(seq > previous_seq);
    BOOST_TEST_REQUIRE(commit == previous_commit + 1);
    previous_seq = seq;
    previous_commit = commit;
  }
  BOOST_TEST(count == kThreads * kPerThread);
  BOOST_TEST(ids.size() == static_cast<std::size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace sigevents
