// JSON text to a boost::json::value, as boost::json::parse() makes it except
// that numbers with a fraction or an exponent are rounded correctly.
//
// Boost.JSON before 1.83 reads such numbers only approximately, off by one
// or more units in the last place (boostorg/json#599): "68e74" becomes
// 6.7999999999999994e75, not 6.8e75. An event would then publish a number
// other than the one its caller wrote, and one that does not even read back
// the same. Every parse of event data goes through here instead.
//
//   boost::system::error_code ec;
//   boost::json::value data = sigevents::ParseJson(text, 17, ec);
//   if (ec) ... ec.message() says what is wrong ("too deep", ...)
//
// Thread safety: a pure function; safe from any thread.

#ifndef SIGEVENTS_EMITTER_JSON_PARSE_H_
#define SIGEVENTS_EMITTER_JSON_PARSE_H_

#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <string_view>

namespace sigevents {

// Strict JSON (no comments, no trailing commas, well-formed UTF-8), at most
// `max_depth` arrays and objects deep. A number beyond the range of a double
// is an error (exponent_overflow), not infinity. On error, sets `ec` and
// returns null.
boost::json::value ParseJson(std::string_view text, std::size_t max_depth,
                             boost::system::error_code& ec);

}  // namespace sigevents

#endif  // SIGEVENTS_EMITTER_JSON_PARSE_H_
