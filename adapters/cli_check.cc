// sigevents check --db PATH [--max-pending-age D] [--max-failed N]
// [--max-heartbeat-age D]: a health probe for cron, Nagios or Kubernetes.
// One line on standard output and the exit status: 0 healthy, 1 not,
// 2 cannot tell.

#include <ostream>

#include "adapters/cli.h"
#include "adapters/cli_ops.h"

namespace sigevents::cli {
namespace {

constexpr int kHealthy = 0;
constexpr int kUnhealthy = 1;
constexpr int kUnknown = 2;

HealthLimits LimitsFromArgs(
    const boost::program_options::variables_map& values) {
  HealthLimits limits;
  limits.max_pending_age =
      ParseDuration(values["max-pending-age"].as<std::string>());
  limits.max_failed = values["max-failed"].as<long>();
  if (limits.max_failed < 0) throw UsageError("--max-failed must be 0 or more");
  if (values.count("max-heartbeat-age") != 0) {
    limits.max_heartbeat_age =
        ParseDuration(values["max-heartbeat-age"].as<std::string>());
    limits.relay_required = true;
  }
  return limits;
}

std::string DescribeHealthy(const OutboxSummary& summary, std::int64_t now_ms) {
  std::string text = std::to_string(summary.pending) + " pending";
  if (summary.oldest_pending_ms) {
    text += " (oldest " +
            FormatDuration(Age(now_ms, *summary.oldest_pending_ms)) + ")";
  }
  text += ", " + std::to_string(summary.failed) + " failed, " +
          std::to_string(summary.delivered_last_minute) +
          " delivered in the last minute";
  if (summary.lease.held()) text += ", relay " + summary.lease.owner;
  return text;
}

}  // namespace

int RunCheck(int argc, char** argv, Io& io) {
  namespace po = boost::program_options;
  po::options_description options("options");
  options.add_options()                                                     //
      ("db", po::value<std::string>()->required(), "outbox database file")  //
      ("max-pending-age", po::value<std::string>()->default_value("5m"),
       "unhealthy when an event has been pending longer")  //
      ("max-failed", po::value<long>()->default_value(0),
       "unhealthy when more events than this have failed")  //
      ("max-heartbeat-age", po::value<std::string>(),
       "also unhealthy when no relay holds the lease or its last heartbeat "
       "is older (not checked by default)");
  po::variables_map values;
  if (!ParseArgs(argc, argv,
                 "sigevents check --db PATH [--max-pending-age DURATION] "
                 "[--max-failed N]\n"
                 "                          [--max-heartbeat-age DURATION]\n\n"
                 "Prints one line, \"OK: ...\", \"UNHEALTHY: <why>\" or "
                 "\"UNKNOWN: <why>\", and\nexits 0 when healthy, 1 when not, "
                 "2 when it cannot tell (no such file,\nnot an outbox, a newer "
                 "schema, bad flags). Opens the database read-only.",
                 options, values, io)) {
    return 0;
  }
  HealthLimits limits = LimitsFromArgs(values);
  std::string path = values["db"].as<std::string>();

  OutboxSummary summary;
  std::int64_t now_ms = 0;
  try {
    summary = ReadSummary(path, &now_ms);
  } catch (const std::exception& e) {
    io.out << "UNKNOWN: " << e.what() << "\n";
    return kUnknown;
  }
  std::vector<std::string> problems = FindProblems(summary, limits, now_ms);
  if (problems.empty()) {
    io.out << "OK: " << DescribeHealthy(summary, now_ms) << "\n";
    return kHealthy;
  }
  io.out << "UNHEALTHY: ";
  const char* separator = "";
  for (const std::string& problem : problems) {
    io.out << separator << problem;
    separator = "; ";
  }
  io.out << "\n";
  return kUnhealthy;
}

}  // namespace sigevents::cli
