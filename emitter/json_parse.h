// JSON text to a boost::json::value, as boost::json::parse() makes it except
// that numbers with a fraction or an exponent are rounded correctly.
//
// Boost.JSON before 1.83 reads such numbers only approximately, off by one
// or more units in the last place (boostorg/json#599): "68e74" becomes
// 6.7999999999999994e75, not 6.8e75. An event would then publish a number
// other than the one its caller wrote, and one that does not even read back
// the same. Every parse of event data goes through here instead.
//
// A key repeated within one object is refused: Boost.JSON would keep the
// last value and drop the others without a word, so an event would publish
// data other than what its caller meant.
//
//   sigevents::JsonError error;
//   boost::json::value data = sigevents::ParseJson(text, 17, error);
//   if (error) ... error.message says what is wrong ("too deep",
//                  "duplicate key \"userId\"", ...)
//
// Thread safety: a pure function; safe from any thread.

#ifndef SIGEVENTS_EMITTER_JSON_PARSE_H_
#define SIGEVENTS_EMITTER_JSON_PARSE_H_

#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <string>
#include <string_view>

namespace sigevents {

// The errors ParseJson adds to boost::json::error.
enum class JsonParseErrc {
  kDuplicateKey = 1,  // a key appears twice in one object
};

boost::system::error_code MakeErrorCode(JsonParseErrc errc);

// Why ParseJson refused a text.
struct JsonError {
  // A boost::json::error, or a JsonParseErrc; empty when the text was read.
  boost::system::error_code code;
  // The same for people: code's message, with the key for a duplicate.
  std::string message;

  explicit operator bool() const { return static_cast<bool>(code); }
};

// Strict JSON (no comments, no trailing commas, well-formed UTF-8, no key
// twice in an object), at most `max_depth` arrays and objects deep. A
// number beyond the range of a double is an error (exponent_overflow), not
// infinity. On error, fills `error` and returns null.
boost::json::value ParseJson(std::string_view text, std::size_t max_depth,
                             JsonError& error);

}  // namespace sigevents

#endif  // SIGEVENTS_EMITTER_JSON_PARSE_H_
