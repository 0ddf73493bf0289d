#include "adapters/embedded_kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdexcept>

namespace sigevents {

std::unique_ptr<EmbeddedKafka> EmbeddedKafka::Start(
    const EmbeddedKafkaOptions& options) {
  if (options.brokers < 1 || options.partitions < 1) {
    throw std::invalid_argument(
        "embedded Kafka needs at least one broker and one partition");
  }
  // The mock cluster lives on a client handle of its own; the handle is
  // never used to send anything.
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", error, sizeof(error));
  rd_kafka_t* handle =
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (handle == nullptr) {
    throw std::runtime_error(std::string("embedded Kafka: ") + error);
  }
  rd_kafka_mock_cluster_t* cluster =
      rd_kafka_mock_cluster_new(handle, options.brokers);
  if (cluster == nullptr) {
    rd_kafka_destroy(handle);
    throw std::runtime_error("embedded Kafka: cannot start the mock cluster");
  }
  std::unique_ptr<EmbeddedKafka> kafka(
      new EmbeddedKafka(handle, cluster, options.brokers));
  for (const std::string& topic : options.topics) {
    kafka->CreateTopic(topic, options.partitions);
  }
  return kafka;
}

EmbeddedKafka::EmbeddedKafka(rd_kafka_t* handle,
                             rd_kafka_mock_cluster_t* cluster, int brokers)
    : handle_(handle), cluster_(cluster), brokers_(brokers) {}

EmbeddedKafka::~EmbeddedKafka() {
  // The cluster must go before the handle that owns it.
  rd_kafka_mock_cluster_destroy(cluster_);
  rd_kafka_destroy(handle_);
}

std::string EmbeddedKafka::bootstrap_servers() const {
  return rd_kafka_mock_cluster_bootstraps(cluster_);
}

void EmbeddedKafka::CreateTopic(const std::string& topic, int partitions) {
  int replication = brokers_ < 3 ? brokers_ : 3;
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.c_str(),
                                                       partitions, replication);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("embedded Kafka: cannot create topic " + topic +
                             ": " + rd_kafka_err2str(err));
  }
}

void EmbeddedKafka::SetBrokerDown(int broker_id, bool down) {
  if (down) {
    rd_kafka_mock_broker_set_down(cluster_, broker_id);
  } else {
    rd_kafka_mock_broker_set_up(cluster_, broker_id);
  }
}

void EmbeddedKafka::SetAllBrokersDown(bool down) {
  for (int id = 1; id <= brokers_; ++id) SetBrokerDown(id, down);
}

void EmbeddedKafka::SetBrokerRtt(int broker_id, int rtt_ms) {
  rd_kafka_mock_broker_set_rtt(cluster_, broker_id, rtt_ms);
}

void EmbeddedKafka::PushRequestErrors(int api_key, int error, int count) {
  for (int i = 0; i < count; ++i) {
    rd_kafka_mock_push_request_errors(cluster_, api_key, 1,
                                      static_cast<rd_kafka_resp_err_t>(error));
  }
}

void EmbeddedKafka::SetPartitionLeader(const std::string& topic, int partition,
                                       int broker_id) {
  rd_kafka_mock_partition_set_leader(cluster_, topic.c_str(), partition,
                                     broker_id);
}

}  // namespace sigevents
