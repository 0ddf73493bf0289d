// The CloudEvents 1.0 envelope of a significant event, exactly as the
// specification publishes it: the members id, time, type, source,
// specversion, datacontenttype and data, in that order, as compact UTF-8
// JSON.
//
//   sigevents::EventStamp stamp = sigevents::NewEventStamp();
//   std::string json = sigevents::SerializeEnvelope(event, stamp);
//
// Thread safety: all functions may be called from any thread.
// NewEventStamp() serializes callers briefly on one mutex.

#ifndef SIGEVENTS_EMITTER_ENVELOPE_H_
#define SIGEVENTS_EMITTER_ENVELOPE_H_

#include <cstdint>
#include <string>

#include "emitter/event.h"

namespace sigevents {

// The identity and time of one event. `id` is a UUID version 7 (RFC 9562)
// whose timestamp is `unix_ms`; ids made by one process are strictly
// increasing, even within one millisecond.
struct EventStamp {
  std::string id;  // "0193a5c2-7f1e-7d3a-9b2c-4e5f6a7b8c9d"
  std::string
      time;  // RFC 3339 UTC with milliseconds: "2025-01-01T12:00:00.000Z"
  std::int64_t unix_ms = 0;
};

EventStamp NewEventStamp();

// "2025-01-01T12:00:00.000Z" for the given milliseconds since the Unix epoch.
std::string FormatRfc3339Millis(std::int64_t unix_ms);

std::string SerializeEnvelope(const Event& event, const EventStamp& stamp);

}  // namespace sigevents

#endif  // SIGEVENTS_EMITTER_ENVELOPE_H_
