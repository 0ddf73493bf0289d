#include "emitter/json_parse.h"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/value_stack.hpp>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

namespace sigevents {
namespace {

namespace json = boost::json;
using boost::system::error_code;

// The handler of boost::json::parser (it builds the value on a value_stack),
// except for doubles, which it reads again from their text.
class Handler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  Handler() { stack_.reset(); }

  json::value Release() { return stack_.release(); }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) { return true; }
  bool on_object_end(std::size_t n, error_code&) {
    stack_.push_object(n);
    return true;
  }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t n, error_code&) {
    stack_.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code&) {
    stack_.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, error_code&) {
    stack_.push_string(s);
    return true;
  }
  // A number split across writes comes in parts before its last one.
  bool on_number_part(json::string_view s, error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, error_code&) {
    number_.clear();
    stack_.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, error_code&) {
    number_.clear();
    stack_.push_uint64(u);
    return true;
  }
  // `approx` is Boost.JSON's reading, close to the number but not exact.
  bool on_double(double approx, json::string_view s, error_code& ec) {
    number_.append(s.data(), s.size());
    double d = 0;
    // std::from_chars rounds correctly and ignores the locale.
    auto [end, error] =
        std::from_chars(number_.data(), number_.data() + number_.size(), d);
    if (error == std::errc::result_out_of_range) {
      // Too small for a double: zero, as the text's sign says. Too large:
      // refused, since no double says what the caller wrote.
      if (std::abs(approx) >= 1) {
        ec = json::error::exponent_overflow;
        return false;
      }
      d = number_[0] == '-' ? -0.0 : 0.0;
    } else if (error != std::errc() || end != number_.data() + number_.size()) {
      ec = json::error::syntax;  // cannot happen: the parser checked it
      return false;
    }
    number_.clear();
    stack_.push_double(d);
    return true;
  }
  bool on_bool(bool b, error_code&) {
    stack_.push_bool(b);
    return true;
  }
  bool on_null(error_code&) {
    stack_.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

 private:
  json::value_stack stack_;
  std::string number_;
};

}  // namespace

json::value ParseJson(std::string_view text, std::size_t max_depth,
                      error_code& ec) {
  json::parse_options options;
  options.max_depth = max_depth;
  json::basic_parser<Handler> parser(options);
  std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = json::error::extra_data;
  if (ec) return nullptr;
  return parser.handler().Release();
}

}  // namespace sigevents
