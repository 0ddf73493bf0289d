// emit() when the database misbehaves: the disk fills, the file is
// read-only or corrupt, another connection holds the lock, many writers and
// readers share the file. Every test uses real SQLite files and checks the
// one promise that matters: an event is in the outbox exactly once if its
// business change committed, and not at all otherwise, and every failure
// reaches the caller as an exception that says what failed.

#define BOOST_TEST_MODULE emit_faults_test
#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "emitter/emitter.h"
#include "outbox/schema.h"
#include "tests/test_util.h"

namespace sigevents {
namespace {

using testing::ScratchDir;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A service's own database as a service opens it (WAL, busy timeout), with
// its business table.
std::unique_ptr<SQLite::Database> OpenService(const std::string& path,
                                              int busy_timeout_ms = 5000) {
  OpenOptions options;
  options.busy_timeout_ms = busy_timeout_ms;
  auto db = OpenDatabase(path, options);
  db->exec(
      "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, state TEXT)");
  return db;
}

events::UserSuspended Suspension(const std::string& user_id,
                                 std::size_t message_bytes = 16) {
  events::UserSuspended event;
  event.userId(user_id)
      .userEmail("user@example.com")
      .loggedInUserId("456")
      .loggedInUserEmail("admin@example.com")
      .message(std::string(message_bytes, 'm'));
  return event;
}

void InsertUser(SQLite::Database& db, const std::string& id) {
  SQLite::Statement insert(db, "INSERT INTO users VALUES (?, 'suspended')");
  insert.bind(1, id);
  insert.exec();
}

// The business change and its event in one transaction, as services write
// them. Whatever throws leaves the transaction's scope, which rolls it back.
void SuspendUser(SQLite::Database& db, Emitter& emitter, const std::string& id,
                 std::size_t message_bytes = 16) {
  SQLite::Transaction txn(db);
  InsertUser(db, id);
  emitter.Emit(Suspension(id, message_bytes));
  txn.commit();
}

long long Count(SQLite::Database& db, const std::string& sql) {
  return db.execAndGet(sql).getInt64();
}

// How often user `id` is in the business table and in the outbox.
struct Presence {
  long long users;
  long long events;
};

Presence Find(SQLite::Database& db, const std::string& id) {
  SQLite::Statement users(db, "SELECT count(*) FROM users WHERE id = ?");
  users.bind(1, id);
  users.executeStep();
  SQLite::Statement events(
      db, "SELECT count(*) FROM sigevents_outbox WHERE partition_key = ?");
  events.bind(1, id);
  events.executeStep();
  return {users.getColumn(0).getInt64(), events.getColumn(0).getInt64()};
}

std::string IntegrityCheck(SQLite::Database& db) {
  return db.execAndGet("PRAGMA integrity_check").getString();
}

// What a run of transactions did: the ids whose commit returned, and those
// whose transaction threw.
struct Outcome {
  std::vector<std::string> committed;
  std::vector<std::string> failed;
};

// Every committed id has its business row and its event exactly once; every
// failed one has neither; the outbox holds nothing else. Counts events lost
// (committed, missing), duplicated and phantom (failed, present), checks
// that all are 0 and logs the figures.
void CheckExactlyOnce(SQLite::Database& db, const Outcome& outcome) {
  long long lost = 0, duplicated = 0, phantom = 0;
  for (const std::string& id : outcome.committed) {
    Presence p = Find(db, id);
    BOOST_TEST_CONTEXT("committed " << id) { BOOST_TEST(p.users == 1); }
    if (p.events == 0) ++lost;
    if (p.events > 1) ++duplicated;
  }
  for (const std::string& id : outcome.failed) {
    Presence p = Find(db, id);
    BOOST_TEST_CONTEXT("failed " << id) { BOOST_TEST(p.users == 0); }
    if (p.events != 0) ++phantom;
  }
  BOOST_TEST(lost == 0);
  BOOST_TEST(duplicated == 0);
  BOOST_TEST(phantom == 0);
  BOOST_TEST(Count(db, "SELECT count(*) FROM sigevents_outbox") ==
             static_cast<long long>(outcome.committed.size()));
  BOOST_TEST(
      Count(db, "SELECT count(DISTINCT event_id) FROM sigevents_outbox") ==
      static_cast<long long>(outcome.committed.size()));
  BOOST_TEST_MESSAGE(outcome.committed.size() + outcome.failed.size()
                     << " sent, " << outcome.committed.size() << " committed, "
                     << outcome.failed.size() << " failed with an exception, "
                     << lost << " lost, " << duplicated << " duplicated, "
                     << phantom << " phantom");
}

// ---- Disk full --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(disk_full_during_emit_rolls_the_change_back) {
  ScratchDir dir;
  auto db = OpenService(dir.File("auth.db"));
  Emitter emitter(*db);
  // The database may grow by 16 pages, about 20 events of 3 KB.
  long long pages = Count(*db, "PRAGMA page_count");
  db->exec("PRAGMA max_page_count = " + std::to_string(pages + 16));

  Outcome outcome;
  std::optional<EmitError> full;
  for (int i = 0; i < 1000 && !full; ++i) {
    std::string id = "u" + std::to_string(i);
    try {
      SuspendUser(*db, emitter, id, 3000);
      outcome.committed.push_back(id);
    } catch (const EmitError& e) {
      full.emplace(e);
      outcome.failed.push_back(id);
    }
  }
  BOOST_REQUIRE_MESSAGE(full.has_value(), "the database never filled");
  const std::string id = outcome.failed.back();
  BOOST_TEST(full->sqlite_code() == SQLITE_FULL);
  BOOST_TEST(Contains(full->what(), "emit \"user.suspended\" (id "));
  BOOST_TEST(Contains(full->what(), "key \"" + id + "\""));
  BOOST_TEST(Contains(full->what(), "database or disk is full"));
  BOOST_TEST(sqlite3_get_autocommit(db->getHandle()) == 1,
             "a transaction was left open");
  BOOST_TEST(outcome.committed.size() > 0u);
  CheckExactlyOnce(*db, outcome);

  // With room again, the same connection and Emitter carry on.
  db->exec("PRAGMA max_page_count = 1073741823");
  SuspendUser(*db, emitter, id, 3000);
  outcome.failed.pop_back();
  outcome.committed.push_back(id);
  CheckExactlyOnce(*db, outcome);
  BOOST_TEST(IntegrityCheck(*db) == "ok");
}

BOOST_AUTO_TEST_CASE(disk_full_while_creating_the_outbox_names_the_cause) {
  ScratchDir dir;
  auto db = OpenService(dir.File("auth.db"));
  db->exec("PRAGMA max_page_count = " +
           std::to_string(Count(*db, "PRAGMA page_count")));
  try {
    Emitter emitter(*db);
    BOOST_ERROR("the outbox was created in a full database");
  } catch (const SQLite::Exception& e) {
    BOOST_TEST(e.getErrorCode() == SQLITE_FULL);
    BOOST_TEST(Contains(e.what(), "create or check the sigevents outbox in " +
                                      dir.File("auth.db") +
                                      ": database or disk is full"));
  }
  BOOST_TEST(sqlite3_get_autocommit(db->getHandle()) == 1);
  BOOST_TEST(Count(*db,
                   "SELECT count(*) FROM sqlite_schema"
                   " WHERE name LIKE 'sigevents%'") == 0);
}

// The file system refuses to grow a file (as on a full disk), in a child
// process limited by RLIMIT_FSIZE. The WAL takes the commits, so here it is
// COMMIT that fails, not the INSERT.
BOOST_AUTO_TEST_CASE(file_system_full_at_commit_loses_no_committed_event) {
  ScratchDir dir;
  const std::string path = dir.File("auth.db");
  {
    auto db = OpenService(path);
    Emitter create(*db);
  }  // closed before fork(): SQLite connections must not cross it

  int pipe_fds[2];
  BOOST_REQUIRE(pipe(pipe_fds) == 0);
  pid_t pid = fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: no Boost.Test from here on; it reports each transaction
    // on the pipe as "committed ID" or "failed ID STAGE CODE MESSAGE".
    close(pipe_fds[0]);
    FILE* report = fdopen(pipe_fds[1], "w");
    signal(SIGXFSZ, SIG_IGN);
    rlimit limit{256 * 1024, 256 * 1024};
    setrlimit(RLIMIT_FSIZE, &limit);
    try {
      auto db = OpenService(path);
      Emitter emitter(*db);
      int failures = 0;
      for (int i = 0; i < 2000 && failures < 3; ++i) {
        std::string id = "u" + std::to_string(i);
        const char* stage = "business insert";
        try {
          SQLite::Transaction txn(*db);
          InsertUser(*db, id);
          stage = "emit";
          emitter.Emit(Suspension(id, 3000));
          stage = "commit";
          txn.commit();
          std::fprintf(report, "committed %s\n", id.c_str());
        } catch (const SQLite::Exception& e) {
          ++failures;
          std::fprintf(report, "failed %s %s %d %s\n", id.c_str(), stage,
                       e.getExtendedErrorCode(), e.what());
        } catch (const EmitError& e) {
          ++failures;
          std::fprintf(report, "failed %s %s %d %s\n", id.c_str(), stage,
                       e.sqlite_code(), e.what());
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(report, "error %s\n", e.what());
    }
    std::fclose(report);
    _exit(0);
  }

  close(pipe_fds[1]);
  std::string report;
  char buffer[4096];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0;) {
    report.append(buffer, n);
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  BOOST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  Outcome outcome;
  std::map<std::string, int> failures_by_stage;
  std::istringstream lines(report);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string kind, id, stage1, stage2;
    fields >> kind >> id;
    BOOST_TEST_REQUIRE(kind != "error", line);
    if (kind == "committed") {
      outcome.committed.push_back(id);
      continue;
    }
    outcome.failed.push_back(id);
    std::string rest;
    std::getline(fields, rest);
    BOOST_TEST_MESSAGE("file system full: " << line);
    // The cause is named, whatever step failed.
    BOOST_TEST_CONTEXT(line) {
      BOOST_TEST(
          (Contains(rest, "disk is full") || Contains(rest, "disk I/O error")));
    }
    ++failures_by_stage[Contains(rest, " commit ") ? "commit"
                        : Contains(rest, " emit ") ? "emit"
                                                   : "business insert"];
  }
  BOOST_TEST_REQUIRE(outcome.committed.size() > 0u);
  BOOST_TEST_REQUIRE(outcome.failed.size() > 0u);
  for (const auto& [stage, count] : failures_by_stage) {
    BOOST_TEST_MESSAGE("file system full: " << count << " failed at " << stage);
  }

  // Without the limit, the file reads back consistent: recovery kept every
  // committed transaction and nothing of the others.
  auto db = OpenService(path);
  CheckExactlyOnce(*db, outcome);
  BOOST_TEST(IntegrityCheck(*db) == "ok");
  Emitter emitter(*db);
  SuspendUser(*db, emitter, "after");
  BOOST_TEST(Find(*db, "after").events == 1);
}

// ---- Read-only --------------------------------------------------------------

// Clears the calling thread's capabilities that let root ignore file modes,
// so that a file of mode 0444 is read-only for this thread as for any user.
// Capabilities belong to a thread: the rest of the process keeps them.
bool DropFileCapabilitiesOfThisThread() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER}) {
    data[cap / 32].effective &= ~(1u << (cap % 32));
  }
  return syscall(SYS_capset, &header, data) == 0;
}

enum class ReadOnlyBy { kOpenFlag, kQueryOnlyPragma, kFileMode };

struct ReadOnlyCase {
  const char* name;
  ReadOnlyBy by;
  const char* failing_stage;  // "Emitter" (its constructor) or "emit"
  int sqlite_code;            // primary result code expected
};

BOOST_AUTO_TEST_CASE(read_only_database_refuses_emit_with_a_clear_error) {
  const ReadOnlyCase cases[] = {
      {"opened with SQLITE_OPEN_READONLY", ReadOnlyBy::kOpenFlag, "emit",
       SQLITE_READONLY},
      // EnsureSchema's BEGIN IMMEDIATE counts as a write.
      {"PRAGMA query_only", ReadOnlyBy::kQueryOnlyPragma, "Emitter",
       SQLITE_READONLY},
      {"file mode 0444", ReadOnlyBy::kFileMode, "emit", SQLITE_READONLY},
  };
  for (const ReadOnlyCase& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      ScratchDir dir;
      const std::string path = dir.File("auth.db");
      {
        auto db = OpenService(path);
        Emitter emitter(*db);
        SuspendUser(*db, emitter, "before");
        // A rollback journal: a read-only file in WAL mode cannot even be
        // opened without its -shm file, which would hide the case.
        db->exec("PRAGMA journal_mode = DELETE");
      }
      if (c.by == ReadOnlyBy::kFileMode) {
        BOOST_REQUIRE(chmod(path.c_str(), 0444) == 0);
      }

      // Runs on a thread of its own, whose capabilities may be dropped.
      // (Boost.Test checks belong to the main thread: this one records.)
      int code = 0;
      std::string message, stage = "open", setup_error;
      std::thread attempt([&] {
        if (c.by == ReadOnlyBy::kFileMode) {
          if (!DropFileCapabilitiesOfThisThread()) {
            setup_error = "cannot drop CAP_DAC_OVERRIDE";
            return;
          }
          int fd = open(path.c_str(), O_RDWR);
          if (fd >= 0 || errno != EACCES) {
            if (fd >= 0) close(fd);
            setup_error = "the file of mode 0444 is still writable";
            return;
          }
        }
        try {
          int flags = c.by == ReadOnlyBy::kOpenFlag ? SQLite::OPEN_READONLY
                                                    : SQLite::OPEN_READWRITE;
          SQLite::Database db(path, flags, 200);
          if (c.by == ReadOnlyBy::kQueryOnlyPragma) {
            db.exec("PRAGMA query_only = ON");
          }
          stage = "Emitter";
          Emitter emitter(db);
          stage = "emit";
          SQLite::Transaction txn(db);
          emitter.Emit(Suspension("refused"));
          stage = "commit";
          txn.commit();
          stage = "none";
        } catch (const EmitError& e) {
          code = e.sqlite_code() & 0xFF;
          message = e.what();
        } catch (const SQLite::Exception& e) {
          code = e.getErrorCode();
          message = e.what();
        }
      });
      attempt.join();
      chmod(path.c_str(), 0644);
      BOOST_TEST_REQUIRE(setup_error == "");

      BOOST_TEST(stage == c.failing_stage);
      BOOST_TEST(code == c.sqlite_code);
      BOOST_TEST(Contains(message, "attempt to write a readonly database"),
                 message);
      BOOST_TEST(
          Contains(message, stage == "emit" ? "emit \"user.suspended\""
                                            : "sigevents outbox in " + path),
          message);
      auto db = OpenService(path);
      CheckExactlyOnce(*db, Outcome{{"before"}, {"refused"}});
    }
  }
}

// ---- Corrupt files ----------------------------------------------------------

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAt(const std::string& path, long offset, const std::string& bytes) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(offset);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  BOOST_REQUIRE(file.good());
}

// A database with an outbox and three events, closed (so all of it is in
// the main file, not in a WAL).
void MakeDatabase(const std::string& path) {
  auto db = OpenService(path);
  Emitter emitter(*db);
  for (const char* id : {"1", "2", "3"}) SuspendUser(*db, emitter, id);
}

struct CorruptCase {
  const char* name;
  std::function<void(const std::string& path)> damage;
  int sqlite_code;
  const char* cause;
};

BOOST_AUTO_TEST_CASE(corrupt_file_is_refused_when_opened_and_left_as_is) {
  const CorruptCase cases[] = {
      {"garbage bytes",
       [](const std::string& path) {
         std::ofstream out(path, std::ios::binary);
         for (int i = 0; i < 8192; ++i) out.put(static_cast<char>(i * 37));
       },
       SQLITE_NOTADB, "file is not a database"},
      {"text file",
       [](const std::string& path) {
         std::ofstream(path) << "id,state\n1,suspended\n";
       },
       SQLITE_NOTADB, "file is not a database"},
      {"header magic damaged",
       [](const std::string& path) {
         MakeDatabase(path);
         WriteAt(path, 0, "SQLite format 4");
       },
       SQLITE_NOTADB, "file is not a database"},
      {"page size damaged",
       [](const std::string& path) {
         MakeDatabase(path);
         WriteAt(path, 16, std::string("\x01\x23", 2));  // not a power of 2
       },
       SQLITE_NOTADB, "file is not a database"},
      {"schema page damaged",
       [](const std::string& path) {
         MakeDatabase(path);
         WriteAt(path, 100, std::string(200, '\xFF'));
       },
       SQLITE_CORRUPT, "database disk image is malformed"},
  };
  for (const CorruptCase& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      ScratchDir dir;
      const std::string path = dir.File("auth.db");
      c.damage(path);
      const std::string before = ReadFile(path);

      // The service opens its own connection (SQLite reads nothing yet);
      // the Emitter is the first to read the file.
      SQLite::Database db(path, SQLite::OPEN_READWRITE);
      try {
        Emitter emitter(db);
        BOOST_ERROR("the Emitter accepted a corrupt file");
      } catch (const SQLite::Exception& e) {
        BOOST_TEST(e.getErrorCode() == c.sqlite_code);
        BOOST_TEST(e.what() == "create or check the sigevents outbox in " +
                                   path + ": " + c.cause);
      }
      // The relay's and the command line's way in says the same.
      try {
        OpenDatabase(path, OpenOptions{});
        BOOST_ERROR("OpenDatabase accepted a corrupt file");
      } catch (const SQLite::Exception& e) {
        BOOST_TEST(e.getErrorCode() == c.sqlite_code);
        BOOST_TEST(e.what() == "open " + path + ": " + c.cause);
      }
      BOOST_TEST(ReadFile(path) == before, "the corrupt file was changed");
    }
  }
}

BOOST_AUTO_TEST_CASE(corrupt_outbox_page_fails_emit_and_rolls_back) {
  ScratchDir dir;
  const std::string path = dir.File("auth.db");
  MakeDatabase(path);
  long long root_page, page_size;
  {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    root_page = Count(db,
                      "SELECT rootpage FROM sqlite_schema"
                      " WHERE name = 'sigevents_outbox'");
    page_size = Count(db, "PRAGMA page_size");
  }
  // The page type byte of the outbox's root page: 0x00 is no page type.
  WriteAt(path, (root_page - 1) * page_size, std::string(1, '\0'));

  SQLite::Database db(path, SQLite::OPEN_READWRITE, 5000);
  Emitter emitter(db);  // reads only sigevents_meta
  try {
    SuspendUser(db, emitter, "4");
    BOOST_ERROR("emit wrote into a corrupt table");
  } catch (const EmitError& e) {
    BOOST_TEST((e.sqlite_code() & 0xFF) == SQLITE_CORRUPT);
    BOOST_TEST(Contains(e.what(), "emit \"user.suspended\""));
    BOOST_TEST(Contains(e.what(), "key \"4\""));
    BOOST_TEST(Contains(e.what(), "database disk image is malformed"));
  }
  BOOST_TEST(sqlite3_get_autocommit(db.getHandle()) == 1);
  BOOST_TEST(Count(db, "SELECT count(*) FROM users WHERE id = '4'") == 0);
}

// ---- Busy -------------------------------------------------------------------

// A database with the outbox and the business table in `journal_mode`,
// closed again, so that each connection is opened as the case needs.
void CreateService(const std::string& path, const std::string& journal_mode) {
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("PRAGMA journal_mode = " + journal_mode);
  db.exec("CREATE TABLE users (id TEXT PRIMARY KEY, state TEXT)");
  EnsureSchema(db);
}

enum class Blocker {
  kWriter,           // another connection holds the write lock
  kCommitAfterRead,  // another connection commits after our first read
  kReader,           // a reader holds its shared lock (rollback journal)
};

struct BusyCase {
  const char* name;
  const char* journal_mode;
  Blocker blocker;
  bool read_first;  // whether our transaction reads before it emits
  const char* failing_stage;
  int extended_code;
  // Whether SQLite waits for the busy timeout first. It does not when a
  // transaction that has read wants to write: waiting could deadlock.
  bool waits;
};

BOOST_AUTO_TEST_CASE(busy_database_fails_emit_or_commit_never_silently) {
  const BusyCase cases[] = {
      {"another writer holds the lock, emit first", "WAL", Blocker::kWriter,
       false, "emit", SQLITE_BUSY, true},
      {"another writer holds the lock, emit after a read", "WAL",
       Blocker::kWriter, true, "emit", SQLITE_BUSY, false},
      {"another writer committed since our read", "WAL",
       Blocker::kCommitAfterRead, true, "emit", SQLITE_BUSY_SNAPSHOT, false},
      {"a reader blocks the commit", "DELETE", Blocker::kReader, true, "commit",
       SQLITE_BUSY, true},
  };
  constexpr int kBusyTimeoutMs = 200;
  for (const BusyCase& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      ScratchDir dir;
      const std::string path = dir.File("auth.db");
      CreateService(path, c.journal_mode);
      SQLite::Database other(path, SQLite::OPEN_READWRITE, 5000);
      SQLite::Database db(path, SQLite::OPEN_READWRITE, kBusyTimeoutMs);
      Emitter emitter(db);

      if (c.blocker == Blocker::kWriter) {
        other.exec("BEGIN IMMEDIATE");
        other.exec("INSERT INTO users VALUES ('other', 'active')");
      } else if (c.blocker == Blocker::kReader) {
        other.exec("BEGIN");
        Count(other, "SELECT count(*) FROM users");
      }

      // (Read,) emit, then the business change.
      std::string stage = "begin", message;
      int code = 0;
      auto start = std::chrono::steady_clock::now();
      try {
        SQLite::Transaction txn(db);
        if (c.read_first) {
          stage = "read";
          Count(db, "SELECT count(*) FROM users");
        }
        if (c.blocker == Blocker::kCommitAfterRead) {
          other.exec("INSERT INTO users VALUES ('other', 'active')");
        }
        stage = "emit";
        emitter.Emit(Suspension("mine"));
        stage = "business insert";
        InsertUser(db, "mine");
        stage = "commit";
        txn.commit();
        stage = "none";
      } catch (const EmitError& e) {
        code = e.sqlite_code();
        message = e.what();
      } catch (const SQLite::Exception& e) {
        code = e.getExtendedErrorCode();
        message = e.what();
      }
      long long waited_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - start)
              .count();

      BOOST_TEST(stage == c.failing_stage);
      BOOST_TEST(code == c.extended_code);
      BOOST_TEST(Contains(message, "database is locked"), message);
      if (stage == "emit") {
        BOOST_TEST(Contains(message, "emit \"user.suspended\""), message);
      }
      if (c.waits) {
        BOOST_TEST(waited_ms >= kBusyTimeoutMs / 2);
      }
      BOOST_TEST(waited_ms < 5000);
      BOOST_TEST(sqlite3_get_autocommit(db.getHandle()) == 1);

      // Once the other connection lets go, the same change goes through.
      if (sqlite3_get_autocommit(other.getHandle()) == 0) {
        other.exec("ROLLBACK");
      }
      BOOST_TEST(Find(db, "mine").users == 0);
      BOOST_TEST(Find(db, "mine").events == 0);
      SuspendUser(db, emitter, "mine");
      BOOST_TEST(Find(db, "mine").users == 1);
      BOOST_TEST(Find(db, "mine").events == 1);
    }
  }
}

// ---- Many writers and readers -----------------------------------------------

// Eight threads emit, each on its own connection with a short busy timeout,
// while two threads run the queries an operator runs. Busy errors are
// expected; each must reach its caller as an exception, and the outbox must
// hold exactly the events whose transaction committed.
BOOST_AUTO_TEST_CASE(eight_writers_and_two_readers_lose_nothing) {
  ScratchDir dir;
  const std::string path = dir.File("inventory.db");
  {
    auto db = OpenService(path);
    Emitter create(*db);
  }

  constexpr int kWriters = 8;
  constexpr int kPerWriter = 250;
  constexpr int kReaders = 2;
  constexpr int kBusyTimeoutMs = 10;
  std::vector<Outcome> outcomes(kWriters);
  std::vector<std::map<std::string, int>> failures(kWriters);
  std::vector<std::string> unexpected(kWriters + kReaders);
  std::atomic<int> writers_running{kWriters};
  std::atomic<long> queries{0}, busy_queries{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      try {
        auto db = OpenService(path);
        Emitter emitter(*db);
        db->setBusyTimeout(kBusyTimeoutMs);
        for (int i = 0; i < kPerWriter; ++i) {
          std::string id = std::to_string(t) + "-" + std::to_string(i);
          std::string stage;
          int code = 0;
          try {
            SQLite::Transaction txn(*db);
            // Half the transactions write first, half read first (which
            // makes a stale snapshot possible).
            if (i % 2 == 0) {
              stage = "business insert";
              InsertUser(*db, id);
              stage = "emit";
              emitter.Emit(Suspension(id));
            } else {
              stage = "read";
              Count(*db, "SELECT count(*) FROM users");
              stage = "emit";
              emitter.Emit(Suspension(id));
              stage = "business insert";
              InsertUser(*db, id);
            }
            stage = "commit";
            txn.commit();
            outcomes[t].committed.push_back(id);
            continue;
          } catch (const EmitError& e) {
            code = e.sqlite_code();
          } catch (const SQLite::Exception& e) {
            code = e.getExtendedErrorCode();
          }
          outcomes[t].failed.push_back(id);
          ++failures[t][stage + " " + std::to_string(code)];
          if ((code & 0xFF) != SQLITE_BUSY) {
            unexpected[t] =
                id + " failed at " + stage + " with " + std::to_string(code);
          }
        }
      } catch (const std::exception& e) {
        unexpected[t] = e.what();
      }
      --writers_running;
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      try {
        SQLite::Database db(path, SQLite::OPEN_READONLY, kBusyTimeoutMs);
        while (writers_running > 0) {
          try {
            SQLite::Statement by_state(db,
                                       "SELECT state, count(*)"
                                       " FROM sigevents_outbox GROUP BY state");
            while (by_state.executeStep()) {
            }
            Count(db,
                  "SELECT count(*) FROM sigevents_outbox"
                  " WHERE state = 'pending'");
            Count(db, "SELECT coalesce(max(seq), 0) FROM sigevents_outbox");
            ++queries;
          } catch (const SQLite::Exception& e) {
            if (e.getErrorCode() != SQLITE_BUSY) throw;
            ++busy_queries;
          }
        }
      } catch (const std::exception& e) {
        unexpected[kWriters + r] = e.what();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  for (std::size_t i = 0; i < unexpected.size(); ++i) {
    BOOST_TEST_CONTEXT("thread " << i) { BOOST_TEST(unexpected[i] == ""); }
  }
  Outcome all;
  std::map<std::string, int> all_failures;
  for (int t = 0; t < kWriters; ++t) {
    all.committed.insert(all.committed.end(), outcomes[t].committed.begin(),
                         outcomes[t].committed.end());
    all.failed.insert(all.failed.end(), outcomes[t].failed.begin(),
                      outcomes[t].failed.end());
    for (const auto& [kind, count] : failures[t]) all_failures[kind] += count;
  }
  BOOST_TEST(all.committed.size() + all.failed.size() ==
             static_cast<std::size_t>(kWriters * kPerWriter));
  BOOST_TEST(all.committed.size() > 0u);
  auto db = OpenService(path);
  CheckExactlyOnce(*db, all);
  for (const auto& [kind, count] : all_failures) {
    BOOST_TEST_MESSAGE("busy: " << count << " failed at " << kind);
  }
  BOOST_TEST_MESSAGE("readers: " << queries << " queries, " << busy_queries
                                 << " busy");
}

// ---- Nothing on stderr ------------------------------------------------------

// Sends what this process writes to file descriptor 2 into a file until
// Restore() or destruction.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path) {
    std::fflush(stderr);
    saved_ = dup(2);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    BOOST_REQUIRE(saved_ >= 0 && fd >= 0 && dup2(fd, 2) == 2);
    close(fd);
  }
  ~StderrCapture() { Restore(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  void Restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    saved_ = -1;
  }

 private:
  int saved_ = -1;
};

BOOST_AUTO_TEST_CASE(emit_never_writes_to_stderr) {
  ScratchDir dir;
  const std::string captured = dir.File("stderr.txt");
  int attempts = 0, failures = 0;
  auto attempt = [&](const std::function<void()>& run) {
    ++attempts;
    try {
      run();
    } catch (const std::exception&) {
      ++failures;
    }
  };
  {
    StderrCapture capture(captured);
    auto db = OpenService(dir.File("auth.db"));
    Emitter emitter(*db, EmitOptions{/*max_event_bytes=*/2000});
    for (int i = 0; i < 10; ++i) {
      attempt([&] { SuspendUser(*db, emitter, "good" + std::to_string(i)); });
    }

    // Every class of bad event, each inside a transaction.
    const char* bad_data[] = {
        R"({"userId":"1"})",                              // missing field
        R"({"userId":"1","userEmial":"u@example.com"})",  // unknown field
        R"({"userId":{},"userEmail":"","loggedInUserId":"",)"
        R"("loggedInUserEmail":"","message":""})",  // wrong shape
        R"({"userId":"","userEmail":"","loggedInUserId":"",)"
        R"("loggedInUserEmail":"","message":""})",  // empty key
        R"({"userId":"1",)",                        // not JSON
    };
    for (const char* data : bad_data) {
      attempt([&] {
        SQLite::Transaction txn(*db);
        emitter.Emit(Event::FromJson("user.suspended", std::string_view(data)));
      });
    }
    attempt([&] { Event::FromJson("user.suspendd", std::string_view("{}")); });
    attempt([&] {
      boost::json::object data{{"userId", "\xFF"}};
      Event::FromJson("user.suspended", boost::json::value(data));
    });
    attempt([&] { SuspendUser(*db, emitter, "large", 3000); });
    attempt([&] { emitter.Emit(Suspension("no transaction")); });

    // Storage failures: busy, full, read-only, corrupt.
    {
      SQLite::Database other(dir.File("auth.db"), SQLite::OPEN_READWRITE);
      other.exec("BEGIN IMMEDIATE");
      db->setBusyTimeout(50);
      attempt([&] { SuspendUser(*db, emitter, "busy"); });
      other.exec("ROLLBACK");
    }
    db->exec("PRAGMA max_page_count = " +
             std::to_string(Count(*db, "PRAGMA page_count") + 2));
    for (int i = 0; i < 20; ++i) {
      attempt(
          [&] { SuspendUser(*db, emitter, "full" + std::to_string(i), 1500); });
    }
    {
      SQLite::Database read_only(dir.File("auth.db"), SQLite::OPEN_READONLY);
      Emitter read_only_emitter(read_only);
      attempt([&] {
        SQLite::Transaction txn(read_only);
        read_only_emitter.Emit(Suspension("read-only"));
      });
    }
    std::ofstream(dir.File("corrupt.db")) << "not a database";
    attempt([&] {
      SQLite::Database corrupt(dir.File("corrupt.db"), SQLite::OPEN_READWRITE);
      Emitter corrupt_emitter(corrupt);
    });
    capture.Restore();
  }
  BOOST_TEST(failures >= 12);
  BOOST_TEST(ReadFile(captured) == "");
  BOOST_TEST_MESSAGE(attempts << " emits (" << failures
                              << " failing), nothing on stderr");
}

}  // namespace
}  // namespace sigevents
