// The relay against the embedded Kafka, with faults pushed into it: broker
// outages, request errors, leader changes, oversized events, restarts, a
// standby relay in another process and emitters in other processes.

#define BOOST_TEST_MODULE relay_test
#include "outbox/relay.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "adapters/embedded_kafka.h"
#include "adapters/kafka.h"
#include "emitter/emitter.h"
#include "outbox/relay_test_util.h"
#include "outbox/schema.h"
#include "tests/test_util.h"

namespace sigevents {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using namespace testing;
using Fixture = RelayFixture;

// A configuration that cannot work is refused by Start(), in the caller's
// thread, with what is wrong; no relay runs and nothing is sent.
BOOST_FIXTURE_TEST_CASE(bad_configuration_is_refused_at_start, Fixture) {
  struct Case {
    const char* name;
    std::function<void(RelayConfig&)> spoil;
    const char* message_part;
  };
  const Case cases[] = {
      {"empty default topic", [](RelayConfig& c) { c.default_topic = ""; },
       "the default topic is empty"},
      {"route without a topic",
       [](RelayConfig& c) {
         c.routes = {{"server.*", ""}};
       },
       "relay route \"server.*=\": pattern and topic must not be empty"},
      {"no backoff",
       [](RelayConfig& c) { c.backoff_initial = milliseconds(0); },
       "backoff_initial (0 ms) must be positive"},
      {"backoff cap below its start",
       [](RelayConfig& c) { c.backoff_max = milliseconds(50); },
       "backoff_max (50 ms) at least as long"},
  };
  service.Emit(5, 5);
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      RelayConfig config = TestConfig(path, *kafka, log);
      c.spoil(config);
      try {
        Relay::Start(config);
        BOOST_ERROR("started");
      } catch (const std::invalid_argument& e) {
        BOOST_TEST(
            std::string(e.what()).find(c.message_part) != std::string::npos,
            e.what());
      }
    }
  }
  BOOST_TEST(CountState(path, "pending") == 5);
  BOOST_TEST(Topic().empty());
}

BOOST_FIXTURE_TEST_CASE(delivers_every_event_once_with_its_record, Fixture) {
  std::vector<Committed> committed = service.Emit(1000, 37);
  auto relay = Relay::Start(TestConfig(path, *kafka, log));
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 1000; },
                          seconds(30)));
  BOOST_TEST(relay->Stop(seconds(5)));

  std::vector<ConsumedMessage> messages = Topic();
  CheckExactlyOnceInOrder(AuditTopic(committed, messages));

  // Each message is the stored bytes, keyed by the entity, with the
  // structured-mode content type, and its row records where it went.
  std::string outbox_id = ReadOutboxId(service.db());
  SQLite::Statement row(service.db(),
                        "SELECT payload, partition_key, topic,"
                        " kafka_partition, kafka_offset, attempts"
                        " FROM sigevents_outbox WHERE seq = ?");
  for (const ConsumedMessage& message : messages) {
    std::int64_t seq = std::stoll(message.headers.at(kSeqHeader));
    BOOST_TEST_CONTEXT("seq " << seq) {
      row.bind(1, seq);
      BOOST_REQUIRE(row.executeStep());
      BOOST_TEST(row.getColumn(0).getString() == message.value);
      BOOST_TEST(row.getColumn(1).getString() == message.key);
      BOOST_TEST(row.getColumn(2).getString() == kTopic);
      BOOST_TEST(row.getColumn(3).getInt() == message.partition);
      BOOST_TEST(row.getColumn(4).getInt64() == message.offset);
      BOOST_TEST(row.getColumn(5).getInt() == 1);
      BOOST_TEST(message.headers.at("content-type") ==
                 "application/cloudevents+json; charset=UTF-8");
      BOOST_TEST(message.headers.at(kOutboxHeader) == outbox_id);
      row.reset();
    }
  }
}

BOOST_FIXTURE_TEST_CASE(broker_outage_loses_nothing_and_keeps_order, Fixture) {
  auto relay = Relay::Start(TestConfig(path, *kafka, log));
  std::vector<Committed> committed;
  std::thread emitter([&] {
    for (int i = 0; i < 3000; ++i) {
      committed.push_back(service.EmitOne("user-" + std::to_string(i % 29)));
      if (i % 100 == 0) std::this_thread::sleep_for(milliseconds(50));
    }
  });
  std::this_thread::sleep_for(milliseconds(300));
  kafka->SetAllBrokersDown(true);
  std::this_thread::sleep_for(seconds(4));
  std::int64_t delivered_during_outage = CountState(path, "delivered");
  kafka->SetAllBrokersDown(false);
  emitter.join();

  BOOST_REQUIRE(
      WaitUntil([&] { return CountState(path, "pending") == 0; }, seconds(60)));
  BOOST_TEST(relay->Stop(seconds(5)));
  BOOST_TEST_MESSAGE(
      "delivered while the brokers were down: " << delivered_during_outage);
  CheckExactlyOnceInOrder(AuditTopic(committed, Topic()));
  BOOST_TEST(log.Contains("connected -> unreachable"), log.All());
  BOOST_TEST(log.Contains("unreachable -> connected"), log.All());
}

struct Fault {
  const char* name;
  std::function<void(EmbeddedKafka&)> inject;
};

// Kafka error codes: 5 LEADER_NOT_AVAILABLE, 6 NOT_LEADER_OR_FOLLOWER,
// 19 NOT_ENOUGH_REPLICAS.
const Fault kRequestErrors[] = {
    {"not leader", [](EmbeddedKafka& k) { k.PushRequestErrors(0, 6, 3); }},
    {"not enough replicas",
     [](EmbeddedKafka& k) { k.PushRequestErrors(0, 19, 5); }},
    {"leader not available",
     [](EmbeddedKafka& k) { k.PushRequestErrors(0, 5, 3); }},
};

const Fault kLeaderChanges[] = {
    {"leaders move to broker 2",
     [](EmbeddedKafka& k) {
       for (int p = 0; p < 4; ++p) k.SetPartitionLeader(kTopic, p, 2);
     }},
    {"leaders spread again",
     [](EmbeddedKafka& k) {
       for (int p = 0; p < 4; ++p) k.SetPartitionLeader(kTopic, p, 1 + p % 3);
     }},
    {"leaders move to broker 3",
     [](EmbeddedKafka& k) {
       for (int p = 0; p < 4; ++p) k.SetPartitionLeader(kTopic, p, 3);
     }},
};

// Emits 400 events after each fault, with the relay running; returns the
// audit of the topic once nothing is pending.
//
// One produce request in flight per broker: with several, order across a
// failed request rests on the broker refusing the requests that follow it
// (out-of-order sequence numbers), which real brokers do and the embedded
// Kafka does not: it appends them, then takes the retried request for a
// duplicate and drops it.
template <std::size_t N>
Audit StreamThroughFaults(Fixture& f, const Fault (&faults)[N]) {
  RelayConfig config = TestConfig(f.path, *f.kafka, f.log);
  config.kafka["max.in.flight.requests.per.connection"] = "1";
  auto relay = Relay::Start(config);
  std::vector<Committed> committed;
  for (const Fault& fault : faults) {
    BOOST_TEST_MESSAGE("fault: " << fault.name);
    fault.inject(*f.kafka);
    for (int i = 0; i < 400; ++i) {
      committed.push_back(f.service.EmitOne("user-" + std::to_string(i % 13)));
    }
  }
  BOOST_TEST_REQUIRE(
      WaitUntil([&] { return CountState(f.path, "pending") == 0; },
                seconds(60)),
      f.log.All());
  relay->Stop(seconds(5));
  BOOST_TEST(CountState(f.path, "failed") == 0, f.log.All());
  return AuditTopic(committed, f.Topic());
}

BOOST_FIXTURE_TEST_CASE(retriable_request_errors_keep_order, Fixture) {
  CheckExactlyOnceInOrder(StreamThroughFaults(*this, kRequestErrors));
}

BOOST_FIXTURE_TEST_CASE(leader_changes_keep_order, Fixture) {
  CheckExactlyOnceInOrder(StreamThroughFaults(*this, kLeaderChanges));
}

BOOST_FIXTURE_TEST_CASE(request_errors_while_leaders_move_keep_order, Fixture) {
  const Fault mixed[] = {kRequestErrors[0], kLeaderChanges[0],
                         kRequestErrors[1], kLeaderChanges[1],
                         kRequestErrors[2]};
  CheckExactlyOnceInOrder(StreamThroughFaults(*this, mixed));
}

BOOST_FIXTURE_TEST_CASE(oversized_event_fails_and_later_events_go_on, Fixture) {
  RelayConfig config = TestConfig(path, *kafka, log);
  config.kafka["message.max.bytes"] = "4000";
  auto relay = Relay::Start(config);
  std::vector<Committed> before = service.Emit(10, 3);
  Committed big = service.EmitOne("user-1", 6000);
  std::vector<Committed> after = service.Emit(10, 3);

  BOOST_REQUIRE(WaitUntil(
      [&] {
        return CountState(path, "delivered") == 20 &&
               CountState(path, "failed") == 1;
      },
      seconds(30)));
  relay->Stop(seconds(5));

  SQLite::Statement row(service.db(),
                        "SELECT state, attempts, last_error FROM"
                        " sigevents_outbox WHERE seq = ?");
  row.bind(1, big.seq);
  BOOST_REQUIRE(row.executeStep());
  BOOST_TEST(row.getColumn(0).getString() == "failed");
  BOOST_TEST(row.getColumn(1).getInt() == 1);
  BOOST_TEST(
      row.getColumn(2).getString().find("too large") != std::string::npos,
      row.getColumn(2).getString());
  BOOST_TEST(relay->stats().failed_total == 1);
  BOOST_TEST(relay->stats().errors_by_kind.at("kafka_refused") == 1);
  BOOST_TEST(log.Contains("seq " + std::to_string(big.seq)), log.All());

  std::vector<Committed> delivered = before;
  delivered.insert(delivered.end(), after.begin(), after.end());
  CheckExactlyOnceInOrder(AuditTopic(delivered, Topic()));
}

BOOST_FIXTURE_TEST_CASE(broker_refusal_fails_the_row_with_the_reason, Fixture) {
  auto relay = Relay::Start(TestConfig(path, *kafka, log));
  std::vector<Committed> first = service.Emit(5, 5);
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 5; },
                          seconds(30)));
  // 10 MESSAGE_TOO_LARGE for the next produce request.
  kafka->PushRequestErrors(0, 10, 1);
  Committed refused = service.EmitOne("user-x");
  BOOST_REQUIRE(
      WaitUntil([&] { return CountState(path, "failed") == 1; }, seconds(30)));
  std::vector<Committed> later = service.Emit(5, 5);
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 10; },
                          seconds(30)));
  relay->Stop(seconds(5));
  SQLite::Statement row(service.db(),
                        "SELECT state, last_error FROM sigevents_outbox"
                        " WHERE seq = ?");
  row.bind(1, refused.seq);
  BOOST_REQUIRE(row.executeStep());
  BOOST_TEST(row.getColumn(0).getString() == "failed");
  BOOST_TEST(row.getColumn(1).getString().find("significant-events") !=
             std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(restarted_relay_resumes_where_it_stopped, Fixture) {
  std::vector<Committed> committed = service.Emit(500, 11);
  {
    auto relay = Relay::Start(TestConfig(path, *kafka, log));
    BOOST_REQUIRE(WaitUntil(
        [&] { return CountState(path, "delivered") == 500; }, seconds(30)));
    BOOST_TEST(relay->Stop(seconds(5)));
  }
  std::vector<Committed> more = service.Emit(500, 11);
  committed.insert(committed.end(), more.begin(), more.end());
  auto relay = Relay::Start(TestConfig(path, *kafka, log));
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 1000; },
                          seconds(30)));
  BOOST_TEST(relay->Stop(seconds(5)));
  BOOST_TEST(relay->stats().reconciled_total == 0);
  CheckExactlyOnceInOrder(AuditTopic(committed, Topic()));
}

BOOST_FIXTURE_TEST_CASE(routes_send_types_to_their_topics, Fixture) {
  kafka->CreateTopic("auth-events", 2);
  RelayConfig config = TestConfig(path, *kafka, log);
  config.routes = {{"user.*", "auth-events"}};
  auto relay = Relay::Start(config);
  std::vector<Committed> committed = service.Emit(20, 4);
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 20; },
                          seconds(30)));
  relay->Stop(seconds(5));
  CheckExactlyOnceInOrder(
      AuditTopic(committed, testing::ReadTopic(kafka->bootstrap_servers(),
                                               "auth-events", seconds(30))));
  BOOST_TEST(Topic().empty());
}

BOOST_FIXTURE_TEST_CASE(binary_mode_puts_attributes_in_headers, Fixture) {
  RelayConfig config = TestConfig(path, *kafka, log);
  config.content_mode = ContentMode::kBinary;
  auto relay = Relay::Start(config);
  std::vector<Committed> committed = service.Emit(5, 5);
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 5; },
                          seconds(30)));
  relay->Stop(seconds(5));

  SQLite::Statement row(service.db(),
                        "SELECT payload FROM sigevents_outbox WHERE seq = ?");
  for (const ConsumedMessage& message : Topic()) {
    std::int64_t seq = std::stoll(message.headers.at(kSeqHeader));
    BOOST_TEST_CONTEXT("seq " << seq) {
      row.bind(1, seq);
      BOOST_REQUIRE(row.executeStep());
      boost::json::object stored =
          boost::json::parse(row.getColumn(0).getString()).as_object();
      row.reset();
      for (const char* attribute :
           {"id", "time", "type", "source", "specversion"}) {
        BOOST_TEST(message.headers.at(std::string("ce_") + attribute) ==
                   stored.at(attribute).as_string());
      }
      BOOST_TEST(message.headers.at("content-type") == "application/json");
      BOOST_TEST(boost::json::parse(message.value) == stored.at("data"));
    }
  }
}

BOOST_FIXTURE_TEST_CASE(retention_deletes_only_old_delivered_rows, Fixture) {
  RelayConfig config = TestConfig(path, *kafka, log);
  config.retention = milliseconds(300);
  // A failed row must survive retention however old it is.
  config.kafka["message.max.bytes"] = "4000";
  auto relay = Relay::Start(config);
  service.Emit(50, 5);
  Committed big = service.EmitOne("user-1", 6000);
  BOOST_REQUIRE(WaitUntil(
      [&] {
        return CountState(path, "delivered") == 0 &&
               CountState(path, "failed") == 1 &&
               CountState(path, "pending") == 0;
      },
      seconds(30)));
  BOOST_TEST(relay->stats().purged_total == 50);
  relay->Stop(seconds(5));
  BOOST_TEST(Topic().size() == 50u);
}

BOOST_FIXTURE_TEST_CASE(statistics_describe_the_relay_and_the_outbox, Fixture) {
  RelayConfig config = TestConfig(path, *kafka, log);
  auto relay = Relay::Start(config);
  service.Emit(30, 3);
  BOOST_REQUIRE(WaitUntil(
      [&] {
        RelayStats stats = relay->stats();
        return stats.delivered_total == 30 && stats.pending == 0;
      },
      seconds(30)));
  RelayStats stats = relay->stats();
  BOOST_TEST(RelayStateName(stats.state) == "connected");
  BOOST_TEST(stats.lease_held);
  BOOST_TEST(stats.lease_owner.find(":" + std::to_string(getpid()) + ":") !=
             std::string::npos);
  BOOST_TEST(stats.failed == 0);
  BOOST_TEST(stats.reconciled_total == 0);

  // Brokers away: events wait, and their age shows.
  kafka->SetAllBrokersDown(true);
  service.Emit(5, 5);
  BOOST_REQUIRE(WaitUntil(
      [&] {
        RelayStats now = relay->stats();
        return now.pending == 5 && now.oldest_pending_age_s >= 1.0;
      },
      seconds(30)));
  kafka->SetAllBrokersDown(false);
  BOOST_REQUIRE(WaitUntil([&] { return relay->stats().delivered_total == 35; },
                          seconds(30)));
  relay->Stop(seconds(5));
  BOOST_TEST(RelayStateName(relay->stats().state) == "stopped");
  BOOST_TEST(!relay->stats().lease_held);
}

// The path of the sigevents binary in the test's runfiles.
std::string SigeventsBinary() { return "adapters/sigevents"; }

pid_t Spawn(const std::vector<std::string>& args, const std::string& log_path,
            const std::string& stdin_path = "/dev/null") {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    freopen(stdin_path.c_str(), "r", stdin);
    freopen(log_path.c_str(), "a", stderr);
    freopen("/dev/null", "w", stdout);
    ExecInChild(args);
  }
  return pid;
}

std::int64_t LeasePid(const std::string& path) {
  auto db = OpenDatabase(path, OpenOptions{});
  SQLite::Statement query(*db,
                          "SELECT pid FROM sigevents_relay_lease"
                          " WHERE owner IS NOT NULL");
  return query.executeStep() ? query.getColumn(0).getInt64() : 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

BOOST_FIXTURE_TEST_CASE(standby_relay_takes_over_when_the_first_is_killed,
                        Fixture) {
  auto relay_args = [&] {
    return std::vector<std::string>{SigeventsBinary(),
                                    "relay",
                                    "--db",
                                    path,
                                    "--bootstrap-servers",
                                    kafka->bootstrap_servers(),
                                    "--lease",
                                    "3s",
                                    "--settle-delay",
                                    "100ms",
                                    "-X",
                                    "reconnect.backoff.max.ms=1000"};
  };
  std::string log_a = dir.File("relay-a.log"), log_b = dir.File("relay-b.log");
  pid_t a = Spawn(relay_args(), log_a);
  BOOST_REQUIRE(WaitUntil([&] { return LeasePid(path) == a; }, seconds(10)));
  pid_t b = Spawn(relay_args(), log_b);

  std::vector<Committed> committed;
  std::atomic<bool> two_holders{false};
  for (int i = 0; i < 300; ++i) {
    committed.push_back(service.EmitOne("user-" + std::to_string(i % 7)));
    std::int64_t holder = LeasePid(path);
    if (holder != a && holder != 0) two_holders = true;
  }
  BOOST_REQUIRE(
      WaitUntil([&] { return CountState(path, "pending") == 0; }, seconds(30)));
  BOOST_TEST(!two_holders.load());

  kill(a, SIGKILL);
  waitpid(a, nullptr, 0);
  for (int i = 0; i < 300; ++i) {
    committed.push_back(service.EmitOne("user-" + std::to_string(i % 7)));
  }
  // B finds A's process gone on this host and takes over without waiting
  // for the lease to expire.
  BOOST_REQUIRE(WaitUntil([&] { return LeasePid(path) == b; }, seconds(3)));
  BOOST_REQUIRE(
      WaitUntil([&] { return CountState(path, "pending") == 0; }, seconds(30)));
  kill(b, SIGTERM);
  int status = 0;
  waitpid(b, &status, 0);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);

  std::string b_said = ReadFile(log_b);
  BOOST_TEST(b_said.find("-> standby") != std::string::npos, b_said);
  BOOST_TEST(b_said.find("did not stop cleanly") != std::string::npos, b_said);
  CheckExactlyOnceInOrder(AuditTopic(committed, Topic()));
}

BOOST_FIXTURE_TEST_CASE(emitters_in_threads_and_processes_while_draining,
                        Fixture) {
  auto relay = Relay::Start(TestConfig(path, *kafka, log));

  // Two other processes emit through the command line.
  std::vector<pid_t> processes;
  for (int p = 0; p < 2; ++p) {
    std::string input = dir.File("input-" + std::to_string(p) + ".ndjson");
    std::ofstream lines(input);
    for (int i = 0; i < 500; ++i) {
      lines << R"({"type":"network.device.archived","data":{)"
            << R"("networkDeviceId":"switch-)" << p << "-" << i % 5
            << R"(","userIdAuthenticated":"7"}})"
            << "\n";
    }
    lines.close();
    processes.push_back(Spawn({SigeventsBinary(), "emit", "--db", path},
                              dir.File("emit.log"), input));
  }
  // And four threads of this process, each with its own connection.
  std::mutex mu;
  std::vector<Committed> committed;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      testing::Service own(path);
      own.db().setBusyTimeout(30000);
      for (int i = 0; i < 500; ++i) {
        Committed c =
            own.EmitOne("t" + std::to_string(t) + "-" + std::to_string(i % 5));
        std::lock_guard<std::mutex> lock(mu);
        committed.push_back(c);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (pid_t pid : processes) {
    int status = 0;
    waitpid(pid, &status, 0);
    BOOST_TEST(WEXITSTATUS(status) == 0);
  }
  // The command line's events, as committed, complete the expected set.
  SQLite::Statement rows(service.db(),
                         "SELECT seq, event_id, partition_key FROM"
                         " sigevents_outbox WHERE type ="
                         " 'network.device.archived'");
  while (rows.executeStep()) {
    committed.push_back(Committed{rows.getColumn(0).getInt64(),
                                  rows.getColumn(1).getString(),
                                  rows.getColumn(2).getString()});
  }
  BOOST_TEST(committed.size() == 3000u);
  BOOST_REQUIRE(WaitUntil([&] { return CountState(path, "delivered") == 3000; },
                          seconds(60)));
  relay->Stop(seconds(5));
  CheckExactlyOnceInOrder(AuditTopic(committed, Topic()));
}

}  // namespace
}  // namespace sigevents
