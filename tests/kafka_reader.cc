#include "tests/kafka_reader.h"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "adapters/topic_consumer.h"
#include "outbox/log.h"

namespace sigevents::testing {

std::vector<ConsumedMessage> ReadTopic(const std::string& bootstrap_servers,
                                       const std::string& topic,
                                       std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<ConsumedMessage> messages;  // filled on the consumer's thread
  std::unique_ptr<TopicConsumer> consumer = TopicConsumer::Start(
      {{"bootstrap.servers", bootstrap_servers}}, topic,
      TopicConsumer::From::kBeginning,
      [&messages](const sigevents::ConsumedMessage& message) {
        ConsumedMessage consumed;
        consumed.partition = message.partition;
        consumed.offset = message.offset;
        consumed.key = message.key;
        consumed.value = message.value;
        for (const auto& [name, value] : message.headers) {
          consumed.headers[name] = value;
        }
        messages.push_back(std::move(consumed));
      },
      NullLogSink(), timeout);
  bool caught_up =
      consumer->CatchUp(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
  consumer->Stop();
  if (!caught_up) {
    throw std::runtime_error("test reader: " + topic + " not read in time");
  }
  std::stable_sort(messages.begin(), messages.end(),
                   [](const ConsumedMessage& a, const ConsumedMessage& b) {
                     return std::tie(a.partition, a.offset) <
                            std::tie(b.partition, b.offset);
                   });
  return messages;
}

}  // namespace sigevents::testing
