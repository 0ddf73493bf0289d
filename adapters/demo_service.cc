#include "adapters/demo_service.h"

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "outbox/schema.h"

namespace sigevents::demo {
namespace {

using Clock = std::chrono::steady_clock;

// Spaces operations so that a service commits `rate` events per second.
// A pacer that falls behind by more than a second forgets the backlog
// rather than bursting to catch up.
class Pacer {
 public:
  explicit Pacer(double rate) : rate_(rate), next_(Clock::now()) {}

  // Waits until `events` more events are due; false when `stop` was set.
  bool Wait(int events, const std::atomic<bool>& stop) {
    if (rate_ <= 0) return !stop;
    Clock::time_point now = Clock::now();
    if (next_ < now - std::chrono::seconds(1)) next_ = now;
    next_ += std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(events / rate_));
    while (!stop && Clock::now() < next_) {
      std::this_thread::sleep_until(
          std::min(next_, Clock::now() + std::chrono::milliseconds(50)));
    }
    return !stop;
  }

 private:
  double rate_;
  Clock::time_point next_;
};

}  // namespace

SimulatedService::SimulatedService(std::string name, std::string db_path,
                                   Ledger& ledger, std::uint64_t seed)
    : name_(std::move(name)),
      db_path_(std::move(db_path)),
      ledger_(ledger),
      db_(OpenDatabase(db_path_, OpenOptions{})),
      random_(seed) {
  db_->exec("PRAGMA foreign_keys = ON");
  emitter_ = std::make_unique<Emitter>(*db_);
}

SimulatedService::~SimulatedService() = default;

std::int64_t SimulatedService::tour_events() const {
  std::int64_t events = 0;
  for (std::size_t index : tour_) {
    if (!operations_[index].fails) events += operations_[index].events;
  }
  return events;
}

void SimulatedService::AddOperation(Operation operation) {
  operations_.push_back(std::move(operation));
}

void SimulatedService::SetTour(const std::vector<std::string>& names) {
  tour_.clear();
  for (const std::string& name : names) {
    auto it = std::find_if(
        operations_.begin(), operations_.end(),
        [&name](const Operation& operation) { return operation.name == name; });
    if (it == operations_.end()) {
      throw std::logic_error(name_ + ": the tour names an unknown operation " +
                             name);
    }
    tour_.push_back(static_cast<std::size_t>(it - operations_.begin()));
  }
}

ServiceReport SimulatedService::Run(const ServicePlan& plan,
                                    const std::atomic<bool>& stop) {
  ServiceReport report;
  Pacer pacer(plan.rate);
  std::size_t tour_position = 0;
  committed_events_ = 0;
  while (committed_events_ < plan.events && !stop) {
    std::int64_t remaining = plan.events - committed_events_;
    bool in_tour = tour_position < tour_.size();
    const Operation* operation = nullptr;
    if (in_tour) {
      operation = &operations_[tour_[tour_position++]];
      if (operation->events > remaining) {
        // A plan smaller than the tour ends it here: the later steps may
        // act on what this one would have made.
        tour_position = tour_.size();
        continue;
      }
    } else {
      operation =
          Chance(plan.failure_rate) ? PickFailing() : PickOperation(remaining);
    }
    if (operation == nullptr) continue;
    if (!pacer.Wait(operation->events, stop)) break;
    Attempt(*operation, in_tour, report);
  }
  report.committed_events = committed_events_;
  return report;
}

const SimulatedService::Operation* SimulatedService::PickOperation(
    std::int64_t remaining) {
  std::vector<const Operation*> candidates;
  std::int64_t total = 0;
  for (const Operation& operation : operations_) {
    if (operation.fails || operation.weight == 0) continue;
    if (operation.events > remaining) continue;
    candidates.push_back(&operation);
    total += operation.weight;
  }
  if (total == 0) return nullptr;
  std::int64_t ticket = Uniform(1, total);
  for (const Operation* operation : candidates) {
    ticket -= operation->weight;
    if (ticket <= 0) return operation;
  }
  return candidates.back();
}

const SimulatedService::Operation* SimulatedService::PickFailing() {
  std::vector<const Operation*> failing;
  for (const Operation& operation : operations_) {
    if (operation.fails) failing.push_back(&operation);
  }
  return failing.empty() ? nullptr : PickFrom(failing);
}

void SimulatedService::Attempt(const Operation& operation, bool in_tour,
                               ServiceReport& report) {
  ++report.operations;
  try {
    bool applied = operation.run();
    if (!applied) {
      --report.operations;
      // The tour is arranged so that every step finds what it acts on.
      if (in_tour) {
        Unexpected(operation.name +
                       ": found nothing to act on during the "
                       "tour",
                   report);
      }
      return;
    }
    if (operation.fails) {
      Unexpected(operation.name +
                     ": committed, though it was meant to "
                     "break a constraint and roll back",
                 report);
    }
  } catch (const SQLite::Exception& e) {
    if (operation.fails && e.getErrorCode() == SQLITE_CONSTRAINT) {
      ++report.rolled_back;
      return;
    }
    Unexpected(operation.name + ": " + e.what(), report);
  } catch (const std::exception& e) {
    Unexpected(operation.name + ": " + e.what(), report);
  }
}

void SimulatedService::Unexpected(const std::string& what,
                                  ServiceReport& report) {
  if (report.unexpected_errors++ == 0) report.first_error = name_ + ": " + what;
}

std::int64_t SimulatedService::Uniform(std::int64_t low, std::int64_t high) {
  return std::uniform_int_distribution<std::int64_t>(low, high)(random_);
}

bool SimulatedService::Chance(double probability) {
  return std::uniform_real_distribution<double>(0, 1)(random_) < probability;
}

std::optional<std::int64_t> SimulatedService::PickId(
    const std::string& select) {
  // SQLite's own random() would not follow the service's seed.
  SQLite::Statement count(*db_, "SELECT count(*) FROM (" + select + ")");
  count.executeStep();
  std::int64_t rows = count.getColumn(0).getInt64();
  if (rows == 0) return std::nullopt;
  SQLite::Statement pick(*db_, select + " LIMIT 1 OFFSET ?");
  pick.bind(1, static_cast<std::int64_t>(Uniform(0, rows - 1)));
  if (!pick.executeStep()) return std::nullopt;
  return pick.getColumn(0).getInt64();
}

std::vector<std::int64_t> SimulatedService::Ids(const std::string& select) {
  SQLite::Statement statement(*db_, select);
  std::vector<std::int64_t> ids;
  while (statement.executeStep()) {
    ids.push_back(statement.getColumn(0).getInt64());
  }
  return ids;
}

std::string SimulatedService::RandomHex(int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  for (int i = 0; i < digits; ++i) text += kHex[Uniform(0, 15)];
  return text;
}

std::string SimulatedService::RandomUuid() {
  std::string hex = RandomHex(32);
  hex[12] = '4';
  hex[16] = "89ab"[Uniform(0, 3)];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) +
         "-" + hex.substr(16, 4) + "-" + hex.substr(20);
}

SimulatedService::Txn::Txn(SimulatedService& service)
    : service_(service),
      txn_(*service.db_, SQLite::TransactionBehavior::IMMEDIATE) {}

SimulatedService::Txn::~Txn() {
  if (!committed_ && !ids_.empty()) service_.ledger_.RolledBack(ids_);
}

void SimulatedService::Txn::Emit(const EventBuilder& builder) {
  Event event = builder.Build();
  EmitReceipt receipt = service_.emitter_->Emit(event);
  service_.ledger_.Emitted(receipt.id, event);
  ids_.push_back(std::move(receipt.id));
}

void SimulatedService::Txn::Commit() {
  txn_.commit();
  committed_ = true;
  service_.committed_events_ += static_cast<std::int64_t>(ids_.size());
  if (!ids_.empty()) service_.ledger_.Committed(ids_);
}

}  // namespace sigevents::demo
