// sigevents emit --db PATH [--batch N] [--type T --data JSON]: emits events
// from newline-delimited JSON on standard input, one
// {"type": ..., "data": {...}} per line, and prints the id of each event
// once its transaction has committed.

#include <SQLiteCpp/Transaction.h>
#include <poll.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <iostream>
#include <optional>

#include "adapters/cli.h"
#include "adapters/ndjson.h"
#include "emitter/emitter.h"
#include "emitter/json_parse.h"
#include "outbox/schema.h"

namespace sigevents::cli {
namespace {

namespace json = boost::json;

// True when more input is ready to read without waiting.
bool InputReady(std::istream& in) {
  if (in.rdbuf()->in_avail() > 0) return true;
  if (&in != &std::cin) return !in.eof();
  pollfd fd{STDIN_FILENO, POLLIN, 0};
  return poll(&fd, 1, 0) > 0;
}

class BatchEmitter {
 public:
  BatchEmitter(SQLite::Database& db, Io& io) : db_(db), emitter_(db), io_(io) {}

  // Returns false when the line was rejected.
  bool Add(long line_number, const std::string& line) {
    std::string error;
    std::optional<Event> event = ParseEventLine(line, error);
    if (!event) {
      Reject(line_number, error);
      return false;
    }
    if (txn_ == nullptr) txn_ = std::make_unique<SQLite::Transaction>(db_);
    try {
      ids_.push_back(emitter_.Emit(*event).id);
      lines_.push_back(line_number);
    } catch (const EventError& e) {
      Reject(line_number, e.what());
      return false;
    }
    return true;
  }

  size_t size() const { return lines_.size(); }

  // Commits the open transaction and prints its ids. On a storage failure
  // the whole batch rolls back and each of its lines is reported.
  bool Commit() {
    if (txn_ == nullptr) return true;
    bool ok = true;
    try {
      txn_->commit();
      for (const std::string& id : ids_) io_.out << id << "\n";
      io_.out.flush();
    } catch (const std::exception& e) {
      std::string cause =
          "commit to " + db_.getFilename() + " failed, batch of lines " +
          std::to_string(lines_.front()) + "-" + std::to_string(lines_.back()) +
          " rolled back: " + e.what();
      for (long line : lines_) Reject(line, cause);
      ok = false;
    }
    txn_.reset();
    ids_.clear();
    lines_.clear();
    return ok;
  }

  // A storage failure inside a batch: roll it back, report its lines.
  void Abandon(long line_number, const std::string& cause) {
    txn_.reset();
    for (long line : lines_) {
      Reject(line, "rolled back with line " + std::to_string(line_number) +
                       ": " + cause);
    }
    ids_.clear();
    lines_.clear();
  }

 private:
  void Reject(long line_number, const std::string& reason) {
    io_.err << "line " << line_number << ": " << reason << "\n";
    io_.err.flush();
  }

  SQLite::Database& db_;
  Emitter emitter_;
  Io& io_;
  std::unique_ptr<SQLite::Transaction> txn_;
  std::vector<std::string> ids_;
  std::vector<long> lines_;
};

}  // namespace

int RunEmit(int argc, char** argv, Io& io) {
  namespace po = boost::program_options;
  po::options_description options("options");
  options.add_options()                                                     //
      ("db", po::value<std::string>()->required(), "outbox database file")  //
      ("batch", po::value<long>()->default_value(1),
       "lines per transaction (a partial batch commits when input pauses)")  //
      ("type", po::value<std::string>(), "emit one event of this type")      //
      ("data", po::value<std::string>(), "its data, a JSON object");
  po::variables_map values;
  if (!ParseArgs(argc, argv,
                 "sigevents emit --db PATH [--batch N] < events.ndjson\n"
                 "       sigevents emit --db PATH --type TYPE --data JSON",
                 options, values, io)) {
    return 0;
  }
  long batch = values["batch"].as<long>();
  if (batch < 1) throw UsageError("--batch must be at least 1");
  if ((values.count("type") != 0) != (values.count("data") != 0)) {
    throw UsageError("--type and --data go together");
  }

  auto db = OpenDatabase(values["db"].as<std::string>(), OpenOptions{});
  BatchEmitter emitter(*db, io);
  bool all_ok = true;

  if (values.count("type") != 0) {
    json::object line{{"type", values["type"].as<std::string>()}};
    JsonError error;
    line["data"] = ParseJson(values["data"].as<std::string>(),
                             Event::kMaxDepth + 1, error);
    if (error) throw UsageError("--data is not valid JSON: " + error.message);
    all_ok = emitter.Add(1, json::serialize(line)) && emitter.Commit();
    return all_ok ? 0 : 1;
  }

  long line_number = 0;
  for (std::string line; std::getline(io.in, line);) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      if (!emitter.Add(line_number, line)) all_ok = false;
    } catch (const std::exception& e) {
      emitter.Abandon(line_number, e.what());
      io.err << "line " << line_number << ": " << e.what() << "\n";
      all_ok = false;
      continue;
    }
    if (emitter.size() >= static_cast<size_t>(batch) || !InputReady(io.in)) {
      if (!emitter.Commit()) all_ok = false;
    }
  }
  if (!emitter.Commit()) all_ok = false;
  return all_ok ? 0 : 1;
}

}  // namespace sigevents::cli
