// sigevents metrics --db PATH: the figures of `sigevents status` in the
// Prometheus text exposition format (version 0.0.4), for node_exporter's
// textfile collector:
//
//   sigevents metrics --db app.db > /var/lib/node_exporter/app.prom.$$;
//   mv /var/lib/node_exporter/app.prom.$$ /var/lib/node_exporter/app.prom
//
// When the file cannot be read (missing, not an outbox, a newer schema) it
// prints only sigevents_outbox_up 0, says why on stderr and exits 2, so the
// exported file says the outbox is down instead of keeping old figures.

#include <cstdio>
#include <filesystem>
#include <ostream>

#include "adapters/cli.h"
#include "adapters/cli_ops.h"

namespace sigevents::cli {
namespace {

// A label value with backslash, double quote and newline escaped.
std::string EscapeLabel(const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      escaped += '\\';
      escaped += c;
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", value);
  return text;
}

std::string Number(std::int64_t value) { return std::to_string(value); }

class Exposition {
 public:
  Exposition(std::ostream& out, std::string db_label)
      : out_(out), db_label_(std::move(db_label)) {}

  // The HELP and TYPE lines of a gauge; its samples follow.
  void Gauge(const std::string& name, const std::string& help) {
    name_ = "sigevents_outbox_" + name;
    out_ << "# HELP " << name_ << " " << help << "\n"
         << "# TYPE " << name_ << " gauge\n";
  }

  void Sample(const std::string& value, const std::string& labels = "") {
    out_ << name_ << "{db=\"" << db_label_ << "\"" << labels << "} " << value
         << "\n";
  }

 private:
  std::ostream& out_;
  std::string db_label_;
  std::string name_;
};

void WriteMetrics(Exposition& metrics, const OutboxSummary& summary,
                  std::int64_t now_ms, const std::string& path) {
  metrics.Gauge("events", "Events in the outbox, by state.");
  metrics.Sample(Number(summary.pending), ",state=\"pending\"");
  metrics.Sample(Number(summary.failed), ",state=\"failed\"");
  metrics.Sample(Number(summary.delivered), ",state=\"delivered\"");

  metrics.Gauge("oldest_pending_age_seconds",
                "Age of the oldest pending event; 0 when none is pending.");
  double oldest = 0;
  if (summary.oldest_pending_ms) {
    oldest = Age(now_ms, *summary.oldest_pending_ms).count() / 1000.0;
  }
  metrics.Sample(Number(oldest));

  metrics.Gauge("delivered_last_minute",
                "Events delivered to Kafka in the last minute.");
  metrics.Sample(Number(summary.delivered_last_minute));
  metrics.Gauge("delivered_last_hour",
                "Events delivered to Kafka in the last hour.");
  metrics.Sample(Number(summary.delivered_last_hour));

  metrics.Gauge("lease_held", "1 when a relay holds the outbox's lease.");
  metrics.Sample(Number(std::int64_t{summary.lease.held() ? 1 : 0}));
  metrics.Gauge("lease_heartbeat_age_seconds",
                "Time since a relay last renewed the lease; no sample when "
                "none ever did.");
  if (summary.lease.heartbeat_at_ms) {
    metrics.Sample(
        Number(Age(now_ms, *summary.lease.heartbeat_at_ms).count() / 1000.0));
  }

  metrics.Gauge("schema_version", "Schema version of the outbox tables.");
  metrics.Sample(Number(std::int64_t{summary.schema_version}));
  metrics.Gauge("database_bytes", "Size of the database file.");
  metrics.Sample(Number(static_cast<std::int64_t>(FileBytes(path))));
  metrics.Gauge("wal_bytes", "Size of the database's write-ahead log.");
  metrics.Sample(Number(static_cast<std::int64_t>(FileBytes(path + "-wal"))));
}

}  // namespace

int RunMetrics(int argc, char** argv, Io& io) {
  namespace po = boost::program_options;
  po::options_description options("options");
  options.add_options()  //
      ("db", po::value<std::string>()->required(), "outbox database file");
  po::variables_map values;
  if (!ParseArgs(argc, argv,
                 "sigevents metrics --db PATH\n\n"
                 "Prints the outbox's figures in the Prometheus text format, "
                 "every metric\nnamed sigevents_outbox_* and labelled with "
                 "db=\"<absolute path>\". For\nnode_exporter's textfile "
                 "collector: write to a temporary file, then rename\nit, "
                 "whatever the exit status. Opens the database read-only. "
                 "When the\nfile is not a readable outbox: only "
                 "sigevents_outbox_up 0, the reason on\nstderr, exit "
                 "status 2.",
                 options, values, io)) {
    return 0;
  }
  std::string path = values["db"].as<std::string>();
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  Exposition metrics(io.out, EscapeLabel(ec ? path : absolute.string()));
  metrics.Gauge("up",
                "1 when the outbox could be read, 0 when not (the reason is "
                "on stderr).");

  OutboxSummary summary;
  std::int64_t now_ms = 0;
  try {
    summary = ReadSummary(path, &now_ms);
  } catch (const std::exception& e) {
    // The gauge replaces the figures a textfile collector would otherwise
    // go on exporting from the last good run.
    metrics.Sample("0");
    io.err << "sigevents metrics: " << e.what() << "\n";
    return 2;
  }
  metrics.Sample("1");
  WriteMetrics(metrics, summary, now_ms, path);
  return 0;
}

}  // namespace sigevents::cli
