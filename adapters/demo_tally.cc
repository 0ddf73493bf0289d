#include "adapters/demo_tally.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cmath>
#include <cstdio>
#include <ostream>

#include "adapters/kafka.h"

namespace sigevents::demo {

namespace json = boost::json;

void Tally::AddOutbox(const std::string& outbox_id) {
  std::lock_guard<std::mutex> lock(mu_);
  outboxes_.insert(outbox_id);
}

void Tally::Emitted(const std::string& id, const Event& event) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& entry = entries_[id];
  entry.type = event.spec().id;
  entry.key = event.key();
  entry.data = event.data();
}

void Tally::Committed(const std::vector<std::string>& ids) {
  Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : ids) {
    Entry& entry = entries_.at(id);
    entry.state = State::kCommitted;
    entry.committed_at = now;
  }
}

void Tally::RolledBack(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : ids) entries_.at(id).state = State::kRolledBack;
}

Arrival Tally::Received(const ConsumedMessage& message) {
  const std::string* outbox = message.Header(kOutboxHeader);
  std::lock_guard<std::mutex> lock(mu_);
  if (outbox == nullptr || outboxes_.count(*outbox) == 0) {
    ++foreign_;
    return Arrival::kForeign;
  }

  // The value is the whole CloudEvent (structured mode).
  boost::system::error_code ec;
  json::value envelope = json::parse(message.value, ec);
  const json::object* object = ec ? nullptr : envelope.if_object();
  const json::value* id = object ? object->if_contains("id") : nullptr;
  auto it = id != nullptr && id->is_string()
                ? entries_.find(std::string(id->get_string()))
                : entries_.end();
  if (it == entries_.end()) {
    ++unknown_;
    return Arrival::kUnknown;
  }

  Entry& entry = it->second;
  const json::value* type = object->if_contains("type");
  const json::value* data = object->if_contains("data");
  bool same = type != nullptr && type->is_string() &&
              type->get_string() == GetEventSpec(entry.type).type &&
              message.key == entry.key && data != nullptr &&
              data->is_object() && data->get_object() == entry.data;
  if (++entry.copies == 1) entry.first_received_at = message.received_at;
  if (!same) {
    ++mismatched_;
    return Arrival::kMismatch;
  }
  if (entry.state == State::kRolledBack) return Arrival::kRolledBack;
  return entry.copies == 1 ? Arrival::kFirst : Arrival::kDuplicate;
}

Totals Tally::totals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return TotalsLocked();
}

Totals Tally::TotalsLocked() const {
  Totals totals;
  for (const auto& [id, entry] : entries_) {
    switch (entry.state) {
      case State::kOpen:
        ++totals.open;
        break;
      case State::kCommitted:
        ++totals.emitted;
        if (entry.copies > 0) ++totals.received;
        if (entry.copies == 0) ++totals.lost;
        break;
      case State::kRolledBack:
        ++totals.rolled_back;
        if (entry.copies > 0) ++totals.leaked;
        break;
    }
    if (entry.copies > 1) totals.duplicated += entry.copies - 1;
  }
  totals.mismatched = mismatched_;
  totals.unknown = unknown_;
  totals.foreign = foreign_;
  return totals;
}

bool Tally::AllReceived() const {
  Totals totals = this->totals();
  return totals.open == 0 && totals.lost == 0;
}

std::vector<TypeCounts> Tally::ByType() const {
  std::vector<TypeCounts> rows(EventTypeCount());
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, entry] : entries_) {
    TypeCounts& row = rows[static_cast<std::size_t>(entry.type)];
    if (entry.copies > 1) row.duplicated += entry.copies - 1;
    if (entry.state == State::kRolledBack) {
      ++row.rolled_back;
      if (entry.copies > 0) ++row.leaked;
      continue;
    }
    if (entry.state != State::kCommitted) continue;
    ++row.emitted;
    if (entry.copies == 0) {
      ++row.lost;
      continue;
    }
    ++row.received;
    double latency = std::chrono::duration<double, std::milli>(
                         entry.first_received_at - entry.committed_at)
                         .count();
    row.latencies_ms.push_back(std::max(0.0, latency));
  }
  return rows;
}

namespace {

// One row of the table: the name, then right-aligned columns.
void PrintRow(std::ostream& out, const std::string& name,
              const TypeCounts& counts, double p50, double p99) {
  char line[160];
  std::snprintf(line, sizeof(line),
                "%-41s %7lld %8lld %10lld %5lld %11lld %8.1f %8.1f\n",
                name.c_str(), static_cast<long long>(counts.emitted),
                static_cast<long long>(counts.received),
                static_cast<long long>(counts.duplicated),
                static_cast<long long>(counts.lost),
                static_cast<long long>(counts.rolled_back), p50, p99);
  out << line;
}

}  // namespace

void Tally::PrintSummary(std::ostream& out) const {
  std::vector<TypeCounts> rows = ByType();
  Totals totals = this->totals();
  char header[160];
  std::snprintf(header, sizeof(header), "%-41s %7s %8s %10s %5s %11s %8s %8s\n",
                "event type", "emitted", "received", "duplicated", "lost",
                "rolled back", "p50 ms", "p99 ms");
  out << header << std::string(106, '-') << "\n";

  TypeCounts all;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    TypeCounts& row = rows[i];
    double p50 = Percentile(row.latencies_ms, 0.5);
    double p99 = Percentile(row.latencies_ms, 0.99);
    PrintRow(out, std::string(EventSpecs()[i].type), row, p50, p99);
    all.emitted += row.emitted;
    all.received += row.received;
    all.duplicated += row.duplicated;
    all.lost += row.lost;
    all.rolled_back += row.rolled_back;
    all.latencies_ms.insert(all.latencies_ms.end(), row.latencies_ms.begin(),
                            row.latencies_ms.end());
  }
  out << std::string(106, '-') << "\n";
  double p50 = Percentile(all.latencies_ms, 0.5);
  double p99 = Percentile(all.latencies_ms, 0.99);
  PrintRow(out, "total", all, p50, p99);
  out << "\n";

  if (totals.leaked > 0) {
    out << "rolled back, yet received: " << totals.leaked << "\n";
  }
  if (totals.mismatched > 0) {
    out << "received with a type, key or data other than emitted: "
        << totals.mismatched << "\n";
  }
  if (totals.unknown > 0) {
    out << "received from the demo's outboxes with an id never emitted: "
        << totals.unknown << "\n";
  }
  if (totals.open > 0) {
    out << "emitted in transactions that never finished: " << totals.open
        << "\n";
  }
  if (totals.foreign > 0) {
    out << "other messages on the topic (not the demo's, ignored): "
        << totals.foreign << "\n";
  }
}

bool Tally::Ok() const {
  Totals totals = this->totals();
  return totals.lost == 0 && totals.duplicated == 0 && totals.leaked == 0 &&
         totals.mismatched == 0 && totals.unknown == 0 && totals.open == 0;
}

double Percentile(std::vector<double>& values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(
      std::ceil(fraction * static_cast<double>(values.size())));
  if (rank < 1) rank = 1;
  return values[std::min(rank, values.size()) - 1];
}

}  // namespace sigevents::demo
