// The relay as a process, for the crash tests: runs sigevents::Relay like
// `sigevents relay` does, until SIGTERM, and can end itself at the worst
// moment for duplicates: right after Kafka's delivery reports arrived and
// before they are recorded in the outbox.
//
//   crash_relay --db service.db --bootstrap-servers 127.0.0.1:9092
//       --settle-delay 100ms --lease 2s -X reconnect.backoff.max.ms=1000
//       --crash-after-reports 40
//
// With --crash-after-reports N, once N delivery reports have been received
// (counted over the batches handed to RelayConfig::before_record_for_testing)
// the process writes one line to stderr,
//   crash_relay: crashing after R delivery report(s), before recording them
// and ends with _exit(9). Without it, SIGTERM stops the relay as
// `sigevents relay` does and the last line says
//   relay: stopped cleanly|uncleanly; delivered D, failed F, reconciled C

#include <signal.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "outbox/relay.h"

namespace sigevents::testing {
namespace {

namespace po = boost::program_options;
using std::chrono::milliseconds;

// "250ms", "2s" -> milliseconds.
milliseconds ParseMillis(const std::string& text) {
  std::size_t end = 0;
  long long number = std::stoll(text, &end);
  std::string unit = text.substr(end);
  if (unit == "ms") return milliseconds(number);
  if (unit == "s") return milliseconds(number * 1000);
  throw std::invalid_argument("bad duration \"" + text +
                              "\": expected e.g. 250ms or 2s");
}

std::map<std::string, std::string> ParseProperties(
    const std::vector<std::string>& items) {
  std::map<std::string, std::string> properties;
  for (const std::string& item : items) {
    std::size_t equals = item.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw std::invalid_argument("bad -X \"" + item +
                                  "\": expected key=value");
    }
    properties[item.substr(0, equals)] = item.substr(equals + 1);
  }
  return properties;
}

// "2025-01-01T12:00:00.123Z info message" lines on stderr, from any thread.
LogSink StderrSink() {
  auto mu = std::make_shared<std::mutex>();
  return [mu](LogLevel level, std::string_view message) {
    auto now = std::chrono::system_clock::now();
    std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    int millis = static_cast<int>(
        std::chrono::duration_cast<milliseconds>(now.time_since_epoch())
            .count() %
        1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    std::string line = std::string(stamp) + "." +
                       std::to_string(1000 + millis).substr(1) + "Z " +
                       std::string(LogLevelName(level)) + " " +
                       std::string(message) + "\n";
    std::lock_guard<std::mutex> lock(*mu);
    std::cerr << line << std::flush;
  };
}

int Main(int argc, char** argv) {
  std::string settle, lease, poll, stop_timeout;
  std::int64_t crash_after = 0;
  std::vector<std::string> properties;
  RelayConfig config;
  po::options_description description("crash_relay options");
  description.add_options()                                              //
      ("db", po::value(&config.db_path)->required(), "outbox database")  //
      ("bootstrap-servers", po::value<std::string>()->required(),
       "Kafka brokers")  //
      ("topic",
       po::value(&config.default_topic)->default_value("significant-events"),
       "default topic")  //
      (",X", po::value(&properties)->composing(),
       "librdkafka property key=value (repeatable)")  //
      ("settle-delay", po::value(&settle)->default_value("2s"),
       "wait after an unclean stop before reading Kafka back")  //
      ("lease", po::value(&lease)->default_value("10s"),
       "lease duration")  //
      ("poll-interval", po::value(&poll)->default_value("100ms"),
       "how often to look for events of other processes")  //
      ("stop-timeout", po::value(&stop_timeout)->default_value("10s"),
       "how long SIGTERM waits for events in flight")  //
      ("crash-after-reports", po::value(&crash_after)->default_value(0),
       "_exit(9) before recording, once this many delivery reports have "
       "been received; 0 never")  //
      ("help", "show this help");
  po::variables_map values;
  po::store(po::parse_command_line(argc, argv, description), values);
  if (values.count("help") != 0) {
    std::cout << description << "\n";
    return 0;
  }
  po::notify(values);

  config.kafka = ParseProperties(properties);
  config.kafka["bootstrap.servers"] =
      values["bootstrap-servers"].as<std::string>();
  config.settle_delay = ParseMillis(settle);
  config.lease_duration = ParseMillis(lease);
  config.poll_interval = ParseMillis(poll);
  config.log = StderrSink();
  if (crash_after > 0) {
    // Called on the relay thread only, so the counter needs no lock.
    auto seen = std::make_shared<std::int64_t>(0);
    config.before_record_for_testing = [seen,
                                        crash_after](std::size_t reports) {
      *seen += static_cast<std::int64_t>(reports);
      if (*seen < crash_after) return;
      std::string line = "crash_relay: crashing after " +
                         std::to_string(*seen) +
                         " delivery report(s), before recording them\n";
      (void)!write(STDERR_FILENO, line.data(), line.size());
      _exit(9);
    };
  }

  // SIGTERM and SIGINT are taken by sigwait() below; block them before the
  // relay starts its threads so that they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<Relay> relay = Relay::Start(config);
  int received = 0;
  sigwait(&signals, &received);
  config.log(LogLevel::kInfo,
             std::string("relay: ") + strsignal(received) + ", stopping");
  bool clean = relay->Stop(ParseMillis(stop_timeout));
  config.log(LogLevel::kInfo, DescribeStop(clean, relay->stats()));
  return 0;
}

}  // namespace
}  // namespace sigevents::testing

int main(int argc, char** argv) {
  try {
    return sigevents::testing::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "crash_relay: " << e.what() << "\n";
    return 1;
  }
}
