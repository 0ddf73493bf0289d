// The consumer of `sigevents demo`: reads one Kafka topic, from where each
// partition ends when it starts, on a thread of its own, and hands every
// message to a callback as it arrives. It reads without a consumer group
// (partitions are assigned, offsets never committed), so it disturbs nobody
// on a shared cluster.
//
//   auto consumer = demo::TopicConsumer::Start(
//       {{"bootstrap.servers", servers}}, "significant-events",
//       [](const demo::ConsumedMessage& m) { ... }, log,
//       std::chrono::seconds(10));
//   ...
//   consumer->CatchUp(std::chrono::seconds(10));  // everything written so far
//   consumer->Stop();
//
// Thread safety: Start(), CatchUp() and Stop() are called from one thread.
// The handler is called on the consumer's thread, one message at a time;
// the log sink there too.

#ifndef SIGEVENTS_ADAPTERS_DEMO_CONSUMER_H_
#define SIGEVENTS_ADAPTERS_DEMO_CONSUMER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "outbox/log.h"

namespace sigevents::demo {

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

  // Connects with the librdkafka `properties`, finds the partitions of
  // `topic` and where each ends, and starts reading from there. Throws
  // std::runtime_error naming the cause when no broker answers within
  // `timeout` or the topic does not exist, std::invalid_argument for a bad
  // property.
  static std::unique_ptr<TopicConsumer> Start(
      const std::map<std::string, std::string>& properties,
      const std::string& topic, Handler handler, LogSink log,
      std::chrono::milliseconds timeout);

  virtual ~TopicConsumer() = default;

  // Waits until every message written to the topic before the call has
  // been handed to the handler. False when `timeout` passed first, or the
  // ends of the partitions could not be read.
  virtual bool CatchUp(std::chrono::milliseconds timeout) = 0;

  // Stops the thread and closes the connection. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace sigevents::demo

#endif  // SIGEVENTS_ADAPTERS_DEMO_CONSUMER_H_
