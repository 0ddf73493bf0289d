// sigevents retry --db PATH ID|SEQ|--all-failed [--dry-run]: puts failed
// events back to pending so that the relay sends them again.

#include <ostream>

#include "adapters/cli.h"
#include "adapters/cli_ops.h"

namespace sigevents::cli {
namespace {

int RetryOne(SQLite::Database& db, const std::string& path, const EventRef& ref,
             bool dry_run, Io& io) {
  std::optional<OutboxRecord> before = RetryEvent(db, ref, dry_run);
  if (!before) {
    io.err << "no event with " << ref.ToString() << " in " << path << "\n";
    return 1;
  }
  std::string name = "event seq " + std::to_string(before->seq) + " (id " +
                     before->id + ", " + before->type + ")";
  if (before->state != EventState::kFailed) {
    io.err << "cannot retry " << name << ": it is "
           << EventStateName(before->state)
           << "; only failed events can be retried\n";
    return 1;
  }
  if (dry_run) {
    io.out << "would retry " << name << " (dry run: nothing changed)\n";
  } else {
    io.out << "retried " << name
           << ": it is pending again and the relay will send it\n";
  }
  return 0;
}

}  // namespace

int RunRetry(int argc, char** argv, Io& io) {
  namespace po = boost::program_options;
  po::options_description options("options");
  options.add_options()                                                     //
      ("db", po::value<std::string>()->required(), "outbox database file")  //
      ("event", po::value<std::string>(),
       "the failed event: its id, or its outbox sequence number")  //
      ("all-failed", "retry every failed event")                   //
      ("dry-run", "say what would be retried, change nothing");
  po::positional_options_description positional;
  positional.add("event", 1);
  po::variables_map values;
  if (!ParseArgs(
          argc, argv,
          "sigevents retry --db PATH ID|SEQ|--all-failed [--dry-run]\n\n"
          "Sets failed events back to pending; the relay sends them again.\n"
          "Only failed events change: naming a pending or delivered one is "
          "an\nerror (exit status 1), and so is an event that does not exist.\n"
          "`attempts` and `last_error` are kept as the record of the failure "
          "until\nthe relay overwrites them. A retried event is sent after "
          "the events\nemitted since it failed, so consumers see it out of "
          "order for its key.\nSafe while the relay runs: each change is one "
          "short transaction that\nonly matches rows whose state is still "
          "'failed'.",
          options, values, io, &positional)) {
    return 0;
  }
  bool all = values.count("all-failed") != 0;
  if (all == (values.count("event") != 0)) {
    throw UsageError("name one event (ID or SEQ) or give --all-failed");
  }
  bool dry_run = values.count("dry-run") != 0;
  std::string path = values["db"].as<std::string>();
  auto db = OpenOutbox(path, dry_run ? Access::kReadOnly : Access::kReadWrite);

  if (!all) {
    return RetryOne(*db, path,
                    EventRef::Parse(values["event"].as<std::string>()), dry_run,
                    io);
  }
  std::int64_t count = RetryAllFailed(*db, dry_run);
  if (count == 0) {
    io.out << "no failed events to retry\n";
  } else if (dry_run) {
    io.out << "would retry " << CountOf(count, "failed event")
           << " (dry run: nothing changed)\n";
  } else {
    io.out << "retried " << CountOf(count, "failed event")
           << ": pending again, the relay will send "
           << (count == 1 ? "it" : "them") << "\n";
  }
  return 0;
}

}  // namespace sigevents::cli
