#include "emitter/json_parse.h"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/value_stack.hpp>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "emitter/utf8.h"

namespace sigevents {
namespace {

namespace json = boost::json;
using boost::system::error_code;

class JsonParseCategory : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "sigevents.json"; }
  std::string message(int value) const override {
    switch (static_cast<JsonParseErrc>(value)) {
      case JsonParseErrc::kDuplicateKey:
        return "duplicate key";
    }
    return "unknown error";
  }
};

// The handler of boost::json::parser (it builds the value on a value_stack),
// except for doubles, which it reads again from their text, and for keys,
// which it refuses twice in one object.
class Handler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  Handler() { stack_.reset(); }

  json::value Release() { return stack_.release(); }

  // The key that was refused as a duplicate, if one was.
  const std::string& duplicate_key() const { return duplicate_key_; }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    // One set per depth, reused to save allocations; but clear() costs as
    // much as the set's buckets, so a set grown by a wide object is
    // replaced, or many small objects after it would each pay for it.
    if (depth_ == keys_.size()) keys_.emplace_back();
    std::unordered_set<std::string>& keys = keys_[depth_++];
    if (keys.bucket_count() > 64) {
      keys = std::unordered_set<std::string>();
    } else {
      keys.clear();
    }
    return true;
  }
  bool on_object_end(std::size_t n, error_code&) {
    --depth_;
    stack_.push_object(n);
    return true;
  }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t n, error_code&) {
    stack_.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    key_.append(s.data(), s.size());
    stack_.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code& ec) {
    key_.append(s.data(), s.size());
    if (!keys_[depth_ - 1].insert(key_).second) {
      duplicate_key_ = std::move(key_);
      ec = MakeErrorCode(JsonParseErrc::kDuplicateKey);
      return false;
    }
    key_.clear();
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
  std::string key_;  // the key being read, when it comes in parts
  // The keys seen in each object open at depth 0, 1, ...
  std::vector<std::unordered_set<std::string>> keys_;
  std::size_t depth_ = 0;
  std::string duplicate_key_;
};

}  // namespace

boost::system::error_code MakeErrorCode(JsonParseErrc errc) {
  static const JsonParseCategory category;
  return {static_cast<int>(errc), category};
}

json::value ParseJson(std::string_view text, std::size_t max_depth,
                      JsonError& error) {
  json::parse_options options;
  options.max_depth = max_depth;
  json::basic_parser<Handler> parser(options);
  error_code& ec = error.code;
  ec.clear();
  std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = json::error::extra_data;
  if (!ec) {
    error.message.clear();
    return parser.handler().Release();
  }
  error.message = ec.message();
  if (ec == MakeErrorCode(JsonParseErrc::kDuplicateKey)) {
    error.message +=
        " \"" + EscapeForMessage(parser.handler().duplicate_key()) + "\"";
  }
  return nullptr;
}

}  // namespace sigevents
