// The line format of `sigevents emit`: newline-delimited JSON, one event per
// line as {"type": "user.created", "data": {...}}. Lines come from whatever
// the operator pipes in, so any bytes give either a validated Event or a
// one-line reason, never an exception for bad input.
//
//   std::string error;
//   std::optional<sigevents::Event> event =
//       sigevents::ParseEventLine(line, error);
//   if (!event) std::cerr << "line " << n << ": " << error << "\n";
//
// Thread safety: a pure function; safe from any thread.

#ifndef SIGEVENTS_ADAPTERS_NDJSON_H_
#define SIGEVENTS_ADAPTERS_NDJSON_H_

#include <optional>
#include <string>
#include <string_view>

#include "emitter/event.h"

namespace sigevents {

// The event of one line (without its newline), or std::nullopt with `error`
// set to why not: not JSON, not an object, a member other than "type" and
// "data", or any EventError of Event::FromJson. Nesting deeper than
// Event::kMaxDepth is refused while parsing, so deep input cannot exhaust
// the stack.
std::optional<Event> ParseEventLine(std::string_view line, std::string& error);

}  // namespace sigevents

#endif  // SIGEVENTS_ADAPTERS_NDJSON_H_
