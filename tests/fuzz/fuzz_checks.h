// The invariants the fuzz targets check on whatever the parsers return. A
// broken invariant prints what broke and aborts, which libFuzzer reports as
// a crash and saves the input for.

#ifndef SIGEVENTS_TESTS_FUZZ_FUZZ_CHECKS_H_
#define SIGEVENTS_TESTS_FUZZ_FUZZ_CHECKS_H_

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "emitter/envelope.h"
#include "emitter/event.h"
#include "emitter/json_parse.h"
#include "emitter/utf8.h"

namespace sigevents::fuzz {

inline void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

// Error messages are logged by services: one line of well-formed UTF-8, of
// bounded length whatever the input's size.
inline void CheckErrorMessage(std::string_view message) {
  Check(!message.empty(), "error message is empty");
  Check(IsValidUtf8(message), "error message is not valid UTF-8");
  Check(message.size() < 2048, "error message is longer than 2 KiB");
  for (char c : message) {
    Check(static_cast<unsigned char>(c) >= 0x20,
          "error message holds a "
          "control character");
  }
}

inline bool HasShape(Shape shape, const boost::json::value& value) {
  switch (shape) {
    case Shape::kString:
      return value.is_string();
    case Shape::kStringArray:
      if (!value.is_array()) return false;
      for (const auto& item : value.get_array()) {
        if (!item.is_string()) return false;
      }
      return true;
    case Shape::kObjectArray:
      if (!value.is_array()) return false;
      for (const auto& item : value.get_array()) {
        if (!item.is_object()) return false;
      }
      return true;
    case Shape::kObject:
      return value.is_object();
  }
  return false;
}

// Whether ParseJson's value `precise` is Boost.JSON's `approx` but for
// doubles, which may differ in the last places (Boost.JSON 1.81 is off by
// up to a few units there) or be finite where Boost.JSON's reading is not
// (it reads "0e4000" as NaN). NumbersAreExact checks the doubles.
inline bool SameButForRounding(const boost::json::value& precise,
                               const boost::json::value& approx) {
  if (precise.is_double() && approx.is_double()) {
    return std::isfinite(precise.get_double());
  }
  if (precise.kind() != approx.kind()) return false;
  if (precise.is_array()) {
    const auto &x = precise.get_array(), &y = approx.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!SameButForRounding(x[i], y[i])) return false;
    }
    return true;
  }
  if (precise.is_object()) {
    const auto &x = precise.get_object(), &y = approx.get_object();
    if (x.size() != y.size()) return false;
    auto i = x.begin();
    auto j = y.begin();
    for (; i != x.end(); ++i, ++j) {
      if (i->key() != j->key()) return false;
      if (!SameButForRounding(i->value(), j->value())) return false;
    }
    return true;
  }
  return precise == approx;
}

// The number tokens of well-formed JSON text, in order, and how many object
// keys it holds.
struct JsonTokens {
  std::vector<std::string> numbers;
  std::size_t keys = 0;
};

inline JsonTokens Tokenize(std::string_view text) {
  JsonTokens tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '"') {
      for (++i; text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      ++i;
      std::size_t next = text.find_first_not_of(" \t\r\n", i);
      if (next != std::string_view::npos && text[next] == ':') ++tokens.keys;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t end = text.find_first_not_of("+-.0123456789eE", i);
      if (end == std::string_view::npos) end = text.size();
      tokens.numbers.emplace_back(text.substr(i, end - i));
      i = end;
    } else {
      ++i;
    }
  }
  return tokens;
}

// The same from a parsed value: its numbers in document order, and its keys.
inline void Collect(const boost::json::value& value,
                    std::vector<const boost::json::value*>& numbers,
                    std::size_t& keys) {
  if (value.is_number()) numbers.push_back(&value);
  if (value.is_array()) {
    for (const auto& item : value.get_array()) Collect(item, numbers, keys);
  }
  if (value.is_object()) {
    keys += value.get_object().size();
    for (const auto& member : value.get_object()) {
      Collect(member.value(), numbers, keys);
    }
  }
}

// Every double of ParseJson's value is what glibc's strtod, which rounds
// correctly, reads from the number's text. ParseJson refuses a repeated
// key, so its value holds every key and number of the text, in order.
inline void CheckNumbersAreExact(std::string_view text,
                                 const boost::json::value& value) {
  JsonTokens tokens = Tokenize(text);
  std::vector<const boost::json::value*> numbers;
  std::size_t keys = 0;
  Collect(value, numbers, keys);
  Check(keys == tokens.keys, "ParseJson's value has not the text's keys");
  Check(numbers.size() == tokens.numbers.size(),
        "ParseJson's value has not the text's numbers");
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    if (!numbers[i]->is_double()) continue;
    double expected = std::strtod(tokens.numbers[i].c_str(), nullptr);
    double got = numbers[i]->get_double();
    Check(got == expected && std::signbit(got) == std::signbit(expected),
          "ParseJson reads a number otherwise than strtod");
  }
}

// ParseJson against boost::json::parse, which it must follow but for the
// rounding of doubles, for refusing numbers beyond a double's range and for
// refusing a key twice in an object; and its doubles against strtod.
inline void CheckParseJson(std::string_view text) {
  boost::json::parse_options options;
  options.max_depth = 20;
  JsonError precise_error;
  boost::system::error_code approx_ec;
  boost::json::value precise = ParseJson(text, 20, precise_error);
  boost::json::value approx = boost::json::parse(text, approx_ec, {}, options);
  if (precise_error) {
    const std::string code_message = precise_error.code.message();
    Check(precise_error.message.compare(0, code_message.size(), code_message) ==
              0,
          "ParseJson's message does not start with its error's");
    CheckErrorMessage(precise_error.message);
  } else {
    Check(precise_error.message.empty(), "ParseJson's message with no error");
  }
  if (precise_error.code == boost::json::error::exponent_overflow) {
    // Boost.JSON reads infinity and carries on: to the end, or to an error
    // further on.
    return;
  }
  if (precise_error.code == MakeErrorCode(JsonParseErrc::kDuplicateKey)) {
    // Boost.JSON keeps the last value of a repeated key: when it read the
    // whole text, it made fewer keys than the text holds. Else its error
    // lies further on.
    if (!approx_ec) {
      std::vector<const boost::json::value*> numbers;
      std::size_t keys = 0;
      Collect(approx, numbers, keys);
      Check(keys < Tokenize(text).keys, "ParseJson refuses a key not repeated");
    }
    return;
  }
  Check(precise_error.code == approx_ec,
        "ParseJson and boost::json::parse differ "
        "on the error");
  Check(SameButForRounding(precise, approx),
        "ParseJson and boost::json::parse differ on the value");
  if (!precise_error) CheckNumbersAreExact(text, precise);
}

// A validated event: its data has exactly the catalog's fields in order and
// shapes, its key is the key field's value, its envelope is well-formed
// UTF-8 JSON that reads back to the same data, and validating its data again
// changes nothing.
inline void CheckEvent(const Event& event) {
  const EventSpec& spec = event.spec();
  const boost::json::object& data = event.data();
  Check(data.size() == spec.fields().size(), "data has not every field");
  auto member = data.begin();
  for (const FieldSpec& field : spec.fields()) {
    Check(member->key() == field.name, "data fields not in catalog order");
    Check(HasShape(field.shape, member->value()), "field has a wrong shape");
    ++member;
  }
  Check(!event.key().empty(), "empty key");
  Check(data.at(spec.key_field).as_string() == event.key(),
        "key is not the key field's value");

  EventStamp stamp{"01890a5d-ac96-774b-bcce-b302099a8057",
                   "2023-06-30T12:00:00.000Z", 1688126400000};
  std::string envelope = SerializeEnvelope(event, stamp);
  Check(IsValidUtf8(envelope), "envelope is not valid UTF-8");
  JsonError error;
  boost::json::value parsed = ParseJson(envelope, 64, error);
  Check(!error, "envelope is not JSON");
  Check(parsed.is_object() && parsed.get_object().size() == 7,
        "envelope has not 7 members");
  Check(parsed.at("type") == spec.type.data(), "envelope type differs");
  Check(parsed.at("data") == data, "data does not round-trip");

  std::string data_json = boost::json::serialize(data);
  Event again = Event::FromJson(spec.type, data_json);
  Check(again.data() == data, "validating the data again changes it");
  Check(again.key() == event.key(), "validating again changes the key");
}

}  // namespace sigevents::fuzz

#endif  // SIGEVENTS_TESTS_FUZZ_FUZZ_CHECKS_H_
