// Fuzzes the dynamic emit path: Event::FromJson(type, data_json), then the
// envelope. An input is the type name, a NUL byte, then the data's JSON
// text (no NUL: all of it is the type, and the data is empty). The data's
// text also checks ParseJson against boost::json::parse.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "tests/fuzz/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes,
                                      std::size_t size) {
  using namespace sigevents;
  std::string_view input(reinterpret_cast<const char*>(bytes), size);
  std::size_t nul = input.find('\0');
  std::string_view type = input.substr(0, nul);
  std::string_view data =
      nul == std::string_view::npos ? "" : input.substr(nul + 1);

  fuzz::CheckParseJson(data);

  std::optional<Event> event;
  try {
    event.emplace(Event::FromJson(type, data));
  } catch (const EventError& e) {
    fuzz::CheckErrorMessage(e.what());
    return 0;
  }
  fuzz::Check(event->type() == type, "event has another type");
  fuzz::CheckEvent(*event);
  return 0;
}
