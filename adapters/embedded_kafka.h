// An embedded Kafka: librdkafka's mock cluster, running inside this process.
// It speaks the real Kafka protocol on loopback TCP ports chosen at random,
// keeps everything in memory, and lets tests inject faults (brokers down,
// request errors, leader changes). Other processes (kcat, kafkajs) can use
// it through bootstrap_servers().
//
//   auto kafka = sigevents::EmbeddedKafka::Start({.brokers = 3});
//   config.kafka["bootstrap.servers"] = kafka->bootstrap_servers();
//   kafka->SetBrokerDown(1, true);
//
// Limits (librdkafka 2.0.2's mock cluster): no transaction isolation for
// read_committed readers, no producer fencing, and an idempotent producer's
// retried duplicates are not dropped. Nothing in the module relies on them.
//
// Thread safety: all methods may be called from any thread.

#ifndef SIGEVENTS_ADAPTERS_EMBEDDED_KAFKA_H_
#define SIGEVENTS_ADAPTERS_EMBEDDED_KAFKA_H_

#include <memory>
#include <string>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace sigevents {

struct EmbeddedKafkaOptions {
  int brokers = 1;
  int partitions = 4;  // for topics created on first use, and for `topics`
  std::vector<std::string> topics = {"significant-events"};
};

class EmbeddedKafka {
 public:
  // Throws std::runtime_error when librdkafka cannot start the cluster.
  static std::unique_ptr<EmbeddedKafka> Start(
      const EmbeddedKafkaOptions& options);

  ~EmbeddedKafka();
  EmbeddedKafka(const EmbeddedKafka&) = delete;
  EmbeddedKafka& operator=(const EmbeddedKafka&) = delete;

  // "127.0.0.1:40123,127.0.0.1:40125"
  std::string bootstrap_servers() const;

  // Creates a topic; throws std::runtime_error if it cannot.
  void CreateTopic(const std::string& topic, int partitions);

  // Broker ids are 1..brokers.
  void SetBrokerDown(int broker_id, bool down);
  void SetAllBrokersDown(bool down);
  void SetBrokerRtt(int broker_id, int rtt_ms);

  // The next `count` requests of Kafka API `api_key` (0 = Produce,
  // 1 = Fetch, 3 = Metadata) fail with Kafka error code `error`.
  void PushRequestErrors(int api_key, int error, int count);

  // Moves the leadership of a partition to another broker.
  void SetPartitionLeader(const std::string& topic, int partition,
                          int broker_id);

  // The raw handle, for fault injection the methods above do not cover.
  rd_kafka_mock_cluster_s* mock_cluster() const { return cluster_; }

 private:
  EmbeddedKafka(rd_kafka_s* handle, rd_kafka_mock_cluster_s* cluster,
                int brokers);

  rd_kafka_s* handle_;
  rd_kafka_mock_cluster_s* cluster_;
  int brokers_;
};

}  // namespace sigevents

#endif  // SIGEVENTS_ADAPTERS_EMBEDDED_KAFKA_H_
