#include "adapters/bench.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/embedded_kafka.h"
#include "adapters/kafka.h"
#include "emitter/emitter.h"
#include "emitter/envelope.h"
#include "emitter/event.h"
#include "outbox/relay.h"
#include "outbox/schema.h"

namespace sigevents::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kOutboxTable[] = "sigevents_outbox";
constexpr char kRawTable[] = "bench_raw_outbox";
constexpr int kPartitions = 4;
// Distinct events (and partition keys) that every measurement cycles
// through.
constexpr std::size_t kDistinctEvents = 1000;
constexpr std::size_t kBatch = 1000;
constexpr int kWriterThreads = 8;

// How big each measurement is.
struct Plan {
  std::size_t batch_round;  // events per round, 1,000 per transaction
  int batch_rounds;         // each interleaves emit and raw INSERT
  std::size_t single_round;
  int single_rounds;
  double e2e_seconds;
  double writers_seconds;
};

constexpr Plan kFullPlan{100000, 5, 20000, 5, 10.0, 5.0};
constexpr Plan kQuickPlan{10000, 3, 2000, 3, 2.0, 1.0};

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::int64_t Nanos(Clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             time.time_since_epoch())
      .count();
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// The nearest-rank percentile `p` (0..100] of sorted `values`.
double Percentile(const std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p / 100 * values.size()));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

// VmRSS of this process, in MB.
double ResidentMb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  }
  return 0;
}

void Progress(const BenchOptions& options, const std::string& message) {
  options.log(LogLevel::kInfo, "bench: " + message);
}

std::string Rate(double per_s) {
  return std::to_string(static_cast<std::int64_t>(per_s)) + "/s";
}

// A fresh directory for the benchmark's databases, removed with them.
class ScratchDir {
 public:
  explicit ScratchDir(std::string parent) {
    if (parent.empty()) {
      const char* tmp = getenv("TMPDIR");
      parent = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    }
    std::string pattern = parent + "/sigevents-bench-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("bench: cannot create a directory in " + parent +
                               ": " + std::strerror(errno));
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Connections as the module opens its own: WAL, synchronous=NORMAL, a busy
// timeout of 5 s.
std::unique_ptr<SQLite::Database> Open(const std::string& path) {
  return OpenDatabase(path, OpenOptions{});
}

std::vector<Event> MakeEvents() {
  std::vector<Event> events;
  events.reserve(kDistinctEvents);
  for (std::size_t i = 0; i < kDistinctEvents; ++i) {
    boost::json::object data{{"serverId", std::to_string(100000 + i)},
                             {"serverStatus", "AVAILABLE"},
                             {"serverTypeId", "25"},
                             {"siteId", "1"},
                             {"userId", "456"}};
    events.push_back(
        Event::FromJson("server.registered", boost::json::value(data)));
  }
  return events;
}

// One outbox row as Emit() writes it, made ahead of time.
struct RawRow {
  std::string id;
  std::string payload;
  std::int64_t created_ms = 0;
  const Event* event = nullptr;
};

std::vector<RawRow> MakeRawRows(const std::vector<Event>& events,
                                std::size_t count) {
  std::vector<RawRow> rows;
  rows.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const Event& event = events[i % events.size()];
    EventStamp stamp = NewEventStamp();
    std::string payload = SerializeEnvelope(event, stamp);
    rows.push_back(
        RawRow{std::move(stamp.id), std::move(payload), stamp.unix_ms, &event});
  }
  return rows;
}

// Creates kRawTable in `raw` from the DDL that `outbox` holds for
// sigevents_outbox and its indexes, renamed.
void CreateRawTable(SQLite::Database& outbox, SQLite::Database& raw) {
  SQLite::Statement ddl(outbox,
                        "SELECT sql FROM sqlite_master WHERE tbl_name = ?"
                        " AND sql IS NOT NULL ORDER BY type <> 'table', name");
  ddl.bind(1, kOutboxTable);
  int statements = 0;
  while (ddl.executeStep()) {
    std::string sql = ddl.getColumn(0).getString();
    const std::size_t from = std::strlen(kOutboxTable);
    const std::size_t to = std::strlen(kRawTable);
    for (std::size_t at = sql.find(kOutboxTable); at != std::string::npos;
         at = sql.find(kOutboxTable, at + to)) {
      sql.replace(at, from, kRawTable);
    }
    raw.exec(sql);
    ++statements;
  }
  if (statements == 0) {
    throw std::runtime_error("bench: " + outbox.getFilename() +
                             " holds no outbox table to copy");
  }
}

// The baseline of Emit(): the same prepared INSERT, bound the same way,
// of bytes made beforehand.
class RawInserter {
 public:
  explicit RawInserter(SQLite::Database& db)
      : insert_(db, std::string("INSERT INTO ") + kRawTable +
                        " (event_id, type, partition_key, payload,"
                        " created_at) VALUES (?, ?, ?, ?, ?)") {}

  void Insert(const RawRow& row) {
    insert_.bindNoCopy(1, row.id);
    insert_.bindNoCopy(2, row.event->spec().type.data());
    insert_.bindNoCopy(3, row.event->key());
    insert_.bindNoCopy(4, row.payload.data(),
                       static_cast<int>(row.payload.size()));
    insert_.bind(5, row.created_ms);
    insert_.exec();
    insert_.reset();
  }

 private:
  SQLite::Statement insert_;
};

struct InsertFigures {
  double emit_per_s = 0;
  double raw_per_s = 0;
  double ratio = 0;
};

// Rounds of Emit() against the raw INSERT, `per_txn` events per
// transaction. Within a round the two alternate in kChunks slices, so that
// a burst of load elsewhere on the machine hits both; each round gives a
// ratio, and the figures are the medians over the rounds.
InsertFigures MeasureInserts(const BenchOptions& options, const ScratchDir& dir,
                             const std::string& name,
                             const std::vector<Event>& events,
                             std::size_t per_txn, std::size_t per_round,
                             int rounds) {
  constexpr std::size_t kChunks = 10;
  auto emit_db = Open(dir.File(name + "-emit.db"));
  Emitter emitter(*emit_db);
  auto raw_db = Open(dir.File(name + "-raw.db"));
  CreateRawTable(*emit_db, *raw_db);
  RawInserter inserter(*raw_db);

  // Each runs events [from, to) of the round and returns the seconds.
  auto run_emit = [&](std::size_t from, std::size_t to) {
    Clock::time_point start = Clock::now();
    for (std::size_t done = from; done < to;) {
      SQLite::Transaction txn(*emit_db);
      for (std::size_t i = 0; i < per_txn && done < to; ++i) {
        emitter.Emit(events[done++ % events.size()]);
      }
      txn.commit();
    }
    return SecondsSince(start);
  };
  auto run_raw = [&](const std::vector<RawRow>& rows, std::size_t from,
                     std::size_t to) {
    Clock::time_point start = Clock::now();
    for (std::size_t done = from; done < to;) {
      SQLite::Transaction txn(*raw_db);
      for (std::size_t i = 0; i < per_txn && done < to; ++i) {
        inserter.Insert(rows[done++]);
      }
      txn.commit();
    }
    return SecondsSince(start);
  };

  std::vector<double> emit_rates, raw_rates, ratios;
  for (int round = 0; round < rounds; ++round) {
    std::vector<RawRow> rows = MakeRawRows(events, per_round);
    double emit_s = 0, raw_s = 0;
    for (std::size_t chunk = 0; chunk < kChunks; ++chunk) {
      std::size_t from = per_round * chunk / kChunks;
      std::size_t to = per_round * (chunk + 1) / kChunks;
      if ((round + chunk) % 2 == 0) {
        emit_s += run_emit(from, to);
        raw_s += run_raw(rows, from, to);
      } else {
        raw_s += run_raw(rows, from, to);
        emit_s += run_emit(from, to);
      }
    }
    emit_rates.push_back(per_round / emit_s);
    raw_rates.push_back(per_round / raw_s);
    ratios.push_back(raw_s / emit_s);
    Progress(options, name + " round " + std::to_string(round + 1) + "/" +
                          std::to_string(rounds) + ": emit " +
                          Rate(emit_rates.back()) + ", raw insert " +
                          Rate(raw_rates.back()));
  }
  return {Median(emit_rates), Median(raw_rates), Median(ratios)};
}

// Emits `count` events, 1,000 per transaction; returns events/s.
double FillBacklog(const std::string& path, const std::vector<Event>& events,
                   std::int64_t count) {
  auto db = Open(path);
  Emitter emitter(*db);
  Clock::time_point start = Clock::now();
  for (std::int64_t done = 0; done < count;) {
    SQLite::Transaction txn(*db);
    for (std::size_t i = 0; i < kBatch && done < count; ++i) {
      emitter.Emit(events[done++ % events.size()]);
    }
    txn.commit();
  }
  return count / SecondsSince(start);
}

std::int64_t CountPending(const std::string& path) {
  auto db = Open(path);
  return db
      ->execAndGet(std::string("SELECT count(*) FROM ") + kOutboxTable +
                   " WHERE state = 'pending'")
      .getInt64();
}

RelayConfig RelayFor(const BenchOptions& options, const std::string& db_path,
                     const std::string& bootstrap, const std::string& topic) {
  RelayConfig config;
  config.db_path = db_path;
  config.kafka["bootstrap.servers"] = bootstrap;
  config.default_topic = topic;
  // The relays' state changes would drown the progress lines.
  LogSink log = options.log;
  config.log = [log](LogLevel level, std::string_view message) {
    if (level >= LogLevel::kWarning) log(level, message);
  };
  return config;
}

void WaitUntilConnected(Relay& relay) {
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  while (relay.stats().state != RelayState::kConnected) {
    if (Clock::now() > deadline) {
      throw std::runtime_error(
          "bench: the relay did not connect to the embedded Kafka in 30 s");
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

struct DrainFigures {
  double per_s = 0;
  double idle_mb = 0;
  double peak_mb = 0;
};

// Starts a relay on an outbox holding `backlog` pending events and waits
// until it has marked them all delivered.
DrainFigures MeasureDrain(const BenchOptions& options,
                          const std::string& db_path,
                          const std::string& bootstrap, std::int64_t backlog) {
  RelayConfig config = RelayFor(options, db_path, bootstrap, "bench-drain");
  DrainFigures figures;
  figures.idle_mb = ResidentMb();
  figures.peak_mb = figures.idle_mb;
  // 5,000 events/s at worst, plus time to connect.
  Clock::time_point start = Clock::now();
  Clock::time_point deadline =
      start + std::chrono::seconds(60) + milliseconds(backlog / 5);
  Clock::time_point next_sample = start;
  std::unique_ptr<Relay> relay = Relay::Start(config);
  RelayStats stats;
  for (;;) {
    stats = relay->stats();
    if (stats.delivered_total + stats.failed_total >= backlog) break;
    Clock::time_point now = Clock::now();
    if (now >= next_sample) {
      figures.peak_mb = std::max(figures.peak_mb, ResidentMb());
      next_sample += milliseconds(100);
    }
    if (now > deadline) {
      throw std::runtime_error(
          "bench: the relay delivered " +
          std::to_string(stats.delivered_total) + " of " +
          std::to_string(backlog) + " events in " +
          std::to_string(static_cast<int>(SecondsSince(start))) + " s (state " +
          std::string(RelayStateName(stats.state)) + ")");
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
  double seconds = SecondsSince(start);
  figures.peak_mb = std::max(figures.peak_mb, ResidentMb());
  relay->Stop(std::chrono::seconds(10));
  if (stats.failed_total > 0) {
    throw std::runtime_error("bench: Kafka refused " +
                             std::to_string(stats.failed_total) +
                             " events of the drain");
  }
  if (std::int64_t pending = CountPending(db_path); pending != 0) {
    throw std::runtime_error("bench: " + std::to_string(pending) +
                             " events still pending after the drain");
  }
  figures.per_s = backlog / seconds;
  return figures;
}

void SetProperty(rd_kafka_conf_t* conf, const std::string& key,
                 const std::string& value) {
  char error[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error,
                        sizeof(error)) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error("bench: Kafka property " + key + "=" + value +
                             ": " + error);
  }
}

using KafkaHandle = std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)>;

KafkaHandle NewKafka(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, error, sizeof(error));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("bench: Kafka client: ") + error);
  }
  return KafkaHandle(rk, &rd_kafka_destroy);
}

struct DeliveryCounts {
  std::int64_t delivered = 0;
  std::int64_t failed = 0;
  std::string first_error;
};

void OnRawDelivery(rd_kafka_t*, const rd_kafka_message_t* message,
                   void* opaque) {
  auto* counts = static_cast<DeliveryCounts*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++counts->delivered;
  } else if (counts->failed++ == 0) {
    counts->first_error = rd_kafka_err2str(message->err);
  }
}

// Plain librdkafka with the relay's producer defaults, producing messages
// shaped like the relay's: the stored envelope as the value, the entity id
// as the key, the same three headers. Used from one thread.
class RawProducer {
 public:
  RawProducer(const std::string& bootstrap, const std::vector<Event>& events,
              std::string outbox_id)
      : producer_(nullptr, &rd_kafka_destroy),
        events_(events),
        outbox_id_(std::move(outbox_id)) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    SetProperty(conf, "bootstrap.servers", bootstrap);
    SetProperty(conf, "enable.idempotence", "true");
    SetProperty(conf, "acks", "all");
    SetProperty(conf, "linger.ms", "1");
    SetProperty(conf, "message.timeout.ms", "0");
    SetProperty(conf, "partitioner", "murmur2_random");
    rd_kafka_conf_set_opaque(conf, &counts_);
    rd_kafka_conf_set_dr_msg_cb(conf, &OnRawDelivery);
    producer_ = NewKafka(RD_KAFKA_PRODUCER, conf);
    for (const Event& event : events_) {
      payloads_.push_back(SerializeEnvelope(event, NewEventStamp()));
    }
  }

  // Hands message `seq` (1, 2, ...) to librdkafka, waiting while its queue
  // is full.
  void Produce(const std::string& topic, std::int64_t seq) {
    std::size_t at = static_cast<std::size_t>(seq - 1) % events_.size();
    const std::string& key = events_[at].key();
    const std::string& payload = payloads_[at];
    std::string seq_text = std::to_string(seq);
    rd_kafka_headers_t* headers = rd_kafka_headers_new(3);
    rd_kafka_header_add(headers, kOutboxHeader, -1, outbox_id_.data(),
                        static_cast<ssize_t>(outbox_id_.size()));
    rd_kafka_header_add(headers, kSeqHeader, -1, seq_text.data(),
                        static_cast<ssize_t>(seq_text.size()));
    rd_kafka_header_add(headers, "content-type", -1, kStructuredContentType,
                        -1);
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_headers_destroy(headers);
        throw std::runtime_error(std::string("bench: raw produce: ") +
                                 rd_kafka_err2str(err));
      }
      rd_kafka_poll(producer_.get(), 1);
    }
  }

  // Serves delivery reports without waiting.
  void Poll() { rd_kafka_poll(producer_.get(), 0); }

  // Waits until `count` messages have been reported; throws if any failed.
  void WaitForReports(std::int64_t count) {
    Clock::time_point deadline = Clock::now() + std::chrono::seconds(120);
    while (counts_.delivered + counts_.failed < count) {
      if (Clock::now() > deadline) {
        throw std::runtime_error(
            "bench: raw produce: " + std::to_string(counts_.delivered) +
            " of " + std::to_string(count) + " delivered in time");
      }
      rd_kafka_poll(producer_.get(), 5);
    }
    if (counts_.failed > 0) {
      throw std::runtime_error(
          "bench: raw produce: " + std::to_string(counts_.failed) +
          " messages failed: " + counts_.first_error);
    }
  }

 private:
  KafkaHandle producer_;
  const std::vector<Event>& events_;
  std::string outbox_id_;
  std::vector<std::string> payloads_;
  DeliveryCounts counts_;  // written by the delivery callback, in Poll()
};

// Produces `count` messages like the relay's; returns messages/s until the
// last delivery report.
double MeasureRawProduce(const std::string& bootstrap,
                         const std::vector<Event>& events,
                         const std::string& outbox_id, std::int64_t count) {
  RawProducer producer(bootstrap, events, outbox_id);
  Clock::time_point start = Clock::now();
  for (std::int64_t seq = 1; seq <= count; ++seq) {
    producer.Produce("bench-raw", seq);
    if (seq % 1000 == 0) producer.Poll();
  }
  producer.WaitForReports(count);
  return count / SecondsSince(start);
}

// Reads a topic from its beginning on a thread of its own and stamps each
// message of outbox sequence 1..max_seq with the time it arrived and its
// CreateTime.
class StampingConsumer {
 public:
  StampingConsumer(const std::string& bootstrap, const std::string& topic,
                   std::size_t max_seq)
      : consumer_(nullptr, &rd_kafka_destroy),
        received_ns_(max_seq + 1, 0),
        created_ms_(max_seq + 1, 0) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    SetProperty(conf, "bootstrap.servers", bootstrap);
    SetProperty(conf, "group.id", "sigevents-bench");
    SetProperty(conf, "enable.auto.commit", "false");
    SetProperty(conf, "enable.partition.eof", "false");
    // The mock broker holds an empty fetch for this long and does not
    // answer early when data arrives: it bounds what the consumer adds.
    SetProperty(conf, "fetch.wait.max.ms", "1");
    consumer_ = NewKafka(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(consumer_.get());
    rd_kafka_topic_partition_list_t* partitions =
        rd_kafka_topic_partition_list_new(kPartitions);
    for (int p = 0; p < kPartitions; ++p) {
      rd_kafka_topic_partition_list_add(partitions, topic.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), partitions);
    rd_kafka_topic_partition_list_destroy(partitions);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(std::string("bench: consumer assign: ") +
                               rd_kafka_err2str(err));
    }
    thread_ = std::thread([this] { Run(); });
  }

  ~StampingConsumer() { Stop(); }

  void Stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    rd_kafka_consumer_close(consumer_.get());
  }

  std::int64_t received() const { return received_; }

  // Valid after Stop(); 0 where nothing arrived.
  const std::vector<std::int64_t>& received_ns() const { return received_ns_; }
  const std::vector<std::int64_t>& created_ms() const { return created_ms_; }

 private:
  void Run() {
    while (!stop_) {
      rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer_.get(), 20);
      if (message == nullptr) continue;
      std::int64_t now = Nanos(Clock::now());
      if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) Stamp(message, now);
      rd_kafka_message_destroy(message);
    }
  }

  void Stamp(rd_kafka_message_t* message, std::int64_t now) {
    rd_kafka_headers_t* headers = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    if (rd_kafka_message_headers(message, &headers) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(headers, kSeqHeader, &value, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
      return;
    }
    std::size_t seq = std::strtoull(
        std::string(static_cast<const char*>(value), size).c_str(), nullptr,
        10);
    if (seq == 0 || seq >= received_ns_.size() || received_ns_[seq] != 0) {
      return;
    }
    received_ns_[seq] = now;
    created_ms_[seq] = rd_kafka_message_timestamp(message, nullptr);
    ++received_;
  }

  KafkaHandle consumer_;
  std::vector<std::int64_t> received_ns_;  // written by the thread only
  std::vector<std::int64_t> created_ms_;   // written by the thread only
  std::atomic<std::int64_t> received_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct LatencyFigures {
  std::int64_t events = 0;
  std::int64_t missing = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  double pickup_p50_ms = 0;
  double pickup_p99_ms = 0;
};

// Latency percentiles from the start times (steady clock, ns, indexed by
// sequence; 0 for none) and a consumer's receipt stamps, skipping the
// first `warm_up` sequences.
LatencyFigures Latencies(const std::vector<std::int64_t>& start_ns,
                         const StampingConsumer& consumer,
                         std::size_t warm_up) {
  LatencyFigures figures;
  std::vector<double> latencies;
  const std::vector<std::int64_t>& received = consumer.received_ns();
  for (std::size_t seq = warm_up + 1; seq < start_ns.size(); ++seq) {
    if (start_ns[seq] == 0) continue;
    ++figures.events;
    if (received[seq] == 0) {
      ++figures.missing;
      continue;
    }
    latencies.push_back((received[seq] - start_ns[seq]) / 1e6);
  }
  std::sort(latencies.begin(), latencies.end());
  figures.p50_ms = Percentile(latencies, 50);
  figures.p99_ms = Percentile(latencies, 99);
  figures.max_ms = latencies.empty() ? 0 : latencies.back();
  return figures;
}

// Waits until `consumer` has received `count` messages, or `timeout_s`.
void WaitReceived(const StampingConsumer& consumer, std::int64_t count,
                  double timeout_s) {
  Clock::time_point start = Clock::now();
  while (consumer.received() < count && SecondsSince(start) < timeout_s) {
    std::this_thread::sleep_for(milliseconds(5));
  }
}

// Calls `send(i)` for i = 0..count-1, the i-th at start + i / rate.
template <typename Send>
void Paced(double rate, std::size_t count, Send send) {
  auto interval = std::chrono::duration<double>(1 / rate);
  Clock::time_point start = Clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<Clock::duration>(interval * i));
    send(i);
  }
}

constexpr std::size_t kWarmUp = 20;

// One thread (this one) emits `rate` events per second for `seconds`, one
// per transaction, with a relay and a StampingConsumer running.
LatencyFigures MeasureLatency(const BenchOptions& options,
                              const std::string& db_path,
                              const std::string& bootstrap,
                              const std::vector<Event>& events, double rate,
                              double seconds) {
  const auto total = static_cast<std::size_t>(rate * seconds);
  auto db = Open(db_path);
  Emitter emitter(*db);
  std::unique_ptr<Relay> relay =
      Relay::Start(RelayFor(options, db_path, bootstrap, "bench-e2e"));
  WaitUntilConnected(*relay);
  StampingConsumer consumer(bootstrap, "bench-e2e", kWarmUp + total);

  std::vector<std::int64_t> commit_ns(kWarmUp + total + 1, 0);
  std::vector<std::int64_t> commit_wall_us(kWarmUp + total + 1, 0);
  auto emit_one = [&](std::size_t i) {
    SQLite::Transaction txn(*db);
    EmitReceipt receipt = emitter.Emit(events[i % events.size()]);
    txn.commit();
    Clock::time_point now = Clock::now();
    auto wall = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    auto seq = static_cast<std::size_t>(receipt.seq);
    if (seq < commit_ns.size()) {
      commit_ns[seq] = Nanos(now);
      commit_wall_us[seq] = wall.count();
    }
  };

  // Warm-up: the consumer's first fetches and the producer's first
  // batches are not part of the figure.
  Paced(100, kWarmUp, emit_one);
  WaitReceived(consumer, kWarmUp, 10);
  Paced(rate, total, [&](std::size_t i) { emit_one(kWarmUp + i); });
  WaitReceived(consumer, static_cast<std::int64_t>(kWarmUp + total), 10);
  consumer.Stop();
  relay->Stop(std::chrono::seconds(5));

  LatencyFigures figures = Latencies(commit_ns, consumer, kWarmUp);
  std::vector<double> pickups;
  const std::vector<std::int64_t>& received = consumer.received_ns();
  const std::vector<std::int64_t>& created = consumer.created_ms();
  for (std::size_t seq = kWarmUp + 1; seq < commit_ns.size(); ++seq) {
    if (commit_ns[seq] == 0 || received[seq] == 0) continue;
    // CreateTime is whole milliseconds: take the middle of its millisecond.
    pickups.push_back(created[seq] + 0.5 - commit_wall_us[seq] / 1e3);
  }
  std::sort(pickups.begin(), pickups.end());
  figures.pickup_p50_ms = Percentile(pickups, 50);
  figures.pickup_p99_ms = Percentile(pickups, 99);
  return figures;
}

// The floor of MeasureLatency on this machine: plain librdkafka producing
// the same messages at the same rate, from the produce call to the
// consumer.
LatencyFigures MeasureRawLatency(const std::string& bootstrap,
                                 const std::vector<Event>& events, double rate,
                                 double seconds) {
  const auto total = static_cast<std::size_t>(rate * seconds);
  RawProducer producer(bootstrap, events, NewEventStamp().id);
  StampingConsumer consumer(bootstrap, "bench-e2e-raw", kWarmUp + total);
  std::vector<std::int64_t> sent_ns(kWarmUp + total + 1, 0);
  auto send = [&](std::size_t i) {
    sent_ns[i + 1] = Nanos(Clock::now());
    producer.Produce("bench-e2e-raw", static_cast<std::int64_t>(i + 1));
    producer.Poll();
  };
  Paced(100, kWarmUp, send);
  WaitReceived(consumer, kWarmUp, 10);
  Paced(rate, total, [&](std::size_t i) { send(kWarmUp + i); });
  producer.WaitForReports(static_cast<std::int64_t>(kWarmUp + total));
  WaitReceived(consumer, static_cast<std::int64_t>(kWarmUp + total), 10);
  consumer.Stop();
  return Latencies(sent_ns, consumer, kWarmUp);
}

struct WriterFigures {
  double per_s = 0;
  std::int64_t errors = 0;
};

// Runs kWriterThreads threads for `seconds`. `make_writer(thread)` runs on
// the thread and returns the function that commits one transaction, or
// returns false when the thread has nothing more to write.
WriterFigures RunWriters(
    double seconds,
    const std::function<std::function<bool()>(int thread)>& make_writer) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::atomic<std::int64_t> committed{0}, errors{0};
  std::vector<std::thread> threads;
  std::exception_ptr setup_error;
  std::mutex setup_mu;
  for (int t = 0; t < kWriterThreads; ++t) {
    threads.emplace_back([&, t] {
      std::function<bool()> write;
      try {
        write = make_writer(t);
      } catch (...) {
        std::lock_guard<std::mutex> lock(setup_mu);
        setup_error = std::current_exception();
      }
      ++ready;
      while (!go) std::this_thread::yield();
      if (!write) return;
      std::int64_t done = 0, failed = 0;
      while (!stop) {
        try {
          if (!write()) break;
          ++done;
        } catch (const std::exception&) {
          ++failed;
        }
      }
      committed += done;
      errors += failed;
    });
  }
  while (ready < kWriterThreads) std::this_thread::yield();
  Clock::time_point start = Clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& thread : threads) thread.join();
  double elapsed = SecondsSince(start);
  if (setup_error) std::rethrow_exception(setup_error);
  return {committed / elapsed, errors};
}

WriterFigures MeasureEmitters(const BenchOptions& options,
                              const std::string& db_path,
                              const std::string& bootstrap,
                              const std::vector<Event>& events,
                              double seconds) {
  {
    auto db = Open(db_path);
    Emitter create_outbox(*db);  // before the relay starts
  }
  std::unique_ptr<Relay> relay =
      Relay::Start(RelayFor(options, db_path, bootstrap, "bench-multi"));
  WaitUntilConnected(*relay);
  // One per thread; members go in reverse order, the connection last.
  struct Writer {
    std::unique_ptr<SQLite::Database> db;
    std::unique_ptr<Emitter> emitter;
    std::size_t next = 0;
  };
  WriterFigures figures = RunWriters(seconds, [&](int thread) {
    auto writer = std::make_shared<Writer>();
    writer->db = Open(db_path);
    writer->emitter = std::make_unique<Emitter>(*writer->db);
    writer->next = static_cast<std::size_t>(thread) * 97;
    return std::function<bool()>([writer, &events] {
      SQLite::Transaction txn(*writer->db);
      writer->emitter->Emit(events[writer->next++ % events.size()]);
      txn.commit();
      return true;
    });
  });
  relay->Stop(std::chrono::seconds(5));
  return figures;
}

WriterFigures MeasureRawWriters(const ScratchDir& dir,
                                const std::vector<Event>& events,
                                double seconds) {
  std::string path = dir.File("writers-raw.db");
  {
    auto outbox = Open(dir.File("writers-schema.db"));
    Emitter create_outbox(*outbox);
    auto raw = Open(path);
    CreateRawTable(*outbox, *raw);
  }
  // One per thread; members go in reverse order, the connection last.
  struct Writer {
    std::unique_ptr<SQLite::Database> db;
    std::unique_ptr<RawInserter> inserter;
    std::vector<RawRow> rows;
    std::uint64_t next = 0;
  };
  return RunWriters(seconds, [&](int thread) {
    auto writer = std::make_shared<Writer>();
    writer->db = Open(path);
    writer->inserter = std::make_unique<RawInserter>(*writer->db);
    writer->rows = MakeRawRows(events, kDistinctEvents);
    return std::function<bool()>([writer, thread] {
      // The rows repeat; a counter in the id's last 12 hex digits keeps
      // each id unique at the same length.
      RawRow row = writer->rows[writer->next % writer->rows.size()];
      char suffix[13];
      std::snprintf(
          suffix, sizeof(suffix), "%012llx",
          static_cast<unsigned long long>(
              (static_cast<std::uint64_t>(thread) << 40) | writer->next++));
      row.id.replace(row.id.size() - 12, 12, suffix);
      SQLite::Transaction txn(*writer->db);
      writer->inserter->Insert(row);
      txn.commit();
      return true;
    });
  });
}

void RunInserts(const BenchOptions& options, const Plan& plan,
                const ScratchDir& dir, const std::vector<Event>& events,
                BenchResults& r) {
  InsertFigures batch = MeasureInserts(options, dir, "batch", events, kBatch,
                                       plan.batch_round, plan.batch_rounds);
  r.emit_batch_per_s = batch.emit_per_s;
  r.raw_insert_batch_per_s = batch.raw_per_s;
  r.emit_batch_ratio = batch.ratio;

  InsertFigures single = MeasureInserts(options, dir, "single", events, 1,
                                        plan.single_round, plan.single_rounds);
  r.emit_single_per_s = single.emit_per_s;
  r.raw_insert_single_per_s = single.raw_per_s;
  r.emit_single_ratio = single.ratio;
}

void RunDrain(const BenchOptions& options, const ScratchDir& dir,
              const std::string& bootstrap, const std::vector<Event>& events,
              BenchResults& r) {
  std::string drain_db = dir.File("drain.db");
  Progress(options, "filling a backlog of " + std::to_string(options.backlog) +
                        " events");
  r.backlog = options.backlog;
  r.backlog_fill_per_s = FillBacklog(drain_db, events, options.backlog);
  Progress(options, "draining it");
  DrainFigures drain = MeasureDrain(options, drain_db, bootstrap, r.backlog);
  r.relay_drain_per_s = drain.per_s;
  r.drain_rss_idle_mb = drain.idle_mb;
  r.drain_rss_peak_mb = drain.peak_mb;
  r.drain_rss_growth_mb = drain.peak_mb - drain.idle_mb;
  if (r.raw_insert_batch_per_s > 0) {
    r.relay_vs_insert_ratio = r.relay_drain_per_s / r.raw_insert_batch_per_s;
  }
  Progress(options, "relay drain " + Rate(r.relay_drain_per_s) +
                        "; producing the same with plain librdkafka");
  std::string outbox_id = ReadOutboxId(*Open(drain_db));
  r.raw_produce_per_s =
      MeasureRawProduce(bootstrap, events, outbox_id, r.backlog);
  r.relay_vs_produce_ratio = r.relay_drain_per_s / r.raw_produce_per_s;
  Progress(options, "raw produce " + Rate(r.raw_produce_per_s));
}

void RunLatency(const BenchOptions& options, const Plan& plan,
                const ScratchDir& dir, const std::string& bootstrap,
                const std::vector<Event>& events, BenchResults& r) {
  r.e2e_rate = options.rate;
  r.e2e_seconds = plan.e2e_seconds;
  Progress(options, "end to end at " + Rate(options.rate) + " for " +
                        std::to_string(static_cast<int>(plan.e2e_seconds)) +
                        " s");
  LatencyFigures latency =
      MeasureLatency(options, dir.File("e2e.db"), bootstrap, events,
                     options.rate, plan.e2e_seconds);
  r.e2e_events = latency.events;
  r.e2e_missing = latency.missing;
  r.e2e_p50_ms = latency.p50_ms;
  r.e2e_p99_ms = latency.p99_ms;
  r.e2e_max_ms = latency.max_ms;
  r.e2e_pickup_p50_ms = latency.pickup_p50_ms;
  r.e2e_pickup_p99_ms = latency.pickup_p99_ms;
  Progress(options, "end to end p99 " + std::to_string(r.e2e_p99_ms) +
                        " ms; the same with plain librdkafka");
  LatencyFigures raw =
      MeasureRawLatency(bootstrap, events, options.rate, plan.e2e_seconds);
  r.raw_e2e_p50_ms = raw.p50_ms;
  r.raw_e2e_p99_ms = raw.p99_ms;
  r.raw_e2e_max_ms = raw.max_ms;
}

void RunWriterThreads(const BenchOptions& options, const Plan& plan,
                      const ScratchDir& dir, const std::string& bootstrap,
                      const std::vector<Event>& events, BenchResults& r) {
  Progress(options, "8 emitters with the relay running");
  WriterFigures emitters = MeasureEmitters(
      options, dir.File("writers.db"), bootstrap, events, plan.writers_seconds);
  r.emitters_8_per_s = emitters.per_s;
  r.emitters_8_errors = emitters.errors;
  Progress(options, "8 emitters " + Rate(r.emitters_8_per_s) +
                        "; 8 plain inserters without a relay");
  WriterFigures raw_writers =
      MeasureRawWriters(dir, events, plan.writers_seconds);
  r.raw_insert_8_per_s = raw_writers.per_s;
  r.emitters_8_ratio = r.emitters_8_per_s / r.raw_insert_8_per_s;
}

}  // namespace

BenchResults RunBenchmarks(const BenchOptions& options) {
  if (options.backlog < 1 || !(options.rate > 0)) {
    throw std::invalid_argument("bench: backlog and rate must be positive");
  }
  const Plan& plan = options.quick ? kQuickPlan : kFullPlan;
  ScratchDir dir(options.parent_dir);
  std::vector<Event> events = MakeEvents();
  BenchResults r;
  if (options.run_inserts) RunInserts(options, plan, dir, events, r);
  if (!options.run_drain && !options.run_e2e && !options.run_writers) {
    return r;
  }

  EmbeddedKafkaOptions kafka_options;
  kafka_options.partitions = kPartitions;
  kafka_options.topics = {"bench-drain", "bench-raw", "bench-e2e",
                          "bench-e2e-raw", "bench-multi"};
  std::unique_ptr<EmbeddedKafka> kafka = EmbeddedKafka::Start(kafka_options);
  const std::string bootstrap = kafka->bootstrap_servers();
  if (options.run_drain) RunDrain(options, dir, bootstrap, events, r);
  if (options.run_e2e) RunLatency(options, plan, dir, bootstrap, events, r);
  if (options.run_writers) {
    RunWriterThreads(options, plan, dir, bootstrap, events, r);
  }
  return r;
}

}  // namespace sigevents::bench
