#include "adapters/demo.h"

#include <stdlib.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "adapters/demo_consumer.h"
#include "adapters/demo_service.h"
#include "adapters/demo_tally.h"
#include "adapters/embedded_kafka.h"
#include "emitter/envelope.h"
#include "outbox/relay.h"
#include "outbox/relay_store.h"
#include "outbox/schema.h"

namespace sigevents::demo {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kProgressInterval{2000};
constexpr milliseconds kConnectTimeout{10000};
constexpr milliseconds kRelayStopTimeout{5000};
constexpr milliseconds kCatchUpTimeout{10000};
constexpr std::size_t kMaxLine = 160;

// Lines from several threads, each written whole.
class Printer {
 public:
  Printer(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}

  void Out(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    out_ << text << std::flush;
  }
  void Err(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    err_ << text << std::flush;
  }

 private:
  std::mutex mu_;
  std::ostream& out_;
  std::ostream& err_;
};

// The directory of the databases: the one given, which must not hold a
// previous run's, or a temporary one removed at the end.
class Directory {
 public:
  explicit Directory(const std::string& given) {
    if (given.empty()) {
      const char* base = getenv("TMPDIR");
      std::string pattern = std::string(base != nullptr ? base : "/tmp") +
                            "/sigevents-demo-XXXXXX";
      if (mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("demo: cannot create a directory like " +
                                 pattern + ": " + strerror(errno));
      }
      path_ = pattern;
      temporary_ = true;
      return;
    }
    path_ = given;
    std::filesystem::create_directories(path_);
    for (const char* name : {"inventory.db", "auth.db", "orchestrator.db"}) {
      if (std::filesystem::exists(File(name))) {
        throw std::invalid_argument(
            "--dir " + path_ + " already holds " + name +
            " from an earlier run; give an empty or new directory");
      }
    }
  }

  ~Directory() {
    if (!temporary_) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::string& path() const { return path_; }
  bool temporary() const { return temporary_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool temporary_ = false;
};

// Starts the three services and joins them, also when the demo fails.
class ServiceThreads {
 public:
  ServiceThreads(const std::vector<std::unique_ptr<SimulatedService>>& services,
                 const std::vector<ServicePlan>& plans)
      : reports_(services.size()) {
    for (std::size_t i = 0; i < services.size(); ++i) {
      threads_.emplace_back([this, &services, &plans, i] {
        reports_[i] = services[i]->Run(plans[i], stop_);
        ++finished_;
      });
    }
  }
  ~ServiceThreads() { Join(); }

  bool done() const { return finished_ == threads_.size(); }
  void Stop() { stop_ = true; }
  void Join() {
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  // Valid after Join().
  const std::vector<ServiceReport>& reports() const { return reports_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> finished_{0};
  std::vector<ServiceReport> reports_;
  std::vector<std::thread> threads_;
};

// ---- What the demo prints
// ----------------------------------------------------

std::string Shorten(const std::string& text, std::size_t width) {
  if (text.size() <= width) return text;
  std::size_t cut = width - 3;
  // Never cut a UTF-8 sequence in two.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return text.substr(0, cut) + "...";
}

// A short form of one data value: strings as they are, arrays of strings
// in brackets, changes as "field old->new", other JSON compact.
std::string GistOf(const json::value& value) {
  if (value.is_string()) {
    std::string text(value.get_string());
    if (text.find(' ') != std::string::npos) text = "\"" + text + "\"";
    return Shorten(text, 60);
  }
  if (value.is_object()) {
    const json::object& object = value.get_object();
    const json::value* before = object.if_contains("previousState");
    const json::value* after = object.if_contains("currentState");
    if (before != nullptr && after != nullptr && before->is_object() &&
        after->is_object()) {
      std::string text;
      for (const auto& member : after->get_object()) {
        const json::value* old = before->get_object().if_contains(member.key());
        if (old != nullptr && *old == member.value()) continue;
        text += (text.empty() ? "" : ", ") + std::string(member.key()) + " " +
                (old != nullptr ? GistOf(*old) : "-") + "->" +
                GistOf(member.value());
      }
      return "{" + text + "}";
    }
  }
  if (value.is_array()) {
    std::string text;
    for (const json::value& item : value.get_array()) {
      std::string part;
      if (item.is_object()) {
        for (const auto& member : item.get_object()) {
          part += (part.empty() ? "" : " ") + GistOf(member.value());
        }
      } else {
        part = GistOf(item);
      }
      text += (text.empty() ? "" : ", ") + part;
    }
    return "[" + text + "]";
  }
  return json::serialize(value);
}

std::string_view ArrivalMark(Arrival arrival) {
  switch (arrival) {
    case Arrival::kDuplicate:
      return "DUPLICATE ";
    case Arrival::kRolledBack:
      return "ROLLED BACK, YET RECEIVED ";
    case Arrival::kMismatch:
      return "ALTERED ";
    case Arrival::kUnknown:
      return "UNKNOWN ID ";
    default:
      return "";
  }
}

// "16:40:13.578  server.registered   123   serverStatus=AVAILABLE ..."
std::string EventLine(const ConsumedMessage& message, Arrival arrival) {
  std::string time = FormatRfc3339Millis(message.received_unix_ms);
  std::string line =
      time.substr(11, 12) + "  " + std::string(ArrivalMark(arrival));
  boost::system::error_code ec;
  json::value envelope = json::parse(message.value, ec);
  const json::object* object = ec ? nullptr : envelope.if_object();
  const json::value* type = object ? object->if_contains("type") : nullptr;
  const json::value* data = object ? object->if_contains("data") : nullptr;
  if (type == nullptr || !type->is_string() || data == nullptr ||
      !data->is_object()) {
    return line + "(not a CloudEvent) key " + message.key + "\n";
  }
  const EventSpec* spec = FindEventSpec(type->get_string());
  char head[96];
  std::snprintf(head, sizeof(head), "%-40s %-6s",
                std::string(type->get_string()).c_str(),
                Shorten(message.key, 24).c_str());
  line += head;
  const json::object& fields = data->get_object();
  for (const auto& member : fields) {
    if (spec != nullptr && member.key() == spec->key_field) continue;
    // "loggedInUserEmail" says little more than "loggedInUserId" does.
    std::string name(member.key());
    if (name.size() > 5 && name.compare(name.size() - 5, 5, "Email") == 0) {
      std::string id = name.substr(0, name.size() - 5) + "Id";
      if (fields.contains(id) && (spec == nullptr || id != spec->key_field)) {
        continue;
      }
    }
    line += " " + name + "=" + GistOf(member.value());
  }
  return Shorten(line, kMaxLine) + "\n";
}

std::string ProgressLine(Clock::time_point start, const Totals& totals) {
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::ostringstream line;
  line.precision(1);
  line << std::fixed << "-- " << seconds << "s: " << totals.emitted
       << " committed, " << totals.received << " received, "
       << totals.emitted - totals.received << " on their way, "
       << totals.duplicated << " duplicated, " << totals.rolled_back
       << " rolled back\n";
  return line.str();
}

// ---- Setting up
// ---------------------------------------------------------------

// Each service's share of the events and of the rate: its tour first, the
// rest by how many event types it has.
std::vector<ServicePlan> Plan(
    const std::vector<std::unique_ptr<SimulatedService>>& services,
    const std::vector<sigevents::Service>& kinds, const DemoOptions& options) {
  std::int64_t tours = 0;
  for (const auto& service : services) tours += service->tour_events();
  if (options.events < tours) {
    throw std::invalid_argument(
        "--events must be at least " + std::to_string(tours) +
        ", the events the three services need to show every one of the " +
        std::to_string(EventTypeCount()) + " event types");
  }
  std::int64_t rest = options.events - tours;
  std::vector<ServicePlan> plans(services.size());
  std::int64_t given = 0;
  for (std::size_t i = 0; i < services.size(); ++i) {
    std::int64_t types = 0;
    for (std::size_t t = 0; t < EventTypeCount(); ++t) {
      if (EventSpecs()[t].service == kinds[i]) ++types;
    }
    std::int64_t share =
        rest * types / static_cast<std::int64_t>(EventTypeCount());
    plans[i].events = services[i]->tour_events() + share;
    given += plans[i].events;
  }
  plans[0].events += options.events - given;
  for (ServicePlan& plan : plans) {
    plan.rate = options.rate * static_cast<double>(plan.events) /
                static_cast<double>(options.events);
    plan.failure_rate = options.failure_rate;
  }
  return plans;
}

LogSink WarningSink(Printer& printer, const std::string& prefix) {
  return [&printer, prefix](LogLevel level, std::string_view message) {
    if (level < LogLevel::kWarning) return;
    printer.Err(FormatRfc3339Millis(NowMillis()) + " " +
                std::string(LogLevelName(level)) + " " + prefix +
                std::string(message) + "\n");
  };
}

// Waits for the events still on their way: until all have arrived, or the
// relays have had nothing pending and nothing in flight twice in a row
// (what has not arrived then never will), or `wait` passes.
void AwaitStragglers(const Tally& tally,
                     const std::vector<std::unique_ptr<Relay>>& relays,
                     TopicConsumer& consumer, milliseconds wait,
                     const std::atomic<bool>& interrupted) {
  Clock::time_point deadline = Clock::now() + wait;
  Clock::time_point next_check = Clock::now() + milliseconds(1000);
  int idle_checks = 0;
  while (!tally.AllReceived() && Clock::now() < deadline && !interrupted) {
    std::this_thread::sleep_for(milliseconds(50));
    if (Clock::now() < next_check) continue;
    next_check = Clock::now() + milliseconds(1000);
    bool idle = true;
    for (const auto& relay : relays) {
      RelayStats stats = relay->stats();
      if (stats.pending != 0 || stats.in_flight != 0) idle = false;
    }
    idle_checks = idle ? idle_checks + 1 : 0;
    if (idle_checks >= 2) {
      consumer.CatchUp(kCatchUpTimeout);
      return;
    }
  }
}

}  // namespace

int RunDemo(const DemoOptions& options, std::ostream& out, std::ostream& err,
            const std::atomic<bool>& interrupted) {
  if (options.events < 1) {
    throw std::invalid_argument("--events must be at least 1");
  }
  if (options.rate < 0) throw std::invalid_argument("--rate must not be < 0");
  Printer printer(out, err);
  Directory directory(options.dir);

  // Kafka: the one given, or an embedded cluster of three brokers.
  std::map<std::string, std::string> properties = options.kafka;
  if (!options.bootstrap_servers.empty()) {
    properties["bootstrap.servers"] = options.bootstrap_servers;
  }
  std::unique_ptr<EmbeddedKafka> kafka;
  if (properties.count("bootstrap.servers") == 0) {
    EmbeddedKafkaOptions kafka_options;
    kafka_options.brokers = 3;
    kafka_options.topics = {options.topic};
    kafka = EmbeddedKafka::Start(kafka_options);
    properties["bootstrap.servers"] = kafka->bootstrap_servers();
  }

  // The services, their databases and their outboxes.
  Tally tally;
  std::vector<std::unique_ptr<SimulatedService>> services;
  services.push_back(
      NewInventoryService(directory.File("inventory.db"), tally, options.seed));
  services.push_back(
      NewAuthService(directory.File("auth.db"), tally, options.seed + 1));
  services.push_back(NewOrchestratorService(directory.File("orchestrator.db"),
                                            tally, options.seed + 2));
  std::vector<ServicePlan> plans =
      Plan(services,
           {sigevents::Service::kInventory, sigevents::Service::kAuth,
            sigevents::Service::kOrchestrator},
           options);
  for (const auto& service : services) {
    OpenOptions read_only;
    read_only.read_only = true;
    tally.AddOutbox(ReadOutboxId(*OpenDatabase(service->db_path(), read_only)));
  }

  // The consumer, from the topic's current end.
  std::unique_ptr<TopicConsumer> consumer = TopicConsumer::Start(
      properties, options.topic,
      [&tally, &printer, &options](const ConsumedMessage& message) {
        Arrival arrival = tally.Received(message);
        if (arrival == Arrival::kForeign) return;
        if (!options.quiet || arrival != Arrival::kFirst) {
          printer.Out(EventLine(message, arrival));
        }
      },
      WarningSink(printer, ""), kConnectTimeout);

  // One relay per database, as each service would run its own.
  std::vector<std::unique_ptr<Relay>> relays;
  for (const auto& service : services) {
    RelayConfig config;
    config.db_path = service->db_path();
    config.kafka = properties;
    config.default_topic = options.topic;
    config.log = WarningSink(printer, service->name() + " ");
    relays.push_back(Relay::Start(config));
  }

  if (!options.quiet) {
    std::ostringstream header;
    header << "sigevents demo: " << options.events << " events";
    if (options.rate > 0) header << " at " << options.rate << "/s";
    header << " from three services (seed " << options.seed << ")\n"
           << "  kafka         " << (kafka ? "embedded, 3 brokers at " : "")
           << properties["bootstrap.servers"] << ", topic " << options.topic
           << "\n";
    for (std::size_t i = 0; i < services.size(); ++i) {
      char row[512];
      std::snprintf(row, sizeof(row), "  %-13s %s (%lld events, own relay)\n",
                    services[i]->name().c_str(), services[i]->db_path().c_str(),
                    static_cast<long long>(plans[i].events));
      header << row;
    }
    char columns[128];
    std::snprintf(columns, sizeof(columns), "\n%-12s  %-40s %-6s %s\n",
                  "time (UTC)", "type", "key", "data");
    header << columns;
    printer.Out(header.str());
  }

  // The business: three services at once.
  Clock::time_point start = Clock::now();
  ServiceThreads threads(services, plans);
  Clock::time_point next_progress = start + kProgressInterval;
  while (!threads.done()) {
    std::this_thread::sleep_for(milliseconds(50));
    if (interrupted) threads.Stop();
    if (!options.quiet && Clock::now() >= next_progress) {
      next_progress += kProgressInterval;
      printer.Out(ProgressLine(start, tally.totals()));
    }
  }
  threads.Join();
  AwaitStragglers(tally, relays, *consumer, options.wait, interrupted);

  // Stop the relays, then read whatever they wrote before stopping.
  std::vector<RelayStats> relay_stats;
  for (auto& relay : relays) {
    relay->Stop(kRelayStopTimeout);
    relay_stats.push_back(relay->stats());
  }
  bool caught_up = consumer->CatchUp(kCatchUpTimeout);
  consumer->Stop();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // The summary.
  std::ostringstream summary;
  summary << "\n";
  tally.PrintSummary(summary);
  std::int64_t operations = 0, rolled_back = 0, unexpected = 0;
  for (std::size_t i = 0; i < services.size(); ++i) {
    const ServiceReport& report = threads.reports()[i];
    operations += report.operations;
    rolled_back += report.rolled_back;
    unexpected += report.unexpected_errors;
    summary << services[i]->name() << ": " << report.operations
            << " transactions, " << report.committed_events
            << " events committed, " << report.rolled_back
            << " rolled back on purpose; relay delivered "
            << relay_stats[i].delivered_total << ", failed "
            << relay_stats[i].failed_total << "\n";
    if (report.unexpected_errors > 0) {
      summary << "  " << report.unexpected_errors
              << " operation(s) failed unexpectedly; the first: "
              << report.first_error << "\n";
    }
  }
  if (!caught_up) {
    summary << "the consumer could not read the topic to its end\n";
  }
  Totals totals = tally.totals();
  bool ok = tally.Ok() && unexpected == 0 && caught_up;
  char timing[64];
  std::snprintf(timing, sizeof(timing), "%.1f", seconds);
  summary << (interrupted ? "interrupted after " : "ran ") << timing << "s\n";
  if (ok) {
    summary << "result: OK, all " << totals.emitted
            << " committed events arrived exactly once, as emitted; none of "
               "the "
            << totals.rolled_back << " rolled-back events appeared\n";
  } else {
    summary << "result: FAILED: " << totals.lost << " lost, "
            << totals.duplicated << " duplicated, " << totals.leaked
            << " rolled back yet received, " << totals.mismatched
            << " altered, " << totals.unknown << " unknown, " << unexpected
            << " unexpected service error(s)\n";
  }
  if (!directory.temporary()) {
    summary << "the databases stay in " << directory.path()
            << "; e.g. `sigevents status --db " << directory.File("auth.db")
            << "`\n";
  }
  printer.Out(summary.str());
  return ok ? 0 : 1;
}

}  // namespace sigevents::demo
