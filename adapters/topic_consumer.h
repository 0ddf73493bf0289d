// Reads one Kafka topic on a thread of its own and hands every message to a
// callback as it arrives, from where each partition ends when it starts (to
// watch what is published from now on, as `sigevents demo` does) or from
// the beginning (to check everything a topic holds, as tests do). It reads
// without a consumer group (partitions are assigned, offsets never
// committed), so it disturbs nobody on a shared cluster.
//
//   auto consumer = TopicConsumer::Start(
//       {{"bootstrap.servers", servers}}, "significant-events",
//       TopicConsumer::From::kEnd,
//       [](const ConsumedMessage& m) { ... }, log, std::chrono::seconds(10));
//   ...
//   consumer->CatchUp(std::chrono::seconds(10));  // everything written so far
//   consumer->Stop();
//
// Thread safety: Start(), CatchUp() and Stop() are called from one thread.
// The handler is called on the consumer's thread, one message at a time;
// the log sink there too. Once Stop() has returned, the handler is not
// called again.

#ifndef SIGEVENTS_ADAPTERS_TOPIC_CONSUMER_H_
#define SIGEVENTS_ADAPTERS_TOPIC_CONSUMER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "outbox/log.h"

namespace sigevents {

struct ConsumedMessage {
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::steady_clock::time_point received_at;
  std::int64_t received_unix_ms = 0;

  // The value of the last header named `name`, or nullptr.
  const std::string* Header(const std::string& name) const;
};

class TopicConsumer {
 public:
  using Handler = std::function<void(const ConsumedMessage&)>;

  // Where reading starts in each partition.
  enum class From {
    kEnd,        // after the last message written before Start()
    kBeginning,  // at the first message the partition still holds
  };

  // Connects with the librdkafka `properties`, finds the partitions of
  // `topic` and where each begins and ends, and starts reading `from` there.
  // Throws std::runtime_error naming the cause when no broker answers
  // within `timeout` or the topic does not exist, std::invalid_argument for
  // a bad property.
  static std::unique_ptr<TopicConsumer> Start(
      const std::map<std::string, std::string>& properties,
      const std::string& topic, From from, Handler handler, LogSink log,
      std::chrono::milliseconds timeout);

  virtual ~TopicConsumer() = default;

  // Waits until every message written to the topic before the call has
  // been handed to the handler. False when `timeout` passed first, or the
  // ends of the partitions could not be read.
  virtual bool CatchUp(std::chrono::milliseconds timeout) = 0;

  // Stops the thread and closes the connection. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace sigevents

#endif  // SIGEVENTS_ADAPTERS_TOPIC_CONSUMER_H_
