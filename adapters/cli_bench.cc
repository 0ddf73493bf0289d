// sigevents bench [--json] [--quick] [--backlog N] [--rate R] [--only LIST]
// [--dir PATH]: measures the module against the raw parts it is built from (see
// adapters/bench.h) and prints a table, or one JSON object with --json.
// Progress goes to standard error. Build it optimized:
//
//   bazel run -c opt //adapters:sigevents -- bench

#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <utility>
#include <vector>

#include "adapters/bench.h"
#include "adapters/cli.h"

namespace sigevents::cli {
namespace {

namespace po = boost::program_options;

constexpr std::int64_t kQuickBacklog = 50000;

struct Machine {
  long cpus = 0;
  std::string cpu_model;
  std::string date;
  std::string command;
  std::string build;
  std::string load_before;
  std::string load_after;
};

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

// The 1, 5 and 15 minute load averages.
std::string LoadAverage() {
  std::ifstream loadavg("/proc/loadavg");
  std::string one, five, fifteen;
  loadavg >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::string LocalDate() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[64];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S%z", &local);
  return text;
}

std::string CommandLine(int argc, char** argv) {
  std::string command = "sigevents";
  for (int i = 0; i < argc; ++i) command += std::string(" ") + argv[i];
  return command;
}

std::string BuildMode() {
#if defined(__OPTIMIZE__) && defined(NDEBUG)
  return "optimized";
#else
  return "NOT optimized: run it with `bazel run -c opt`";
#endif
}

std::string Fixed(double value, int decimals) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(decimals) << value;
  return text.str();
}

// 1234567.8 -> "1,234,568"
std::string Grouped(double value) {
  std::string digits = std::to_string(static_cast<long long>(value + 0.5));
  std::string grouped;
  int count = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (count > 0 && count % 3 == 0 && *it != '-') grouped.insert(0, ",");
    grouped.insert(0, 1, *it);
    ++count;
  }
  return grouped;
}

std::string Verdict(bool met) { return met ? "met" : "MISSED"; }

// One JSON object, members in the order they are added, numbers as given.
class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) { out_ << "{"; }

  void Number(const std::string& key, const std::string& formatted) {
    Key(key);
    out_ << formatted;
  }
  void Number(const std::string& key, double value, int decimals) {
    Number(key, Fixed(value, decimals));
  }
  void String(const std::string& key, const std::string& value) {
    Key(key);
    out_ << boost::json::serialize(boost::json::value(value));
  }
  void Bool(const std::string& key, bool value) {
    Number(key, value ? "true" : "false");
  }
  void End() { out_ << "\n}\n"; }

 private:
  void Key(const std::string& key) {
    out_ << (first_ ? "\n  " : ",\n  ") << '"' << key << "\": ";
    first_ = false;
  }

  std::ostream& out_;
  bool first_ = true;
};

void PrintJson(const Machine& machine, const bench::BenchOptions& options,
               const bench::BenchResults& r, std::ostream& out) {
  JsonWriter json(out);
  json.String("date", machine.date);
  json.String("command", machine.command);
  json.String("build", machine.build);
  json.Number("nproc", std::to_string(machine.cpus));
  json.String("cpu_model", machine.cpu_model);
  json.String("loadavg_before", machine.load_before);
  json.String("loadavg_after", machine.load_after);
  json.Bool("quick", options.quick);
  if (options.run_inserts) {
    json.Number("emit_batch_per_s", r.emit_batch_per_s, 0);
    json.Number("raw_insert_batch_per_s", r.raw_insert_batch_per_s, 0);
    json.Number("emit_batch_ratio", r.emit_batch_ratio, 3);
    json.Number("emit_single_per_s", r.emit_single_per_s, 0);
    json.Number("raw_insert_single_per_s", r.raw_insert_single_per_s, 0);
    json.Number("emit_single_ratio", r.emit_single_ratio, 3);
  }
  if (options.run_drain) {
    json.Number("backlog", std::to_string(r.backlog));
    json.Number("backlog_fill_per_s", r.backlog_fill_per_s, 0);
    json.Number("relay_drain_per_s", r.relay_drain_per_s, 0);
    json.Number("raw_produce_per_s", r.raw_produce_per_s, 0);
    if (options.run_inserts) {
      json.Number("relay_vs_insert_ratio", r.relay_vs_insert_ratio, 3);
    }
    json.Number("relay_vs_produce_ratio", r.relay_vs_produce_ratio, 3);
    json.Number("drain_rss_idle_mb", r.drain_rss_idle_mb, 1);
    json.Number("drain_rss_peak_mb", r.drain_rss_peak_mb, 1);
    json.Number("drain_rss_growth_mb", r.drain_rss_growth_mb, 1);
  }
  if (options.run_e2e) {
    json.Number("e2e_rate", r.e2e_rate, 0);
    json.Number("e2e_seconds", r.e2e_seconds, 1);
    json.Number("e2e_events", std::to_string(r.e2e_events));
    json.Number("e2e_missing", std::to_string(r.e2e_missing));
    json.String("e2e_measure",
                "commit returned -> consumer received (steady clock)");
    json.Number("e2e_p50_ms", r.e2e_p50_ms, 3);
    json.Number("e2e_p99_ms", r.e2e_p99_ms, 3);
    json.Number("e2e_max_ms", r.e2e_max_ms, 3);
    json.Number("e2e_pickup_p50_ms", r.e2e_pickup_p50_ms, 1);
    json.Number("e2e_pickup_p99_ms", r.e2e_pickup_p99_ms, 1);
    json.Number("raw_e2e_p50_ms", r.raw_e2e_p50_ms, 3);
    json.Number("raw_e2e_p99_ms", r.raw_e2e_p99_ms, 3);
    json.Number("raw_e2e_max_ms", r.raw_e2e_max_ms, 3);
  }
  if (options.run_writers) {
    json.Number("emitters_8_per_s", r.emitters_8_per_s, 0);
    json.Number("emitters_8_errors", std::to_string(r.emitters_8_errors));
    json.Number("raw_insert_8_per_s", r.raw_insert_8_per_s, 0);
    json.Number("emitters_8_ratio", r.emitters_8_ratio, 3);
  }
  json.End();
}

// A row of the table: measure, sigevents figure, baseline, ratio, target.
void Row(std::ostream& out, const std::string& measure,
         const std::string& value, const std::string& baseline = "",
         const std::string& ratio = "", const std::string& target = "") {
  out << std::left << std::setw(36) << measure << std::right << std::setw(14)
      << value << "  " << std::left << std::setw(34) << baseline << std::right
      << std::setw(6) << ratio << "  " << target << "\n";
}

void PrintTable(const Machine& machine, const bench::BenchOptions& options,
                const bench::BenchResults& r, std::ostream& out) {
  out << "sigevents bench, " << machine.date << "\n"
      << "machine  " << machine.cpus << " x " << machine.cpu_model << "; load "
      << machine.load_before << " before, " << machine.load_after << " after\n"
      << "command  " << machine.command << "\n"
      << "build    " << machine.build << "\n\n";
  Row(out, "measure", "sigevents", "baseline in the same run", "ratio",
      "target");
  if (options.run_inserts) {
    Row(out, "emit, 1,000 per transaction", Grouped(r.emit_batch_per_s) + "/s",
        "raw INSERT " + Grouped(r.raw_insert_batch_per_s) + "/s",
        Fixed(r.emit_batch_ratio, 3),
        ">= 0.8 " + Verdict(r.emit_batch_ratio >= 0.8));
    Row(out, "emit, 1 per transaction", Grouped(r.emit_single_per_s) + "/s",
        "raw INSERT " + Grouped(r.raw_insert_single_per_s) + "/s",
        Fixed(r.emit_single_ratio, 3),
        ">= 0.9 " + Verdict(r.emit_single_ratio >= 0.9));
  }
  if (options.run_drain) {
    if (options.run_inserts) {
      Row(out, "relay drain of " + Grouped(static_cast<double>(r.backlog)),
          Grouped(r.relay_drain_per_s) + "/s",
          "raw INSERT, batch " + Grouped(r.raw_insert_batch_per_s) + "/s",
          Fixed(r.relay_vs_insert_ratio, 3),
          ">= 0.6 " + Verdict(r.relay_vs_insert_ratio >= 0.6));
    } else {
      Row(out, "relay drain of " + Grouped(static_cast<double>(r.backlog)),
          Grouped(r.relay_drain_per_s) + "/s");
    }
    Row(out, "", "", "raw produce " + Grouped(r.raw_produce_per_s) + "/s",
        Fixed(r.relay_vs_produce_ratio, 3));
    Row(out, "drain RSS growth", Fixed(r.drain_rss_growth_mb, 1) + " MB",
        "idle " + Fixed(r.drain_rss_idle_mb, 1) + ", peak " +
            Fixed(r.drain_rss_peak_mb, 1) + " MB",
        "", "< 100 MB " + Verdict(r.drain_rss_growth_mb < 100));
    Row(out, "backlog fill, 1,000 per transaction",
        Grouped(r.backlog_fill_per_s) + "/s");
  }
  if (options.run_e2e) {
    Row(out,
        "commit -> consumer, " + Grouped(r.e2e_rate) + "/s x " +
            Fixed(r.e2e_seconds, 0) + " s",
        "p50 " + Fixed(r.e2e_p50_ms, 2) + " ms",
        "plain librdkafka p50 " + Fixed(r.raw_e2e_p50_ms, 2) + " ms", "",
        std::to_string(r.e2e_events) + " events, " +
            std::to_string(r.e2e_missing) + " missing");
    Row(out, "", "p99 " + Fixed(r.e2e_p99_ms, 2) + " ms",
        "plain librdkafka p99 " + Fixed(r.raw_e2e_p99_ms, 2) + " ms", "",
        "<= 10 ms " + Verdict(r.e2e_p99_ms <= 10 && r.e2e_missing == 0));
    Row(out, "", "max " + Fixed(r.e2e_max_ms, 2) + " ms",
        "plain librdkafka max " + Fixed(r.raw_e2e_max_ms, 2) + " ms");
    Row(out, "  of which commit -> relay produce",
        "p50 " + Fixed(r.e2e_pickup_p50_ms, 1) + " ms",
        "p99 " + Fixed(r.e2e_pickup_p99_ms, 1) + " ms (+-0.5 ms)");
  }
  if (options.run_writers) {
    Row(out, "8 emitters, relay running", Grouped(r.emitters_8_per_s) + "/s",
        "8 raw INSERTers " + Grouped(r.raw_insert_8_per_s) + "/s",
        Fixed(r.emitters_8_ratio, 3),
        r.emitters_8_errors == 0
            ? ""
            : std::to_string(r.emitters_8_errors) + " transactions failed");
  }
  if (options.run_inserts) {
    out << "\nEmit ratios are medians of per-round ratios (emit and raw "
           "INSERT interleaved),\nso they need not equal the quotient of "
           "the median rates.\n";
  }
}

// "emit,e2e" -> the sections to run; throws UsageError for an unknown one.
void SelectSections(const std::string& list, bench::BenchOptions& options) {
  options.run_inserts = options.run_drain = false;
  options.run_e2e = options.run_writers = false;
  std::stringstream stream(list);
  for (std::string name; std::getline(stream, name, ',');) {
    if (name == "emit") {
      options.run_inserts = true;
    } else if (name == "drain") {
      options.run_drain = true;
    } else if (name == "e2e") {
      options.run_e2e = true;
    } else if (name == "writers") {
      options.run_writers = true;
    } else {
      throw UsageError("--only: unknown measurement \"" + name +
                       "\"; expected emit, drain, e2e or writers");
    }
  }
}

}  // namespace

int RunBench(int argc, char** argv, Io& io) {
  po::options_description options("options");
  options.add_options()                                       //
      ("json", "print one JSON object instead of the table")  //
      ("quick",
       "a run of under 30 seconds for CI (backlog 50,000 unless given)")  //
      ("backlog", po::value<std::int64_t>(),
       "pending events the relay drains (default 1,000,000)")  //
      ("rate", po::value<double>()->default_value(1000),
       "events/s of the end-to-end latency run")  //
      ("only", po::value<std::string>(),
       "comma-separated subset of emit,drain,e2e,writers (for profiling)")  //
      ("dir", po::value<std::string>()->default_value(""),
       "where to make the scratch directory (default $TMPDIR or /tmp)");
  po::variables_map values;
  if (!ParseArgs(argc, argv,
                 "sigevents bench [--json] [--quick] [--backlog N] "
                 "[--rate R] [--only LIST] [--dir PATH]\n\n"
                 "Measures emit, the relay and end-to-end latency against "
                 "plain SQLite and plain\nlibrdkafka in the same run. Build "
                 "it optimized: bazel run -c opt //adapters:sigevents -- "
                 "bench",
                 options, values, io)) {
    return 0;
  }
  bench::BenchOptions bench_options;
  bench_options.quick = values.count("quick") != 0;
  bench_options.backlog = values.count("backlog") != 0
                              ? values["backlog"].as<std::int64_t>()
                          : bench_options.quick ? kQuickBacklog
                                                : bench_options.backlog;
  bench_options.rate = values["rate"].as<double>();
  bench_options.parent_dir = values["dir"].as<std::string>();
  if (values.count("only") != 0) {
    SelectSections(values["only"].as<std::string>(), bench_options);
  }
  if (bench_options.backlog < 1) throw UsageError("--backlog must be >= 1");
  if (!(bench_options.rate > 0) || bench_options.rate > 100000) {
    throw UsageError("--rate must be above 0 and at most 100000");
  }
  bench_options.log = StderrLogSink(io.err, LogLevel::kInfo);

  Machine machine;
  machine.cpus = sysconf(_SC_NPROCESSORS_ONLN);
  machine.cpu_model = CpuModel();
  machine.date = LocalDate();
  machine.command = CommandLine(argc, argv);
  machine.build = BuildMode();
  machine.load_before = LoadAverage();
  bench::BenchResults results = bench::RunBenchmarks(bench_options);
  machine.load_after = LoadAverage();

  if (values.count("json") != 0) {
    PrintJson(machine, bench_options, results, io.out);
  } else {
    PrintTable(machine, bench_options, results, io.out);
  }
  return 0;
}

}  // namespace sigevents::cli
