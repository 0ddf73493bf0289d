// sigevents status --db PATH [--json]: whether events flow, at a glance.
// The first line names each problem ("PROBLEM: 3 failed events ...") or
// says "OK"; the figures follow, one per line.

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <ostream>

#include "adapters/cli.h"
#include "adapters/cli_ops.h"
#include "emitter/envelope.h"

namespace sigevents::cli {
namespace {

namespace json = boost::json;

// A relay that has not renewed its lease for this long has probably died:
// relays renew it every quarter of their lease (10s by default).
constexpr std::chrono::seconds kStaleHeartbeat{30};

struct Figures {
  std::string path;
  std::int64_t now_ms = 0;
  OutboxSummary summary;
  std::vector<std::string> problems;
  std::uintmax_t database_bytes = 0;
  std::uintmax_t wal_bytes = 0;
};

json::object RelayAsJson(const Figures& figures) {
  const LeaseInfo& lease = figures.summary.lease;
  json::object relay{{"held", lease.held()}};
  relay["owner"] = lease.held() ? json::value(lease.owner) : nullptr;
  relay["host"] = lease.held() ? json::value(lease.host) : nullptr;
  relay["pid"] = lease.held() && lease.pid ? json::value(*lease.pid) : nullptr;
  relay["heartbeat_at"] = TimeOrNull(lease.heartbeat_at_ms);
  relay["heartbeat_age_ms"] =
      lease.heartbeat_at_ms
          ? json::value(Age(figures.now_ms, *lease.heartbeat_at_ms).count())
          : nullptr;
  relay["last_stop_clean"] = lease.clean_stop;
  return relay;
}

json::object StatusAsJson(const Figures& figures) {
  const OutboxSummary& summary = figures.summary;
  json::array problems(figures.problems.begin(), figures.problems.end());
  json::object status{{"healthy", figures.problems.empty()},
                      {"problems", std::move(problems)},
                      {"database", figures.path},
                      {"schema_version", summary.schema_version},
                      {"outbox_id", summary.outbox_id}};
  status["events"] = json::object{{"pending", summary.pending},
                                  {"failed", summary.failed},
                                  {"delivered", summary.delivered}};
  status["oldest_pending_created_at"] = TimeOrNull(summary.oldest_pending_ms);
  status["oldest_pending_age_ms"] =
      summary.oldest_pending_ms
          ? json::value(Age(figures.now_ms, *summary.oldest_pending_ms).count())
          : nullptr;
  status["delivered_last_minute"] = summary.delivered_last_minute;
  status["delivered_last_hour"] = summary.delivered_last_hour;
  status["relay"] = RelayAsJson(figures);
  status["database_bytes"] = figures.database_bytes;
  status["wal_bytes"] = figures.wal_bytes;
  return status;
}

std::string DescribeRelay(const LeaseInfo& lease) {
  if (!lease.held()) {
    return lease.clean_stop ? "none"
                            : "none (the last one did not stop cleanly)";
  }
  std::string text = lease.owner;
  if (!lease.host.empty()) text += " on " + lease.host;
  if (lease.pid) text += ", pid " + std::to_string(*lease.pid);
  return text;
}

void PrintStatus(std::ostream& out, const Figures& figures) {
  for (const std::string& problem : figures.problems) {
    out << "PROBLEM: " << problem << "\n";
  }
  if (figures.problems.empty()) out << "OK\n";
  out << "\n";

  const OutboxSummary& summary = figures.summary;
  auto ago = [&figures](const std::optional<std::int64_t>& unix_ms,
                        const char* none) -> std::string {
    if (!unix_ms) return none;
    return FormatDuration(Age(figures.now_ms, *unix_ms)) + " ago (" +
           FormatRfc3339Millis(*unix_ms) + ")";
  };
  PrintColumns(
      out,
      {{"pending", CountOf(summary.pending, "event")},
       {"failed", CountOf(summary.failed, "event")},
       {"delivered", CountOf(summary.delivered, "event") + " kept"},
       {"oldest pending", ago(summary.oldest_pending_ms, "none")},
       {"delivered last minute",
        CountOf(summary.delivered_last_minute, "event")},
       {"delivered last hour", CountOf(summary.delivered_last_hour, "event")},
       {"relay", DescribeRelay(summary.lease)},
       {"relay heartbeat", ago(summary.lease.heartbeat_at_ms, "never")},
       {"schema version", std::to_string(summary.schema_version)},
       {"database", figures.path + " (" + FormatBytes(figures.database_bytes) +
                        ", WAL " + FormatBytes(figures.wal_bytes) + ")"}});
}

}  // namespace

int RunStatus(int argc, char** argv, Io& io) {
  namespace po = boost::program_options;
  po::options_description options("options");
  options.add_options()                                                     //
      ("db", po::value<std::string>()->required(), "outbox database file")  //
      ("json", "print one JSON object instead of the table");
  po::variables_map values;
  if (!ParseArgs(argc, argv,
                 "sigevents status --db PATH [--json]\n\n"
                 "Counts by state, the oldest pending event, deliveries in "
                 "the last minute\nand hour, the relay holding the lease, "
                 "the schema version and file sizes.\nThe first line says "
                 "\"OK\" or names each problem: failed events, a pending\n"
                 "event older than 5m, pending events and no relay, a relay "
                 "heartbeat older\nthan 30s. Opens the database read-only. "
                 "Exit status 0 whatever the health\n(`sigevents check` "
                 "gives it as a status), 2 when the file is not a\nreadable "
                 "outbox.",
                 options, values, io)) {
    return 0;
  }
  Figures figures;
  figures.path = values["db"].as<std::string>();
  figures.summary = ReadSummary(figures.path, &figures.now_ms);
  HealthLimits limits;
  limits.max_heartbeat_age = kStaleHeartbeat;
  figures.problems = FindProblems(figures.summary, limits, figures.now_ms);
  figures.database_bytes = FileBytes(figures.path);
  figures.wal_bytes = FileBytes(figures.path + "-wal");

  if (values.count("json") != 0) {
    io.out << json::serialize(StatusAsJson(figures)) << "\n";
  } else {
    PrintStatus(io.out, figures);
  }
  return 0;
}

}  // namespace sigevents::cli
