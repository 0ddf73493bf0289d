// The simulated services of `sigevents demo`: inventory, auth and
// orchestrator, each a small business with its own SQLite database (servers;
// network devices and fabrics; users; instance DNS records) that changes its
// tables and emits the matching significant events in the same transaction,
// the way a real service embeds the module.
//
//   demo::Tally tally;  // a Ledger, told about every event
//   std::unique_ptr<demo::SimulatedService> inventory =
//       demo::NewInventoryService(dir + "/inventory.db", tally, seed);
//   demo::ServiceReport report = inventory->Run(plan, stop);  // own thread
//
// How a service behaves
// - It first runs its tour: a fixed sequence of operations that emits every
//   event type of the service at least once and includes one transaction
//   that fails on purpose. Then it picks operations at random, weighted,
//   among those that find something to act on.
// - Every operation is one `BEGIN IMMEDIATE` transaction. A failing
//   operation emits its event and then breaks a constraint of its tables
//   (a duplicate, a foreign key, a CHECK); the transaction rolls back and
//   the event must never reach Kafka. The ledger hears of every emitted id
//   before the commit, then of the commit or the rollback.
// - It commits exactly `ServicePlan::events` events, paced at
//   `ServicePlan::rate`, unless asked to stop.
//
// Thread safety: a SimulatedService owns its connection and is used by one
// thread; the three services run on three threads at once. The ledger is called
// on the service's thread and must be safe to call from several at once.

#ifndef SIGEVENTS_ADAPTERS_DEMO_SERVICE_H_
#define SIGEVENTS_ADAPTERS_DEMO_SERVICE_H_

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <SQLiteCpp/VariadicBind.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "emitter/emitter.h"

namespace sigevents::demo {

// Told about every event a service emits.
class Ledger {
 public:
  virtual ~Ledger() = default;

  // Emit() wrote `event` with CloudEvents id `id`, in a transaction that is
  // still open.
  virtual void Emitted(const std::string& id, const Event& event) = 0;

  // The transaction that emitted `ids` committed, or rolled back.
  virtual void Committed(const std::vector<std::string>& ids) = 0;
  virtual void RolledBack(const std::vector<std::string>& ids) = 0;
};

struct ServicePlan {
  std::int64_t events = 0;     // events to commit, the tour's included
  double rate = 0;             // events per second; 0 for no pacing
  double failure_rate = 0.03;  // share of random operations that fail
};

struct ServiceReport {
  std::int64_t operations = 0;         // transactions attempted
  std::int64_t committed_events = 0;   // events in committed transactions
  std::int64_t rolled_back = 0;        // operations that failed on purpose
  std::int64_t unexpected_errors = 0;  // operations that failed otherwise
  std::string first_error;             // the first unexpected error
};

class SimulatedService {
 public:
  virtual ~SimulatedService();
  SimulatedService(const SimulatedService&) = delete;
  SimulatedService& operator=(const SimulatedService&) = delete;

  const std::string& name() const { return name_; }
  const std::string& db_path() const { return db_path_; }

  // The events the tour commits: the least a plan may ask for.
  std::int64_t tour_events() const;

  // Runs the plan until its events are committed or `stop` is set.
  ServiceReport Run(const ServicePlan& plan, const std::atomic<bool>& stop);

 protected:
  // Opens (creating) the database with the module's settings, turns
  // foreign keys on and creates the outbox. Throws SQLite::Exception.
  SimulatedService(std::string name, std::string db_path, Ledger& ledger,
                   std::uint64_t seed);

  // One business transaction that emits: Emit() records the event with the
  // ledger; the destructor rolls back unless Commit() was called.
  class Txn {
   public:
    explicit Txn(SimulatedService& service);
    ~Txn();
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;

    void Emit(const EventBuilder& builder);
    void Commit();

   private:
    SimulatedService& service_;
    SQLite::Transaction txn_;
    std::vector<std::string> ids_;
    bool committed_ = false;
  };

  // An operation returns false, without writing, when it finds nothing to
  // act on. One that `fails` must end in a constraint violation.
  struct Operation {
    std::string name;
    int events = 1;  // events it commits
    int weight = 0;  // in the random phase; 0 for tour only
    bool fails = false;
    std::function<bool()> run;
  };

  void AddOperation(Operation operation);
  // The tour, by operation names; each must apply when its turn comes.
  void SetTour(const std::vector<std::string>& names);

  SQLite::Database& db() { return *db_; }

  // Runs one statement with its parameters; returns the rows it changed.
  template <typename... Args>
  int Exec(const std::string& sql, const Args&... args) {
    SQLite::Statement statement(*db_, sql);
    SQLite::bind(statement, args...);
    return statement.exec();
  }

  // A uniform integer in [low, high].
  std::int64_t Uniform(std::int64_t low, std::int64_t high);
  bool Chance(double probability);
  template <typename T>
  const T& PickFrom(const std::vector<T>& items) {
    return items[Uniform(0, static_cast<std::int64_t>(items.size()) - 1)];
  }
  // The first column of a random row of `select` (which must not end in
  // ORDER BY or LIMIT), or nothing when it has no rows.
  std::optional<std::int64_t> PickId(const std::string& select);
  // The first column of every row of `select`.
  std::vector<std::int64_t> Ids(const std::string& select);
  std::string RandomHex(int digits);
  std::string RandomUuid();

 private:
  const Operation* PickOperation(std::int64_t remaining);
  const Operation* PickFailing();
  void Attempt(const Operation& operation, bool in_tour, ServiceReport& report);
  void Unexpected(const std::string& what, ServiceReport& report);

  std::string name_;
  std::string db_path_;
  Ledger& ledger_;
  std::unique_ptr<SQLite::Database> db_;
  std::unique_ptr<Emitter> emitter_;
  std::mt19937_64 random_;
  std::vector<Operation> operations_;
  std::vector<std::size_t> tour_;      // indexes into operations_
  std::int64_t committed_events_ = 0;  // counted by Txn::Commit
};

// The three services. Each creates its tables (and outbox) in `db_path`.
std::unique_ptr<SimulatedService> NewInventoryService(
    const std::string& db_path, Ledger& ledger, std::uint64_t seed);
std::unique_ptr<SimulatedService> NewAuthService(const std::string& db_path,
                                                 Ledger& ledger,
                                                 std::uint64_t seed);
std::unique_ptr<SimulatedService> NewOrchestratorService(
    const std::string& db_path, Ledger& ledger, std::uint64_t seed);

}  // namespace sigevents::demo

#endif  // SIGEVENTS_ADAPTERS_DEMO_SERVICE_H_
