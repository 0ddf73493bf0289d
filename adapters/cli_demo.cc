// sigevents demo: three simulated services emit every event type through
// their outboxes and relays to Kafka, a consumer reads them back, and a
// table says whether each committed event arrived exactly once. See
// adapters/demo.h.

#include <signal.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "adapters/cli.h"
#include "adapters/demo.h"

namespace sigevents::cli {
namespace {

namespace po = boost::program_options;

// Turns SIGINT and SIGTERM into `interrupted` while the demo runs, from a
// thread of its own; the signals are blocked in every other thread.
class InterruptWatch {
 public:
  InterruptWatch() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    thread_ = std::thread([this] {
      timespec tick{0, 100 * 1000 * 1000};
      while (!done_) {
        if (sigtimedwait(&signals_, nullptr, &tick) > 0) interrupted_ = true;
      }
    });
  }
  ~InterruptWatch() {
    done_ = true;
    thread_.join();
  }

  const std::atomic<bool>& interrupted() const { return interrupted_; }

 private:
  sigset_t signals_;
  std::atomic<bool> done_{false};
  std::atomic<bool> interrupted_{false};
  std::thread thread_;
};

}  // namespace

int RunDemo(int argc, char** argv, Io& io) {
  demo::DemoOptions defaults;
  po::options_description options("options");
  options.add_options()  //
      ("events", po::value<long long>()->default_value(defaults.events),
       "events to commit, all services together")  //
      ("rate", po::value<double>()->default_value(defaults.rate),
       "events per second; 0 for as fast as possible")  //
      ("quiet,q", "print the summary only")             //
      ("dir", po::value<std::string>(),
       "keep the databases in this directory (default: a temporary one)")  //
      ("bootstrap-servers", po::value<std::string>(),
       "a real Kafka cluster (default: an embedded one)")  //
      ("topic", po::value<std::string>()->default_value(defaults.topic),
       "the topic, which must exist on a real cluster")  //
      (",X", po::value<std::vector<std::string>>()->composing(),
       "librdkafka property key=value (repeatable)")  //
      ("seed", po::value<unsigned long long>()->default_value(defaults.seed),
       "seed of the services' choices")  //
      ("failure-rate",
       po::value<double>()->default_value(defaults.failure_rate, "0.03"),
       "share of operations that fail on purpose and roll back")  //
      ("wait", po::value<std::string>()->default_value("30s"),
       "how long to wait for events still on their way at the end");
  po::variables_map values;
  if (!ParseArgs(argc, argv,
                 "sigevents demo [--events N] [--rate R] [--quiet] "
                 "[--dir DIR] [--bootstrap-servers LIST]\n\n"
                 "Runs three simulated services (inventory, auth, "
                 "orchestrator), each with its own\nSQLite database and "
                 "relay, that emit every event type into Kafka (an embedded\n"
                 "one unless --bootstrap-servers is given) while a consumer "
                 "prints what arrives.\nEnds with a table per event type; "
                 "exits 0 only when every committed event\narrived exactly "
                 "once and no rolled-back event did, 1 otherwise.",
                 options, values, io)) {
    return 0;
  }

  demo::DemoOptions demo_options;
  demo_options.events = values["events"].as<long long>();
  demo_options.rate = values["rate"].as<double>();
  demo_options.quiet = values.count("quiet") != 0;
  if (values.count("dir") != 0) {
    demo_options.dir = values["dir"].as<std::string>();
  }
  if (values.count("bootstrap-servers") != 0) {
    demo_options.bootstrap_servers =
        values["bootstrap-servers"].as<std::string>();
  }
  demo_options.topic = values["topic"].as<std::string>();
  if (values.count("X") != 0) {
    demo_options.kafka =
        ParseProperties(values["X"].as<std::vector<std::string>>());
  }
  demo_options.seed = values["seed"].as<unsigned long long>();
  demo_options.failure_rate = values["failure-rate"].as<double>();
  if (demo_options.failure_rate < 0 || demo_options.failure_rate > 1) {
    throw UsageError("--failure-rate must be between 0 and 1");
  }
  demo_options.wait = ParseDuration(values["wait"].as<std::string>());

  InterruptWatch watch;
  try {
    return demo::RunDemo(demo_options, io.out, io.err, watch.interrupted());
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

}  // namespace sigevents::cli
