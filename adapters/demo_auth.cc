// The auth service of the demo: user accounts created, suspended, archived
// and restored; passwords, email addresses, API keys, SSH keys, delegates,
// two-factor authentication and access levels. See demo_service.h.

#include <optional>
#include <string>
#include <vector>

#include "adapters/demo_service.h"
#include "emitter/events.h"

namespace sigevents::demo {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'archived')),
  access_level TEXT NOT NULL
    CHECK (access_level IN ('read_only', 'user', 'admin')),
  email_verified INTEGER NOT NULL DEFAULT 0,
  two_factor INTEGER NOT NULL DEFAULT 0,
  password_hash TEXT NOT NULL,
  api_key_hash TEXT
);
CREATE TABLE IF NOT EXISTS ssh_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users (id),
  fingerprint TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS delegates (
  user_id INTEGER NOT NULL REFERENCES users (id),
  delegate_id INTEGER NOT NULL REFERENCES users (id),
  PRIMARY KEY (user_id, delegate_id),
  CHECK (user_id <> delegate_id)
);
CREATE TABLE IF NOT EXISTS password_resets (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users (id),
  token TEXT NOT NULL UNIQUE,
  requested_at INTEGER NOT NULL
);
INSERT OR IGNORE INTO users (id, email, name, status, access_level,
                             email_verified, password_hash)
  VALUES (1, 'admin@example.com', 'Administrator', 'active', 'admin', 1,
          'argon2id$seed');
)sql";

const std::vector<std::string> kFirstNames = {
    "maria", "andrei", "elena", "mihai", "ioana", "radu",  "ana",
    "vlad",  "sofia",  "dan",   "irina", "paul",  "laura", "tudor"};
const std::vector<std::string> kLastNames = {
    "popescu", "ionescu", "dumitru",  "stan",  "gheorghe",
    "matei",   "rusu",    "munteanu", "lazar", "barbu"};

struct User {
  std::int64_t id = 0;
  std::string email;
  std::string access_level;
};

// Who did it: the user on their own account, or the administrator.
struct Actor {
  std::int64_t id = 0;
  std::string email;
};

const Actor kAdmin = {1, "admin@example.com"};

std::string LevelName(const std::string& level) {
  if (level == "admin") return "Administrator";
  if (level == "read_only") return "Read-only";
  return "User";
}

class Auth final : public SimulatedService {
 public:
  Auth(const std::string& db_path, Ledger& ledger, std::uint64_t seed)
      : SimulatedService("auth", db_path, ledger, seed) {
    db().exec(kSchema);
    AddAccountOperations();
    AddCredentialOperations();
    AddAccessOperations();
    SetTour({
        "create_user",
        "create_user",
        "create_user",
        "change_password",
        "suspend_user",
        "unsuspend_user",
        "request_password_reset",
        "update_email",
        "verify_email",
        "regenerate_api_key",
        "add_ssh_key",
        "delete_ssh_key",
        "add_delegate",
        "remove_delegate",
        "enable_2fa",
        "disable_2fa",
        "set_access_level",
        "archive_user",
        "unarchive_user",
        "create_user_with_taken_email",
        "set_unknown_access_level",
    });
  }

 private:
  void AddAccountOperations() {
    AddOperation({"create_user", 1, 6, false,
                  [this] { return CreateUser(/*taken_email=*/false); }});
    AddOperation({"create_user_with_taken_email", 1, 0, true,
                  [this] { return CreateUser(/*taken_email=*/true); }});
    AddOperation(
        {"suspend_user", 1, 2, false, [this] { return SuspendUser(); }});
    AddOperation(
        {"unsuspend_user", 1, 2, false, [this] { return UnsuspendUser(); }});
    AddOperation(
        {"archive_user", 1, 1, false, [this] { return ArchiveUser(); }});
    AddOperation(
        {"unarchive_user", 1, 1, false, [this] { return UnarchiveUser(); }});
    AddOperation(
        {"update_email", 1, 2, false, [this] { return UpdateEmail(); }});
    AddOperation(
        {"verify_email", 1, 3, false, [this] { return VerifyEmail(); }});
  }

  void AddCredentialOperations() {
    AddOperation(
        {"change_password", 1, 3, false, [this] { return ChangePassword(); }});
    AddOperation({"request_password_reset", 1, 2, false,
                  [this] { return RequestPasswordReset(); }});
    AddOperation({"regenerate_api_key", 1, 2, false,
                  [this] { return RegenerateApiKey(); }});
    AddOperation({"add_ssh_key", 1, 3, false, [this] { return AddSshKey(); }});
    AddOperation(
        {"delete_ssh_key", 1, 2, false, [this] { return DeleteSshKey(); }});
    AddOperation({"enable_2fa", 1, 2, false,
                  [this] { return SetTwoFactor(/*enabled=*/true); }});
    AddOperation({"disable_2fa", 1, 1, false,
                  [this] { return SetTwoFactor(/*enabled=*/false); }});
  }

  void AddAccessOperations() {
    AddOperation(
        {"add_delegate", 1, 2, false, [this] { return AddDelegate(); }});
    AddOperation(
        {"remove_delegate", 1, 1, false, [this] { return RemoveDelegate(); }});
    AddOperation({"set_access_level", 1, 2, false,
                  [this] { return SetAccessLevel(/*unknown=*/false); }});
    AddOperation({"set_unknown_access_level", 1, 0, true,
                  [this] { return SetAccessLevel(/*unknown=*/true); }});
  }

  // ---- Accounts ------------------------------------------------------------

  // The administrator creates an account. With `taken_email`, the address
  // already belongs to someone: the event is emitted, then the UNIQUE
  // constraint on users.email rolls everything back.
  bool CreateUser(bool taken_email) {
    Txn txn(*this);
    std::int64_t id =
        db().execAndGet("SELECT coalesce(max(id), 0) + 1 FROM users")
            .getInt64();
    std::string first = PickFrom(kFirstNames);
    std::string last = PickFrom(kLastNames);
    std::string email =
        first + "." + last + std::to_string(id) + "@example.com";
    if (taken_email) {
      std::optional<std::int64_t> other = PickId("SELECT id FROM users");
      email = LoadUser(*other).email;
      txn.Emit(Action<events::UserCreated>({id, email, "user"}, kAdmin,
                                           "New user account created"));
    }
    Exec(
        "INSERT INTO users (id, email, name, status, access_level,"
        " password_hash) VALUES (?, ?, ?, 'active', 'user', ?)",
        id, email, first + " " + last, "argon2id$" + RandomHex(32));
    if (!taken_email) {
      txn.Emit(Action<events::UserCreated>({id, email, "user"}, kAdmin,
                                           "New user account created"));
    }
    txn.Commit();
    return true;
  }

  bool SuspendUser() {
    return ChangeStatus<events::UserSuspended>(
        "'active'", "suspended", "User suspended due to policy violation");
  }
  bool UnsuspendUser() {
    return ChangeStatus<events::UserUnsuspended>("'suspended'", "active",
                                                 "User account reactivated");
  }
  bool ArchiveUser() {
    return ChangeStatus<events::UserArchived>(
        "'active', 'suspended'", "archived", "User account archived");
  }
  bool UnarchiveUser() {
    return ChangeStatus<events::UserUnarchived>(
        "'archived'", "active", "User account restored from archive");
  }

  // The administrator moves an account (never its own) from one of the
  // states `from` (an SQL list) to `to`.
  template <typename EventClass>
  bool ChangeStatus(const std::string& from, const std::string& to,
                    const std::string& message) {
    Txn txn(*this);
    std::optional<std::int64_t> id = PickId(
        "SELECT id FROM users WHERE id <> 1 AND status IN (" + from + ")");
    if (!id) return false;
    Exec("UPDATE users SET status = ? WHERE id = ?", to, *id);
    txn.Emit(Action<EventClass>(LoadUser(*id), kAdmin, message));
    txn.Commit();
    return true;
  }

  bool UpdateEmail() {
    Txn txn(*this);
    std::optional<std::int64_t> id = ActiveUser();
    if (!id) return false;
    User user = LoadUser(*id);
    std::string old_email = user.email;
    user.email = PickFrom(kFirstNames) + "." + std::to_string(user.id) + "." +
                 RandomHex(4) + "@example.org";
    Exec("UPDATE users SET email = ?, email_verified = 0 WHERE id = ?",
         user.email, user.id);
    txn.Emit(Action<events::UserEmailUpdated>(
        user, kAdmin, "User email address changed from " + old_email));
    txn.Commit();
    return true;
  }

  bool VerifyEmail() {
    Txn txn(*this);
    std::optional<std::int64_t> id = PickId(
        "SELECT id FROM users WHERE status = 'active' AND email_verified = 0");
    if (!id) return false;
    Exec("UPDATE users SET email_verified = 1 WHERE id = ?", *id);
    User user = LoadUser(*id);
    txn.Emit(Action<events::UserEmailVerified>(
        user, Self(user), "Email address verified successfully"));
    txn.Commit();
    return true;
  }

  // ---- Credentials ---------------------------------------------------------

  bool ChangePassword() {
    Txn txn(*this);
    std::optional<std::int64_t> id = ActiveUser();
    if (!id) return false;
    Exec("UPDATE users SET password_hash = ? WHERE id = ?",
         "argon2id$" + RandomHex(32), *id);
    User user = LoadUser(*id);
    txn.Emit(Action<events::UserCredentialsChanged>(
        user, Self(user), "User password updated successfully"));
    txn.Commit();
    return true;
  }

  bool RequestPasswordReset() {
    Txn txn(*this);
    std::optional<std::int64_t> id = ActiveUser();
    if (!id) return false;
    Exec(
        "INSERT INTO password_resets (user_id, token, requested_at)"
        " VALUES (?, ?, strftime('%s', 'now'))",
        *id, RandomHex(40));
    User user = LoadUser(*id);
    txn.Emit(Action<events::UserPasswordResetRequested>(
        user, Self(user), "Password reset initiated for user"));
    txn.Commit();
    return true;
  }

  bool RegenerateApiKey() {
    Txn txn(*this);
    std::optional<std::int64_t> id = ActiveUser();
    if (!id) return false;
    Exec("UPDATE users SET api_key_hash = ? WHERE id = ?", RandomHex(64), *id);
    User user = LoadUser(*id);
    txn.Emit(Action<events::UserApiKeyRegenerated>(
        user, Self(user), "API key regenerated for security purposes"));
    txn.Commit();
    return true;
  }

  bool AddSshKey() {
    Txn txn(*this);
    std::optional<std::int64_t> id = ActiveUser();
    if (!id) return false;
    Exec("INSERT INTO ssh_keys (user_id, fingerprint) VALUES (?, ?)", *id,
         "SHA256:" + RandomHex(43));
    User user = LoadUser(*id);
    txn.Emit(Action<events::UserSshKeyCreated>(
        user, Self(user), "SSH key added to user account"));
    txn.Commit();
    return true;
  }

  bool DeleteSshKey() {
    Txn txn(*this);
    std::optional<std::int64_t> key = PickId(
        "SELECT ssh_keys.id FROM ssh_keys JOIN users"
        " ON users.id = ssh_keys.user_id WHERE users.status = 'active'");
    if (!key) return false;
    std::int64_t user_id =
        Ids("SELECT user_id FROM ssh_keys WHERE id = " + std::to_string(*key))
            .at(0);
    Exec("DELETE FROM ssh_keys WHERE id = ?", *key);
    User user = LoadUser(user_id);
    txn.Emit(Action<events::UserSshKeyDeleted>(
        user, Self(user), "SSH key removed from user account"));
    txn.Commit();
    return true;
  }

  bool SetTwoFactor(bool enabled) {
    Txn txn(*this);
    std::optional<std::int64_t> id =
        PickId(std::string("SELECT id FROM users WHERE status = 'active'"
                           " AND two_factor = ") +
               (enabled ? "0" : "1"));
    if (!id) return false;
    Exec("UPDATE users SET two_factor = ? WHERE id = ?", enabled ? 1 : 0, *id);
    User user = LoadUser(*id);
    if (enabled) {
      txn.Emit(Action<events::User2faEnabled>(
          user, Self(user), "Two-factor authentication enabled"));
    } else {
      txn.Emit(Action<events::User2faDisabled>(
          user, Self(user), "Two-factor authentication disabled"));
    }
    txn.Commit();
    return true;
  }

  // ---- Access --------------------------------------------------------------

  bool AddDelegate() {
    Txn txn(*this);
    std::optional<std::int64_t> parent = ActiveUser();
    if (!parent) return false;
    std::optional<std::int64_t> delegate = PickId(
        "SELECT id FROM users WHERE status = 'active' AND id <> 1"
        " AND id <> " +
        std::to_string(*parent) +
        " AND id NOT IN (SELECT delegate_id FROM delegates WHERE user_id = " +
        std::to_string(*parent) + ")");
    if (!delegate) return false;
    Exec("INSERT INTO delegates (user_id, delegate_id) VALUES (?, ?)", *parent,
         *delegate);
    User user = LoadUser(*parent);
    User other = LoadUser(*delegate);
    txn.Emit(Action<events::UserDelegateAdded>(
        user, kAdmin,
        "Parent user ID: " + std::to_string(user.id) + " with email " +
            user.email + " added delegate with ID " + std::to_string(other.id) +
            " with email " + other.email));
    txn.Commit();
    return true;
  }

  bool RemoveDelegate() {
    Txn txn(*this);
    std::optional<std::int64_t> row = PickId("SELECT rowid FROM delegates");
    if (!row) return false;
    std::int64_t parent = Ids("SELECT user_id FROM delegates WHERE rowid = " +
                              std::to_string(*row))
                              .at(0);
    Exec("DELETE FROM delegates WHERE rowid = ?", *row);
    txn.Emit(Action<events::UserDelegateRemoved>(
        LoadUser(parent), kAdmin, "Delegate access revoked from user"));
    txn.Commit();
    return true;
  }

  // The administrator changes a user's access level. With `unknown`, to a
  // level the table does not know: the event is emitted, then the CHECK
  // constraint on users.access_level rolls everything back.
  bool SetAccessLevel(bool unknown) {
    Txn txn(*this);
    std::optional<std::int64_t> id = ActiveUser();
    if (!id) return false;
    User user = LoadUser(*id);
    std::string level = user.access_level == "user" ? "admin" : "user";
    if (unknown) level = "superuser";
    txn.Emit(Action<events::UserAccessLevelSet>(
        user, kAdmin,
        "User access level changed to " +
            (unknown ? std::string("Superuser") : LevelName(level))));
    Exec("UPDATE users SET access_level = ? WHERE id = ?", level, user.id);
    txn.Commit();
    return true;
  }

  // ---- Helpers -------------------------------------------------------------

  // An active account other than the administrator's.
  std::optional<std::int64_t> ActiveUser() {
    return PickId("SELECT id FROM users WHERE status = 'active' AND id <> 1");
  }

  User LoadUser(std::int64_t id) {
    SQLite::Statement select(
        db(), "SELECT id, email, access_level FROM users WHERE id = ?");
    select.bind(1, static_cast<std::int64_t>(id));
    select.executeStep();
    User user;
    user.id = select.getColumn(0).getInt64();
    user.email = select.getColumn(1).getString();
    user.access_level = select.getColumn(2).getString();
    return user;
  }

  static Actor Self(const User& user) { return {user.id, user.email}; }

  // Every user event has the same fields: whose account, who acted, why.
  template <typename EventClass>
  static EventClass Action(const User& user, const Actor& actor,
                           const std::string& message) {
    EventClass event;
    event.userId(user.id)
        .userEmail(user.email)
        .loggedInUserId(actor.id)
        .loggedInUserEmail(actor.email)
        .message(message);
    return event;
  }
};

}  // namespace

std::unique_ptr<SimulatedService> NewAuthService(const std::string& db_path,
                                                 Ledger& ledger,
                                                 std::uint64_t seed) {
  return std::make_unique<Auth>(db_path, ledger, seed);
}

}  // namespace sigevents::demo
