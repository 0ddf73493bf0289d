// What the operator commands (status, list, show, retry, purge, check,
// metrics) share: the health rules, the JSON form of an outbox row, times
// and sizes for people, and aligned tables. Private to the `cli` library.
//
// Thread safety: functions without state; call from any thread.

#ifndef SIGEVENTS_ADAPTERS_CLI_OPS_H_
#define SIGEVENTS_ADAPTERS_CLI_OPS_H_

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "outbox/inspect.h"

namespace sigevents::cli {

// When an outbox is healthy. `sigevents check` takes these from its flags;
// `sigevents status` uses the defaults and a 30s heartbeat limit.
struct HealthLimits {
  std::chrono::milliseconds max_pending_age{std::chrono::minutes(5)};
  std::int64_t max_failed = 0;
  // Unset: the relay's lease is not judged. Set: a lease whose last
  // heartbeat is older is a problem, and so is no lease at all when events
  // are pending (or always, with `relay_required`).
  std::optional<std::chrono::milliseconds> max_heartbeat_age;
  bool relay_required = false;
};

// The summary of the outbox at `path`, opened read-only, at the time it
// sets `*now_ms` to. Throws OutboxUnavailable when the file is not a
// readable outbox.
OutboxSummary ReadSummary(const std::string& path, std::int64_t* now_ms);

// One sentence per problem, the most urgent first; empty when healthy.
std::vector<std::string> FindProblems(const OutboxSummary& summary,
                                      const HealthLimits& limits,
                                      std::int64_t now_ms);

// The milliseconds from `then_ms` to `now_ms`, never negative (clocks of
// other hosts may run ahead).
std::chrono::milliseconds Age(std::int64_t now_ms, std::int64_t then_ms);

// RFC 3339 UTC with milliseconds, or JSON null.
boost::json::value TimeOrNull(const std::optional<std::int64_t>& unix_ms);

// The fields of `sigevents list --json`: seq, id, type, key, topic, state,
// attempts, last_error, created_at, delivered_at, partition, offset.
boost::json::object RecordToJson(const OutboxRecord& record);

// "1 failed event", "3 failed events".
std::string CountOf(std::int64_t count, const std::string& noun);

// "512 B", "12.0 KiB", "3.4 MiB", "1.2 GiB".
std::string FormatBytes(std::uintmax_t bytes);

// The size of a file, 0 when it does not exist.
std::uintmax_t FileBytes(const std::string& path);

// Prints rows as columns separated by two spaces, each as wide as its
// widest cell; the last column is not padded.
void PrintColumns(std::ostream& out,
                  const std::vector<std::vector<std::string>>& rows);

}  // namespace sigevents::cli

#endif  // SIGEVENTS_ADAPTERS_CLI_OPS_H_
