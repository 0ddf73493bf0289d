// The operator commands (status, list, show, retry, purge, check, metrics)
// against real outbox files: in-process through their Run functions, end to
// end through the `sigevents` binary, and a retry while a relay drains the
// outbox to an embedded Kafka.

#define BOOST_TEST_MODULE cli_ops_test
#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/cli.h"
#include "adapters/embedded_kafka.h"
#include "adapters/topic_consumer.h"
#include "emitter/emitter.h"
#include "outbox/inspect.h"
#include "outbox/log.h"
#include "outbox/relay.h"
#include "outbox/schema.h"
#include "tests/test_util.h"

extern char** environ;

namespace sigevents::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::ScratchDir;

constexpr std::int64_t kSecond = 1000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;

// ---------------------------------------------------------------------------
// Running commands

struct Output {
  int status = -1;
  std::string out;
  std::string err;
};

Output Run(CommandFn command, std::vector<std::string> args) {
  args.insert(args.begin(), "sigevents-subcommand");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::istringstream in;
  std::ostringstream out, err;
  Io io{in, out, err};
  Output output;
  output.status = command(static_cast<int>(args.size()), argv.data(), io);
  output.out = out.str();
  output.err = err.str();
  return output;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs the real binary, found in the test's runfiles, with no input.
Output RunBinary(const ScratchDir& dir, std::vector<std::string> args) {
  const std::string binary = "adapters/sigevents";
  BOOST_REQUIRE_MESSAGE(fs::exists(binary),
                        binary + " is missing from the runfiles of " +
                            fs::current_path().string());
  args.insert(args.begin(), binary);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::string out_path = dir.File("binary.out");
  std::string err_path = dir.File("binary.err");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, binary.c_str(), &actions, nullptr,
                            argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  BOOST_REQUIRE_MESSAGE(spawned == 0, "posix_spawn " + binary + " failed");
  int wait_status = 0;
  BOOST_REQUIRE(waitpid(pid, &wait_status, 0) == pid);
  BOOST_REQUIRE_MESSAGE(WIFEXITED(wait_status), binary + " did not exit");

  Output output;
  output.status = WEXITSTATUS(wait_status);
  output.out = ReadFile(out_path);
  output.err = ReadFile(err_path);
  return output;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool IsRfc3339(const json::value& value) {
  static const std::regex pattern(
      R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  return value.is_string() &&
         std::regex_match(std::string(value.get_string()), pattern);
}

// ---------------------------------------------------------------------------
// A service database with events in every state

Event ServerRegistered(const std::string& server_id) {
  return Event::FromJson("server.registered",
                         R"({"serverId":")" + server_id +
                             R"(","serverStatus":"AVAILABLE",)"
                             R"("serverTypeId":"25","siteId":"1",)"
                             R"("userId":"456"})");
}

Event UserSuspended(const std::string& user_id) {
  return Event::FromJson("user.suspended",
                         R"({"userId":")" + user_id +
                             R"(","userEmail":"user@example.com",)"
                             R"("loggedInUserId":"456",)"
                             R"("loggedInUserEmail":"admin@example.com",)"
                             R"("message":"policy violation"})");
}

// One row of the fixture, as a relay would have left it. Times are ages
// relative to the moment the fixture is built; -1 means NULL.
struct FixtureRow {
  const char* type;
  const char* key;
  const char* state;
  std::int64_t created_ago;
  std::int64_t delivered_ago;
  int attempts;
  const char* last_error;
};

// seq = index + 1.
const FixtureRow kRows[] = {
    {"server.registered", "s1", "delivered", 3 * kHour, 2 * kHour, 1, nullptr},
    {"server.registered", "s2", "delivered", 3 * kHour, 2 * kHour, 1, nullptr},
    {"user.suspended", "u1", "delivered", 40 * kMinute, 30 * kMinute, 2,
     nullptr},
    {"user.suspended", "u2", "delivered", 20 * kSecond, 10 * kSecond, 1,
     nullptr},
    {"server.registered", "s3", "failed", kHour, -1, 3,
     "Broker: Message size too large"},
    {"user.suspended", "u1", "failed", 50 * kMinute, -1, 1,
     "Broker: Topic authorization failed"},
    {"server.registered", "s1", "pending", 10 * kMinute, -1, 0, nullptr},
    {"server.registered", "s4", "pending", 30 * kSecond, -1, 0, nullptr},
    {"user.suspended", "u3", "pending", 5 * kSecond, -1, 0, nullptr},
    {"user.suspended", "u1", "pending", 1 * kSecond, -1, 0, nullptr},
};
constexpr int kPending = 4, kFailed = 2, kDelivered = 4;

// A database file with the rows of kRows, emitted through the real
// Emitter, then moved to their states with SQL as the relay would. A writer
// connection stays open, as in a running service, until Close().
class Outbox {
 public:
  Outbox() : path_(dir_.File("service.db")), now_ms_(UnixMillisNow()) {
    db_ = OpenDatabase(path_, OpenOptions{});
    db_->exec("CREATE TABLE servers (id TEXT PRIMARY KEY)");
    Emitter emitter(*db_);
    SQLite::Transaction txn(*db_);
    for (const FixtureRow& row : kRows) {
      Event event = std::string(row.type) == "server.registered"
                        ? ServerRegistered(row.key)
                        : UserSuspended(row.key);
      EmitReceipt receipt = emitter.Emit(event);
      seqs_.push_back(receipt.seq);
      ids_.push_back(receipt.id);
    }
    txn.commit();
    for (std::size_t i = 0; i < std::size(kRows); ++i) SetRow(i, kRows[i]);
  }

  const std::string& path() const { return path_; }
  const ScratchDir& dir() const { return dir_; }
  std::int64_t now_ms() const { return now_ms_; }
  SQLite::Database& db() { return *db_; }
  std::int64_t seq(int row) const { return seqs_.at(row); }
  const std::string& id(int row) const { return ids_.at(row); }

  // The rows of kRows whose index satisfies `pick`, as seq numbers.
  std::vector<std::int64_t> Seqs(
      const std::function<bool(const FixtureRow&)>& pick) const {
    std::vector<std::int64_t> seqs;
    for (std::size_t i = 0; i < std::size(kRows); ++i) {
      if (pick(kRows[i])) seqs.push_back(seqs_[i]);
    }
    return seqs;
  }

  void SetLease(const std::string& owner, std::int64_t heartbeat_ago) {
    SQLite::Statement lease(
        *db_,
        "UPDATE sigevents_relay_lease SET owner = ?, host = 'db-host-1',"
        " pid = 4242, acquired_at = ?, heartbeat_at = ?, clean_stop = 0"
        " WHERE id = 1");
    lease.bind(1, owner);
    lease.bind(2, now_ms_ - kHour);
    lease.bind(3, now_ms_ - heartbeat_ago);
    lease.exec();
  }

  std::int64_t Count(const std::string& state) {
    SQLite::Statement count(
        *db_, "SELECT count(*) FROM sigevents_outbox WHERE state = ?");
    count.bind(1, state);
    count.executeStep();
    return count.getColumn(0).getInt64();
  }

  // Closes the writer connection: SQLite then removes -wal and -shm.
  void Close() { db_.reset(); }

 private:
  void SetRow(std::size_t index, const FixtureRow& row) {
    SQLite::Statement update(
        *db_,
        "UPDATE sigevents_outbox SET state = ?, created_at = ?,"
        " delivered_at = ?, topic = ?, kafka_partition = ?, kafka_offset = ?,"
        " attempts = ?, last_error = ? WHERE seq = ?");
    update.bind(1, row.state);
    update.bind(2, now_ms_ - row.created_ago);
    if (row.delivered_ago >= 0) {
      update.bind(3, now_ms_ - row.delivered_ago);
      update.bind(4, "significant-events");
      update.bind(5, static_cast<int>(index % 4));
      update.bind(6, static_cast<std::int64_t>(100 + index));
    }
    update.bind(7, row.attempts);
    if (row.last_error != nullptr) update.bind(8, row.last_error);
    update.bind(9, seqs_[index]);
    update.exec();
  }

  ScratchDir dir_;
  std::string path_;
  std::int64_t now_ms_;
  std::unique_ptr<SQLite::Database> db_;
  std::vector<std::int64_t> seqs_;
  std::vector<std::string> ids_;
};

// A fresh outbox holding `count` events emitted just now.
std::string FreshOutbox(const ScratchDir& dir, int count,
                        const std::string& name = "fresh.db") {
  std::string path = dir.File(name);
  auto db = OpenDatabase(path, OpenOptions{});
  Emitter emitter(*db);
  SQLite::Transaction txn(*db);
  for (int i = 0; i < count; ++i) emitter.Emit(ServerRegistered("f"));
  txn.commit();
  return path;
}

// Files that are not a usable outbox. Each returns its path.
std::string NotSqlite(const ScratchDir& dir) {
  std::string path = dir.File("notes.txt");
  std::ofstream(path) << "these are not the pages you are looking for\n"
                      << std::string(4096, 'x');
  return path;
}

std::string EmptyFile(const ScratchDir& dir) {
  std::string path = dir.File("empty.db");
  std::ofstream{path};
  return path;
}

std::string NoOutbox(const ScratchDir& dir) {
  std::string path = dir.File("plain.db");
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("CREATE TABLE servers (id TEXT PRIMARY KEY)");
  return path;
}

std::string NewerOutbox(const ScratchDir& dir) {
  std::string path = FreshOutbox(dir, 1, "newer.db");
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  db.exec("UPDATE sigevents_meta SET value = '2' WHERE key = 'schema_version'");
  return path;
}

json::value ParseJson(const std::string& text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  BOOST_REQUIRE_MESSAGE(!ec, "not JSON (" + ec.message() + "): " + text);
  return value;
}

std::vector<std::int64_t> SeqsOf(const json::value& list) {
  std::vector<std::int64_t> seqs;
  for (const json::value& row : list.as_array()) {
    seqs.push_back(row.at("seq").as_int64());
  }
  return seqs;
}

// The value of "label  value" in a two-column listing, or "" if absent.
std::string Field(const std::string& text, const std::string& label) {
  for (const std::string& line : Lines(text)) {
    if (StartsWith(line, label + "  ")) {
      std::size_t value = line.find_first_not_of(' ', label.size());
      return line.substr(value);
    }
  }
  return "";
}

// The cells of a table row: text separated by two spaces or more.
std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  while (start < line.size()) {
    std::size_t gap = line.find("  ", start);
    cells.push_back(line.substr(start, gap - start));
    if (gap == std::string::npos) break;
    start = line.find_first_not_of(' ', gap);
  }
  return cells;
}

// ---------------------------------------------------------------------------
// status

BOOST_AUTO_TEST_CASE(status_puts_problems_first_then_aligned_figures) {
  Outbox outbox;
  Output result = Run(RunStatus, {"--db", outbox.path()});
  BOOST_TEST(result.status == 0);
  BOOST_TEST(result.err == "");

  std::vector<std::string> lines = Lines(result.out);
  BOOST_REQUIRE(lines.size() > 4);
  BOOST_TEST(lines[0] ==
             "PROBLEM: 2 failed events; see `sigevents list --state failed`");
  BOOST_TEST(StartsWith(lines[1],
                        "PROBLEM: the oldest of 4 pending events has waited "
                        "10m"));
  BOOST_TEST(lines[2] ==
             "PROBLEM: no relay holds the lease: nothing sends the 4 pending "
             "events");
  BOOST_TEST(lines[3] == "");

  BOOST_TEST(Field(result.out, "pending") == "4 events");
  BOOST_TEST(Field(result.out, "failed") == "2 events");
  BOOST_TEST(Field(result.out, "delivered") == "4 events kept");
  BOOST_TEST(StartsWith(Field(result.out, "oldest pending"), "10m"));
  BOOST_TEST(Field(result.out, "delivered last minute") == "1 event");
  BOOST_TEST(Field(result.out, "delivered last hour") == "2 events");
  BOOST_TEST(Field(result.out, "relay") == "none");
  BOOST_TEST(Field(result.out, "relay heartbeat") == "never");
  BOOST_TEST(Field(result.out, "schema version") == "1");
  BOOST_TEST(StartsWith(Field(result.out, "database"), outbox.path() + " ("));
  BOOST_TEST(Contains(Field(result.out, "database"), "B, WAL "));

  // Every value starts in the same column.
  std::set<std::size_t> columns;
  for (std::size_t i = 4; i < lines.size(); ++i) {
    std::size_t gap = lines[i].find("  ");
    BOOST_REQUIRE(gap != std::string::npos);
    columns.insert(lines[i].find_first_not_of(' ', gap));
  }
  BOOST_TEST(columns.size() == 1u);
}

BOOST_AUTO_TEST_CASE(status_says_ok_when_healthy) {
  ScratchDir dir;
  std::string path = FreshOutbox(dir, 2);
  Output result = Run(RunStatus, {"--db", path});
  // Two pending events and no relay: that is a problem, and the only one.
  BOOST_TEST(Lines(result.out).at(0) ==
             "PROBLEM: no relay holds the lease: nothing sends the 2 pending "
             "events");

  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  db.exec(
      "UPDATE sigevents_outbox SET state = 'delivered', topic = 't',"
      " delivered_at = created_at, kafka_partition = 0, kafka_offset = seq");
  result = Run(RunStatus, {"--db", path});
  BOOST_TEST(Lines(result.out).at(0) == "OK");
  BOOST_TEST(Field(result.out, "delivered last minute") == "2 events");
}

BOOST_AUTO_TEST_CASE(status_json_has_every_figure) {
  Outbox outbox;
  Output result = Run(RunStatus, {"--db", outbox.path(), "--json"});
  BOOST_TEST(result.status == 0);
  json::object status = ParseJson(result.out).as_object();

  BOOST_TEST(status.at("healthy").as_bool() == false);
  BOOST_TEST(status.at("problems").as_array().size() == 3u);
  BOOST_TEST(status.at("schema_version").as_int64() == 1);
  BOOST_TEST(status.at("database").as_string() == outbox.path());
  BOOST_TEST(status.at("outbox_id").as_string().size() == 36u);
  const json::object& events = status.at("events").as_object();
  BOOST_TEST(events.at("pending").as_int64() == kPending);
  BOOST_TEST(events.at("failed").as_int64() == kFailed);
  BOOST_TEST(events.at("delivered").as_int64() == kDelivered);
  BOOST_TEST(IsRfc3339(status.at("oldest_pending_created_at")));
  std::int64_t oldest_ms = status.at("oldest_pending_age_ms").as_int64();
  BOOST_TEST(oldest_ms >= 10 * kMinute);
  BOOST_TEST(oldest_ms < 11 * kMinute);
  BOOST_TEST(status.at("delivered_last_minute").as_int64() == 1);
  BOOST_TEST(status.at("delivered_last_hour").as_int64() == 2);
  const json::object& relay = status.at("relay").as_object();
  BOOST_TEST(relay.at("held").as_bool() == false);
  BOOST_TEST(relay.at("owner").is_null());
  BOOST_TEST(relay.at("heartbeat_at").is_null());
  BOOST_TEST(status.at("database_bytes").to_number<std::int64_t>() ==
             static_cast<std::int64_t>(fs::file_size(outbox.path())));
  BOOST_TEST(status.at("wal_bytes").to_number<std::int64_t>() ==
             static_cast<std::int64_t>(fs::file_size(outbox.path() + "-wal")));
}

BOOST_AUTO_TEST_CASE(status_shows_the_relay_lease_and_a_stale_heartbeat) {
  struct Case {
    const char* name;
    std::int64_t heartbeat_ago;
    bool stale;
  };
  const Case cases[] = {
      {"fresh heartbeat", 2 * kSecond, false},
      {"heartbeat 5m old", 5 * kMinute, true},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      Outbox outbox;
      outbox.SetLease("relay-a", c.heartbeat_ago);
      json::object status =
          ParseJson(Run(RunStatus, {"--db", outbox.path(), "--json"}).out)
              .as_object();
      const json::object& relay = status.at("relay").as_object();
      BOOST_TEST(relay.at("held").as_bool());
      BOOST_TEST(relay.at("owner").as_string() == "relay-a");
      BOOST_TEST(relay.at("host").as_string() == "db-host-1");
      BOOST_TEST(relay.at("pid").as_int64() == 4242);
      std::int64_t age = relay.at("heartbeat_age_ms").as_int64();
      BOOST_TEST(age >= c.heartbeat_ago);
      BOOST_TEST(age < c.heartbeat_ago + kMinute);

      bool stale_reported = false;
      for (const json::value& problem : status.at("problems").as_array()) {
        std::string text(problem.as_string());
        BOOST_TEST(!Contains(text, "no relay holds the lease"));
        if (Contains(text, "relay relay-a has not renewed its lease for 5m")) {
          stale_reported = true;
        }
      }
      BOOST_TEST(stale_reported == c.stale);

      Output text = Run(RunStatus, {"--db", outbox.path()});
      BOOST_TEST(Field(text.out, "relay") == "relay-a on db-host-1, pid 4242");
      BOOST_TEST(Contains(Field(text.out, "relay heartbeat"), " ago ("));
    }
  }
}

// ---------------------------------------------------------------------------
// list

BOOST_AUTO_TEST_CASE(list_filters_select_the_right_rows) {
  Outbox outbox;
  auto all = [](const FixtureRow&) { return true; };
  auto state = [](const char* name) {
    return [name](const FixtureRow& row) {
      return std::string(row.state) == name;
    };
  };
  struct Case {
    std::vector<std::string> flags;
    std::function<bool(const FixtureRow&)> pick;
  };
  const Case cases[] = {
      {{}, all},
      {{"--state", "all"}, all},
      {{"--state", "pending"}, state("pending")},
      {{"--state", "failed"}, state("failed")},
      {{"--state", "delivered"}, state("delivered")},
      {{"--type", "server.*"},
       [](const FixtureRow& row) { return StartsWith(row.type, "server."); }},
      {{"--type", "*"}, all},
      {{"--type", "user.suspended"},
       [](const FixtureRow& row) {
         return std::string(row.type) == "user.suspended";
       }},
      {{"--type", "user.suspend"}, [](const FixtureRow&) { return false; }},
      {{"--key", "u1"},
       [](const FixtureRow& row) { return std::string(row.key) == "u1"; }},
      {{"--older-than", "5m"},
       [](const FixtureRow& row) { return row.created_ago >= 5 * kMinute; }},
      {{"--state", "pending", "--type", "user.*"},
       [](const FixtureRow& row) {
         return std::string(row.state) == "pending" &&
                StartsWith(row.type, "user.");
       }},
      {{"--state", "failed", "--key", "u1", "--older-than", "1h"},
       [](const FixtureRow&) { return false; }},
      {{"--limit", "0"}, all},
  };
  for (const Case& c : cases) {
    std::string flags;
    for (const std::string& flag : c.flags) flags += flag + " ";
    BOOST_TEST_CONTEXT("list " << flags) {
      std::vector<std::string> args = {"--db", outbox.path(), "--json"};
      args.insert(args.end(), c.flags.begin(), c.flags.end());
      Output result = Run(RunList, args);
      BOOST_TEST(result.status == 0);
      BOOST_TEST(result.err == "");
      std::vector<std::int64_t> expected = outbox.Seqs(c.pick);
      BOOST_TEST(SeqsOf(ParseJson(result.out)) == expected,
                 boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(list_json_objects_have_the_documented_fields) {
  Outbox outbox;
  json::array rows =
      ParseJson(Run(RunList, {"--db", outbox.path(), "--json"}).out).as_array();
  BOOST_REQUIRE(rows.size() == std::size(kRows));
  const std::set<std::string> fields = {
      "seq",        "id",           "type",      "key",
      "topic",      "state",        "attempts",  "last_error",
      "created_at", "delivered_at", "partition", "offset"};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const FixtureRow& row = kRows[i];
    const json::object& object = rows[i].as_object();
    BOOST_TEST_CONTEXT("row " << i << " (" << row.state << ")") {
      std::set<std::string> keys;
      for (const auto& member : object) keys.insert(member.key());
      BOOST_TEST(keys == fields, boost::test_tools::per_element());
      BOOST_TEST(object.at("id").as_string() == outbox.id(i));
      BOOST_TEST(object.at("type").as_string() == row.type);
      BOOST_TEST(object.at("key").as_string() == row.key);
      BOOST_TEST(object.at("state").as_string() == row.state);
      BOOST_TEST(object.at("attempts").as_int64() == row.attempts);
      BOOST_TEST(IsRfc3339(object.at("created_at")));
      bool delivered = row.delivered_ago >= 0;
      BOOST_TEST(IsRfc3339(object.at("delivered_at")) == delivered);
      BOOST_TEST(object.at("delivered_at").is_null() == !delivered);
      BOOST_TEST(object.at("topic").is_string() == delivered);
      BOOST_TEST(object.at("partition").is_int64() == delivered);
      BOOST_TEST(object.at("offset").is_int64() == delivered);
      if (delivered) {
        BOOST_TEST(object.at("topic").as_string() == "significant-events");
        BOOST_TEST(object.at("offset").as_int64() ==
                   static_cast<std::int64_t>(100 + i));
      }
      if (row.last_error != nullptr) {
        BOOST_TEST(object.at("last_error").as_string() == row.last_error);
      } else {
        BOOST_TEST(object.at("last_error").is_null());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(list_table_has_one_row_per_event_and_notes_the_limit) {
  Outbox outbox;
  Output result = Run(RunList, {"--db", outbox.path(), "--state", "failed"});
  BOOST_TEST(result.status == 0);
  std::vector<std::string> lines = Lines(result.out);
  BOOST_REQUIRE(lines.size() == 3u);
  BOOST_TEST(StartsWith(lines[0], "SEQ  ID"));
  BOOST_TEST(Contains(lines[0], "ATTEMPTS  AGE"));
  BOOST_TEST(Contains(lines[0], "LAST ERROR"));
  const std::vector<std::string> expected = {std::to_string(outbox.seq(4)),
                                             outbox.id(4),
                                             "server.registered",
                                             "s3",
                                             "failed",
                                             "3",
                                             "1h",
                                             "Broker: Message size too large"};
  BOOST_TEST(Cells(lines[1]) == expected, boost::test_tools::per_element());
  BOOST_TEST(Cells(lines[2]).back() == "Broker: Topic authorization failed");
  // The columns line up under their headings.
  BOOST_TEST(lines[0].find("STATE") == lines[1].find("failed"));
  BOOST_TEST(lines[0].find("LAST ERROR") == lines[2].find("Broker"));
  BOOST_TEST(result.err == "");

  result = Run(RunList, {"--db", outbox.path(), "--limit", "3"});
  BOOST_TEST(Lines(result.out).size() == 4u);
  BOOST_TEST(Contains(result.err, "more events match"));

  result = Run(RunList, {"--db", outbox.path(), "--key", "nobody"});
  BOOST_TEST(result.out == "");
  BOOST_TEST(result.err == "no events match\n");
}

// ---------------------------------------------------------------------------
// show

BOOST_AUTO_TEST_CASE(show_prints_the_delivery_record_and_the_cloudevent) {
  Outbox outbox;
  const int row = 2;  // delivered
  for (const std::string& ref :
       {std::to_string(outbox.seq(row)), outbox.id(row)}) {
    BOOST_TEST_CONTEXT("show " << ref) {
      Output result = Run(RunShow, {"--db", outbox.path(), ref});
      BOOST_TEST(result.status == 0);
      BOOST_TEST(Field(result.out, "seq") == std::to_string(outbox.seq(row)));
      BOOST_TEST(Field(result.out, "id") == outbox.id(row));
      BOOST_TEST(Field(result.out, "state") == "delivered");
      BOOST_TEST(Field(result.out, "attempts") == "2");
      BOOST_TEST(Field(result.out, "last error") == "-");
      BOOST_TEST(Field(result.out, "topic") == "significant-events");
      BOOST_TEST(Field(result.out, "partition") == "2");
      BOOST_TEST(Field(result.out, "offset") == "102");
      BOOST_TEST(Contains(Field(result.out, "delivered"), "(30m ago)"));

      // The CloudEvent follows the blank line, pretty-printed.
      std::size_t blank = result.out.find("\n\n");
      BOOST_REQUIRE(blank != std::string::npos);
      std::string event = result.out.substr(blank + 2);
      BOOST_TEST(Contains(event, "\n  \"data\": {\n    \"userId\": \"u1\""));
      SQLite::Statement payload(
          outbox.db(), "SELECT payload FROM sigevents_outbox WHERE seq = ?");
      payload.bind(1, outbox.seq(row));
      BOOST_REQUIRE(payload.executeStep());
      BOOST_TEST(ParseJson(event) ==
                 ParseJson(payload.getColumn(0).getString()));
    }
  }
}

BOOST_AUTO_TEST_CASE(show_json_and_unknown_events) {
  Outbox outbox;
  json::object shown =
      ParseJson(
          Run(RunShow, {"--db", outbox.path(), outbox.id(4), "--json"}).out)
          .as_object();
  BOOST_TEST(shown.at("state").as_string() == "failed");
  BOOST_TEST(shown.at("last_error").as_string() ==
             "Broker: Message size too large");
  BOOST_TEST(shown.at("event").at("id").as_string() == outbox.id(4));
  BOOST_TEST(shown.at("event").at("data").at("serverId").as_string() == "s3");

  for (const std::string& ref :
       {std::string("999"),
        std::string("0193a5c2-7f1e-7d3a-9b2c-4e5f6a7b8c9d")}) {
    BOOST_TEST_CONTEXT("show " << ref) {
      Output result = Run(RunShow, {"--db", outbox.path(), ref});
      BOOST_TEST(result.status == 1);
      BOOST_TEST(result.out == "");
      BOOST_TEST(Contains(result.err, "no event with "));
      BOOST_TEST(Contains(result.err, ref));
    }
  }
}

// ---------------------------------------------------------------------------
// retry

BOOST_AUTO_TEST_CASE(retry_only_moves_failed_events) {
  Outbox outbox;
  struct Case {
    const char* name;
    std::string ref;
    int status;
    const char* message;  // in out (status 0) or err (status 1)
  };
  const Case cases[] = {
      {"pending", std::to_string(outbox.seq(6)), 1, "it is pending"},
      {"delivered", outbox.id(0), 1, "it is delivered"},
      {"missing seq", "777", 1, "no event with seq 777"},
      {"missing id", "not-an-event-id", 1, "no event with id not-an-event-id"},
      {"failed, dry run", std::to_string(outbox.seq(4)), 0, "would retry"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      std::vector<std::string> args = {"--db", outbox.path(), c.ref};
      if (c.status == 0) args.push_back("--dry-run");
      Output result = Run(RunRetry, args);
      BOOST_TEST(result.status == c.status);
      BOOST_TEST(Contains(c.status == 0 ? result.out : result.err, c.message));
      BOOST_TEST(outbox.Count("failed") == kFailed);
      BOOST_TEST(outbox.Count("pending") == kPending);
    }
  }

  Output result = Run(RunRetry, {"--db", outbox.path(), outbox.id(4)});
  BOOST_TEST(result.status == 0);
  BOOST_TEST(Contains(result.out,
                      "retried event seq " + std::to_string(outbox.seq(4))));
  BOOST_TEST(outbox.Count("failed") == kFailed - 1);
  BOOST_TEST(outbox.Count("pending") == kPending + 1);

  // The failure stays on record until the relay overwrites it.
  SQLite::Statement row(outbox.db(),
                        "SELECT state, attempts, last_error FROM"
                        " sigevents_outbox WHERE seq = ?");
  row.bind(1, outbox.seq(4));
  BOOST_REQUIRE(row.executeStep());
  BOOST_TEST(row.getColumn(0).getString() == "pending");
  BOOST_TEST(row.getColumn(1).getInt() == 3);
  BOOST_TEST(row.getColumn(2).getString() == "Broker: Message size too large");

  // Now pending, a second retry is refused.
  result = Run(RunRetry, {"--db", outbox.path(), outbox.id(4)});
  BOOST_TEST(result.status == 1);
  BOOST_TEST(Contains(result.err, "it is pending"));
}

BOOST_AUTO_TEST_CASE(retry_all_failed_counts_and_dry_run_changes_nothing) {
  Outbox outbox;
  Output result =
      Run(RunRetry, {"--db", outbox.path(), "--all-failed", "--dry-run"});
  BOOST_TEST(result.status == 0);
  BOOST_TEST(result.out ==
             "would retry 2 failed events (dry run: nothing changed)\n");
  BOOST_TEST(outbox.Count("failed") == kFailed);

  result = Run(RunRetry, {"--db", outbox.path(), "--all-failed"});
  BOOST_TEST(result.status == 0);
  BOOST_TEST(StartsWith(result.out, "retried 2 failed events"));
  BOOST_TEST(outbox.Count("failed") == 0);
  BOOST_TEST(outbox.Count("pending") == kPending + kFailed);
  BOOST_TEST(outbox.Count("delivered") == kDelivered);

  result = Run(RunRetry, {"--db", outbox.path(), "--all-failed"});
  BOOST_TEST(result.out == "no failed events to retry\n");
}

BOOST_AUTO_TEST_CASE(retry_all_failed_works_in_batches) {
  ScratchDir dir;
  std::string path = FreshOutbox(dir, 25);
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("UPDATE sigevents_outbox SET state = 'failed' WHERE seq % 5 != 0");
  }
  auto db = OpenOutbox(path, Access::kReadWrite);
  BOOST_TEST(RetryAllFailed(*db, false, 3) == 20);
  BOOST_TEST(db->execAndGet("SELECT count(*) FROM sigevents_outbox"
                            " WHERE state = 'pending'")
                 .getInt64() == 25);
}

// ---------------------------------------------------------------------------
// purge

BOOST_AUTO_TEST_CASE(purge_deletes_only_old_delivered_events) {
  Outbox outbox;
  // A failed row with an old delivered_at (as if delivered once, then
  // failed on a later resend) must survive too.
  outbox.db().exec(
      "UPDATE sigevents_outbox SET delivered_at = 1 WHERE state != "
      "'delivered'");

  Output result = Run(RunPurge, {"--db", outbox.path(), "--delivered",
                                 "--before", "1h", "--dry-run"});
  BOOST_TEST(result.status == 0);
  BOOST_TEST(StartsWith(result.out, "would purge 2 events delivered before "));
  BOOST_TEST(Contains(result.out, "(1h ago); dry run: nothing changed"));
  BOOST_TEST(outbox.Count("delivered") == kDelivered);

  result =
      Run(RunPurge, {"--db", outbox.path(), "--delivered", "--before", "1h"});
  BOOST_TEST(result.status == 0);
  BOOST_TEST(StartsWith(result.out, "purged 2 events delivered before "));
  BOOST_TEST(outbox.Count("delivered") == kDelivered - 2);
  BOOST_TEST(outbox.Count("pending") == kPending);
  BOOST_TEST(outbox.Count("failed") == kFailed);
  json::array left =
      ParseJson(Run(RunList, {"--db", outbox.path(), "--json"}).out).as_array();
  std::vector<std::int64_t> expected = outbox.Seqs(
      [](const FixtureRow& row) { return row.delivered_ago < kHour; });
  BOOST_TEST(SeqsOf(left) == expected, boost::test_tools::per_element());

  // Everything delivered, however recent; still nothing else.
  result =
      Run(RunPurge, {"--db", outbox.path(), "--delivered", "--before", "0s"});
  BOOST_TEST(StartsWith(result.out, "purged 2 events"));
  BOOST_TEST(outbox.Count("delivered") == 0);
  BOOST_TEST(outbox.Count("pending") == kPending);
  BOOST_TEST(outbox.Count("failed") == kFailed);
}

BOOST_AUTO_TEST_CASE(purge_works_in_batches) {
  ScratchDir dir;
  std::string path = FreshOutbox(dir, 30);
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(
        "UPDATE sigevents_outbox SET state = 'delivered', delivered_at = 5,"
        " topic = 't', kafka_partition = 0, kafka_offset = seq"
        " WHERE seq % 3 != 0");
  }
  auto db = OpenOutbox(path, Access::kReadWrite);
  BOOST_TEST(PurgeDelivered(*db, 10, true, 7) == 20);
  BOOST_TEST(PurgeDelivered(*db, 10, false, 7) == 20);
  BOOST_TEST(
      db->execAndGet("SELECT count(*) FROM sigevents_outbox").getInt64() == 10);
  BOOST_TEST(PurgeDelivered(*db, 10, false, 7) == 0);
}

// ---------------------------------------------------------------------------
// check

BOOST_AUTO_TEST_CASE(check_exit_status_says_healthy_unhealthy_or_unknown) {
  Outbox outbox;
  ScratchDir dir;
  struct Case {
    const char* name;
    std::string path;
    std::vector<std::string> flags;
    int status;
    const char* line_start;
    const char* reason;
  };
  const Case cases[] = {
      {"fresh events", FreshOutbox(dir, 2), {}, 0, "OK: 2 pending", ""},
      {"limits above the fixture",
       outbox.path(),
       {"--max-pending-age", "1h", "--max-failed", "2"},
       0,
       "OK: 4 pending (oldest 10m",
       "2 failed"},
      {"failed events", outbox.path(), {}, 1, "UNHEALTHY: ", "2 failed events"},
      {"old pending event",
       outbox.path(),
       {"--max-failed", "2"},
       1,
       "UNHEALTHY: ",
       "has waited 10m"},
      {"no relay",
       outbox.path(),
       {"--max-pending-age", "1h", "--max-failed", "2", "--max-heartbeat-age",
        "30s"},
       1,
       "UNHEALTHY: ",
       "no relay holds the lease"},
      {"missing file",
       dir.File("missing.db"),
       {},
       2,
       "UNKNOWN: ",
       "no such file"},
      {"not SQLite",
       NotSqlite(dir),
       {},
       2,
       "UNKNOWN: ",
       "is not a SQLite database"},
      {"empty file",
       EmptyFile(dir),
       {},
       2,
       "UNKNOWN: ",
       "holds no sigevents outbox"},
      {"no outbox",
       NoOutbox(dir),
       {},
       2,
       "UNKNOWN: ",
       "holds no sigevents outbox"},
      {"newer schema",
       NewerOutbox(dir),
       {},
       2,
       "UNKNOWN: ",
       "newer than version 1"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      std::vector<std::string> args = {"--db", c.path};
      args.insert(args.end(), c.flags.begin(), c.flags.end());
      Output result = Run(RunCheck, args);
      BOOST_TEST(result.status == c.status);
      std::vector<std::string> lines = Lines(result.out);
      BOOST_REQUIRE(lines.size() == 1u);
      BOOST_TEST(StartsWith(lines[0], c.line_start), lines[0]);
      BOOST_TEST(Contains(lines[0], c.reason), lines[0]);
      BOOST_TEST(Contains(lines[0], "\n") == false);
    }
  }
}

// ---------------------------------------------------------------------------
// metrics

// The Prometheus text exposition format, read strictly: every line is a
// HELP, a TYPE, another comment or a sample `name{labels} value`, and every
// sample belongs to a metric whose TYPE came before it.
struct Exposition {
  std::map<std::string, std::string> types;
  std::map<std::string, std::string> help;
  std::map<std::string, double> samples;  // "name{a=\"x\",b=\"y\"}" -> value
};

bool IsMetricName(const std::string& name) {
  static const std::regex pattern("[a-zA-Z_:][a-zA-Z0-9_:]*");
  return std::regex_match(name, pattern);
}

// Reads `{a="x",b="y"}` from `text` at `pos`, returning the labels.
std::map<std::string, std::string> ParseLabels(const std::string& text,
                                               std::size_t& pos) {
  std::map<std::string, std::string> labels;
  if (pos >= text.size() || text[pos] != '{') return labels;
  ++pos;
  static const std::regex label_name("[a-zA-Z_][a-zA-Z0-9_]*");
  while (pos < text.size() && text[pos] != '}') {
    std::size_t equals = text.find('=', pos);
    if (equals == std::string::npos) throw std::runtime_error("no '='");
    std::string name = text.substr(pos, equals - pos);
    if (!std::regex_match(name, label_name)) {
      throw std::runtime_error("bad label name \"" + name + "\"");
    }
    pos = equals + 1;
    if (pos >= text.size() || text[pos] != '"') {
      throw std::runtime_error("label value not quoted");
    }
    std::string value;
    for (++pos; pos < text.size() && text[pos] != '"'; ++pos) {
      if (text[pos] == '\\') {
        char next = pos + 1 < text.size() ? text[pos + 1] : '\0';
        if (next != '\\' && next != '"' && next != 'n') {
          throw std::runtime_error("bad escape in label value");
        }
        value += next == 'n' ? '\n' : next;
        ++pos;
      } else {
        value += text[pos];
      }
    }
    if (pos >= text.size()) throw std::runtime_error("unterminated value");
    ++pos;  // the closing quote
    if (!labels.emplace(name, value).second) {
      throw std::runtime_error("label " + name + " given twice");
    }
    if (pos < text.size() && text[pos] == ',') ++pos;
  }
  if (pos >= text.size()) throw std::runtime_error("unterminated labels");
  ++pos;  // '}'
  return labels;
}

double ParseSampleValue(const std::string& text) {
  if (text == "NaN") return std::nan("");
  if (text == "+Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') {
    throw std::runtime_error("bad value \"" + text + "\"");
  }
  return value;
}

void ParseExpositionLine(const std::string& line, Exposition& exposition) {
  if (line.empty()) return;
  if (StartsWith(line, "# HELP ") || StartsWith(line, "# TYPE ")) {
    std::string rest = line.substr(7);
    std::size_t space = rest.find(' ');
    if (space == std::string::npos) throw std::runtime_error("no text");
    std::string name = rest.substr(0, space);
    std::string text = rest.substr(space + 1);
    if (!IsMetricName(name)) throw std::runtime_error("bad metric name");
    if (StartsWith(line, "# HELP ")) {
      if (!exposition.help.emplace(name, text).second) {
        throw std::runtime_error("second HELP for " + name);
      }
      return;
    }
    static const std::set<std::string> kTypes = {
        "counter", "gauge", "histogram", "summary", "untyped"};
    if (kTypes.count(text) == 0) throw std::runtime_error("bad type " + text);
    for (const auto& sample : exposition.samples) {
      if (StartsWith(sample.first, name + "{")) {
        throw std::runtime_error("TYPE of " + name + " after its samples");
      }
    }
    if (!exposition.types.emplace(name, text).second) {
      throw std::runtime_error("second TYPE for " + name);
    }
    return;
  }
  if (line[0] == '#') return;  // another comment

  std::size_t pos = 0;
  while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
  std::string name = line.substr(0, pos);
  if (!IsMetricName(name)) throw std::runtime_error("bad sample name");
  if (exposition.types.count(name) == 0) {
    throw std::runtime_error("sample of " + name + " has no TYPE before it");
  }
  std::map<std::string, std::string> labels = ParseLabels(line, pos);
  if (pos >= line.size() || line[pos] != ' ') {
    throw std::runtime_error("no space before the value");
  }
  std::string value = line.substr(pos + 1);
  std::size_t space = value.find(' ');
  if (space != std::string::npos) {  // an optional timestamp
    std::string timestamp = value.substr(space + 1);
    if (!std::regex_match(timestamp, std::regex("-?[0-9]+"))) {
      throw std::runtime_error("bad timestamp");
    }
    value = value.substr(0, space);
  }
  std::string series = name + "{";
  const char* separator = "";
  for (const auto& [label, label_value] : labels) {
    series += separator + label + "=\"" + label_value + "\"";
    separator = ",";
  }
  series += "}";
  if (!exposition.samples.emplace(series, ParseSampleValue(value)).second) {
    throw std::runtime_error("series " + series + " given twice");
  }
}

Exposition ParseExposition(const std::string& text) {
  if (text.empty() || text.back() != '\n') {
    throw std::runtime_error("the exposition must end with a newline");
  }
  Exposition exposition;
  int number = 0;
  for (const std::string& line : Lines(text)) {
    ++number;
    try {
      ParseExpositionLine(line, exposition);
    } catch (const std::exception& e) {
      throw std::runtime_error("line " + std::to_string(number) + " \"" + line +
                               "\": " + e.what());
    }
  }
  return exposition;
}

BOOST_AUTO_TEST_CASE(exposition_parser_refuses_what_prometheus_refuses) {
  const char* bad[] = {
      "x 1",                                    // no newline at the end
      "x 1\n",                                  // no TYPE
      "# TYPE x gauge\nx{a=\"1\" 1\n",          // unterminated labels
      "# TYPE x gauge\nx{a=1} 1\n",             // unquoted label value
      "# TYPE x gauge\nx one\n",                // not a number
      "# TYPE x gauge\n# TYPE x gauge\nx 1\n",  // two TYPEs
      "# TYPE x gauge\nx 1\nx 2\n",             // the same series twice
      "# TYPE x meter\nx 1\n",                  // no such type
      "# TYPE 1x gauge\n",                      // bad name
  };
  for (const char* text : bad) {
    BOOST_TEST_CONTEXT(text) {
      BOOST_CHECK_THROW(ParseExposition(text), std::runtime_error);
    }
  }
  Exposition good = ParseExposition(
      "# HELP x An x.\n# TYPE x gauge\nx{a=\"q\\\"\\\\\"} 1.5\nx 2 1700\n");
  BOOST_TEST(good.samples.at("x{a=\"q\"\\\"}") == 1.5);
  BOOST_TEST(good.samples.at("x{}") == 2);
}

BOOST_AUTO_TEST_CASE(metrics_are_valid_prometheus_text) {
  Outbox outbox;
  outbox.SetLease("relay-a", 3 * kSecond);
  Output result = Run(RunMetrics, {"--db", outbox.path()});
  BOOST_TEST(result.status == 0);
  BOOST_TEST(result.err == "");
  Exposition exposition;
  try {
    exposition = ParseExposition(result.out);
  } catch (const std::exception& e) {
    BOOST_FAIL("not Prometheus text: " << e.what() << "\n" << result.out);
  }

  for (const auto& [name, type] : exposition.types) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(StartsWith(name, "sigevents_outbox_"));
      BOOST_TEST(type == "gauge");
      BOOST_TEST(exposition.help.count(name) == 1u);
    }
  }
  std::string db = "db=\"" + fs::absolute(outbox.path()).string() + "\"";
  auto sample = [&](const std::string& name, const std::string& labels = "") {
    std::string series = "sigevents_outbox_" + name + "{" + db +
                         (labels.empty() ? "" : "," + labels) + "}";
    BOOST_REQUIRE_MESSAGE(exposition.samples.count(series) == 1,
                          "no sample " + series + " in\n" + result.out);
    return exposition.samples.at(series);
  };
  BOOST_TEST(sample("up") == 1);
  BOOST_TEST(sample("events", "state=\"pending\"") == kPending);
  BOOST_TEST(sample("events", "state=\"failed\"") == kFailed);
  BOOST_TEST(sample("events", "state=\"delivered\"") == kDelivered);
  BOOST_TEST(sample("oldest_pending_age_seconds") >= 600);
  BOOST_TEST(sample("oldest_pending_age_seconds") < 660);
  BOOST_TEST(sample("delivered_last_minute") == 1);
  BOOST_TEST(sample("delivered_last_hour") == 2);
  BOOST_TEST(sample("lease_held") == 1);
  BOOST_TEST(sample("lease_heartbeat_age_seconds") >= 3);
  BOOST_TEST(sample("lease_heartbeat_age_seconds") < 60);
  BOOST_TEST(sample("schema_version") == 1);
  BOOST_TEST(sample("database_bytes") == fs::file_size(outbox.path()));
  BOOST_TEST(sample("wal_bytes") == fs::file_size(outbox.path() + "-wal"));
}

// What `metrics` says of a file it cannot read: only the up gauge, at 0,
// and the reason on stderr, with exit status 2.
void ExpectMetricsDown(const std::string& path, const std::string& cause) {
  Output result = Run(RunMetrics, {"--db", path});
  BOOST_TEST(result.status == 2);
  BOOST_TEST(Contains(result.err, "sigevents metrics: "), result.err);
  BOOST_TEST(Contains(result.err, path), result.err);
  BOOST_TEST(Contains(result.err, cause), result.err);
  Exposition exposition = ParseExposition(result.out);
  std::string series =
      "sigevents_outbox_up{db=\"" + fs::absolute(path).string() + "\"}";
  BOOST_TEST(exposition.samples.size() == 1u, result.out);
  BOOST_TEST(exposition.samples.count(series) == 1u, result.out);
  if (exposition.samples.count(series) == 1) {
    BOOST_TEST(exposition.samples.at(series) == 0);
  }
}

// ---------------------------------------------------------------------------
// Files that are not an outbox, and bad usage

BOOST_AUTO_TEST_CASE(read_only_commands_never_create_the_file) {
  struct Case {
    const char* name;
    CommandFn run;
    std::vector<std::string> extra;
  };
  const Case cases[] = {
      {"status", &RunStatus, {}},
      {"status --json", &RunStatus, {"--json"}},
      {"list", &RunList, {}},
      {"show", &RunShow, {"1"}},
      {"metrics", &RunMetrics, {}},
      {"check", &RunCheck, {}},
      {"retry --dry-run", &RunRetry, {"--all-failed", "--dry-run"}},
      {"retry", &RunRetry, {"--all-failed"}},
      {"purge", &RunPurge, {"--delivered", "--before", "1h"}},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      ScratchDir dir;
      std::string path = dir.File("typo.db");
      std::vector<std::string> args = {"--db", path};
      args.insert(args.end(), c.extra.begin(), c.extra.end());
      if (c.run == &RunCheck) {
        Output result = Run(c.run, args);
        BOOST_TEST(result.status == 2);
        BOOST_TEST(result.out == "UNKNOWN: " + path + ": no such file\n");
      } else if (c.run == &RunMetrics) {
        ExpectMetricsDown(path, ": no such file");
      } else {
        BOOST_CHECK_EXCEPTION(Run(c.run, args), OutboxUnavailable,
                              [&path](const OutboxUnavailable& e) {
                                return std::string(e.what()) ==
                                       path + ": no such file";
                              });
      }
      BOOST_TEST(fs::is_empty(dir.path()));
    }
  }
}

BOOST_AUTO_TEST_CASE(commands_refuse_files_that_are_not_an_outbox) {
  ScratchDir dir;
  struct File {
    const char* name;
    std::string path;
    const char* cause;
  };
  const File files[] = {
      {"not SQLite", NotSqlite(dir), "is not a SQLite database"},
      {"empty", EmptyFile(dir), "holds no sigevents outbox"},
      {"no outbox", NoOutbox(dir), "holds no sigevents outbox"},
      {"newer schema", NewerOutbox(dir), "has schema version 2, newer than"},
      {"a directory", dir.path(), "is a directory"},
  };
  const std::pair<const char*, std::function<Output(const std::string&)>>
      commands[] = {
          {"status",
           [](auto& p) {
             return Run(RunStatus, {"--db", p});
           }},
          {"list",
           [](auto& p) {
             return Run(RunList, {"--db", p});
           }},
          {"show",
           [](auto& p) {
             return Run(RunShow, {"--db", p, "1"});
           }},
          {"retry",
           [](auto& p) {
             return Run(RunRetry, {"--db", p, "--all-failed"});
           }},
          {"purge",
           [](auto& p) {
             return Run(RunPurge, {"--db", p, "--delivered", "--before", "1s"});
           }},
      };
  for (const File& file : files) {
    std::string before = fs::is_directory(file.path) ? "" : ReadFile(file.path);
    for (const auto& [command, run] : commands) {
      BOOST_TEST_CONTEXT(command << " on " << file.name) {
        try {
          run(file.path);
          BOOST_ERROR("no OutboxUnavailable");
        } catch (const OutboxUnavailable& e) {
          BOOST_TEST(Contains(e.what(), file.path), e.what());
          BOOST_TEST(Contains(e.what(), file.cause), e.what());
        }
      }
    }
    BOOST_TEST_CONTEXT("metrics on " << file.name) {
      ExpectMetricsDown(file.path, file.cause);
    }
    // Not even the journal mode of a foreign database was changed.
    if (!fs::is_directory(file.path)) {
      BOOST_TEST_CONTEXT(file.name) {
        BOOST_TEST(ReadFile(file.path) == before);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_usage_is_a_usage_error_that_says_what_was_expected) {
  Outbox outbox;
  const std::string db = outbox.path();
  struct Case {
    CommandFn run;
    std::vector<std::string> args;
    const char* expected;  // in the message
  };
  const Case cases[] = {
      {&RunStatus, {"--db", db, "--verbose"}, "verbose"},
      {&RunStatus, {}, "db"},
      {&RunList, {"--db", db, "--older-than", "5 minutes"}, "like 30s, 5m"},
      {&RunList, {"--db", db, "--older-than", "5x"}, "bad duration"},
      {&RunList, {"--db", db, "--state", "stuck"}, "pending, failed"},
      {&RunList, {"--db", db, "--type", "server.*.created"}, "prefix ending"},
      {&RunList, {"--db", db, "--limit", "-1"}, "--limit"},
      {&RunList, {"--db", db, "--limit", "many"}, "limit"},
      {&RunShow, {"--db", db}, "event"},
      {&RunShow, {"--db", db, "1", "2"}, ""},
      {&RunRetry, {"--db", db}, "--all-failed"},
      {&RunRetry, {"--db", db, "3", "--all-failed"}, "--all-failed"},
      {&RunPurge, {"--db", db, "--before", "1h"}, "--delivered is required"},
      {&RunPurge, {"--db", db, "--delivered"}, "before"},
      {&RunPurge, {"--db", db, "--delivered", "--before", "3"}, "unit"},
      {&RunPurge, {"--db", db, "--delivered", "--before", "-1h"}, "duration"},
      {&RunCheck, {"--db", db, "--max-pending-age", "soon"}, "bad duration"},
      {&RunCheck, {"--db", db, "--max-failed", "-2"}, "--max-failed"},
      {&RunCheck, {"--db", db, "--max-heartbeat-age", "1y"}, "bad duration"},
      {&RunMetrics, {"--db", db, "--port", "9100"}, "port"},
  };
  for (const Case& c : cases) {
    std::string args;
    for (const std::string& arg : c.args) args += arg + " ";
    BOOST_TEST_CONTEXT(args) {
      try {
        Run(c.run, c.args);
        BOOST_ERROR("no UsageError");
      } catch (const UsageError& e) {
        BOOST_TEST(Contains(e.what(), c.expected), e.what());
      }
    }
  }
  BOOST_TEST(outbox.Count("failed") == kFailed);
  BOOST_TEST(outbox.Count("delivered") == kDelivered);
}

BOOST_AUTO_TEST_CASE(every_command_has_help) {
  const std::pair<const char*, CommandFn> commands[] = {
      {"status", &RunStatus},   {"list", &RunList},   {"show", &RunShow},
      {"retry", &RunRetry},     {"purge", &RunPurge}, {"check", &RunCheck},
      {"metrics", &RunMetrics},
  };
  for (const auto& [name, run] : commands) {
    BOOST_TEST_CONTEXT(name) {
      Output result = Run(run, {"--help"});
      BOOST_TEST(result.status == 0);
      BOOST_TEST(StartsWith(
          result.out, std::string("usage: sigevents ") + name + " --db PATH"));
      BOOST_TEST(Contains(result.out, "--db arg"));
      for (const std::string& line : Lines(result.out)) {
        BOOST_TEST(line.size() <= 80u, line);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// A live database

BOOST_AUTO_TEST_CASE(readers_do_not_wait_for_a_writer_nor_block_it) {
  Outbox outbox;
  // A service in the middle of a business transaction holds the write lock.
  SQLite::Database service(outbox.path(), SQLite::OPEN_READWRITE, 5000);
  Emitter emitter(service);
  SQLite::Transaction txn(service);
  emitter.Emit(ServerRegistered("uncommitted"));

  auto started = std::chrono::steady_clock::now();
  json::object status =
      ParseJson(Run(RunStatus, {"--db", outbox.path(), "--json"}).out)
          .as_object();
  BOOST_TEST(status.at("events").at("pending").as_int64() == kPending);
  BOOST_TEST(Run(RunCheck, {"--db", outbox.path(), "--max-failed", "9",
                            "--max-pending-age", "1h"})
                 .status == 0);
  BOOST_TEST(Run(RunMetrics, {"--db", outbox.path()}).status == 0);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  BOOST_TEST(elapsed.count() < 2000);  // the busy timeout is 5000

  // A reader holding a snapshot does not stop the service from committing.
  auto reader = OpenOutbox(outbox.path(), Access::kReadOnly);
  reader->exec("BEGIN");
  BOOST_TEST(
      reader->execAndGet("SELECT count(*) FROM sigevents_outbox").getInt64() ==
      static_cast<std::int64_t>(std::size(kRows)));
  txn.commit();
  BOOST_TEST(Run(RunList, {"--db", outbox.path(), "--json"})
                 .out.find("\"key\":\"uncommitted\"") != std::string::npos);
  // Nor a repair from writing.
  BOOST_TEST(Run(RunRetry, {"--db", outbox.path(), "--all-failed"}).status ==
             0);
  reader->exec("COMMIT");
  BOOST_TEST(outbox.Count("failed") == 0);
}

BOOST_AUTO_TEST_CASE(read_only_open_of_a_closed_wal_database) {
  Outbox outbox;
  outbox.Close();
  // The last connection's close checkpointed and removed the WAL files.
  BOOST_TEST(!fs::exists(outbox.path() + "-wal"));
  BOOST_TEST(!fs::exists(outbox.path() + "-shm"));

  Output result = Run(RunStatus, {"--db", outbox.path()});
  BOOST_TEST(result.status == 0);
  BOOST_TEST(Field(result.out, "pending") == "4 events");

  // A service opening it afterwards writes as usual.
  auto db = OpenDatabase(outbox.path(), OpenOptions{});
  BOOST_TEST(db->execAndGet("PRAGMA journal_mode").getString() == "wal");
  SQLite::Transaction txn(*db);
  Emitter(*db).Emit(ServerRegistered("after"));
  txn.commit();
  BOOST_TEST(Field(Run(RunStatus, {"--db", outbox.path()}).out, "pending") ==
             "5 events");
}

// ---------------------------------------------------------------------------
// The binary, end to end

BOOST_AUTO_TEST_CASE(binary_exit_statuses) {
  Outbox outbox;
  ScratchDir dir;
  std::string fresh = FreshOutbox(dir, 1);
  std::string missing = dir.File("missing.db");
  struct Case {
    std::vector<std::string> args;
    int status;
    const char* out_start;
    const char* err_part;
  };
  const Case cases[] = {
      {{"check", "--db", fresh}, 0, "OK: 1 pending", ""},
      {{"check", "--db", outbox.path()}, 1, "UNHEALTHY: 2 failed events", ""},
      {{"check", "--db", missing}, 2, "UNKNOWN: ", ""},
      {{"check", "--db", fresh, "--max-pending-age", "5"},
       2,
       "",
       "bad duration \"5\""},
      {{"status", "--db", outbox.path()}, 0, "PROBLEM: 2 failed events", ""},
      {{"status", "--db", missing}, 2, "", "no such file"},
      {{"list", "--db", outbox.path(), "--bogus"},
       2,
       "",
       "sigevents list: unrecognised option '--bogus'"},
      {{"show", "--db", outbox.path(), "424242"},
       1,
       "",
       "no event with seq 424242"},
      {{"retry", "--db", outbox.path(), outbox.id(0)},
       1,
       "",
       "it is delivered"},
      {{"metrics", "--db", NotSqlite(dir)}, 2, "", "is not a SQLite database"},
      {{"purge", "--db", fresh, "--delivered", "--before", "1d"},
       0,
       "purged 0 events",
       ""},
  };
  for (const Case& c : cases) {
    std::string args;
    for (const std::string& arg : c.args) args += arg + " ";
    BOOST_TEST_CONTEXT("sigevents " << args) {
      Output result = RunBinary(dir, c.args);
      BOOST_TEST(result.status == c.status, result.out << result.err);
      BOOST_TEST(StartsWith(result.out, c.out_start), result.out);
      BOOST_TEST(Contains(result.err, c.err_part), result.err);
    }
  }
  BOOST_TEST(!fs::exists(missing));
}

// ---------------------------------------------------------------------------
// retry while a relay runs

// Reads every message of `topic` from the start, until it has caught up
// with what the topic held. Returns the count per CloudEvent id.
std::map<std::string, int> ReadTopic(const std::string& bootstrap,
                                     const std::string& topic) {
  std::vector<std::string> values;  // filled on the consumer's thread
  std::unique_ptr<TopicConsumer> consumer = TopicConsumer::Start(
      {{"bootstrap.servers", bootstrap}}, topic,
      TopicConsumer::From::kBeginning,
      [&values](const ConsumedMessage& message) {
        values.push_back(message.value);
      },
      NullLogSink(), std::chrono::seconds(30));
  BOOST_TEST(consumer->CatchUp(std::chrono::seconds(30)));
  consumer->Stop();
  std::map<std::string, int> seen;
  for (const std::string& value : values) {
    ++seen[std::string(ParseJson(value).at("id").as_string())];
  }
  return seen;
}

bool WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

std::int64_t CountState(const std::string& path, const std::string& state) {
  auto db = OpenOutbox(path, Access::kReadOnly);
  SQLite::Statement count(
      *db, "SELECT count(*) FROM sigevents_outbox WHERE state = ?");
  count.bind(1, state);
  count.executeStep();
  return count.getColumn(0).getInt64();
}

BOOST_AUTO_TEST_CASE(retry_of_a_failed_row_while_a_relay_runs_delivers_once) {
  EmbeddedKafkaOptions kafka_options;
  kafka_options.partitions = 4;
  auto kafka = EmbeddedKafka::Start(kafka_options);
  ScratchDir dir;
  std::string path = dir.File("service.db");

  // Five events; Kafka refused the third for good, before this relay ran.
  std::vector<std::string> ids;
  {
    auto db = OpenDatabase(path, OpenOptions{});
    Emitter emitter(*db);
    SQLite::Transaction txn(*db);
    for (int i = 0; i < 5; ++i) {
      ids.push_back(emitter.Emit(ServerRegistered("r" + std::to_string(i))).id);
    }
    txn.commit();
    db->exec(
        "UPDATE sigevents_outbox SET state = 'failed', attempts = 1,"
        " last_error = 'Broker: Message size too large' WHERE seq = 3");
  }

  RelayConfig config;
  config.db_path = path;
  config.kafka["bootstrap.servers"] = kafka->bootstrap_servers();
  std::unique_ptr<Relay> relay = Relay::Start(config);
  BOOST_REQUIRE(WaitFor([&] { return CountState(path, "delivered") == 4; }));
  BOOST_TEST(CountState(path, "failed") == 1);

  // status sees the relay at work.
  json::object status =
      ParseJson(Run(RunStatus, {"--db", path, "--json"}).out).as_object();
  BOOST_TEST(status.at("relay").at("held").as_bool());
  BOOST_TEST(status.at("events").at("failed").as_int64() == 1);

  Output retried = Run(RunRetry, {"--db", path, "3"});
  BOOST_TEST(retried.status == 0, retried.err);
  BOOST_REQUIRE(WaitFor([&] { return CountState(path, "delivered") == 5; }));
  BOOST_TEST(relay->Stop(std::chrono::seconds(5)));
  BOOST_TEST(CountState(path, "pending") == 0);
  BOOST_TEST(CountState(path, "failed") == 0);

  std::map<std::string, int> seen =
      ReadTopic(kafka->bootstrap_servers(), "significant-events");
  BOOST_TEST(seen.size() == ids.size());
  for (const std::string& id : ids) {
    BOOST_TEST_CONTEXT("event " << id) { BOOST_TEST(seen[id] == 1); }
  }
  Output shown = Run(RunShow, {"--db", path, ids[2], "--json"});
  json::object record = ParseJson(shown.out).as_object();
  BOOST_TEST(record.at("state").as_string() == "delivered");
  BOOST_TEST(record.at("offset").is_int64());
}

}  // namespace
}  // namespace sigevents::cli
