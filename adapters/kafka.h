// The relay's two uses of librdkafka: an idempotent producer that reports,
// for every message, whether Kafka has it, refused it, or may have it; and a
// read-back that scans partitions for the messages of one outbox.
//
//   auto producer = KafkaProducer::Create(properties, on_wake, log);
//   producer->Produce(message);            // from the relay thread
//   producer->Poll(&reports);              // delivery reports, same thread
//
// Every message carries the headers kOutboxHeader (the outbox id) and
// kSeqHeader (its outbox sequence number, decimal), which is how a
// read-back recognizes it.
//
// Thread safety: a KafkaProducer is used by one thread, except that the
// wake callback is called from librdkafka's threads. ReadBack() is a
// blocking function; call it from one thread at a time per outbox.

#ifndef SIGEVENTS_ADAPTERS_KAFKA_H_
#define SIGEVENTS_ADAPTERS_KAFKA_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "outbox/log.h"

struct rd_kafka_s;

namespace sigevents {

constexpr char kOutboxHeader[] = "sigevents-outbox";
constexpr char kSeqHeader[] = "sigevents-seq";
constexpr char kStructuredContentType[] =
    "application/cloudevents+json; charset=UTF-8";

struct KafkaMessage {
  std::int64_t seq = 0;
  std::string topic;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
};

// What became of one message.
struct DeliveryReport {
  enum class Outcome {
    kDelivered,  // persisted at partition/offset
    kRefused,    // Kafka refused it for good (too large, not authorised...)
    kNotSent,    // certainly not written; safe to send again
    kUnknown,    // may have been written; read back before sending again
  };
  std::int64_t seq = 0;
  Outcome outcome = Outcome::kDelivered;
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::string error;  // "" when delivered
};

enum class ProduceResult {
  kQueued,      // a DeliveryReport will follow
  kRetryLater,  // not taken (queue full, topic unknown yet); try again
  kRefused,     // refused for good before sending; `error` says why
};

class KafkaProducer {
 public:
  // Creates the producer. `properties` override the defaults
  // (enable.idempotence=true, acks=all, linger.ms=1, message.timeout.ms=0,
  // partitioner=murmur2_random). `wake` is called from librdkafka's threads
  // when a report or error is ready to be served by Poll(). Throws
  // std::invalid_argument naming a bad property.
  static std::unique_ptr<KafkaProducer> Create(
      const std::map<std::string, std::string>& properties,
      std::function<void()> wake, LogSink log);

  virtual ~KafkaProducer() = default;

  virtual ProduceResult Produce(const KafkaMessage& message,
                                std::string* error) = 0;

  // Serves delivery reports and errors; appends reports to `reports`.
  virtual void Poll(std::vector<DeliveryReport>* reports) = 0;

  // Messages handed over and not yet reported.
  virtual int InFlight() const = 0;

  // Waits up to `timeout` for in-flight messages; then drops whatever is
  // left (reported as kNotSent or kUnknown through Poll()).
  virtual void FlushOrPurge(std::chrono::milliseconds timeout) = 0;

  // True once the producer hit a fatal error and must be replaced.
  virtual bool Fatal(std::string* reason) const = 0;

  // True while no broker is reachable, as librdkafka last reported.
  virtual bool AllBrokersDown() const = 0;

  // The partitions of `topic`, fetching metadata; none for a topic that
  // does not exist. False when no broker answered in time.
  virtual bool Partitions(const std::string& topic,
                          std::chrono::milliseconds timeout,
                          std::vector<std::int32_t>* partitions) = 0;

  // The cluster id, or "" when no broker answered in time.
  virtual std::string ClusterId(std::chrono::milliseconds timeout) = 0;

  // [low, high) offsets of a partition; false when no broker answered.
  virtual bool Watermarks(const std::string& topic, std::int32_t partition,
                          std::int64_t* low, std::int64_t* high,
                          std::chrono::milliseconds timeout) = 0;
};

// A message of `outbox_id` found by ReadBack().
struct ReadBackHit {
  std::int64_t seq = 0;
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
};

struct ReadBackResult {
  bool ok = false;
  std::string error;
  std::vector<ReadBackHit> hits;
  // Per topic partition, the offset up to which everything was read.
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> read_to;
};

// Reads each partition in `from` (topic, partition -> first offset, or -1
// for the partition's beginning) up to its current end, and returns every
// message whose outbox header equals `outbox_id`. Uses a consumer with the
// given properties (security settings are shared with the producer) and no
// consumer group. Gives up, with an error, after `timeout` or as soon as
// `*cancel` becomes true.
ReadBackResult ReadBack(
    const std::map<std::string, std::string>& properties,
    const std::string& outbox_id,
    const std::map<std::pair<std::string, std::int32_t>, std::int64_t>& from,
    std::chrono::milliseconds timeout, const std::atomic<bool>* cancel);

}  // namespace sigevents

#endif  // SIGEVENTS_ADAPTERS_KAFKA_H_
