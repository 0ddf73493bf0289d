// `sigevents demo`, run as a real process against real Kafka (embedded, or
// one this test starts and tampers with), and the tally that judges it.

#define BOOST_TEST_MODULE demo_test
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/demo_tally.h"
#include "adapters/embedded_kafka.h"
#include "adapters/kafka.h"
#include "adapters/topic_consumer.h"
#include "emitter/envelope.h"
#include "emitter/events.h"
#include "tests/test_util.h"

namespace sigevents::demo {
namespace {

using Clock = std::chrono::steady_clock;
using testing::ExecInChild;
using testing::ScratchDir;

// ---- The tally
// ---------------------------------------------------------------

Event Suspension(const std::string& user_id) {
  return events::UserSuspended()
      .userId(user_id)
      .userEmail("user@example.com")
      .loggedInUserId("1")
      .loggedInUserEmail("admin@example.com")
      .message("User suspended due to policy violation")
      .Build();
}

ConsumedMessage MessageOf(const Event& event, const std::string& id,
                          const std::string& outbox) {
  ConsumedMessage message;
  message.key = event.key();
  EventStamp stamp = NewEventStamp();
  stamp.id = id;
  message.value = SerializeEnvelope(event, stamp);
  message.headers = {{kOutboxHeader, outbox}, {kSeqHeader, "1"}};
  message.received_at = Clock::now();
  return message;
}

BOOST_AUTO_TEST_CASE(tally_judges_every_kind_of_arrival) {
  struct Case {
    const char* name;
    bool commit;         // else roll back
    int copies;          // messages of the event that arrive
    bool alter;          // the data that arrives differs
    const char* outbox;  // header of the arriving copies
    Arrival last;        // what the last copy is judged to be
    std::int64_t emitted, received, duplicated, lost, rolled_back, leaked;
    bool ok;
  };
  const Case cases[] = {
      {"once", true, 1, false, "ob", Arrival::kFirst, 1, 1, 0, 0, 0, 0, true},
      {"twice", true, 2, false, "ob", Arrival::kDuplicate, 1, 1, 1, 0, 0, 0,
       false},
      {"never", true, 0, false, "ob", Arrival::kFirst, 1, 0, 0, 1, 0, 0, false},
      {"rolled back, absent", false, 0, false, "ob", Arrival::kFirst, 0, 0, 0,
       0, 1, 0, true},
      {"rolled back, received", false, 1, false, "ob", Arrival::kRolledBack, 0,
       0, 0, 0, 1, 1, false},
      {"altered", true, 1, true, "ob", Arrival::kMismatch, 1, 1, 0, 0, 0, 0,
       false},
      {"another outbox's", true, 1, false, "other", Arrival::kForeign, 1, 0, 0,
       1, 0, 0, false},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT("case " << c.name) {
      Tally tally;
      tally.AddOutbox("ob");
      Event event = Suspension("42");
      tally.Emitted("id-1", event);
      if (c.commit) {
        tally.Committed({"id-1"});
      } else {
        tally.RolledBack({"id-1"});
      }
      Arrival last = Arrival::kFirst;
      for (int i = 0; i < c.copies; ++i) {
        ConsumedMessage message =
            MessageOf(c.alter ? Suspension("43") : event, "id-1", c.outbox);
        if (c.alter) message.key = "42";
        last = tally.Received(message);
      }
      BOOST_TEST(static_cast<int>(last) == static_cast<int>(c.last));
      Totals totals = tally.totals();
      BOOST_TEST(totals.emitted == c.emitted);
      BOOST_TEST(totals.received == c.received);
      BOOST_TEST(totals.duplicated == c.duplicated);
      BOOST_TEST(totals.lost == c.lost);
      BOOST_TEST(totals.rolled_back == c.rolled_back);
      BOOST_TEST(totals.leaked == c.leaked);
      BOOST_TEST(tally.Ok() == c.ok);
      TypeCounts row =
          tally.ByType()[static_cast<int>(EventType::kUserSuspended)];
      BOOST_TEST(row.emitted == c.emitted);
      BOOST_TEST(row.lost == c.lost);
    }
  }
}

BOOST_AUTO_TEST_CASE(tally_knows_no_unknown_ids_and_waits_for_open_ones) {
  Tally tally;
  tally.AddOutbox("ob");
  Event event = Suspension("7");
  BOOST_TEST(static_cast<int>(tally.Received(MessageOf(event, "nope", "ob"))) ==
             static_cast<int>(Arrival::kUnknown));
  BOOST_TEST(!tally.Ok());

  // Received before the service heard its commit returned: still first.
  Tally early;
  early.AddOutbox("ob");
  early.Emitted("id-2", event);
  BOOST_TEST(!early.AllReceived());
  BOOST_TEST(static_cast<int>(early.Received(MessageOf(event, "id-2", "ob"))) ==
             static_cast<int>(Arrival::kFirst));
  early.Committed({"id-2"});
  BOOST_TEST(early.AllReceived());
  BOOST_TEST(early.Ok());
}

BOOST_AUTO_TEST_CASE(percentile_is_nearest_rank) {
  std::vector<double> values = {5, 1, 4, 2, 3, 6, 7, 8, 9, 10};
  BOOST_TEST(Percentile(values, 0.5) == 5);
  BOOST_TEST(Percentile(values, 0.99) == 10);
  BOOST_TEST(Percentile(values, 0.1) == 1);
  std::vector<double> none;
  BOOST_TEST(Percentile(none, 0.5) == 0);
}

// ---- The command, as a process
// -------------------------------------------------

struct Finished {
  int status = -1;  // exit status, or -1 when killed
  std::string out;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A `sigevents` process with its output in files of `dir`.
class Process {
 public:
  Process(const ScratchDir& dir, const std::vector<std::string>& args)
      : out_(dir.File("out.txt")), err_(dir.File("err.txt")) {
    const std::string binary = "adapters/sigevents";
    BOOST_REQUIRE_MESSAGE(access(binary.c_str(), X_OK) == 0,
                          binary + " is missing from the runfiles");
    std::vector<std::string> argv = {binary};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int out = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int in = open("/dev/null", O_RDONLY);
      dup2(in, 0);
      dup2(out, 1);
      dup2(err, 2);
      ExecInChild(argv);
    }
  }

  ~Process() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Waits for the exit; kills the process after `timeout`.
  Finished Wait(std::chrono::seconds timeout) {
    Finished finished;
    Clock::time_point deadline = Clock::now() + timeout;
    int status = 0;
    while (true) {
      pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) break;
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    pid_ = -1;
    finished.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    finished.out = ReadAll(out_);
    finished.err = ReadAll(err_);
    return finished;
  }

 private:
  std::string out_;
  std::string err_;
  pid_t pid_ = -1;
};

// One row of the summary table: the numbers after the type's name.
struct Row {
  long long emitted = -1, received = -1, duplicated = -1, lost = -1,
            rolled_back = -1;
  double p50 = -1, p99 = -1;
};

std::map<std::string, Row> SummaryRows(const std::string& out) {
  std::map<std::string, Row> rows;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string name;
    Row row;
    if (fields >> name >> row.emitted >> row.received >> row.duplicated >>
        row.lost >> row.rolled_back >> row.p50 >> row.p99) {
      std::string extra;
      if (!(fields >> extra)) rows[name] = row;
    }
  }
  return rows;
}

// The lines "12:34:56.789  server.registered  123  ..." that show an event
// as it arrives.
int EventLines(const std::string& out) {
  int lines = 0;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > 14 && line[2] == ':' && line[5] == ':' &&
        line[8] == '.' && line.compare(12, 2, "  ") == 0 &&
        FindEventSpec(line.substr(14, line.find(' ', 14) - 14)) != nullptr) {
      ++lines;
    }
  }
  return lines;
}

BOOST_AUTO_TEST_CASE(demo_delivers_every_type_exactly_once) {
  ScratchDir dir;
  Process demo(dir, {"demo", "--events", "500", "--quiet"});
  Finished finished = demo.Wait(std::chrono::seconds(120));
  BOOST_TEST_INFO("stdout:\n" << finished.out << "\nstderr:\n" << finished.err);
  BOOST_TEST(finished.status == 0);

  std::map<std::string, Row> rows = SummaryRows(finished.out);
  for (std::size_t i = 0; i < EventTypeCount(); ++i) {
    std::string type(EventSpecs()[i].type);
    BOOST_TEST_CONTEXT("type " << type) {
      BOOST_REQUIRE(rows.count(type) == 1);
      const Row& row = rows[type];
      BOOST_TEST(row.emitted > 0);
      BOOST_TEST(row.received == row.emitted);
      BOOST_TEST(row.duplicated == 0);
      BOOST_TEST(row.lost == 0);
      BOOST_TEST(row.p99 >= row.p50);
    }
  }
  BOOST_REQUIRE(rows.count("total") == 1);
  BOOST_TEST(rows["total"].emitted == 500);
  BOOST_TEST(rows["total"].received == 500);
  BOOST_TEST(rows["total"].rolled_back >= 3);  // one per service's tour
  BOOST_TEST(finished.out.find("result: OK") != std::string::npos);
  // --quiet: no event lines, no progress.
  BOOST_TEST(finished.out.find("-- ") == std::string::npos);
  BOOST_TEST(EventLines(finished.out) == 0);
}

BOOST_AUTO_TEST_CASE(demo_prints_each_event_as_it_arrives) {
  ScratchDir dir;
  Process demo(dir, {"demo", "--events", "120", "--rate", "0", "--dir",
                     dir.File("dbs")});
  Finished finished = demo.Wait(std::chrono::seconds(120));
  BOOST_TEST_INFO("stdout:\n" << finished.out << "\nstderr:\n" << finished.err);
  BOOST_TEST(finished.status == 0);

  BOOST_TEST(EventLines(finished.out) == 120);
  // --dir keeps the databases, with every event delivered.
  BOOST_TEST(ReadAll(dir.File("dbs/auth.db")).size() > 0);
  BOOST_TEST(finished.out.find("the databases stay in") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(demo_refuses_too_few_events_to_show_every_type) {
  ScratchDir dir;
  Finished finished =
      Process(dir, {"demo", "--events", "10"}).Wait(std::chrono::seconds(60));
  BOOST_TEST(finished.status == 2);
  BOOST_TEST(finished.err.find("--events must be at least") !=
             std::string::npos);
}

// ---- Tampering with Kafka: the demo must notice
// ---------------------------------

// Reads the first message of `topic` from any partition and writes an exact
// copy of it (key, value, headers) to the same partition.
void DuplicateFirstMessage(const std::string& servers,
                           const std::string& topic) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", servers.c_str(), error,
                    sizeof(error));
  rd_kafka_conf_set(conf, "group.id", "demo-test", error, sizeof(error));
  rd_kafka_t* consumer =
      rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
  BOOST_REQUIRE(consumer != nullptr);
  rd_kafka_topic_partition_list_t* all = rd_kafka_topic_partition_list_new(4);
  for (int p = 0; p < 4; ++p) {
    rd_kafka_topic_partition_list_add(all, topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(consumer, all);
  rd_kafka_topic_partition_list_destroy(all);
  rd_kafka_message_t* message = nullptr;
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    message = rd_kafka_consumer_poll(consumer, 100);
    if (message != nullptr && message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      break;
    }
    if (message != nullptr) rd_kafka_message_destroy(message);
    message = nullptr;
  }
  BOOST_REQUIRE_MESSAGE(message != nullptr, "no message on " + topic);

  rd_kafka_conf_t* producer_conf = rd_kafka_conf_new();
  rd_kafka_conf_set(producer_conf, "bootstrap.servers", servers.c_str(), error,
                    sizeof(error));
  rd_kafka_t* producer =
      rd_kafka_new(RD_KAFKA_PRODUCER, producer_conf, error, sizeof(error));
  BOOST_REQUIRE(producer != nullptr);
  rd_kafka_headers_t* headers = nullptr;
  rd_kafka_message_headers(message, &headers);
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer, RD_KAFKA_V_TOPIC(topic.c_str()),
      RD_KAFKA_V_PARTITION(message->partition),
      RD_KAFKA_V_KEY(message->key, message->key_len),
      RD_KAFKA_V_VALUE(message->payload, message->len),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_HEADERS(rd_kafka_headers_copy(headers)), RD_KAFKA_V_END);
  BOOST_REQUIRE(err == RD_KAFKA_RESP_ERR_NO_ERROR);
  BOOST_REQUIRE(rd_kafka_flush(producer, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(producer);
  rd_kafka_message_destroy(message);
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
}

BOOST_AUTO_TEST_CASE(demo_fails_when_an_event_arrives_twice) {
  ScratchDir dir;
  auto kafka = EmbeddedKafka::Start({});
  Process demo(dir, {"demo", "--events", "200", "--rate", "50", "--quiet",
                     "--bootstrap-servers", kafka->bootstrap_servers()});
  DuplicateFirstMessage(kafka->bootstrap_servers(), "significant-events");
  Finished finished = demo.Wait(std::chrono::seconds(120));
  BOOST_TEST_INFO("stdout:\n" << finished.out << "\nstderr:\n" << finished.err);
  BOOST_TEST(finished.status == 1);
  std::map<std::string, Row> rows = SummaryRows(finished.out);
  BOOST_TEST(rows["total"].duplicated == 1);
  BOOST_TEST(rows["total"].lost == 0);
  BOOST_TEST(finished.out.find("DUPLICATE ") != std::string::npos);
  BOOST_TEST(finished.out.find("result: FAILED") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(demo_fails_when_kafka_refuses_events) {
  ScratchDir dir;
  auto kafka = EmbeddedKafka::Start({});
  // Kafka refuses the first produce requests for good (message too
  // large): the relay marks those rows failed and they never arrive.
  kafka->PushRequestErrors(/*Produce=*/0, /*MESSAGE_TOO_LARGE=*/10, 2);
  Process demo(dir, {"demo", "--events", "100", "--quiet", "--wait", "20s",
                     "--bootstrap-servers", kafka->bootstrap_servers()});
  Finished finished = demo.Wait(std::chrono::seconds(120));
  BOOST_TEST_INFO("stdout:\n" << finished.out << "\nstderr:\n" << finished.err);
  BOOST_TEST(finished.status == 1);
  std::map<std::string, Row> rows = SummaryRows(finished.out);
  BOOST_TEST(rows["total"].lost > 0);
  BOOST_TEST(rows["total"].received + rows["total"].lost == 100);
  BOOST_TEST(rows["total"].duplicated == 0);
  BOOST_TEST(finished.out.find("result: FAILED") != std::string::npos);

  // What was lost is what the relays marked failed.
  long long failed = 0;
  std::istringstream lines(finished.out);
  for (std::string line; std::getline(lines, line);) {
    std::size_t at = line.find("; relay delivered ");
    std::size_t comma = line.find(", failed ", at);
    if (at != std::string::npos && comma != std::string::npos) {
      failed += std::stoll(line.substr(comma + 9));
    }
  }
  BOOST_TEST(failed == rows["total"].lost);
}

}  // namespace
}  // namespace sigevents::demo
