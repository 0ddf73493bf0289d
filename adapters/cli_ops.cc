#include "adapters/cli_ops.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <ostream>

#include "adapters/cli.h"
#include "emitter/envelope.h"

namespace sigevents::cli {
namespace {

namespace json = boost::json;

template <typename T>
json::value OrNull(const std::optional<T>& value) {
  if (!value) return nullptr;
  return json::value(*value);
}

}  // namespace

OutboxSummary ReadSummary(const std::string& path, std::int64_t* now_ms) {
  auto db = OpenOutbox(path, Access::kReadOnly);
  *now_ms = UnixMillisNow();
  return Summarize(*db, *now_ms);
}

std::string CountOf(std::int64_t count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

std::vector<std::string> FindProblems(const OutboxSummary& summary,
                                      const HealthLimits& limits,
                                      std::int64_t now_ms) {
  std::vector<std::string> problems;
  if (summary.failed > limits.max_failed) {
    problems.push_back(
        CountOf(summary.failed, "failed event") +
        (limits.max_failed > 0
             ? " (more than " + std::to_string(limits.max_failed) + ")"
             : "") +
        "; see `sigevents list --state failed`");
  }
  if (summary.oldest_pending_ms) {
    std::chrono::milliseconds age = Age(now_ms, *summary.oldest_pending_ms);
    if (age > limits.max_pending_age) {
      problems.push_back("the oldest of " +
                         CountOf(summary.pending, "pending event") +
                         " has waited " + FormatDuration(age) + " (more than " +
                         FormatDuration(limits.max_pending_age) + ")");
    }
  }
  if (!limits.max_heartbeat_age) return problems;
  const LeaseInfo& lease = summary.lease;
  if (!lease.held()) {
    if (limits.relay_required || summary.pending > 0) {
      problems.push_back("no relay holds the lease" +
                         (summary.pending > 0
                              ? ": nothing sends the " +
                                    CountOf(summary.pending, "pending event")
                              : std::string()));
    }
  } else if (!lease.heartbeat_at_ms ||
             Age(now_ms, *lease.heartbeat_at_ms) > *limits.max_heartbeat_age) {
    problems.push_back(
        "relay " + lease.owner + " has not renewed its lease for " +
        (lease.heartbeat_at_ms
             ? FormatDuration(Age(now_ms, *lease.heartbeat_at_ms))
             : std::string("ever")) +
        " (more than " + FormatDuration(*limits.max_heartbeat_age) +
        "); it may have died");
  }
  return problems;
}

std::chrono::milliseconds Age(std::int64_t now_ms, std::int64_t then_ms) {
  return std::chrono::milliseconds(std::max<std::int64_t>(0, now_ms - then_ms));
}

json::value TimeOrNull(const std::optional<std::int64_t>& unix_ms) {
  if (!unix_ms) return nullptr;
  return json::value(FormatRfc3339Millis(*unix_ms));
}

json::object RecordToJson(const OutboxRecord& record) {
  json::object object;
  object["seq"] = record.seq;
  object["id"] = record.id;
  object["type"] = record.type;
  object["key"] = record.key;
  object["topic"] = OrNull(record.topic);
  object["state"] = EventStateName(record.state);
  object["attempts"] = record.attempts;
  object["last_error"] = OrNull(record.last_error);
  object["created_at"] = TimeOrNull(record.created_at_ms);
  object["delivered_at"] = TimeOrNull(record.delivered_at_ms);
  object["partition"] = OrNull(record.partition);
  object["offset"] = OrNull(record.offset);
  return object;
}

std::string FormatBytes(std::uintmax_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", value, units[unit]);
  return text;
}

std::uintmax_t FileBytes(const std::string& path) {
  std::error_code ec;
  std::uintmax_t bytes = std::filesystem::file_size(path, ec);
  return ec ? 0 : bytes;
}

void PrintColumns(std::ostream& out,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line += std::string(widths[i] - row[i].size() + 2, ' ');
      }
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  }
}

}  // namespace sigevents::cli
