// sigevents: the command line of the module. See adapters/cli.h.

#include <cstring>
#include <iostream>

#include "adapters/cli.h"

namespace sigevents::cli {

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"types", "print the event catalog", &RunTypes},
      {"emit", "emit events from NDJSON on standard input", &RunEmit},
      {"kafka", "run an embedded Kafka until stopped", &RunKafka},
      {"relay", "drain an outbox to Kafka in the foreground", &RunRelay},
      {"status", "whether events flow, and what is stuck", &RunStatus},
      {"list", "list outbox events, with filters", &RunList},
      {"show", "print one event and its delivery record", &RunShow},
      {"retry", "send failed events again", &RunRetry},
      {"purge", "delete old delivered events", &RunPurge},
      {"check", "health probe: exit 0 healthy, 1 not, 2 unknown", &RunCheck},
      {"metrics", "the outbox's figures for Prometheus", &RunMetrics},
      {"bench", "measure the module against plain SQLite and Kafka", &RunBench},
      {"demo", "three services emit every event type; watch them arrive",
       &RunDemo},
  };
  return commands;
}

namespace {

void PrintUsage(std::ostream& out) {
  out << "usage: sigevents COMMAND [OPTIONS]\n\n"
         "Publishes significant events from a SQLite outbox to Kafka.\n\n"
         "commands:\n";
  for (const Command& command : Commands()) {
    out << "  " << command.name
        << std::string(12 - std::strlen(command.name), ' ') << command.summary
        << "\n";
  }
  out << "\n`sigevents COMMAND --help` describes a command.\n";
}

}  // namespace
}  // namespace sigevents::cli

int main(int argc, char** argv) {
  using namespace sigevents::cli;
  Io io{std::cin, std::cout, std::cerr};
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 ||
      std::strcmp(argv[1], "-h") == 0) {
    PrintUsage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  for (const Command& command : Commands()) {
    if (std::strcmp(argv[1], command.name) != 0) continue;
    try {
      return command.run(argc - 1, argv + 1, io);
    } catch (const UsageError& e) {
      std::cerr << "sigevents " << command.name << ": " << e.what()
                << "\n(see `sigevents " << command.name << " --help`)\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "sigevents " << command.name << ": " << e.what() << "\n";
      return 2;
    }
  }
  std::cerr << "sigevents: unknown command \"" << argv[1] << "\"\n";
  PrintUsage(std::cerr);
  return 2;
}
