// UTF-8 well-formedness, as RFC 3629 defines it: no overlong forms, no
// surrogates, nothing above U+10FFFF; and untrusted text made safe to quote
// in an error message. Pure functions; safe from any thread.

#ifndef SIGEVENTS_EMITTER_UTF8_H_
#define SIGEVENTS_EMITTER_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace sigevents {

// The byte offset of the first ill-formed sequence in `text`, or
// std::string_view::npos when all of it is well-formed UTF-8.
std::size_t FindInvalidUtf8(std::string_view text);

inline bool IsValidUtf8(std::string_view text) {
  return FindInvalidUtf8(text) == std::string_view::npos;
}

// The longest untrusted text (a type name, field name or entity id) that an
// error message shows in full.
constexpr std::size_t kMaxShownBytes = 120;

// `text` as an error message shows it between double quotes, so that the
// message stays one short line whatever the input: double quotes,
// backslashes and control characters are escaped as JSON escapes them (a
// newline becomes backslash-n, NUL becomes backslash-u0000), text longer
// than kMaxShownBytes is cut at a character boundary and ends in "...", and
// ill-formed UTF-8 is shown as "(invalid UTF-8)".
std::string EscapeForMessage(std::string_view text);

}  // namespace sigevents

#endif  // SIGEVENTS_EMITTER_UTF8_H_
