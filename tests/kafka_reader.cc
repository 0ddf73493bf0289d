#include "tests/kafka_reader.h"

#include <librdkafka/rdkafka.h>

#include <stdexcept>

namespace sigevents::testing {
namespace {

void Set(rd_kafka_conf_t* conf, const char* key, const std::string& value) {
  char error[512];
  if (rd_kafka_conf_set(conf, key, value.c_str(), error, sizeof(error)) !=
      RD_KAFKA_CONF_OK) {
    throw std::runtime_error(std::string("test consumer: ") + error);
  }
}

void Quiet(const rd_kafka_t*, int, const char*, const char*) {}

}  // namespace

std::vector<ConsumedMessage> ReadTopic(const std::string& bootstrap_servers,
                                       const std::string& topic,
                                       std::chrono::milliseconds timeout) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Set(conf, "bootstrap.servers", bootstrap_servers);
  Set(conf, "group.id", "sigevents-test-reader");
  Set(conf, "enable.auto.commit", "false");
  Set(conf, "enable.partition.eof", "true");
  rd_kafka_conf_set_log_cb(conf, &Quiet);
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
  if (rk == nullptr) throw std::runtime_error(error);

  const int timeout_ms = static_cast<int>(timeout.count());
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, 0, rkt, &metadata, timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || metadata->topic_cnt != 1) {
    rd_kafka_destroy(rk);
    throw std::runtime_error("test consumer: no metadata for " + topic);
  }

  std::map<std::int32_t, std::int64_t> end;  // partitions not read to end
  rd_kafka_topic_partition_list_t* assignment =
      rd_kafka_topic_partition_list_new(metadata->topics[0].partition_cnt);
  for (int p = 0; p < metadata->topics[0].partition_cnt; ++p) {
    std::int32_t partition = metadata->topics[0].partitions[p].id;
    std::int64_t low = 0, high = 0;
    rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high,
                                     timeout_ms);
    if (high > low) end[partition] = high;
    rd_kafka_topic_partition_list_add(assignment, topic.c_str(), partition)
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_metadata_destroy(metadata);
  rd_kafka_assign(rk, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);

  std::vector<ConsumedMessage> messages;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!end.empty() && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(rk, 100);
    if (message == nullptr) continue;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ConsumedMessage consumed;
      consumed.partition = message->partition;
      consumed.offset = message->offset;
      consumed.key.assign(static_cast<const char*>(message->key),
                          message->key_len);
      consumed.value.assign(static_cast<const char*>(message->payload),
                            message->len);
      rd_kafka_headers_t* headers = nullptr;
      if (rd_kafka_message_headers(message, &headers) ==
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
             RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          consumed.headers[name].assign(static_cast<const char*>(value), size);
        }
      }
      messages.push_back(std::move(consumed));
      auto it = end.find(message->partition);
      if (it != end.end() && message->offset + 1 >= it->second) end.erase(it);
    }
    rd_kafka_message_destroy(message);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (!end.empty()) {
    throw std::runtime_error("test consumer: " + topic + " not read in time");
  }
  return messages;
}

}  // namespace sigevents::testing
