// UTF-8 well-formedness, as RFC 3629 defines it: no overlong forms, no
// surrogates, nothing above U+10FFFF. Pure functions; safe from any thread.

#ifndef SIGEVENTS_EMITTER_UTF8_H_
#define SIGEVENTS_EMITTER_UTF8_H_

#include <cstddef>
#include <string_view>

namespace sigevents {

// The byte offset of the first ill-formed sequence in `text`, or
// std::string_view::npos when all of it is well-formed UTF-8.
std::size_t FindInvalidUtf8(std::string_view text);

inline bool IsValidUtf8(std::string_view text) {
  return FindInvalidUtf8(text) == std::string_view::npos;
}

}  // namespace sigevents

#endif  // SIGEVENTS_EMITTER_UTF8_H_
