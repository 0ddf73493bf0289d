#include "outbox/log.h"

namespace sigevents {

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

LogSink NullLogSink() {
  return [](LogLevel, std::string_view) {};
}

}  // namespace sigevents
