// Wakes the relays of this process as soon as a transaction commits on a
// connection that has emitted, so the relay needs no busy polling for events
// emitted in its own process. (Events committed by other processes are found
// by the relay's periodic `PRAGMA data_version` check instead.)
//
//   CommitSignal& signal = CommitSignal::ForFile("/var/lib/svc/inventory.db");
//   CommitSignal::Attach(db, signal);          // on the emitting connection
//   std::uint64_t seen = signal.generation();  // in the relay
//   signal.WaitFor(seen, std::chrono::milliseconds(100));
//
// Attach() installs SQLite's WAL hook on the connection, which SQLite calls
// right after each commit. That replaces SQLite's automatic checkpoint hook
// on that connection, so the hook checkpoints itself once the WAL holds 1000
// pages, as SQLite does by default. A caller's own wal_autocheckpoint value
// or WAL hook on an emitting connection is replaced by this one.
//
// Thread safety: a CommitSignal may be used from any thread. Signals live as
// long as the process.

#ifndef SIGEVENTS_OUTBOX_COMMIT_SIGNAL_H_
#define SIGEVENTS_OUTBOX_COMMIT_SIGNAL_H_

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace sigevents {

class CommitSignal {
 public:
  // The signal of the database file at `path`; one per file per process,
  // whatever path spelling leads to it.
  static CommitSignal& ForFile(const std::string& path);

  // Installs the commit hook on `db` (see above).
  static void Attach(SQLite::Database& db, CommitSignal& signal);

  CommitSignal() = default;
  CommitSignal(const CommitSignal&) = delete;
  CommitSignal& operator=(const CommitSignal&) = delete;

  void Notify();

  // The number of notifications so far.
  std::uint64_t generation() const;

  // Blocks until generation() differs from `seen` or `timeout` passes;
  // returns generation().
  std::uint64_t WaitFor(std::uint64_t seen, std::chrono::milliseconds timeout);

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::uint64_t generation_ = 0;  // guarded by mu_
};

}  // namespace sigevents

#endif  // SIGEVENTS_OUTBOX_COMMIT_SIGNAL_H_
