#include "outbox/commit_signal.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <climits>
#include <map>
#include <memory>

namespace sigevents {
namespace {

// SQLite's default automatic checkpoint threshold, in WAL pages.
constexpr int kAutoCheckpointPages = 1000;

int OnWalCommit(void* arg, sqlite3* db, const char* schema, int wal_pages) {
  static_cast<CommitSignal*>(arg)->Notify();
  if (wal_pages >= kAutoCheckpointPages) {
    // A passive checkpoint, as SQLite's own hook does; failures (a reader
    // holding old pages) only delay it to a later commit.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                              nullptr);
  }
  return SQLITE_OK;
}

std::string CanonicalPath(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) != nullptr) return resolved;
  return path;
}

}  // namespace

CommitSignal& CommitSignal::ForFile(const std::string& path) {
  static std::mutex* registry_mu = new std::mutex();
  static auto* registry =
      new std::map<std::string, std::unique_ptr<CommitSignal>>();
  std::string key = CanonicalPath(path);
  std::lock_guard<std::mutex> lock(*registry_mu);
  std::unique_ptr<CommitSignal>& signal = (*registry)[key];
  if (signal == nullptr) signal = std::make_unique<CommitSignal>();
  return *signal;
}

void CommitSignal::Attach(SQLite::Database& db, CommitSignal& signal) {
  sqlite3_wal_hook(db.getHandle(), &OnWalCommit, &signal);
}

void CommitSignal::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
  }
  changed_.notify_all();
}

std::uint64_t CommitSignal::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

std::uint64_t CommitSignal::WaitFor(std::uint64_t seen,
                                    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return generation_ != seen; });
  return generation_;
}

}  // namespace sigevents
