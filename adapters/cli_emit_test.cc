// `sigevents emit` as a process: lines are emitted as they arrive on a pipe
// that stays open, each id printed once its transaction commits; bad lines
// are reported with their number while the good ones commit.

#define BOOST_TEST_MODULE cli_emit_test
#include <SQLiteCpp/SQLiteCpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace sigevents {
namespace {

using testing::ExecInChild;
using testing::ScratchDir;

const char kGoodLine[] =
    R"({"type":"network.device.archived","data":{"networkDeviceId":"sw-1",)"
    R"("userIdAuthenticated":"7"}})";

// A child process running `sigevents emit` with pipes on its standard
// input and output, and its standard error in a file.
class EmitProcess {
 public:
  EmitProcess(const std::vector<std::string>& args,
              const std::string& stderr_path) {
    int in[2], out[2];
    BOOST_REQUIRE(pipe(in) == 0 && pipe(out) == 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      freopen(stderr_path.c_str(), "w", stderr);
      close(in[1]);
      close(out[0]);
      ExecInChild(args);
    }
    close(in[0]);
    close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
  }

  ~EmitProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }

  void Write(const std::string& text) {
    BOOST_REQUIRE(write(to_child_, text.data(), text.size()) ==
                  static_cast<ssize_t>(text.size()));
  }

  // One line of the child's output, or "" when none comes in time.
  std::string ReadLine(int timeout_ms) {
    while (true) {
      std::size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      pollfd fd{from_child_, POLLIN, 0};
      if (poll(&fd, 1, timeout_ms) <= 0) return "";
      char chunk[4096];
      ssize_t n = read(from_child_, chunk, sizeof(chunk));
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void CloseInput() {
    close(to_child_);
    to_child_ = -1;
  }

  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffer_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> OutboxIds(const std::string& path) {
  SQLite::Database db(path);
  SQLite::Statement query(db,
                          "SELECT event_id FROM sigevents_outbox"
                          " ORDER BY seq");
  std::vector<std::string> ids;
  while (query.executeStep()) ids.push_back(query.getColumn(0).getString());
  return ids;
}

BOOST_AUTO_TEST_CASE(lines_on_an_open_pipe_commit_as_they_arrive) {
  ScratchDir dir;
  std::string db = dir.File("service.db");
  EmitProcess emit({"adapters/sigevents", "emit", "--db", db, "--batch", "50"},
                   dir.File("stderr"));

  // Each id comes back while the pipe is still open, although the batch is
  // not full: a partial batch commits when input pauses.
  std::vector<std::string> printed;
  for (int i = 0; i < 3; ++i) {
    emit.Write(std::string(kGoodLine) + "\n");
    std::string id = emit.ReadLine(10000);
    BOOST_TEST_REQUIRE(id.size() == 36u, "no id for line " << i + 1);
    printed.push_back(id);
    BOOST_TEST(OutboxIds(db).size() == printed.size());
  }

  emit.Write("{\"type\":\"network.device.archived\"}\n");
  emit.Write("not json\n");
  emit.Write(std::string(kGoodLine) + "\n");
  printed.push_back(emit.ReadLine(10000));
  emit.CloseInput();
  BOOST_TEST(emit.ReadLine(10000) == "");
  BOOST_TEST(emit.Wait() == 1);

  BOOST_TEST(OutboxIds(db) == printed, boost::test_tools::per_element());
  std::string errors = ReadFile(dir.File("stderr"));
  BOOST_TEST(errors.find("line 4: event \"network.device.archived\": missing "
                         "\"data\" object") != std::string::npos,
             errors);
  BOOST_TEST(errors.find("line 5: not valid JSON") != std::string::npos,
             errors);
}

BOOST_AUTO_TEST_CASE(batches_and_single_events) {
  ScratchDir dir;
  std::string db = dir.File("service.db");
  {
    EmitProcess emit({"adapters/sigevents", "emit", "--db", db, "--batch", "3"},
                     dir.File("stderr"));
    std::string lines;
    for (int i = 0; i < 7; ++i) lines += std::string(kGoodLine) + "\n";
    emit.Write(lines);
    emit.CloseInput();
    int printed = 0;
    while (emit.ReadLine(10000).size() == 36u) ++printed;
    BOOST_TEST(printed == 7);
    BOOST_TEST(emit.Wait() == 0);
  }
  {
    EmitProcess emit({"adapters/sigevents", "emit", "--db", db, "--type",
                      "user.archived", "--data",
                      R"({"userId":"9","userEmail":"a@b","loggedInUserId":"1",)"
                      R"("loggedInUserEmail":"c@d","message":"archived"})"},
                     dir.File("stderr"));
    emit.CloseInput();
    BOOST_TEST(emit.ReadLine(10000).size() == 36u);
    BOOST_TEST(emit.Wait() == 0);
  }
  BOOST_TEST(OutboxIds(db).size() == 8u);
}

}  // namespace
}  // namespace sigevents
