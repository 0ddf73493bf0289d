// sigevents list --db PATH [--state S] [--type PATTERN] [--key KEY]
// [--older-than DURATION] [--limit N] [--json]: one line per outbox row,
// oldest first, to find the events that are stuck and why.

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <ostream>

#include "adapters/cli.h"
#include "adapters/cli_ops.h"

namespace sigevents::cli {
namespace {

namespace json = boost::json;

// Long errors are cut in the table; --json and `show` give them whole.
constexpr std::size_t kErrorWidth = 80;

std::string OneLine(const std::optional<std::string>& text) {
  if (!text || text->empty()) return "-";
  std::string line = *text;
  for (char& c : line) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (line.size() > kErrorWidth) line = line.substr(0, kErrorWidth - 3) + "...";
  return line;
}

EventFilter FilterFromArgs(const boost::program_options::variables_map& values,
                           std::int64_t now_ms) {
  EventFilter filter;
  std::string state = values["state"].as<std::string>();
  if (state != "all") {
    filter.state = ParseEventState(state);
    if (!filter.state) {
      throw UsageError("bad --state \"" + state +
                       "\": expected pending, failed, delivered or all");
    }
  }
  if (values.count("type") != 0) {
    filter.type_pattern = values["type"].as<std::string>();
    try {
      CheckTypePattern(filter.type_pattern);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
  }
  if (values.count("key") != 0) filter.key = values["key"].as<std::string>();
  if (values.count("older-than") != 0) {
    filter.created_before_ms =
        now_ms - ParseDuration(values["older-than"].as<std::string>()).count();
  }
  long limit = values["limit"].as<long>();
  if (limit < 0) throw UsageError("--limit must be 0 (no limit) or more");
  filter.limit = static_cast<std::size_t>(limit);
  return filter;
}

void PrintTable(std::ostream& out, const std::vector<OutboxRecord>& records,
                std::int64_t now_ms) {
  std::vector<std::vector<std::string>> rows = {
      {"SEQ", "ID", "TYPE", "KEY", "STATE", "ATTEMPTS", "AGE", "LAST ERROR"}};
  for (const OutboxRecord& record : records) {
    rows.push_back({std::to_string(record.seq), record.id, record.type,
                    record.key, std::string(EventStateName(record.state)),
                    std::to_string(record.attempts),
                    FormatDuration(Age(now_ms, record.created_at_ms)),
                    OneLine(record.last_error)});
  }
  PrintColumns(out, rows);
}

}  // namespace

int RunList(int argc, char** argv, Io& io) {
  namespace po = boost::program_options;
  po::options_description options("options");
  options.add_options()                                                     //
      ("db", po::value<std::string>()->required(), "outbox database file")  //
      ("state", po::value<std::string>()->default_value("all"),
       "pending, failed, delivered or all")  //
      ("type", po::value<std::string>(),
       "a type name, or a prefix ending in '*' (server.*)")                 //
      ("key", po::value<std::string>(), "the event's key (its entity id)")  //
      ("older-than", po::value<std::string>(),
       "only events created at least this long ago (30s, 5m, 2h, 1d)")  //
      ("limit", po::value<long>()->default_value(100),
       "at most this many rows; 0 for all")  //
      ("json", "print a JSON array of objects instead of the table");
  po::variables_map values;
  if (!ParseArgs(
          argc, argv,
          "sigevents list --db PATH [--state S] [--type PATTERN] [--key KEY]\n"
          "                         [--older-than DURATION] [--limit N] "
          "[--json]\n\n"
          "Lists outbox events oldest first (by seq, so the newest is last): "
          "the\nfirst --limit that match. With more, a note on standard error "
          "says so.\nThe JSON objects hold seq, id, type, key, topic, state, "
          "attempts,\nlast_error, created_at, delivered_at (RFC 3339 or null), "
          "partition and\noffset. Opens the database read-only.",
          options, values, io)) {
    return 0;
  }
  std::int64_t now_ms = UnixMillisNow();
  EventFilter filter = FilterFromArgs(values, now_ms);
  auto db = OpenOutbox(values["db"].as<std::string>(), Access::kReadOnly);

  // One row more than asked for tells whether more match.
  std::size_t limit = filter.limit;
  if (limit > 0) ++filter.limit;
  std::vector<OutboxRecord> records = ListEvents(*db, filter);
  bool more = limit > 0 && records.size() > limit;
  if (more) records.resize(limit);

  if (values.count("json") != 0) {
    json::array array;
    for (const OutboxRecord& record : records) {
      array.push_back(RecordToJson(record));
    }
    io.out << json::serialize(array) << "\n";
  } else if (records.empty()) {
    io.err << "no events match\n";
  } else {
    PrintTable(io.out, records, now_ms);
  }
  if (more) {
    io.err << "more events match: showing the oldest " << limit
           << "; raise --limit or narrow the filters\n";
  }
  return 0;
}

}  // namespace sigevents::cli
