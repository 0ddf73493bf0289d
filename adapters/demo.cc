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

#include "adapters/demo_service.h"
#include "adapters/demo_tally.h"
#include "adapters/embedded_kafka.h"
#include "adapters/topic_consumer.h"
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

// One run of the demo. Members are declared in the order they are set up,
// so that they are torn down in reverse: relays, consumer, services, Kafka.
class Demo {
 public:
  Demo(const DemoOptions& options, std::ostream& out, std::ostream& err)
      : options_(options), printer_(out, err), directory_(options.dir) {}

  int Run(const std::atomic<bool>& interrupted) {
    StartKafka();
    OpenServices();
    StartConsumer();
    StartRelays();
    if (!options_.quiet) PrintSetup();

    Clock::time_point start = Clock::now();
    std::vector<ServiceReport> reports = RunServices(start, interrupted);
    AwaitStragglers(tally_, relays_, *consumer_, options_.wait, interrupted);

    // Stop the relays, then read whatever they wrote before stopping.
    std::vector<RelayStats> relay_stats;
    for (auto& relay : relays_) {
      relay->Stop(kRelayStopTimeout);
      relay_stats.push_back(relay->stats());
    }
    bool caught_up = consumer_->CatchUp(kCatchUpTimeout);
    consumer_->Stop();
    double seconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    return PrintSummary(reports, relay_stats, caught_up, seconds, interrupted)
               ? 0
               : 1;
  }

 private:
  // The cluster given, or an embedded one of three brokers.
  void StartKafka() {
    properties_ = options_.kafka;
    if (!options_.bootstrap_servers.empty()) {
      properties_["bootstrap.servers"] = options_.bootstrap_servers;
    }
    if (properties_.count("bootstrap.servers") != 0) return;
    EmbeddedKafkaOptions kafka_options;
    kafka_options.brokers = 3;
    kafka_options.topics = {options_.topic};
    kafka_ = EmbeddedKafka::Start(kafka_options);
    properties_["bootstrap.servers"] = kafka_->bootstrap_servers();
  }

  // The services, their databases and outboxes, and their shares.
  void OpenServices() {
    services_.push_back(NewInventoryService(directory_.File("inventory.db"),
                                            tally_, options_.seed));
    services_.push_back(
        NewAuthService(directory_.File("auth.db"), tally_, options_.seed + 1));
    services_.push_back(NewOrchestratorService(
        directory_.File("orchestrator.db"), tally_, options_.seed + 2));
    plans_ = Plan(services_,
                  {sigevents::Service::kInventory, sigevents::Service::kAuth,
                   sigevents::Service::kOrchestrator},
                  options_);
    OpenOptions read_only;
    read_only.read_only = true;
    for (const auto& service : services_) {
      tally_.AddOutbox(
          ReadOutboxId(*OpenDatabase(service->db_path(), read_only)));
    }
  }

  // Reads from the topic's current end, so earlier messages do not count.
  void StartConsumer() {
    std::map<std::string, std::string> properties = properties_;
    properties.emplace("group.id", "sigevents-demo");
    // The demo measures latency: ask brokers to answer fetches at once
    // rather than hold them for up to 500 ms (the embedded Kafka holds a
    // fetch for the whole wait even when messages arrive meanwhile).
    properties.emplace("fetch.wait.max.ms", "10");
    consumer_ = TopicConsumer::Start(
        properties, options_.topic, TopicConsumer::From::kEnd,
        [this](const ConsumedMessage& message) {
          Arrival arrival = tally_.Received(message);
          if (arrival == Arrival::kForeign) return;
          if (!options_.quiet || arrival != Arrival::kFirst) {
            printer_.Out(EventLine(message, arrival));
          }
        },
        WarningSink(printer_, ""), kConnectTimeout);
  }

  // One relay per database, as each service would run its own.
  void StartRelays() {
    for (const auto& service : services_) {
      RelayConfig config;
      config.db_path = service->db_path();
      config.kafka = properties_;
      config.default_topic = options_.topic;
      config.log = WarningSink(printer_, service->name() + " ");
      relays_.push_back(Relay::Start(config));
    }
  }

  void PrintSetup() {
    std::ostringstream header;
    header << "sigevents demo: " << options_.events << " events";
    if (options_.rate > 0) header << " at " << options_.rate << "/s";
    header << " from three services (seed " << options_.seed << ")\n"
           << "  kafka         " << (kafka_ ? "embedded, 3 brokers at " : "")
           << properties_["bootstrap.servers"] << ", topic " << options_.topic
           << "\n";
    for (std::size_t i = 0; i < services_.size(); ++i) {
      char row[512];
      std::snprintf(row, sizeof(row), "  %-13s %s (%lld events, own relay)\n",
                    services_[i]->name().c_str(),
                    services_[i]->db_path().c_str(),
                    static_cast<long long>(plans_[i].events));
      header << row;
    }
    char columns[128];
    std::snprintf(columns, sizeof(columns), "\n%-12s  %-40s %-6s %s\n",
                  "time (UTC)", "type", "key", "data");
    header << columns;
    printer_.Out(header.str());
  }

  // The three services at once, with a progress line every two seconds.
  std::vector<ServiceReport> RunServices(Clock::time_point start,
                                         const std::atomic<bool>& interrupted) {
    ServiceThreads threads(services_, plans_);
    Clock::time_point next_progress = start + kProgressInterval;
    while (!threads.done()) {
      std::this_thread::sleep_for(milliseconds(50));
      if (interrupted) threads.Stop();
      if (!options_.quiet && Clock::now() >= next_progress) {
        next_progress += kProgressInterval;
        printer_.Out(ProgressLine(start, tally_.totals()));
      }
    }
    threads.Join();
    return threads.reports();
  }

  // The table, each service's figures and the verdict; true when all is
  // well.
  bool PrintSummary(const std::vector<ServiceReport>& reports,
                    const std::vector<RelayStats>& relay_stats, bool caught_up,
                    double seconds, bool interrupted) {
    std::ostringstream summary;
    summary << "\n";
    tally_.PrintSummary(summary);
    std::int64_t unexpected = 0;
    for (std::size_t i = 0; i < services_.size(); ++i) {
      unexpected += reports[i].unexpected_errors;
      summary << services_[i]->name() << ": " << reports[i].operations
              << " transactions, " << reports[i].committed_events
              << " events committed, " << reports[i].rolled_back
              << " rolled back on purpose; relay delivered "
              << relay_stats[i].delivered_total << ", failed "
              << relay_stats[i].failed_total << "\n";
      if (reports[i].unexpected_errors > 0) {
        summary << "  " << reports[i].unexpected_errors
                << " operation(s) failed unexpectedly; the first: "
                << reports[i].first_error << "\n";
      }
    }
    if (!caught_up) {
      summary << "the consumer could not read the topic to its end\n";
    }
    char timing[64];
    std::snprintf(timing, sizeof(timing), "%.1f", seconds);
    summary << (interrupted ? "interrupted after " : "ran ") << timing << "s\n";

    Totals totals = tally_.totals();
    bool ok = tally_.Ok() && unexpected == 0 && caught_up;
    if (ok) {
      summary << "result: OK, all " << totals.emitted
              << " committed events arrived exactly once, as emitted; none "
                 "of the "
              << totals.rolled_back << " rolled-back events appeared\n";
    } else {
      summary << "result: FAILED: " << totals.lost << " lost, "
              << totals.duplicated << " duplicated, " << totals.leaked
              << " rolled back yet received, " << totals.mismatched
              << " altered, " << totals.unknown << " unknown, " << unexpected
              << " unexpected service error(s)\n";
    }
    if (!directory_.temporary()) {
      summary << "the databases stay in " << directory_.path()
              << "; e.g. `sigevents status --db " << directory_.File("auth.db")
              << "`\n";
    }
    printer_.Out(summary.str());
    return ok;
  }

  const DemoOptions& options_;
  Printer printer_;
  Directory directory_;
  std::map<std::string, std::string> properties_;
  std::unique_ptr<EmbeddedKafka> kafka_;
  Tally tally_;
  std::vector<std::unique_ptr<SimulatedService>> services_;
  std::vector<ServicePlan> plans_;
  std::unique_ptr<TopicConsumer> consumer_;
  std::vector<std::unique_ptr<Relay>> relays_;
};

}  // namespace

int RunDemo(const DemoOptions& options, std::ostream& out, std::ostream& err,
            const std::atomic<bool>& interrupted) {
  if (options.events < 1) {
    throw std::invalid_argument("--events must be at least 1");
  }
  if (options.rate < 0) throw std::invalid_argument("--rate must not be < 0");
  return Demo(options, out, err).Run(interrupted);
}

}  // namespace sigevents::demo
