// sigevents kafka: an embedded Kafka for demos and tests.
// sigevents relay: the relay in the foreground, as a sidecar.

#include <signal.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <mutex>
#include <sstream>

#include "adapters/cli.h"
#include "adapters/embedded_kafka.h"
#include "emitter/envelope.h"
#include "outbox/relay.h"
#include "outbox/relay_store.h"

namespace sigevents::cli {
namespace {

namespace po = boost::program_options;

// Blocks SIGTERM and SIGINT in every thread started from here on, so that
// WaitForTermination() receives them.
sigset_t BlockTerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int WaitForTermination(const sigset_t& signals) {
  int received = 0;
  sigwait(&signals, &received);
  return received;
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

}  // namespace

LogSink StderrLogSink(std::ostream& err, LogLevel min_level) {
  auto mu = std::make_shared<std::mutex>();
  return [&err, min_level, mu](LogLevel level, std::string_view message) {
    if (level < min_level) return;
    std::string line = FormatRfc3339Millis(NowMillis()) + " " +
                       std::string(LogLevelName(level)) + " " +
                       std::string(message) + "\n";
    std::lock_guard<std::mutex> lock(*mu);
    err << line << std::flush;
  };
}

int RunKafka(int argc, char** argv, Io& io) {
  po::options_description options("options");
  options.add_options()                                                     //
      ("brokers", po::value<int>()->default_value(1), "number of brokers")  //
      ("partitions", po::value<int>()->default_value(4),
       "partitions per topic")  //
      ("topics", po::value<std::string>()->default_value("significant-events"),
       "comma-separated topics to create");
  po::variables_map values;
  if (!ParseArgs(argc, argv,
                 "sigevents kafka [--brokers N] [--partitions P] "
                 "[--topics LIST]\n\n"
                 "Starts an embedded Kafka (librdkafka's mock cluster), prints "
                 "its bootstrap.servers\non the first line of standard output "
                 "and runs until SIGTERM or SIGINT.",
                 options, values, io)) {
    return 0;
  }
  EmbeddedKafkaOptions kafka_options;
  kafka_options.brokers = values["brokers"].as<int>();
  kafka_options.partitions = values["partitions"].as<int>();
  kafka_options.topics = SplitList(values["topics"].as<std::string>());
  if (kafka_options.brokers < 1 || kafka_options.partitions < 1) {
    throw UsageError("--brokers and --partitions must be at least 1");
  }

  sigset_t signals = BlockTerminationSignals();
  std::unique_ptr<EmbeddedKafka> kafka = EmbeddedKafka::Start(kafka_options);
  io.out << kafka->bootstrap_servers() << std::endl;
  int received = WaitForTermination(signals);
  io.err << "sigevents kafka: " << strsignal(received) << ", stopping\n";
  return 0;
}

int RunRelay(int argc, char** argv, Io& io) {
  po::options_description options("options");
  options.add_options()                                                     //
      ("db", po::value<std::string>()->required(), "outbox database file")  //
      ("bootstrap-servers", po::value<std::string>(),
       "Kafka brokers; without it an embedded Kafka is started")  //
      ("topic", po::value<std::string>()->default_value("significant-events"),
       "default topic")  //
      ("route", po::value<std::vector<std::string>>()->composing(),
       "PATTERN=TOPIC, e.g. server.*=inventory-events (repeatable)")  //
      ("binary", "CloudEvents binary content mode (ce_* headers)")    //
      (",X", po::value<std::vector<std::string>>()->composing(),
       "librdkafka property key=value (repeatable)")  //
      ("poll-interval", po::value<std::string>()->default_value("100ms"),
       "how often to look for events of other processes")  //
      ("lease", po::value<std::string>()->default_value("10s"),
       "lease duration")  //
      ("settle-delay", po::value<std::string>()->default_value("2s"),
       "wait after an unclean stop before reading Kafka back")  //
      ("retention", po::value<std::string>()->default_value("1d"),
       "delete delivered rows older than this; 0s keeps them")  //
      ("stop-timeout", po::value<std::string>()->default_value("10s"),
       "how long SIGTERM waits for events in flight")  //
      ("max-backoff", po::value<std::string>()->default_value("10s"),
       "longest wait between retries after an error")  //
      ("verbose,v", "log debug messages too");
  po::variables_map values;
  if (!ParseArgs(argc, argv,
                 "sigevents relay --db PATH [--bootstrap-servers LIST] "
                 "[--topic NAME] [-X key=value ...]\n\n"
                 "Runs the relay in the foreground until SIGTERM or SIGINT, "
                 "which finish what is\nin flight and exit 0.",
                 options, values, io)) {
    return 0;
  }

  RelayConfig config;
  config.db_path = values["db"].as<std::string>();
  config.default_topic = values["topic"].as<std::string>();
  if (values.count("X") != 0) {
    config.kafka = ParseProperties(values["X"].as<std::vector<std::string>>());
  }
  if (values.count("route") != 0) {
    for (const auto& [pattern, topic] :
         ParseProperties(values["route"].as<std::vector<std::string>>())) {
      config.routes.emplace_back(pattern, topic);
    }
  }
  if (values.count("binary") != 0) config.content_mode = ContentMode::kBinary;
  config.poll_interval =
      ParseDuration(values["poll-interval"].as<std::string>());
  config.lease_duration = ParseDuration(values["lease"].as<std::string>());
  config.settle_delay = ParseDuration(values["settle-delay"].as<std::string>());
  config.retention = ParseDuration(values["retention"].as<std::string>());
  config.backoff_max = ParseDuration(values["max-backoff"].as<std::string>());
  auto stop_timeout = ParseDuration(values["stop-timeout"].as<std::string>());
  config.log =
      StderrLogSink(io.err, values.count("verbose") != 0 ? LogLevel::kDebug
                                                         : LogLevel::kInfo);

  sigset_t signals = BlockTerminationSignals();
  std::unique_ptr<EmbeddedKafka> kafka;
  if (values.count("bootstrap-servers") != 0) {
    config.kafka["bootstrap.servers"] =
        values["bootstrap-servers"].as<std::string>();
  } else if (config.kafka.count("bootstrap.servers") == 0) {
    EmbeddedKafkaOptions kafka_options;
    kafka_options.topics = {config.default_topic};
    for (const auto& route : config.routes) {
      kafka_options.topics.push_back(route.second);
    }
    kafka = EmbeddedKafka::Start(kafka_options);
    config.kafka["bootstrap.servers"] = kafka->bootstrap_servers();
    config.log(LogLevel::kInfo,
               "no --bootstrap-servers: started an embedded "
               "Kafka at " +
                   kafka->bootstrap_servers());
  }

  std::unique_ptr<Relay> relay = Relay::Start(config);
  int received = WaitForTermination(signals);
  config.log(LogLevel::kInfo,
             std::string("relay: ") + strsignal(received) + ", stopping");
  bool clean = relay->Stop(stop_timeout);
  config.log(LogLevel::kInfo, DescribeStop(clean, relay->stats()));
  relay.reset();
  kafka.reset();
  return 0;
}

}  // namespace sigevents::cli
