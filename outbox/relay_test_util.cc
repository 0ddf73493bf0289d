#include "outbox/relay_test_util.h"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>
#include <map>

#include "outbox/schema.h"

namespace sigevents::testing {

using std::chrono::seconds;

LogSink LogCapture::sink() {
  return [this](LogLevel, std::string_view message) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(message);
  };
}

bool LogCapture::Contains(const std::string& text) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& line : lines_) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

std::string LogCapture::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string all;
  for (const std::string& line : lines_) all += line + "\n";
  return all;
}

Service::Service(const std::string& path)
    : db_(OpenDatabase(path, OpenOptions{})), emitter_(*db_) {}

Committed Service::EmitOne(const std::string& key, std::size_t message_bytes) {
  SQLite::Transaction txn(*db_);
  EmitReceipt receipt =
      emitter_.Emit(events::UserSuspended()
                        .userId(key)
                        .userEmail("user" + key + "@example.com")
                        .loggedInUserId("1")
                        .loggedInUserEmail("admin@example.com")
                        .message(std::string(message_bytes, 'm')));
  txn.commit();
  return Committed{receipt.seq, receipt.id, key};
}

std::vector<Committed> Service::Emit(int count, int keys) {
  std::vector<Committed> committed;
  for (int i = 0; i < count; ++i) {
    committed.push_back(EmitOne("user-" + std::to_string(i % keys)));
  }
  return committed;
}

std::int64_t CountState(const std::string& path, const std::string& state) {
  auto db = OpenDatabase(path, OpenOptions{});
  SQLite::Statement query(
      *db, "SELECT count(*) FROM sigevents_outbox WHERE state = ?");
  query.bind(1, state);
  query.executeStep();
  return query.getColumn(0).getInt64();
}

RelayConfig TestConfig(const std::string& db_path, const EmbeddedKafka& kafka,
                       LogCapture& log) {
  RelayConfig config;
  config.db_path = db_path;
  config.kafka["bootstrap.servers"] = kafka.bootstrap_servers();
  config.kafka["reconnect.backoff.max.ms"] = "1000";
  config.settle_delay = std::chrono::milliseconds(100);
  config.lease_duration = seconds(3);
  config.backoff_max = seconds(1);
  config.log = log.sink();
  return config;
}

Audit AuditTopic(const std::vector<Committed>& committed,
                 const std::vector<ConsumedMessage>& messages) {
  Audit audit;
  audit.committed = static_cast<std::int64_t>(committed.size());
  std::map<std::string, const Committed*> by_id;
  for (const Committed& c : committed) by_id[c.id] = &c;
  std::map<std::string, int> seen;
  std::map<std::string, std::int64_t> last_seq_by_key;
  for (const ConsumedMessage& message : messages) {
    std::string id(
        boost::json::parse(message.value).as_object().at("id").as_string());
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      ++audit.unknown;
      continue;
    }
    if (++seen[id] > 1) {
      ++audit.duplicated;
      continue;
    }
    ++audit.delivered;
    std::int64_t& last = last_seq_by_key[message.key];
    if (it->second->seq < last) ++audit.out_of_order;
    last = it->second->seq;
  }
  audit.lost = audit.committed - audit.delivered;
  for (const Committed& c : committed) {
    if (seen.count(c.id) == 0 && audit.lost_ids.size() < 10) {
      audit.lost_ids.push_back(c.id + " (seq " + std::to_string(c.seq) + ")");
    }
  }
  return audit;
}

void CheckExactlyOnceInOrder(const Audit& audit) {
  BOOST_TEST_MESSAGE("committed " << audit.committed << ", delivered "
                                  << audit.delivered << ", lost " << audit.lost
                                  << ", duplicated " << audit.duplicated
                                  << ", out of order " << audit.out_of_order);
  std::string lost;
  for (const std::string& id : audit.lost_ids) lost += " " + id;
  BOOST_TEST(audit.lost == 0, "lost:" << lost);
  BOOST_TEST(audit.duplicated == 0);
  BOOST_TEST(audit.out_of_order == 0);
  BOOST_TEST(audit.unknown == 0);
}

RelayFixture::RelayFixture()
    : kafka(EmbeddedKafka::Start({.brokers = 3, .partitions = 4})),
      path(dir.File("service.db")),
      service(path) {}

std::vector<ConsumedMessage> RelayFixture::Topic() {
  return ReadTopic(kafka->bootstrap_servers(), kTopic, seconds(30));
}

}  // namespace sigevents::testing
