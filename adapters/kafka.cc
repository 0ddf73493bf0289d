#include "adapters/kafka.h"

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <stdexcept>

namespace sigevents {
namespace {

using Clock = std::chrono::steady_clock;

int Millis(std::chrono::milliseconds duration) {
  return static_cast<int>(duration.count());
}

// Errors after which sending the same message again cannot succeed.
bool IsPermanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

// Applies `properties` to `conf`; throws std::invalid_argument naming the
// property librdkafka refused.
void SetProperties(rd_kafka_conf_t* conf,
                   const std::map<std::string, std::string>& properties) {
  char error[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error,
                          sizeof(error)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::invalid_argument("Kafka property " + key + "=" + value + ": " +
                                  error);
    }
  }
}

LogLevel FromSyslogLevel(int level) {
  if (level <= 3) return LogLevel::kError;
  if (level == 4) return LogLevel::kWarning;
  if (level <= 6) return LogLevel::kInfo;
  return LogLevel::kDebug;
}

class Producer final : public KafkaProducer {
 public:
  Producer(std::function<void()> wake, LogSink log)
      : wake_(std::move(wake)), log_(std::move(log)) {}

  ~Producer() override {
    if (main_queue_ != nullptr) {
      rd_kafka_queue_cb_event_enable(main_queue_, nullptr, nullptr);
      rd_kafka_queue_destroy(main_queue_);
    }
    if (rk_ != nullptr) {
      rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_destroy(rk_);
    }
  }

  void Init(const std::map<std::string, std::string>& properties) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    SetProperties(conf, {{"enable.idempotence", "true"},
                         {"acks", "all"},
                         {"linger.ms", "1"},
                         {"message.timeout.ms", "0"},
                         {"partitioner", "murmur2_random"},
                         {"log.queue", "true"}});
    SetProperties(conf, properties);
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &Producer::OnDelivery);
    rd_kafka_conf_set_error_cb(conf, &Producer::OnError);
    rd_kafka_conf_set_log_cb(conf, &Producer::OnLog);

    char error[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
    if (rk_ == nullptr) {
      throw std::invalid_argument(std::string("Kafka producer: ") + error);
    }
    // Logs go to the main queue and reach the sink from Poll(), on the
    // relay's thread, never to stderr.
    rd_kafka_set_log_queue(rk_, nullptr);
    main_queue_ = rd_kafka_queue_get_main(rk_);
    rd_kafka_queue_cb_event_enable(main_queue_, &Producer::OnQueueReady, this);
  }

  ProduceResult Produce(const KafkaMessage& message,
                        std::string* error) override {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(message.headers.size());
    for (const auto& [name, value] : message.headers) {
      rd_kafka_header_add(headers, name.data(),
                          static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(message.topic.c_str()),
        RD_KAFKA_V_KEY(message.key.data(), message.key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(message.value.data()),
                         message.value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE(
            reinterpret_cast<void*>(static_cast<std::intptr_t>(message.seq))),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return ProduceResult::kQueued;
    rd_kafka_headers_destroy(headers);
    *error = rd_kafka_err2str(err);
    return IsPermanent(err) ? ProduceResult::kRefused
                            : ProduceResult::kRetryLater;
  }

  void Poll(std::vector<DeliveryReport>* reports) override {
    rd_kafka_poll(rk_, 0);
    if (reports_.empty()) return;
    if (reports->empty()) {
      reports->swap(reports_);
    } else {
      reports->insert(reports->end(), reports_.begin(), reports_.end());
      reports_.clear();
    }
  }

  int InFlight() const override { return rd_kafka_outq_len(rk_); }

  void FlushOrPurge(std::chrono::milliseconds timeout) override {
    rd_kafka_flush(rk_, Millis(timeout));
    if (rd_kafka_outq_len(rk_) == 0) return;
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    // Purged messages are reported asynchronously; collect the reports.
    Clock::time_point deadline = Clock::now() + std::chrono::seconds(5);
    while (rd_kafka_outq_len(rk_) > 0 && Clock::now() < deadline) {
      rd_kafka_poll(rk_, 10);
    }
  }

  bool Fatal(std::string* reason) const override {
    if (!fatal_) return false;
    *reason = fatal_reason_;
    return true;
  }

  bool AllBrokersDown() const override { return all_brokers_down_; }

  bool Partitions(const std::string& topic, std::chrono::milliseconds timeout,
                  std::vector<std::int32_t>* partitions) override {
    partitions->clear();
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* metadata = nullptr;
    bool answered =
        rd_kafka_metadata(rk_, 0, rkt, &metadata, Millis(timeout)) ==
        RD_KAFKA_RESP_ERR_NO_ERROR;
    if (answered) {
      for (int t = 0; t < metadata->topic_cnt; ++t) {
        const rd_kafka_metadata_topic_t& md = metadata->topics[t];
        if (topic != md.topic) continue;
        // A topic that does not exist has no partitions; any other error
        // (leader not available, ...) leaves them unknown.
        if (md.err != RD_KAFKA_RESP_ERR_NO_ERROR &&
            md.err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
          answered = false;
        }
        for (int p = 0; p < md.partition_cnt; ++p) {
          partitions->push_back(md.partitions[p].id);
        }
      }
      rd_kafka_metadata_destroy(metadata);
    }
    rd_kafka_topic_destroy(rkt);
    return answered;
  }

  std::string ClusterId(std::chrono::milliseconds timeout) override {
    char* id = rd_kafka_clusterid(rk_, Millis(timeout));
    if (id == nullptr) return "";
    std::string result(id);
    rd_kafka_mem_free(rk_, id);
    return result;
  }

  bool Watermarks(const std::string& topic, std::int32_t partition,
                  std::int64_t* low, std::int64_t* high,
                  std::chrono::milliseconds timeout) override {
    return rd_kafka_query_watermark_offsets(rk_, topic.c_str(), partition, low,
                                            high, Millis(timeout)) ==
           RD_KAFKA_RESP_ERR_NO_ERROR;
  }

 private:
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message,
                         void* opaque) {
    auto* self = static_cast<Producer*>(opaque);
    DeliveryReport report;
    report.seq = static_cast<std::int64_t>(
        reinterpret_cast<std::intptr_t>(message->_private));
    report.topic = rd_kafka_topic_name(message->rkt);
    report.partition = message->partition;
    report.offset = message->offset;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR && message->offset < 0) {
      // Success without an offset: the broker took a retried request for
      // one it had already written (a duplicate sequence number). A real
      // broker has the message at the earlier offset; the embedded Kafka
      // has been seen to have lost it. Either way a read-back settles it.
      report.outcome = DeliveryReport::Outcome::kUnknown;
      report.error = "acknowledged without an offset";
    } else if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      report.outcome = DeliveryReport::Outcome::kDelivered;
      self->all_brokers_down_ = false;
    } else {
      report.error = rd_kafka_err2str(message->err);
      if (IsPermanent(message->err)) {
        report.outcome = DeliveryReport::Outcome::kRefused;
      } else if (rd_kafka_message_status(message) ==
                 RD_KAFKA_MSG_STATUS_NOT_PERSISTED) {
        report.outcome = DeliveryReport::Outcome::kNotSent;
      } else {
        report.outcome = DeliveryReport::Outcome::kUnknown;
      }
    }
    self->reports_.push_back(std::move(report));
  }

  static void OnError(rd_kafka_t* rk, int err, const char* reason,
                      void* opaque) {
    auto* self = static_cast<Producer*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      self->all_brokers_down_ = true;
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char fatal[512];
      rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
      self->fatal_ = true;
      self->fatal_reason_ = fatal;
      return;
    }
    // Transport errors come and go with brokers; librdkafka retries them.
    self->log_(LogLevel::kDebug,
               std::string("Kafka: ") +
                   rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) +
                   ": " + reason);
  }

  static void OnLog(const rd_kafka_t* rk, int level, const char* facility,
                    const char* text) {
    auto* self = static_cast<Producer*>(rd_kafka_opaque(rk));
    self->log_(FromSyslogLevel(level),
               std::string("librdkafka ") + facility + ": " + text);
  }

  static void OnQueueReady(rd_kafka_t*, void* opaque) {
    static_cast<Producer*>(opaque)->wake_();
  }

  std::function<void()> wake_;
  LogSink log_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* main_queue_ = nullptr;
  // Written by the callbacks, which librdkafka calls from Poll(), flush and
  // purge on the owning thread.
  std::vector<DeliveryReport> reports_;
  bool all_brokers_down_ = false;
  bool fatal_ = false;
  std::string fatal_reason_;
};

void DiscardLog(const rd_kafka_t*, int, const char*, const char*) {}

}  // namespace

std::unique_ptr<KafkaProducer> KafkaProducer::Create(
    const std::map<std::string, std::string>& properties,
    std::function<void()> wake, LogSink log) {
  auto producer = std::make_unique<Producer>(std::move(wake), std::move(log));
  producer->Init(properties);
  return producer;
}

ReadBackResult ReadBack(
    const std::map<std::string, std::string>& properties,
    const std::string& outbox_id,
    const std::map<std::pair<std::string, std::int32_t>, std::int64_t>& from,
    std::chrono::milliseconds timeout, const std::atomic<bool>* cancel) {
  ReadBackResult result;
  Clock::time_point deadline = Clock::now() + timeout;

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  try {
    SetProperties(conf, properties);
    SetProperties(conf, {{"group.id", "sigevents-readback-" + outbox_id},
                         {"enable.auto.commit", "false"},
                         {"enable.auto.offset.store", "false"},
                         {"enable.partition.eof", "true"},
                         {"auto.offset.reset", "earliest"}});
  } catch (const std::invalid_argument& e) {
    result.error = e.what();
    return result;
  }
  rd_kafka_conf_set_log_cb(conf, &DiscardLog);
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
  if (rk == nullptr) {
    result.error = std::string("Kafka read-back consumer: ") + error;
    return result;
  }

  // Where each partition ends now; everything before that is read.
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> end;
  rd_kafka_topic_partition_list_t* assignment =
      rd_kafka_topic_partition_list_new(static_cast<int>(from.size()));
  for (const auto& [partition, first] : from) {
    std::int64_t low = 0, high = 0;
    int remaining =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                             deadline - Clock::now())
                             .count());
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        rk, partition.first.c_str(), partition.second, &low, &high,
        remaining > 0 ? remaining : 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result.error = "read-back: offsets of " + partition.first + "[" +
                     std::to_string(partition.second) +
                     "]: " + rd_kafka_err2str(err);
      break;
    }
    std::int64_t start = first < low ? low : first;
    result.read_to[partition] = high;
    if (start >= high) continue;
    end[partition] = high;
    rd_kafka_topic_partition_list_add(assignment, partition.first.c_str(),
                                      partition.second)
        ->offset = start;
  }

  if (result.error.empty() && !end.empty()) {
    rd_kafka_assign(rk, assignment);
    while (!end.empty() && Clock::now() < deadline && !*cancel) {
      rd_kafka_message_t* message = rd_kafka_consumer_poll(rk, 100);
      if (message == nullptr) continue;
      std::pair<std::string, std::int32_t> partition{
          message->rkt != nullptr ? rd_kafka_topic_name(message->rkt) : "",
          message->partition};
      if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_t* headers = nullptr;
        const void* outbox = nullptr;
        const void* seq = nullptr;
        size_t outbox_size = 0, seq_size = 0;
        if (rd_kafka_message_headers(message, &headers) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(headers, kOutboxHeader, &outbox,
                                     &outbox_size) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(headers, kSeqHeader, &seq, &seq_size) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            std::string_view(static_cast<const char*>(outbox), outbox_size) ==
                outbox_id) {
          result.hits.push_back(ReadBackHit{
              std::stoll(std::string(static_cast<const char*>(seq), seq_size)),
              partition.first, partition.second, message->offset});
        }
        auto it = end.find(partition);
        if (it != end.end() && message->offset + 1 >= it->second) {
          end.erase(it);
        }
      } else if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        auto it = end.find(partition);
        if (it != end.end() && message->offset >= it->second) end.erase(it);
      }
      rd_kafka_message_destroy(message);
    }
    if (!end.empty()) {
      result.error = "read-back: " + std::to_string(end.size()) +
                     " partition(s) not read to their end in time";
    }
  }
  rd_kafka_topic_partition_list_destroy(assignment);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  result.ok = result.error.empty();
  return result;
}

}  // namespace sigevents
