// sigevents show --db PATH ID|SEQ [--json]: one event in full, its
// delivery record and the CloudEvent as stored, pretty-printed.

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <ostream>

#include "adapters/cli.h"
#include "adapters/cli_ops.h"
#include "emitter/envelope.h"

namespace sigevents::cli {
namespace {

namespace json = boost::json;

// JSON with two spaces of indent per level, members in stored order.
void PrettyPrint(std::ostream& out, const json::value& value,
                 const std::string& indent = "") {
  std::string inner = indent + "  ";
  if (value.is_object() && !value.get_object().empty()) {
    out << "{\n";
    const char* separator = "";
    for (const auto& member : value.get_object()) {
      out << separator << inner << json::serialize(member.key()) << ": ";
      PrettyPrint(out, member.value(), inner);
      separator = ",\n";
    }
    out << "\n" << indent << "}";
  } else if (value.is_array() && !value.get_array().empty()) {
    out << "[\n";
    const char* separator = "";
    for (const json::value& element : value.get_array()) {
      out << separator << inner;
      PrettyPrint(out, element, inner);
      separator = ",\n";
    }
    out << "\n" << indent << "]";
  } else {
    out << json::serialize(value);
  }
}

void PrintRecord(std::ostream& out, const OutboxRecord& record,
                 std::int64_t now_ms) {
  auto when = [now_ms](const std::optional<std::int64_t>& unix_ms) {
    if (!unix_ms) return std::string("-");
    return FormatRfc3339Millis(*unix_ms) + " (" +
           FormatDuration(Age(now_ms, *unix_ms)) + " ago)";
  };
  auto text = [](const std::optional<std::string>& value) {
    return value ? *value : std::string("-");
  };
  auto number = [](const std::optional<std::int64_t>& value) {
    return value ? std::to_string(*value) : std::string("-");
  };
  PrintColumns(out, {{"seq", std::to_string(record.seq)},
                     {"id", record.id},
                     {"type", record.type},
                     {"key", record.key},
                     {"state", std::string(EventStateName(record.state))},
                     {"attempts", std::to_string(record.attempts)},
                     {"last error", text(record.last_error)},
                     {"created", when(record.created_at_ms)},
                     {"delivered", when(record.delivered_at_ms)},
                     {"topic", text(record.topic)},
                     {"partition", number(record.partition)},
                     {"offset", number(record.offset)}});
}

}  // namespace

int RunShow(int argc, char** argv, Io& io) {
  namespace po = boost::program_options;
  po::options_description options("options");
  options.add_options()                                                     //
      ("db", po::value<std::string>()->required(), "outbox database file")  //
      ("event", po::value<std::string>()->required(),
       "the event: its id, or its outbox sequence number")  //
      ("json",
       "print one JSON object: the fields of `list --json` and \"event\"");
  po::positional_options_description positional;
  positional.add("event", 1);
  po::variables_map values;
  if (!ParseArgs(argc, argv,
                 "sigevents show --db PATH ID|SEQ [--json]\n\n"
                 "Prints one event's delivery record (state, attempts, last "
                 "error, topic,\npartition, offset, times) and the CloudEvent "
                 "as stored. Opens the database\nread-only. Exit status 1 when "
                 "there is no such event.",
                 options, values, io, &positional)) {
    return 0;
  }
  std::string path = values["db"].as<std::string>();
  EventRef ref = EventRef::Parse(values["event"].as<std::string>());
  auto db = OpenOutbox(path, Access::kReadOnly);
  std::optional<OutboxRecord> record = FindEvent(*db, ref);
  if (!record) {
    io.err << "no event with " << ref.ToString() << " in " << path << "\n";
    return 1;
  }

  boost::system::error_code ec;
  json::value event = json::parse(record->payload, ec);
  if (values.count("json") != 0) {
    json::object object = RecordToJson(*record);
    object["event"] = ec ? json::value(record->payload) : event;
    io.out << json::serialize(object) << "\n";
    return 0;
  }
  PrintRecord(io.out, *record, UnixMillisNow());
  io.out << "\n";
  if (ec) {
    // Emit() stores valid JSON only; show what is there all the same.
    io.out << record->payload << "\n";
  } else {
    PrettyPrint(io.out, event);
    io.out << "\n";
  }
  return 0;
}

}  // namespace sigevents::cli
