// The module's logging seam. The library never writes to stderr by itself:
// everything it has to say goes to a LogSink that the embedding service
// provides, at a level the service filters.
//
//   sigevents::LogSink sink = [](sigevents::LogLevel level,
//                                std::string_view message) {
//     my_logger.Log(ToMyLevel(level), message);
//   };
//
// Thread safety: a sink is called from the relay's threads, possibly several
// at once; it must be safe to call concurrently and must not call back into
// the relay.

#ifndef SIGEVENTS_OUTBOX_LOG_H_
#define SIGEVENTS_OUTBOX_LOG_H_

#include <functional>
#include <string>
#include <string_view>

namespace sigevents {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

using LogSink = std::function<void(LogLevel level, std::string_view message)>;

std::string_view LogLevelName(LogLevel level);

// A sink that drops everything: the default.
LogSink NullLogSink();

}  // namespace sigevents

#endif  // SIGEVENTS_OUTBOX_LOG_H_
