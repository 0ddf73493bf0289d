// The relay under faults beyond a plain outage: the database refusing its
// writes, a topic that does not exist, brokers down for longer than the
// producer's own timeouts, and a broker that takes a request and does not
// answer. In every case nothing committed may be lost.

#define BOOST_TEST_MODULE relay_faults_test
#include <SQLiteCpp/SQLiteCpp.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <sys/resource.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <thread>

#include "outbox/relay.h"
#include "outbox/relay_test_util.h"
#include "outbox/schema.h"

namespace sigevents {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::CheckExactlyOnceInOrder;
using testing::Committed;
using testing::CountState;
using testing::RelayFixture;
using testing::WaitUntil;

// Another connection holds the write lock for longer than the relay's busy
// timeout while the relay has acknowledgements to record.
BOOST_FIXTURE_TEST_CASE(busy_database_delays_marks_and_loses_nothing,
                        RelayFixture) {
  auto relay = Relay::Start(testing::TestConfig(path, *kafka, log));
  std::vector<Committed> committed = service.Emit(200, 7);
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 200; },
                          seconds(30)));

  // Slow brokers, so that the acknowledgements of the next events arrive
  // while another connection holds the write lock.
  for (int broker = 1; broker <= 3; ++broker) kafka->SetBrokerRtt(broker, 500);
  std::vector<Committed> more = service.Emit(200, 7);
  committed.insert(committed.end(), more.begin(), more.end());
  auto blocker = OpenDatabase(path, OpenOptions{});
  blocker->exec("BEGIN IMMEDIATE");
  for (int broker = 1; broker <= 3; ++broker) kafka->SetBrokerRtt(broker, 0);
  std::this_thread::sleep_for(seconds(7));  // the busy timeout is 5 s
  BOOST_TEST(CountState(path, "delivered") == 200);
  blocker->exec("ROLLBACK");

  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 400; },
                          seconds(30)));
  relay->Stop(seconds(5));
  BOOST_TEST(relay->stats().errors_by_kind.count("sqlite_busy") == 1u,
             log.All());
  CheckExactlyOnceInOrder(testing::AuditTopic(committed, Topic()));
}

// The disk fills while the relay marks rows: the process may not grow any
// file past a few hundred kilobytes, so SQLite's writes fail. The relay
// keeps the acknowledgements and records them once the limit is lifted.
BOOST_FIXTURE_TEST_CASE(full_disk_while_marking_loses_nothing, RelayFixture) {
  std::vector<Committed> committed = service.Emit(3000, 11);
  signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG
  rlimit original{};
  getrlimit(RLIMIT_FSIZE, &original);
  rlimit small = original;
  small.rlim_cur = 256 * 1024;
  setrlimit(RLIMIT_FSIZE, &small);

  auto relay = Relay::Start(testing::TestConfig(path, *kafka, log));
  bool failed_while_full = WaitUntil(
      [&] {
        auto stats = relay->stats();
        return stats.errors_by_kind.count("sqlite_error") +
                   stats.errors_by_kind.count("sqlite_full") >
               0;
      },
      seconds(20));
  std::this_thread::sleep_for(seconds(1));
  setrlimit(RLIMIT_FSIZE, &original);
  BOOST_TEST(failed_while_full, log.All());

  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 3000; },
                          seconds(30)));
  relay->Stop(seconds(5));
  CheckExactlyOnceInOrder(testing::AuditTopic(committed, Topic()));
}

// The topic does not exist and brokers do not create it: events wait, and
// go once it exists.
BOOST_FIXTURE_TEST_CASE(unknown_topic_events_wait_until_it_exists,
                        RelayFixture) {
  const char kMissing[] = "not-yet-created";
  rd_kafka_mock_topic_set_error(kafka->mock_cluster(), kMissing,
                                RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  RelayConfig config = testing::TestConfig(path, *kafka, log);
  config.default_topic = kMissing;
  config.kafka["topic.metadata.propagation.max.ms"] = "1000";
  auto relay = Relay::Start(config);
  std::vector<Committed> committed = service.Emit(50, 5);

  std::this_thread::sleep_for(seconds(4));
  BOOST_TEST(CountState(path, "delivered") == 0);
  BOOST_TEST(CountState(path, "pending") == 50);
  BOOST_TEST(CountState(path, "failed") == 0);

  rd_kafka_mock_topic_set_error(kafka->mock_cluster(), kMissing,
                                RD_KAFKA_RESP_ERR_NO_ERROR);
  BOOST_TEST_REQUIRE(
      WaitUntil([&] { return CountState(path, "delivered") == 50; },
                seconds(30)),
      log.All());
  relay->Stop(seconds(5));
  CheckExactlyOnceInOrder(testing::AuditTopic(
      committed,
      testing::ReadTopic(kafka->bootstrap_servers(), kMissing, seconds(30))));
}

// With a finite message timeout (a property the operator may set), brokers
// down for longer than it make librdkafka give messages up; the relay reads
// back and sends what is missing, once.
BOOST_FIXTURE_TEST_CASE(outage_longer_than_producer_timeouts, RelayFixture) {
  RelayConfig config = testing::TestConfig(path, *kafka, log);
  config.kafka["message.timeout.ms"] = "1500";
  config.kafka["request.timeout.ms"] = "1000";
  auto relay = Relay::Start(config);
  std::vector<Committed> committed = service.Emit(300, 9);
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 300; },
                          seconds(30)));

  kafka->SetAllBrokersDown(true);
  std::vector<Committed> during = service.Emit(300, 9);
  committed.insert(committed.end(), during.begin(), during.end());
  std::this_thread::sleep_for(seconds(5));
  kafka->SetAllBrokersDown(false);

  BOOST_TEST_REQUIRE(
      WaitUntil([&] { return CountState(path, "delivered") == 600; },
                seconds(60)),
      log.All());
  relay->Stop(seconds(5));
  BOOST_TEST(
      relay->stats().errors_by_kind.count("kafka_not_sent") +
              relay->stats().errors_by_kind.count("kafka_unknown_outcome") >
          0u,
      log.All());
  CheckExactlyOnceInOrder(testing::AuditTopic(committed, Topic()));
}

// A broker that takes requests and answers only after the client gave up on
// them. The row stays pending until Kafka's answer is known, and the events
// arrive in order. The embedded Kafka does not drop an idempotent
// producer's retried duplicates (a real broker does), so copies it kept are
// counted and reported, not treated as the relay's.
BOOST_FIXTURE_TEST_CASE(broker_that_does_not_answer_loses_nothing,
                        RelayFixture) {
  RelayConfig config = testing::TestConfig(path, *kafka, log);
  config.kafka["request.timeout.ms"] = "1000";
  auto relay = Relay::Start(config);
  std::vector<Committed> committed = service.Emit(100, 5);
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 100; },
                          seconds(30)));

  for (int broker = 1; broker <= 3; ++broker) kafka->SetBrokerRtt(broker, 3000);
  std::vector<Committed> slow = service.Emit(100, 5);
  committed.insert(committed.end(), slow.begin(), slow.end());
  std::this_thread::sleep_for(seconds(1));
  BOOST_TEST(CountState(path, "delivered") < 200);  // no answer yet
  std::this_thread::sleep_for(seconds(3));
  for (int broker = 1; broker <= 3; ++broker) kafka->SetBrokerRtt(broker, 0);

  BOOST_TEST_REQUIRE(
      WaitUntil([&] { return CountState(path, "delivered") == 200; },
                seconds(60)),
      log.All());
  relay->Stop(seconds(5));
  testing::Audit audit = testing::AuditTopic(committed, Topic());
  BOOST_TEST_MESSAGE("copies kept by the embedded Kafka: " << audit.duplicated);
  BOOST_TEST(audit.lost == 0);
  BOOST_TEST(audit.out_of_order == 0);
  BOOST_TEST(audit.unknown == 0);
}

// Stop(timeout) keeps its promise while no broker answers: at the first
// contact (the relay asks the cluster for its id), and with events waiting
// to be sent in an outage. The events stay pending for the next relay.
BOOST_FIXTURE_TEST_CASE(stop_is_prompt_while_brokers_are_down, RelayFixture) {
  struct Case {
    const char* name;
    bool connect_first;  // the relay met the cluster before the outage
  };
  const Case cases[] = {{"at the first contact", false},
                        {"in an outage with events waiting", true}};
  std::vector<Committed> all;
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      auto relay = Relay::Start(testing::TestConfig(path, *kafka, log));
      if (c.connect_first) {
        BOOST_TEST_REQUIRE(WaitUntil(
            [&] { return relay->stats().state == RelayState::kConnected; },
            seconds(30)));
      }
      kafka->SetAllBrokersDown(true);
      std::vector<Committed> committed = service.Emit(20, 5);
      std::this_thread::sleep_for(milliseconds(700));

      auto start = std::chrono::steady_clock::now();
      relay->Stop(milliseconds(200));
      auto took = std::chrono::duration_cast<milliseconds>(
          std::chrono::steady_clock::now() - start);
      BOOST_TEST_MESSAGE(c.name << ": Stop(200 ms) took " << took.count()
                                << " ms");
      BOOST_TEST(took.count() < 700, log.All());
      kafka->SetAllBrokersDown(false);
      all.insert(all.end(), committed.begin(), committed.end());
    }
  }
  // The next relay sends what the stopped ones left, once.
  auto relay = Relay::Start(testing::TestConfig(path, *kafka, log));
  BOOST_TEST_REQUIRE(
      WaitUntil([&] { return CountState(path, "delivered") == 40; },
                seconds(30)),
      log.All());
  relay->Stop(seconds(5));
  CheckExactlyOnceInOrder(testing::AuditTopic(all, Topic()));
}

}  // namespace
}  // namespace sigevents
