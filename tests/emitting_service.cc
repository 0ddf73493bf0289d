// A stand-in for a service that embeds sigevents, for the crash tests: it
// keeps a business table and, in a loop, runs transactions that change it
// and emit events inside the same transaction, until `--events` events are
// committed. It may be killed at any moment and restarted with the same
// flags; it resumes from what the database says.
//
//   emitting_service --db /tmp/x/service.db --events 5000 --seed 7
//       --rate 100
//
// What a checker can rely on after any crash:
// - committed_events(event_id, seq, type, entity_key) holds exactly the
//   events of the committed transactions: each transaction inserts its rows
//   there in the same transaction as the business change and the emit().
// - rolled_back.txt (next to the database unless --rolled-back says
//   otherwise) lists, one id a line, the events of transactions that emitted
//   and then rolled back on purpose. The ids are written and fsync'd before
//   the rollback, so none of them may ever be published.
//
// Events cycle through every type of tests/testdata/spec_examples.ndjson,
// with the entity key (the type's partition key field) drawn from a small
// set so that per-key order is meaningful.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "emitter/catalog.h"
#include "emitter/emitter.h"
#include "emitter/event.h"
#include "outbox/schema.h"

namespace sigevents::testing {
namespace {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string db;
  std::string rolled_back;
  std::string examples;
  std::int64_t events = 0;
  std::uint64_t seed = 1;
  double rate = 0;  // events per second; 0 = as fast as possible
  int keys = 50;
  double rollback_fraction = 0.1;
  int max_events_per_txn = 4;
};

// One example per event type: its type name, data and partition key field.
struct Example {
  std::string type;
  boost::json::object data;
  std::string key_field;
};

std::vector<Example> ReadExamples(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read examples " + path);
  std::vector<Example> examples;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    boost::json::object envelope = boost::json::parse(line).as_object();
    Example example;
    example.type = std::string(envelope.at("type").as_string());
    example.data = envelope.at("data").as_object();
    const EventSpec* spec = FindEventSpec(example.type);
    if (spec == nullptr) {
      throw std::runtime_error(path + ": unknown event type " + example.type);
    }
    example.key_field = std::string(spec->key_field);
    examples.push_back(std::move(example));
  }
  if (examples.size() != EventTypeCount()) {
    throw std::runtime_error(path + ": " + std::to_string(examples.size()) +
                             " examples, expected one per event type (" +
                             std::to_string(EventTypeCount()) + ")");
  }
  return examples;
}

// Appends lines to a file, each batch flushed and fsync'd before returning.
class SyncedLog {
 public:
  explicit SyncedLog(const std::string& path)
      : fd_(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                 0644)) {
    if (fd_ < 0) throw std::runtime_error("cannot open " + path);
  }
  ~SyncedLog() { close(fd_); }

  void AppendAndSync(const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    if (write(fd_, text.data(), text.size()) !=
            static_cast<ssize_t>(text.size()) ||
        fsync(fd_) != 0) {
      throw std::runtime_error("cannot write the rolled-back ids");
    }
  }

 private:
  int fd_;
};

class Service {
 public:
  explicit Service(const Options& options)
      : options_(options),
        examples_(ReadExamples(options.examples)),
        db_(OpenDatabase(options.db, OpenOptions{})),
        rolled_back_(options.rolled_back) {
    db_->exec(
        "CREATE TABLE IF NOT EXISTS entities ("
        "  entity_key TEXT PRIMARY KEY,"
        "  version INTEGER NOT NULL,"
        "  last_type TEXT NOT NULL)");
    db_->exec(
        "CREATE TABLE IF NOT EXISTS committed_events ("
        "  event_id TEXT PRIMARY KEY,"
        "  seq INTEGER NOT NULL UNIQUE,"
        "  type TEXT NOT NULL,"
        "  entity_key TEXT NOT NULL)");
    emitter_ = std::make_unique<Emitter>(*db_);
    committed_ =
        db_->execAndGet("SELECT count(*) FROM committed_events").getInt64();
    // A restart must not replay the previous run's choices.
    random_.seed(options.seed * 1000003 +
                 static_cast<std::uint64_t>(committed_));
  }

  // Runs transactions until `events` are committed. Returns how many this
  // run committed.
  std::int64_t Run() {
    std::int64_t start = committed_;
    Clock::time_point began = Clock::now();
    std::int64_t attempted = 0;
    while (committed_ < options_.events) {
      int count = PickCount();
      bool roll_back = Chance(options_.rollback_fraction);
      attempted += count;
      Clock::time_point due = began;
      if (options_.rate > 0) {
        due += std::chrono::microseconds(
            static_cast<std::int64_t>(attempted * 1e6 / options_.rate));
      }
      RunTransaction(count, roll_back, due);
    }
    return committed_ - start;
  }

  std::int64_t rolled_back_total() const { return rolled_back_total_; }

 private:
  int PickCount() {
    int count = 1;
    if (Chance(0.4)) {
      count = std::uniform_int_distribution<int>(
          2, options_.max_events_per_txn)(random_);
    }
    std::int64_t left = options_.events - committed_;
    return static_cast<int>(std::min<std::int64_t>(count, left));
  }

  bool Chance(double p) {
    return std::uniform_real_distribution<double>(0, 1)(random_) < p;
  }

  // One business transaction of `count` events. Part of the pacing delay is
  // spent with the transaction open, so that kills land inside transactions
  // too.
  void RunTransaction(int count, bool roll_back, Clock::time_point due) {
    for (int attempt = 0;; ++attempt) {
      try {
        auto txn = std::make_unique<SQLite::Transaction>(
            *db_, SQLite::TransactionBehavior::IMMEDIATE);
        std::vector<std::string> ids;
        for (int i = 0; i < count; ++i) {
          const Example& example =
              examples_[(committed_ + type_offset_ + i) % examples_.size()];
          std::string key =
              std::to_string(1000 + std::uniform_int_distribution<int>(
                                        0, options_.keys - 1)(random_));
          ChangeEntity(key, example.type);
          boost::json::object data = example.data;
          data[example.key_field] = key;
          EmitReceipt receipt =
              emitter_->Emit(Event::FromJson(example.type, data));
          RecordCommitted(receipt, example.type, key);
          ids.push_back(receipt.id);
        }
        SleepUntil(due - (due - Clock::now()) / 2);
        if (roll_back) {
          rolled_back_.AppendAndSync(ids);
          txn.reset();  // rolls back
          rolled_back_total_ += count;
          // Shift the type cycle so that rolled-back types come back.
          type_offset_ += count;
        } else {
          txn->commit();
          committed_ += count;
        }
        SleepUntil(due);
        return;
      } catch (const SQLite::Exception& e) {
        if (attempt >= 20) throw;
        std::cerr << "emitting_service: transaction failed (" << e.what()
                  << "); retrying\n";
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }

  void ChangeEntity(const std::string& key, const std::string& type) {
    SQLite::Statement upsert(
        *db_,
        "INSERT INTO entities (entity_key, version, last_type)"
        " VALUES (?, 1, ?) ON CONFLICT (entity_key) DO UPDATE"
        " SET version = version + 1, last_type = excluded.last_type");
    upsert.bind(1, key);
    upsert.bind(2, type);
    upsert.exec();
  }

  void RecordCommitted(const EmitReceipt& receipt, const std::string& type,
                       const std::string& key) {
    SQLite::Statement insert(*db_,
                             "INSERT INTO committed_events"
                             " (event_id, seq, type, entity_key)"
                             " VALUES (?, ?, ?, ?)");
    insert.bind(1, receipt.id);
    insert.bind(2, receipt.seq);
    insert.bind(3, type);
    insert.bind(4, key);
    insert.exec();
  }

  static void SleepUntil(Clock::time_point when) {
    if (when > Clock::now()) std::this_thread::sleep_until(when);
  }

  Options options_;
  std::vector<Example> examples_;
  std::unique_ptr<SQLite::Database> db_;
  std::unique_ptr<Emitter> emitter_;
  SyncedLog rolled_back_;
  std::mt19937_64 random_;
  std::int64_t committed_ = 0;
  std::int64_t type_offset_ = 0;
  std::int64_t rolled_back_total_ = 0;
};

int Main(int argc, char** argv) {
  Options options;
  po::options_description description("emitting_service options");
  description.add_options()                                        //
      ("db", po::value(&options.db)->required(), "database file")  //
      ("events", po::value(&options.events)->required(),
       "stop once this many events are committed")                         //
      ("seed", po::value(&options.seed)->default_value(1), "random seed")  //
      ("rate", po::value(&options.rate)->default_value(0),
       "events per second; 0 for no pacing")  //
      ("keys", po::value(&options.keys)->default_value(50),
       "number of distinct entity keys")  //
      ("rollback-fraction",
       po::value(&options.rollback_fraction)->default_value(0.1),
       "fraction of transactions rolled back after emitting")  //
      ("rolled-back", po::value(&options.rolled_back),
       "file of rolled-back event ids (default: rolled_back.txt next to "
       "--db)")  //
      ("examples",
       po::value(&options.examples)
           ->default_value("tests/testdata/spec_examples.ndjson"),
       "one example event per type, NDJSON")  //
      ("help", "show this help");
  po::variables_map values;
  po::store(po::parse_command_line(argc, argv, description), values);
  if (values.count("help") != 0) {
    std::cout << description << "\n";
    return 0;
  }
  po::notify(values);
  if (options.keys < 1 || options.events < 0) {
    throw std::invalid_argument("--keys must be >= 1, --events >= 0");
  }
  if (options.rolled_back.empty()) {
    options.rolled_back =
        (std::filesystem::path(options.db).parent_path() / "rolled_back.txt")
            .string();
  }

  Service service(options);
  std::int64_t committed = service.Run();
  std::cerr << "emitting_service: committed " << committed
            << " event(s) in this run, rolled back "
            << service.rolled_back_total() << "; " << options.events
            << " reached\n";
  return 0;
}

}  // namespace
}  // namespace sigevents::testing

int main(int argc, char** argv) {
  try {
    return sigevents::testing::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "emitting_service: " << e.what() << "\n";
    return 1;
  }
}
