// The orchestrator service of the demo: the DNS records of instances and of
// instance arrays, updated and deleted. See demo_service.h.

#include <optional>
#include <string>
#include <vector>

#include "adapters/demo_service.h"
#include "emitter/events.h"

namespace sigevents::demo {
namespace {

// Three infrastructures, two instance arrays each, three instances per
// array: the orchestrator's existing state, made without events.
constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS infrastructures (
  id INTEGER PRIMARY KEY,
  label TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS instance_arrays (
  id INTEGER PRIMARY KEY,
  infrastructure_id INTEGER NOT NULL REFERENCES infrastructures (id),
  label TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
  id INTEGER PRIMARY KEY,
  instance_array_id INTEGER NOT NULL REFERENCES instance_arrays (id),
  label TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dns_records (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  owner_kind TEXT NOT NULL CHECK (owner_kind IN ('instance', 'array')),
  owner_id INTEGER NOT NULL,
  hostname TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('A', 'AAAA', 'CNAME')),
  value TEXT NOT NULL,
  UNIQUE (hostname, type, value)
);
INSERT OR IGNORE INTO infrastructures (id, label) VALUES
  (456, 'shop-prod'), (457, 'analytics'), (458, 'ci');
INSERT OR IGNORE INTO instance_arrays (id, infrastructure_id, label) VALUES
  (120, 456, 'web'), (121, 456, 'db'), (122, 457, 'spark'),
  (123, 457, 'kafka'), (124, 458, 'runners'), (125, 458, 'cache');
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 17)
INSERT OR IGNORE INTO instances (id, instance_array_id, label)
  SELECT 1000 + i, 120 + i / 3,
         (SELECT label FROM instance_arrays WHERE id = 120 + i / 3) || '-0' ||
         (i % 3 + 1)
  FROM n;
)sql";

const std::vector<std::string> kOperators = {"456", "789", "790"};

struct Owner {
  std::string kind;  // "instance" or "array"
  std::int64_t id = 0;
  std::int64_t infrastructure_id = 0;
  std::string hostname;  // its DNS name
};

struct Record {
  std::string hostname;
  std::string type;
  std::string value;
};

class Orchestrator final : public SimulatedService {
 public:
  Orchestrator(const std::string& db_path, Ledger& ledger, std::uint64_t seed)
      : SimulatedService("orchestrator", db_path, ledger, seed) {
    db().exec(kSchema);
    AddOperation({"update_instance_dns", 1, 4, false,
                  [this] { return UpdateDns("instance", false); }});
    AddOperation({"update_instance_array_dns", 1, 2, false,
                  [this] { return UpdateDns("array", false); }});
    AddOperation({"claim_taken_dns_record", 1, 0, true,
                  [this] { return UpdateDns("instance", true); }});
    AddOperation({"delete_instance_dns", 1, 2, false,
                  [this] { return DeleteDns("instance"); }});
    AddOperation({"delete_instance_array_dns", 1, 1, false,
                  [this] { return DeleteDns("array"); }});
    SetTour({"update_instance_dns", "update_instance_dns",
             "claim_taken_dns_record", "update_instance_array_dns",
             "delete_instance_dns", "delete_instance_array_dns"});
  }

 private:
  // Replaces the records of an instance or an instance array. With
  // `claim_taken`, an instance also claims a record another instance holds:
  // the event is emitted, then the UNIQUE constraint on dns_records rolls
  // everything back.
  bool UpdateDns(const std::string& kind, bool claim_taken) {
    Txn txn(*this);
    std::optional<std::int64_t> id =
        PickId(kind == "instance" ? "SELECT id FROM instances"
                                  : "SELECT id FROM instance_arrays");
    if (!id) return false;
    Owner owner = LoadOwner(kind, *id);
    std::vector<Record> records = NewRecords(owner);
    if (claim_taken) {
      std::optional<std::int64_t> taken = PickId(
          "SELECT id FROM dns_records WHERE owner_kind = 'instance'"
          " AND owner_id <> " +
          std::to_string(owner.id));
      if (!taken) return false;
      records.push_back(LoadRecord(*taken));
    }
    boost::json::array published;
    for (const Record& record : records) {
      published.push_back({{"hostname", record.hostname},
                           {"type", record.type},
                           {"value", record.value}});
    }
    std::string by = PickFrom(kOperators);
    if (kind == "instance") {
      txn.Emit(events::InstanceDnsUpdated()
                   .instanceId(owner.id)
                   .infrastructureId(owner.infrastructure_id)
                   .dnsRecords(std::move(published))
                   .userIdAuthenticated(by));
    } else {
      txn.Emit(events::InstanceArrayDnsUpdated()
                   .instanceArrayId(owner.id)
                   .infrastructureId(owner.infrastructure_id)
                   .dnsRecords(std::move(published))
                   .userIdAuthenticated(by));
    }
    Exec("DELETE FROM dns_records WHERE owner_kind = ? AND owner_id = ?",
         owner.kind, owner.id);
    for (const Record& record : records) {
      Exec(
          "INSERT INTO dns_records (owner_kind, owner_id, hostname, type,"
          " value) VALUES (?, ?, ?, ?, ?)",
          owner.kind, owner.id, record.hostname, record.type, record.value);
    }
    txn.Commit();
    return true;
  }

  bool DeleteDns(const std::string& kind) {
    Txn txn(*this);
    std::optional<std::int64_t> id = PickId(
        "SELECT DISTINCT owner_id FROM dns_records WHERE owner_kind = '" +
        kind + "'");
    if (!id) return false;
    Owner owner = LoadOwner(kind, *id);
    Exec("DELETE FROM dns_records WHERE owner_kind = ? AND owner_id = ?",
         owner.kind, owner.id);
    std::string by = PickFrom(kOperators);
    if (kind == "instance") {
      txn.Emit(events::InstanceDnsDeleted()
                   .instanceId(owner.id)
                   .infrastructureId(owner.infrastructure_id)
                   .userIdAuthenticated(by));
    } else {
      txn.Emit(events::InstanceArrayDnsDeleted()
                   .instanceArrayId(owner.id)
                   .infrastructureId(owner.infrastructure_id)
                   .userIdAuthenticated(by));
    }
    txn.Commit();
    return true;
  }

  // An A record, and for instances sometimes an AAAA record too; an array
  // gets a CNAME to its load balancer.
  std::vector<Record> NewRecords(const Owner& owner) {
    std::vector<Record> records;
    std::string a = "192.168." + std::to_string(Uniform(10, 99)) + "." +
                    std::to_string(Uniform(1, 254));
    records.push_back({owner.hostname, "A", a});
    if (owner.kind == "array") {
      records.push_back(
          {"www." + owner.hostname, "CNAME", "lb-" + owner.hostname});
    } else if (Chance(0.5)) {
      records.push_back({owner.hostname, "AAAA", "2001:db8::" + RandomHex(4)});
    }
    return records;
  }

  Owner LoadOwner(const std::string& kind, std::int64_t id) {
    SQLite::Statement select(
        db(), kind == "instance"
                  ? "SELECT instances.label, infrastructures.id,"
                    " infrastructures.label FROM instances"
                    " JOIN instance_arrays"
                    " ON instance_arrays.id = instances.instance_array_id"
                    " JOIN infrastructures"
                    " ON infrastructures.id = instance_arrays.infrastructure_id"
                    " WHERE instances.id = ?"
                  : "SELECT instance_arrays.label, infrastructures.id,"
                    " infrastructures.label FROM instance_arrays"
                    " JOIN infrastructures"
                    " ON infrastructures.id = instance_arrays.infrastructure_id"
                    " WHERE instance_arrays.id = ?");
    select.bind(1, static_cast<std::int64_t>(id));
    select.executeStep();
    Owner owner;
    owner.kind = kind;
    owner.id = id;
    owner.infrastructure_id = select.getColumn(1).getInt64();
    owner.hostname = select.getColumn(0).getString() + "." +
                     select.getColumn(2).getString() + ".example.com";
    return owner;
  }

  Record LoadRecord(std::int64_t id) {
    SQLite::Statement select(
        db(), "SELECT hostname, type, value FROM dns_records WHERE id = ?");
    select.bind(1, static_cast<std::int64_t>(id));
    select.executeStep();
    return {select.getColumn(0).getString(), select.getColumn(1).getString(),
            select.getColumn(2).getString()};
  }
};

}  // namespace

std::unique_ptr<SimulatedService> NewOrchestratorService(
    const std::string& db_path, Ledger& ledger, std::uint64_t seed) {
  return std::make_unique<Orchestrator>(db_path, ledger, seed);
}

}  // namespace sigevents::demo
