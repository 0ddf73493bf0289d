// Reads a whole topic of a Kafka cluster, for tests that check what was
// published: a TopicConsumer (adapters/topic_consumer.h) from the beginning,
// with no consumer group, until it has caught up.
//
//   for (const auto& message : testing::ReadTopic(
//            kafka->bootstrap_servers(), "significant-events", seconds(30))) {
//     ... message.headers.at("ce_id") ...
//   }
//
// Thread-compatible.

#ifndef SIGEVENTS_TESTS_KAFKA_READER_H_
#define SIGEVENTS_TESTS_KAFKA_READER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sigevents::testing {

struct ConsumedMessage {
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;  // the last value of each
};

// Every message of `topic`, partition by partition in offset order. Throws
// std::runtime_error when the topic cannot be read within `timeout`.
std::vector<ConsumedMessage> ReadTopic(const std::string& bootstrap_servers,
                                       const std::string& topic,
                                       std::chrono::milliseconds timeout);

}  // namespace sigevents::testing

#endif  // SIGEVENTS_TESTS_KAFKA_READER_H_
