// The subcommands of the `sigevents` binary and the helpers they share.
//
// Each subcommand is a function that takes its own arguments (argv[0] is the
// subcommand's name), parses them with Boost.Program_options, writes its
// output to the given streams and returns the process exit status. A
// subcommand reports bad usage by throwing UsageError; main() prints it with
// the subcommand's name and exits with status 2.
//
// Thread safety: subcommands run on the main thread only.

#ifndef SIGEVENTS_ADAPTERS_CLI_H_
#define SIGEVENTS_ADAPTERS_CLI_H_

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/positional_options.hpp>
#include <boost/program_options/variables_map.hpp>
#include <chrono>
#include <iosfwd>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "outbox/log.h"

namespace sigevents::cli {

// Bad flags, a bad value, a missing argument.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

using CommandFn = int (*)(int argc, char** argv, Io& io);

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
};

// Every subcommand, in the order `sigevents --help` lists them.
const std::vector<Command>& Commands();

int RunTypes(int argc, char** argv, Io& io);
int RunEmit(int argc, char** argv, Io& io);
int RunKafka(int argc, char** argv, Io& io);
int RunRelay(int argc, char** argv, Io& io);

// Three simulated services emit every event type through their own outboxes
// and relays; a consumer reads them back and counts (adapters/demo.h).
int RunDemo(int argc, char** argv, Io& io);

// The operator commands, over a live outbox (see outbox/inspect.h).
int RunStatus(int argc, char** argv, Io& io);
int RunList(int argc, char** argv, Io& io);
int RunShow(int argc, char** argv, Io& io);
int RunRetry(int argc, char** argv, Io& io);
int RunPurge(int argc, char** argv, Io& io);
int RunCheck(int argc, char** argv, Io& io);
int RunMetrics(int argc, char** argv, Io& io);

// The benchmark of the module against plain SQLite and librdkafka.
int RunBench(int argc, char** argv, Io& io);

// A log sink writing "time level message" lines to `err`, from any thread.
LogSink StderrLogSink(std::ostream& err, LogLevel min_level);

// Parses argv against `options` (and `positional`, if any). Returns false
// after printing `usage` and the options when --help was given. Throws
// UsageError for anything Boost.Program_options refuses.
bool ParseArgs(int argc, char** argv, const std::string& usage,
               boost::program_options::options_description& options,
               boost::program_options::variables_map& values, Io& io,
               const boost::program_options::positional_options_description*
                   positional = nullptr);

// "30s", "5m", "2h", "1d", "250ms" -> milliseconds. Throws UsageError that
// says what was expected.
std::chrono::milliseconds ParseDuration(const std::string& text);

// "2h 5m", "41s", "850ms": a short human form of a duration.
std::string FormatDuration(std::chrono::milliseconds duration);

// Splits each "key=value" of -X flags; throws UsageError on a missing '='.
std::map<std::string, std::string> ParseProperties(
    const std::vector<std::string>& pairs);

}  // namespace sigevents::cli

#endif  // SIGEVENTS_ADAPTERS_CLI_H_
