// sigevents purge --db PATH --delivered --before DURATION [--dry-run]:
// deletes delivered events that Kafka has had for longer than DURATION.

#include <ostream>

#include "adapters/cli.h"
#include "adapters/cli_ops.h"
#include "emitter/envelope.h"

namespace sigevents::cli {

int RunPurge(int argc, char** argv, Io& io) {
  namespace po = boost::program_options;
  po::options_description options("options");
  options.add_options()                                                     //
      ("db", po::value<std::string>()->required(), "outbox database file")  //
      ("delivered", "required: only delivered events are ever purged")      //
      ("before", po::value<std::string>()->required(),
       "purge events delivered at least this long ago (30m, 12h, 7d)")  //
      ("dry-run", "count what would be purged, delete nothing");
  po::variables_map values;
  if (!ParseArgs(
          argc, argv,
          "sigevents purge --db PATH --delivered --before DURATION "
          "[--dry-run]\n\n"
          "Deletes delivered events whose delivery is older than DURATION, "
          "1000 rows\nper short transaction, so services and the relay keep "
          "writing meanwhile.\nPending and failed events are never deleted. "
          "The relay also deletes\ndelivered events after its retention "
          "(24h by default).",
          options, values, io)) {
    return 0;
  }
  if (values.count("delivered") == 0) {
    throw UsageError(
        "--delivered is required: purge deletes delivered events only");
  }
  std::chrono::milliseconds before =
      ParseDuration(values["before"].as<std::string>());
  bool dry_run = values.count("dry-run") != 0;
  std::string path = values["db"].as<std::string>();
  auto db = OpenOutbox(path, dry_run ? Access::kReadOnly : Access::kReadWrite);

  std::int64_t cutoff_ms = UnixMillisNow() - before.count();
  std::int64_t count = PurgeDelivered(*db, cutoff_ms, dry_run);
  io.out << (dry_run ? "would purge " : "purged ") << CountOf(count, "event")
         << " delivered before " << FormatRfc3339Millis(cutoff_ms) << " ("
         << FormatDuration(before) << " ago)"
         << (dry_run ? "; dry run: nothing changed" : "") << "\n";
  return 0;
}

}  // namespace sigevents::cli
