// `sigevents demo`: the module at work, end to end, in one process. Three
// simulated services (inventory, auth, orchestrator; demo_service.h), each
// with its own SQLite database and its own relay thread, change their tables
// and emit every one of the catalog's event types inside their
// transactions; some transactions fail on purpose and roll back. A consumer
// reads the topic back and prints each event as it arrives; at the end a
// table per event type says what was emitted, received, duplicated, lost
// and rolled back, and how long events took from commit to receipt.
//
//   demo::DemoOptions options;
//   options.events = 500;
//   std::atomic<bool> interrupted{false};
//   int status = demo::RunDemo(options, std::cout, std::cerr, interrupted);
//
// Kafka is an embedded one (adapters/embedded_kafka.h) unless
// `bootstrap_servers` names a real cluster, on which the topic must exist.
// On a shared topic only the demo's own messages count: those whose
// sigevents-outbox header names one of its three outboxes.
//
// Thread safety: RunDemo() starts and joins its own threads (three
// services, three relays, the consumer and librdkafka's); call it from one
// thread. `out` and `err` are written from several of them under one lock.

#ifndef SIGEVENTS_ADAPTERS_DEMO_H_
#define SIGEVENTS_ADAPTERS_DEMO_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>

namespace sigevents::demo {

struct DemoOptions {
  std::int64_t events = 1000;  // committed events, all services together
  double rate = 100;           // events per second; 0 for as fast as possible
  bool quiet = false;          // the summary only
  std::string dir;  // where the databases go; "" for a temporary directory,
                    // removed at the end
  std::string bootstrap_servers;             // "" for an embedded Kafka
  std::map<std::string, std::string> kafka;  // more librdkafka properties
  std::string topic = "significant-events";
  std::uint64_t seed = 1;
  double failure_rate = 0.03;  // share of operations that fail on purpose
  // How long to wait, after the last commit, for events still on their way.
  std::chrono::milliseconds wait{std::chrono::seconds(30)};
};

// Runs the demo: prints the setup, the events as they arrive (unless quiet)
// with a progress line every two seconds, then the summary table. Returns 0
// when every committed event arrived exactly once with the data emitted and
// no rolled-back event arrived, 1 otherwise. Setting `interrupted` stops
// the services early; the summary covers what they did. Throws
// std::invalid_argument for bad options (among them fewer events than the
// services' tours need to show every event type) and std::runtime_error
// when the databases or Kafka cannot be set up.
int RunDemo(const DemoOptions& options, std::ostream& out, std::ostream& err,
            const std::atomic<bool>& interrupted);

}  // namespace sigevents::demo

#endif  // SIGEVENTS_ADAPTERS_DEMO_H_
