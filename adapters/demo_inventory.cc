// The inventory service of the demo: servers through registration,
// production, updates, decommissioning and deletion; network devices through
// discovery, registration, fabrics, replacement, archival and deletion. See
// demo_service.h.

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "adapters/demo_service.h"
#include "emitter/events.h"

namespace sigevents::demo {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS servers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  uuid TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL CHECK (status IN ('REGISTERING', 'AVAILABLE', 'USED',
                                         'UNAVAILABLE', 'DECOMMISSIONED')),
  class TEXT NOT NULL,
  server_type_id INTEGER NOT NULL,
  site_id INTEGER NOT NULL,
  management_address TEXT NOT NULL,
  production INTEGER NOT NULL DEFAULT 0,
  credentials_rotated_at INTEGER
);
CREATE TABLE IF NOT EXISTS network_devices (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  identifier TEXT NOT NULL UNIQUE,
  serial_number TEXT NOT NULL UNIQUE,
  chassis TEXT NOT NULL,
  mac_address TEXT NOT NULL,
  management_address TEXT NOT NULL,
  driver TEXT NOT NULL,
  position TEXT NOT NULL CHECK (position IN ('leaf', 'spine', 'border')),
  site_id INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('registering', 'active', 'archived'))
);
CREATE TABLE IF NOT EXISTS fabrics (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS fabric_members (
  fabric_id INTEGER NOT NULL REFERENCES fabrics (id),
  device_id INTEGER NOT NULL REFERENCES network_devices (id),
  PRIMARY KEY (fabric_id, device_id)
);
INSERT OR IGNORE INTO fabrics (id, name) VALUES
  (42, 'production-fabric-1'), (43, 'production-fabric-2'),
  (44, 'storage-fabric-1'), (45, 'management-fabric');
)sql";

const std::vector<std::string> kServerClasses = {"BIGDATA", "COMPUTE",
                                                 "STORAGE", "GPU"};
const std::vector<std::string> kServerTypes = {"14", "25", "31", "42"};
const std::vector<std::string> kOperators = {"456", "457", "458", "789"};
const std::vector<std::string> kDrivers = {"sonic_enterprise", "cumulus",
                                           "junos", "nxos", "os10"};
const std::vector<std::string> kPositions = {"leaf", "leaf", "spine", "border"};

struct Server {
  std::int64_t id = 0;
  std::string uuid;
  std::string status;
  std::string server_class;
  std::int64_t type_id = 0;
  std::int64_t site_id = 0;
  std::string address;
};

struct Device {
  std::int64_t id = 0;
  std::string identifier;
  std::string serial;
  std::string chassis;
  std::string mac;
  std::string address;
  std::string driver;
  std::string position;
  std::int64_t site_id = 0;
};

class Inventory final : public SimulatedService {
 public:
  Inventory(const std::string& db_path, Ledger& ledger, std::uint64_t seed)
      : SimulatedService("inventory", db_path, ledger, seed) {
    db().exec(kSchema);
    AddServerOperations();
    AddDeviceOperations();
    SetTour({
        "register_server",
        "complete_registration",
        "register_server",
        "complete_registration",
        "register_server",
        "complete_registration",
        "reregister_server",
        "complete_registration",
        "start_production_registration",
        "complete_production_registration",
        "update_server",
        "rotate_server_credentials",
        "decommission_server",
        "delete_server",
        "register_duplicate_server",
        // Network devices.
        "discover_device",
        "complete_device_registration",
        "add_device",
        "add_device",
        "add_device",
        "rotate_device_credentials",
        "assign_to_fabric",
        "replace_device",
        "delete_device_in_fabric",
        "remove_from_fabric",
        "archive_device",
        "delete_device",
    });
  }

 private:
  void AddServerOperations() {
    AddOperation({"register_server", 1, 6, false,
                  [this] { return RegisterServer(/*duplicate_uuid=*/false); }});
    AddOperation({"register_duplicate_server", 1, 0, true,
                  [this] { return RegisterServer(/*duplicate_uuid=*/true); }});
    AddOperation({"complete_registration", 1, 6, false,
                  [this] { return CompleteRegistration(false); }});
    AddOperation({"reregister_server", 1, 2, false,
                  [this] { return StartRegistration(false); }});
    AddOperation({"start_production_registration", 1, 2, false,
                  [this] { return StartRegistration(true); }});
    AddOperation({"complete_production_registration", 1, 2, false,
                  [this] { return CompleteRegistration(true); }});
    AddOperation(
        {"update_server", 1, 5, false, [this] { return UpdateServer(); }});
    AddOperation({"rotate_server_credentials", 1, 3, false,
                  [this] { return RotateServerCredentials(); }});
    AddOperation({"decommission_server", 1, 2, false,
                  [this] { return DecommissionServer(); }});
    AddOperation(
        {"delete_server", 1, 2, false, [this] { return DeleteServer(); }});
  }

  void AddDeviceOperations() {
    AddOperation({"discover_device", 1, 3, false,
                  [this] { return AddDevice(/*discovered=*/true); }});
    AddOperation({"complete_device_registration", 1, 3, false,
                  [this] { return CompleteDeviceRegistration(); }});
    AddOperation({"add_device", 1, 2, false,
                  [this] { return AddDevice(/*discovered=*/false); }});
    AddOperation({"rotate_device_credentials", 1, 3, false,
                  [this] { return RotateDeviceCredentials(); }});
    AddOperation(
        {"assign_to_fabric", 1, 3, false, [this] { return AssignToFabric(); }});
    AddOperation({"remove_from_fabric", 1, 2, false,
                  [this] { return RemoveFromFabric(); }});
    AddOperation(
        {"replace_device", 2, 1, false, [this] { return ReplaceDevice(); }});
    AddOperation(
        {"archive_device", 1, 2, false, [this] { return ArchiveDevice(); }});
    AddOperation({"delete_device", 1, 1, false,
                  [this] { return DeleteDevice(/*in_fabric=*/false); }});
    AddOperation({"delete_device_in_fabric", 1, 0, true,
                  [this] { return DeleteDevice(/*in_fabric=*/true); }});
  }

  // ---- Servers -------------------------------------------------------------

  // A new server announces itself. With `duplicate_uuid`, it announces the
  // UUID of a server already known: the event is emitted, then the UNIQUE
  // constraint on servers.uuid rolls everything back.
  bool RegisterServer(bool duplicate_uuid) {
    Txn txn(*this);
    std::string uuid = RandomUuid();
    if (duplicate_uuid) {
      std::optional<std::int64_t> known = PickId("SELECT id FROM servers");
      if (!known) return false;
      uuid = LoadServer(*known).uuid;
    }
    std::int64_t site = Uniform(1, 4);
    std::string address = Address(site);
    std::int64_t id =
        db().execAndGet("SELECT coalesce(max(id), 0) + 1 FROM servers")
            .getInt64();
    if (duplicate_uuid) {
      txn.Emit(events::ServerRegistrationInitiated()
                   .serverId(id)
                   .managementAddress(address)
                   .siteId(site));
    }
    Exec(
        "INSERT INTO servers (id, uuid, status, class, server_type_id,"
        " site_id, management_address)"
        " VALUES (?, ?, 'REGISTERING', 'UNKNOWN', ?, ?, ?)",
        id, uuid, PickFrom(kServerTypes), site, address);
    if (!duplicate_uuid) {
      txn.Emit(events::ServerRegistrationInitiated()
                   .serverId(id)
                   .managementAddress(address)
                   .siteId(site));
    }
    txn.Commit();
    return true;
  }

  // A server in registration (for production use or not) becomes
  // AVAILABLE, or USED for production.
  bool CompleteRegistration(bool production) {
    Txn txn(*this);
    std::optional<std::int64_t> id =
        PickId(std::string("SELECT id FROM servers WHERE status = 'REGISTERING'"
                           " AND production = ") +
               (production ? "1" : "0"));
    if (!id) return false;
    Server server = LoadServer(*id);
    std::string status = production ? "USED" : "AVAILABLE";
    std::string server_class = server.server_class == "UNKNOWN"
                                   ? PickFrom(kServerClasses)
                                   : server.server_class;
    Exec("UPDATE servers SET status = ?, class = ? WHERE id = ?", status,
         server_class, server.id);
    if (production) {
      txn.Emit(events::ServerProductionRegistered()
                   .serverId(server.id)
                   .serverStatus(status)
                   .serverTypeId(server.type_id)
                   .siteId(server.site_id)
                   .userId(PickFrom(kOperators)));
    } else {
      txn.Emit(events::ServerRegistered()
                   .serverId(server.id)
                   .serverStatus(status)
                   .serverTypeId(server.type_id)
                   .siteId(server.site_id)
                   .userId(PickFrom(kOperators)));
    }
    txn.Commit();
    return true;
  }

  // An available server is registered again, or for production use.
  bool StartRegistration(bool production) {
    Txn txn(*this);
    std::optional<std::int64_t> id = PickId(
        "SELECT id FROM servers WHERE status IN ('AVAILABLE', 'UNAVAILABLE')"
        " AND production = 0");
    if (!id) return false;
    Server server = LoadServer(*id);
    Exec(
        "UPDATE servers SET status = 'REGISTERING', production = ?"
        " WHERE id = ?",
        production ? 1 : 0, server.id);
    if (production) {
      txn.Emit(events::ServerProductionRegistrationInitiated()
                   .serverId(server.id)
                   .managementAddress(server.address)
                   .siteId(server.site_id));
    } else {
      txn.Emit(events::ServerReregistrationInitiated()
                   .serverId(server.id)
                   .managementAddress(server.address)
                   .siteId(server.site_id));
    }
    txn.Commit();
    return true;
  }

  // Changes the class of a server, or takes it out of service and back.
  bool UpdateServer() {
    Txn txn(*this);
    std::optional<std::int64_t> id = PickId(
        "SELECT id FROM servers WHERE status IN ('AVAILABLE',"
        " 'UNAVAILABLE', 'USED')");
    if (!id) return false;
    Server before = LoadServer(*id);
    Server after = before;
    if (before.status == "AVAILABLE" && Chance(0.5)) {
      after.status = "UNAVAILABLE";
    } else if (before.status == "UNAVAILABLE") {
      after.status = "AVAILABLE";
    } else {
      while (after.server_class == before.server_class) {
        after.server_class = PickFrom(kServerClasses);
      }
    }
    Exec("UPDATE servers SET status = ?, class = ? WHERE id = ?", after.status,
         after.server_class, after.id);
    boost::json::object changes;
    changes["previousState"] = {{"serverStatus", before.status},
                                {"serverClass", before.server_class}};
    changes["currentState"] = {{"serverStatus", after.status},
                               {"serverClass", after.server_class}};
    txn.Emit(events::ServerUpdated()
                 .serverId(after.id)
                 .userId(PickFrom(kOperators))
                 .changes(std::move(changes)));
    txn.Commit();
    return true;
  }

  bool RotateServerCredentials() {
    Txn txn(*this);
    std::optional<std::int64_t> id = PickId(
        "SELECT id FROM servers WHERE status IN ('AVAILABLE',"
        " 'UNAVAILABLE', 'USED')");
    if (!id) return false;
    Server server = LoadServer(*id);
    Exec(
        "UPDATE servers SET credentials_rotated_at = strftime('%s', 'now')"
        " WHERE id = ?",
        server.id);
    txn.Emit(events::ServerCredentialsUpdated()
                 .serverId(server.id)
                 .userId(PickFrom(kOperators))
                 .serverManagementAddress(server.address));
    txn.Commit();
    return true;
  }

  bool DecommissionServer() {
    Txn txn(*this);
    std::optional<std::int64_t> id = PickId(
        "SELECT id FROM servers WHERE status IN ('AVAILABLE', 'UNAVAILABLE')");
    if (!id) return false;
    Server server = LoadServer(*id);
    Exec("UPDATE servers SET status = 'DECOMMISSIONED' WHERE id = ?",
         server.id);
    txn.Emit(events::ServerDecommissioned()
                 .serverId(server.id)
                 .serverUUID(server.uuid)
                 .serverClass(server.server_class)
                 .serverStatus("DECOMMISSIONED")
                 .serverTypeId(server.type_id));
    txn.Commit();
    return true;
  }

  bool DeleteServer() {
    Txn txn(*this);
    std::optional<std::int64_t> id =
        PickId("SELECT id FROM servers WHERE status = 'DECOMMISSIONED'");
    if (!id) return false;
    Server server = LoadServer(*id);
    Exec("DELETE FROM servers WHERE id = ?", server.id);
    txn.Emit(events::ServerDeleted()
                 .serverId(server.id)
                 .serverUUID(server.uuid)
                 .serverClass(server.server_class)
                 .serverStatus(server.status));
    txn.Commit();
    return true;
  }

  Server LoadServer(std::int64_t id) {
    SQLite::Statement select(
        db(),
        "SELECT id, uuid, status, class, server_type_id, site_id,"
        " management_address FROM servers WHERE id = ?");
    select.bind(1, static_cast<std::int64_t>(id));
    select.executeStep();
    Server server;
    server.id = select.getColumn(0).getInt64();
    server.uuid = select.getColumn(1).getString();
    server.status = select.getColumn(2).getString();
    server.server_class = select.getColumn(3).getString();
    server.type_id = select.getColumn(4).getInt64();
    server.site_id = select.getColumn(5).getInt64();
    server.address = select.getColumn(6).getString();
    return server;
  }

  std::string Address(std::int64_t site) {
    return "10." + std::to_string(site) + "." +
           std::to_string(Uniform(0, 255)) + "." +
           std::to_string(Uniform(1, 254));
  }

  // ---- Network devices -----------------------------------------------------

  // A device found by discovery starts registering; one added by hand is
  // active at once.
  bool AddDevice(bool discovered) {
    Txn txn(*this);
    Device device;
    device.id =
        db().execAndGet("SELECT coalesce(max(id), 0) + 1 FROM network_devices")
            .getInt64();
    device.site_id = Uniform(1, 4);
    device.position = PickFrom(kPositions);
    device.identifier = "switch-" + device.position + "-s" +
                        std::to_string(device.site_id) + "-" +
                        std::to_string(device.id);
    device.serial = "SN" + std::to_string(Uniform(100000000, 999999999));
    device.chassis = "chassis-" + std::to_string(Uniform(1, 999));
    device.mac =
        "00:1B:21:" + RandomHex(2) + ":" + RandomHex(2) + ":" + RandomHex(2);
    device.address = "192.168." + std::to_string(device.site_id) + "." +
                     std::to_string(Uniform(1, 254));
    device.driver = PickFrom(kDrivers);
    Exec(
        "INSERT INTO network_devices (id, identifier, serial_number,"
        " chassis, mac_address, management_address, driver, position,"
        " site_id, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        device.id, device.identifier, device.serial, device.chassis, device.mac,
        device.address, device.driver, device.position, device.site_id,
        discovered ? "registering" : "active");
    if (discovered) {
      txn.Emit(events::NetworkDeviceRegistrationInitiated()
                   .networkDeviceId(device.id)
                   .managementAddress(device.address)
                   .serialNumber(device.serial)
                   .chassisIdentifier(device.chassis)
                   .managementMacAddress(device.mac));
    } else {
      txn.Emit(events::NetworkDeviceCreated()
                   .networkDeviceId(device.id)
                   .managementAddress(device.address)
                   .identifierString(device.identifier)
                   .driver(device.driver)
                   .position(device.position)
                   .siteId(device.site_id));
    }
    txn.Commit();
    return true;
  }

  bool CompleteDeviceRegistration() {
    Txn txn(*this);
    std::optional<std::int64_t> id =
        PickId("SELECT id FROM network_devices WHERE status = 'registering'");
    if (!id) return false;
    Exec("UPDATE network_devices SET status = 'active' WHERE id = ?", *id);
    Device device = LoadDevice(*id);
    txn.Emit(events::NetworkDeviceRegistered()
                 .networkDeviceId(device.id)
                 .managementAddress(device.address)
                 .identifierString(device.identifier)
                 .driver(device.driver)
                 .position(device.position)
                 .siteId(device.site_id));
    txn.Commit();
    return true;
  }

  bool RotateDeviceCredentials() {
    Txn txn(*this);
    std::optional<std::int64_t> id =
        PickId("SELECT id FROM network_devices WHERE status = 'active'");
    if (!id) return false;
    Device device = LoadDevice(*id);
    txn.Emit(events::NetworkDeviceCredentialsUpdated()
                 .networkDeviceId(device.id)
                 .managementAddress(device.address)
                 .identifierString(device.identifier)
                 .driver(device.driver)
                 .position(device.position)
                 .siteId(device.site_id)
                 .userIdAuthenticated(PickFrom(kOperators)));
    txn.Commit();
    return true;
  }

  // Puts one to three active devices that belong to no fabric into one.
  bool AssignToFabric() {
    Txn txn(*this);
    std::vector<std::int64_t> free = Ids(
        "SELECT id FROM network_devices WHERE status = 'active'"
        " AND id NOT IN (SELECT device_id FROM fabric_members) ORDER BY id");
    if (free.empty()) return false;
    std::int64_t fabric = *PickId("SELECT id FROM fabrics");
    std::vector<std::string> members;
    std::int64_t count = Uniform(1, std::min<std::int64_t>(3, free.size()));
    for (std::int64_t i = 0; i < count; ++i) {
      std::size_t at = static_cast<std::size_t>(Uniform(i, free.size() - 1));
      std::swap(free[i], free[at]);
      Exec("INSERT INTO fabric_members (fabric_id, device_id) VALUES (?, ?)",
           fabric, free[i]);
      members.push_back(std::to_string(free[i]));
    }
    txn.Emit(events::NetworkDeviceAssignedToFabric()
                 .fabricId(fabric)
                 .networkDeviceIds(members)
                 .fabricName(FabricName(fabric)));
    txn.Commit();
    return true;
  }

  bool RemoveFromFabric() {
    Txn txn(*this);
    std::optional<std::int64_t> fabric =
        PickId("SELECT DISTINCT fabric_id FROM fabric_members");
    if (!fabric) return false;
    std::vector<std::int64_t> members =
        Ids("SELECT device_id FROM fabric_members WHERE fabric_id = " +
            std::to_string(*fabric) + " ORDER BY device_id");
    std::int64_t count = Uniform(1, std::min<std::int64_t>(2, members.size()));
    std::vector<std::string> removed;
    for (std::int64_t i = 0; i < count; ++i) {
      Exec("DELETE FROM fabric_members WHERE fabric_id = ? AND device_id = ?",
           *fabric, members[i]);
      removed.push_back(std::to_string(members[i]));
    }
    txn.Emit(events::NetworkDeviceRemovedFromFabric()
                 .fabricId(*fabric)
                 .networkDeviceIds(removed)
                 .fabricName(FabricName(*fabric)));
    txn.Commit();
    return true;
  }

  // A spare takes over a fabric member's place; the old device is archived.
  // Two events in one transaction.
  bool ReplaceDevice() {
    Txn txn(*this);
    std::optional<std::int64_t> old_id =
        PickId("SELECT DISTINCT device_id FROM fabric_members");
    std::optional<std::int64_t> new_id = PickId(
        "SELECT id FROM network_devices WHERE status = 'active'"
        " AND id NOT IN (SELECT device_id FROM fabric_members)");
    if (!old_id || !new_id) return false;
    Device old_device = LoadDevice(*old_id);
    Exec("UPDATE fabric_members SET device_id = ? WHERE device_id = ?", *new_id,
         *old_id);
    Exec("UPDATE network_devices SET position = ? WHERE id = ?",
         old_device.position, *new_id);
    Exec("UPDATE network_devices SET status = 'archived' WHERE id = ?",
         *old_id);
    std::string by = PickFrom(kOperators);
    txn.Emit(events::NetworkDeviceReplaced()
                 .oldNetworkDeviceId(*old_id)
                 .newNetworkDeviceId(*new_id));
    txn.Emit(events::NetworkDeviceArchived()
                 .networkDeviceId(*old_id)
                 .userIdAuthenticated(by));
    txn.Commit();
    return true;
  }

  bool ArchiveDevice() {
    Txn txn(*this);
    std::optional<std::int64_t> id = PickId(
        "SELECT id FROM network_devices WHERE status = 'active'"
        " AND id NOT IN (SELECT device_id FROM fabric_members)");
    if (!id) return false;
    Exec("UPDATE network_devices SET status = 'archived' WHERE id = ?", *id);
    txn.Emit(events::NetworkDeviceArchived()
                 .networkDeviceId(*id)
                 .userIdAuthenticated(PickFrom(kOperators)));
    txn.Commit();
    return true;
  }

  // Deletes an archived device. With `in_fabric`, tries to delete a device
  // that is still a fabric member: the event is emitted, then the foreign
  // key of fabric_members rolls everything back.
  bool DeleteDevice(bool in_fabric) {
    Txn txn(*this);
    std::optional<std::int64_t> id =
        in_fabric ? PickId("SELECT DISTINCT device_id FROM fabric_members")
                  : PickId(
                        "SELECT id FROM network_devices"
                        " WHERE status = 'archived'");
    if (!id) return false;
    Device device = LoadDevice(*id);
    txn.Emit(events::NetworkDeviceDeleted()
                 .networkDeviceId(device.id)
                 .position(device.position)
                 .siteId(device.site_id)
                 .identifierString(device.identifier)
                 .userIdAuthenticated(PickFrom(kOperators)));
    Exec("DELETE FROM network_devices WHERE id = ?", device.id);
    txn.Commit();
    return true;
  }

  Device LoadDevice(std::int64_t id) {
    SQLite::Statement select(
        db(),
        "SELECT id, identifier, serial_number, chassis, mac_address,"
        " management_address, driver, position, site_id"
        " FROM network_devices WHERE id = ?");
    select.bind(1, static_cast<std::int64_t>(id));
    select.executeStep();
    Device device;
    device.id = select.getColumn(0).getInt64();
    device.identifier = select.getColumn(1).getString();
    device.serial = select.getColumn(2).getString();
    device.chassis = select.getColumn(3).getString();
    device.mac = select.getColumn(4).getString();
    device.address = select.getColumn(5).getString();
    device.driver = select.getColumn(6).getString();
    device.position = select.getColumn(7).getString();
    device.site_id = select.getColumn(8).getInt64();
    return device;
  }

  std::string FabricName(std::int64_t fabric) {
    SQLite::Statement select(db(), "SELECT name FROM fabrics WHERE id = ?");
    select.bind(1, static_cast<std::int64_t>(fabric));
    select.executeStep();
    return select.getColumn(0).getString();
  }
};

}  // namespace

std::unique_ptr<SimulatedService> NewInventoryService(
    const std::string& db_path, Ledger& ledger, std::uint64_t seed) {
  return std::make_unique<Inventory>(db_path, ledger, seed);
}

}  // namespace sigevents::demo
