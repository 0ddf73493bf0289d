#include "adapters/topic_consumer.h"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace sigevents {

const std::string* ConsumedMessage::Header(const std::string& name) const {
  const std::string* found = nullptr;
  for (const auto& [key, value] : headers) {
    if (key == name) found = &value;
  }
  return found;
}

namespace {

using Clock = std::chrono::steady_clock;

LogLevel FromSyslogLevel(int level) {
  if (level <= 3) return LogLevel::kError;
  if (level == 4) return LogLevel::kWarning;
  if (level <= 6) return LogLevel::kInfo;
  return LogLevel::kDebug;
}

int Millis(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - Clock::now())
                  .count();
  return left > 0 ? static_cast<int>(left) : 1;
}

class Consumer final : public TopicConsumer {
 public:
  Consumer(std::string topic, Handler handler, LogSink log)
      : topic_(std::move(topic)),
        handler_(std::move(handler)),
        log_(std::move(log)) {}

  ~Consumer() override {
    Stop();
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
  }

  void Open(const std::map<std::string, std::string>& properties, From from,
            std::chrono::milliseconds timeout) {
    Clock::time_point deadline = Clock::now() + timeout;
    rk_ = NewHandle(properties);
    std::vector<std::int32_t> partitions = Partitions(Millis(deadline));
    rd_kafka_topic_partition_list_t* assignment =
        rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
    for (std::int32_t partition : partitions) {
      std::int64_t low = 0, high = 0;
      rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          rk_, topic_.c_str(), partition, &low, &high, Millis(deadline));
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(assignment);
        throw std::runtime_error("topic consumer: cannot read where " + topic_ +
                                 "[" + std::to_string(partition) +
                                 "] begins and ends: " + rd_kafka_err2str(err));
      }
      // From the beginning, librdkafka's logical offset rather than `low`:
      // should the oldest messages be deleted meanwhile, reading starts at
      // the oldest left.
      next_[partition] = from == From::kEnd ? high : low;
      rd_kafka_topic_partition_list_add(assignment, topic_.c_str(), partition)
          ->offset = from == From::kEnd ? high : RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk_, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(
          "topic consumer: cannot assign the partitions "
          "of " +
          topic_ + ": " + rd_kafka_err2str(err));
    }
    thread_ = std::thread([this] { Loop(); });
  }

  bool CatchUp(std::chrono::milliseconds timeout) override {
    Clock::time_point deadline = Clock::now() + timeout;
    std::map<std::int32_t, std::int64_t> ends;
    for (const auto& [partition, next] : Positions()) {
      std::int64_t low = 0, high = 0;
      if (rd_kafka_query_watermark_offsets(rk_, topic_.c_str(), partition, &low,
                                           &high, Millis(deadline)) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        return false;
      }
      ends[partition] = high;
    }
    std::unique_lock<std::mutex> lock(mu_);
    return advanced_.wait_until(lock, deadline, [&] {
      for (const auto& [partition, end] : ends) {
        if (next_[partition] < end) return false;
      }
      return true;
    });
  }

  void Stop() override {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    rd_kafka_consumer_close(rk_);
  }

 private:
  rd_kafka_t* NewHandle(const std::map<std::string, std::string>& properties) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    std::map<std::string, std::string> all = properties;
    // A group id is required by librdkafka, though no group is ever joined:
    // partitions are assigned and offsets never committed.
    all.emplace("group.id", "sigevents-topic-consumer");
    all["enable.auto.commit"] = "false";
    all["enable.auto.offset.store"] = "false";
    char error[512];
    for (const auto& [name, value] : all) {
      if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error,
                            sizeof(error)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        throw std::invalid_argument("topic consumer: property " + name + ": " +
                                    error);
      }
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_log_cb(conf, &OnLog);
    rd_kafka_t* rk =
        rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
    if (rk == nullptr) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("topic consumer: ") + error);
    }
    return rk;
  }

  std::vector<std::int32_t> Partitions(int timeout_ms) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic_.c_str(), nullptr);
    const rd_kafka_metadata_t* metadata = nullptr;
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk_, 0, rkt, &metadata, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("topic consumer: no Kafka broker answered: " +
                               std::string(rd_kafka_err2str(err)));
    }
    std::vector<std::int32_t> partitions;
    rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    for (int t = 0; t < metadata->topic_cnt; ++t) {
      const rd_kafka_metadata_topic_t& topic = metadata->topics[t];
      if (topic_ != topic.topic) continue;
      topic_err = topic.err;
      for (int p = 0; p < topic.partition_cnt; ++p) {
        partitions.push_back(topic.partitions[p].id);
      }
    }
    rd_kafka_metadata_destroy(metadata);
    if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR || partitions.empty()) {
      throw std::runtime_error(
          "topic consumer: topic " + topic_ + " is not available: " +
          rd_kafka_err2str(topic_err) + "; create it first");
    }
    return partitions;
  }

  std::map<std::int32_t, std::int64_t> Positions() {
    std::lock_guard<std::mutex> lock(mu_);
    return next_;
  }

  void Loop() {
    while (!stop_) {
      rd_kafka_message_t* message = rd_kafka_consumer_poll(rk_, 100);
      if (message == nullptr) continue;
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_(LogLevel::kDebug, std::string("topic consumer: ") +
                                   rd_kafka_message_errstr(message));
      } else {
        Hand(*message);
      }
      rd_kafka_message_destroy(message);
    }
  }

  void Hand(const rd_kafka_message_t& raw) {
    ConsumedMessage message;
    message.received_at = Clock::now();
    message.received_unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count();
    message.partition = raw.partition;
    message.offset = raw.offset;
    if (raw.key != nullptr) {
      message.key.assign(static_cast<const char*>(raw.key), raw.key_len);
    }
    if (raw.payload != nullptr) {
      message.value.assign(static_cast<const char*>(raw.payload), raw.len);
    }
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(&raw, &headers) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0;
           rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
           RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        message.headers.emplace_back(
            name, value == nullptr
                      ? std::string()
                      : std::string(static_cast<const char*>(value), size));
      }
    }
    try {
      handler_(message);
    } catch (const std::exception& e) {
      log_(LogLevel::kError, "topic consumer: the handler failed on " + topic_ +
                                 "[" + std::to_string(raw.partition) + "]@" +
                                 std::to_string(raw.offset) + ": " + e.what());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::int64_t& next = next_[raw.partition];
      if (raw.offset + 1 > next) next = raw.offset + 1;
    }
    advanced_.notify_all();
  }

  static void OnLog(const rd_kafka_t* rk, int level, const char* facility,
                    const char* text) {
    auto* self = static_cast<Consumer*>(rd_kafka_opaque(rk));
    self->log_(
        FromSyslogLevel(level),
        std::string("topic consumer: librdkafka ") + facility + ": " + text);
  }

  std::string topic_;
  Handler handler_;
  LogSink log_;
  rd_kafka_t* rk_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  std::mutex mu_;
  std::condition_variable advanced_;
  // Per partition, the offset of the next message to hand over.
  std::map<std::int32_t, std::int64_t> next_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<TopicConsumer> TopicConsumer::Start(
    const std::map<std::string, std::string>& properties,
    const std::string& topic, From from, Handler handler, LogSink log,
    std::chrono::milliseconds timeout) {
  auto consumer =
      std::make_unique<Consumer>(topic, std::move(handler), std::move(log));
  consumer->Open(properties, from, timeout);
  return consumer;
}

}  // namespace sigevents
