// Helpers shared by the tests: scratch directories, starting programs and
// reading test data.
// Not thread-safe unless a function says so.

#ifndef SIGEVENTS_TESTS_TEST_UTIL_H_
#define SIGEVENTS_TESTS_TEST_UTIL_H_

#include <string>
#include <vector>

namespace sigevents::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp), removed with its contents
// when the object is destroyed.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const;

 private:
  std::string path_;
};

// In a forked child: replaces the process with the program args[0], given
// `args` as its argv. Exits with status 127 if that cannot be done.
[[noreturn]] void ExecInChild(const std::vector<std::string>& args);

// The lines of a file of the workspace, e.g. "tests/testdata/x.ndjson".
std::vector<std::string> ReadWorkspaceLines(const std::string& relative);

}  // namespace sigevents::testing

#endif  // SIGEVENTS_TESTS_TEST_UTIL_H_
