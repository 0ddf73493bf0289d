// Fuzzes the line parser of `sigevents emit`: any bytes give an event or a
// one-line reason, and an event read from a line reads the same when its
// own line is written and read again.

#include <boost/json/serialize.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/ndjson.h"
#include "tests/fuzz/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes,
                                      std::size_t size) {
  using namespace sigevents;
  std::string_view line(reinterpret_cast<const char*>(bytes), size);
  std::string error;
  std::optional<Event> event = ParseEventLine(line, error);
  if (!event) {
    fuzz::CheckErrorMessage(error);
    return 0;
  }
  fuzz::CheckEvent(*event);

  boost::json::object rewritten{{"type", event->type()},
                                {"data", event->data()}};
  std::string again_error;
  std::optional<Event> again =
      ParseEventLine(boost::json::serialize(rewritten), again_error);
  fuzz::Check(again.has_value(), "the event's own line is refused");
  fuzz::Check(again->type() == event->type() && again->data() == event->data(),
              "the event's own line reads differently");
  return 0;
}
