// ParseJson: numbers rounded correctly where Boost.JSON 1.81 is off in the
// last places, and otherwise the same as boost::json::parse.

#define BOOST_TEST_MODULE json_parse_test
#include "emitter/json_parse.h"

#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <string>

namespace json = boost::json;

namespace sigevents {
namespace {

struct NumberCase {
  const char* name;
  std::string text;
  double expected;  // what a correctly rounding reader gives
};

BOOST_AUTO_TEST_CASE(numbers_are_rounded_correctly) {
  const NumberCase cases[] = {
      // Found by tests/fuzz/event_fuzzer: Boost.JSON 1.81 reads
      // 6.7999999999999994e75, which serializes and reads back as yet
      // another double.
      {"fuzzer: 68e74", "68e74", 6.8e75},
      // Found by tests/fuzz/event_fuzzer: Boost.JSON 1.81 reads NaN.
      {"fuzzer: zero with a huge exponent", "-0e4000", -0.0},
      {"zero with a huge exponent", "0e4000", 0.0},
      // Found by tests/fuzz/event_fuzzer: Boost.JSON 1.81 reads a double
      // two units in the last place too low.
      {"fuzzer: 18 significant digits", "0.000000400000135362508688",
       0.000000400000135362508688},
      {"17 significant digits", "1.1030161663305387", 1.1030161663305387},
      {"short decimal", "18.4", 18.4},
      {"largest double", "1.7976931348623157e308", 1.7976931348623157e308},
      {"smallest subnormal", "5e-324", 5e-324},
      {"below the smallest subnormal", "1e-400", 0.0},
      {"negative, below the smallest subnormal", "-1e-400", -0.0},
      {"tiny without an exponent", "0." + std::string(400, '0') + "1", 0.0},
      {"integer beyond 64 bits", "18446744073709551616",
       18446744073709551616.0},
      {"negative zero", "-0.0", -0.0},
  };
  for (const NumberCase& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      boost::system::error_code ec;
      json::value value = ParseJson("[" + c.text + "]", 4, ec);
      BOOST_TEST_REQUIRE(!ec, ec.message());
      double parsed = value.at(0).as_double();
      BOOST_TEST(parsed == c.expected);
      BOOST_TEST(std::signbit(parsed) == std::signbit(c.expected));
      // Written and read again, the number stays the same double.
      json::value again = ParseJson(json::serialize(value), 4, ec);
      BOOST_TEST(again.at(0).as_double() == parsed);
    }
  }
}

struct TextCase {
  const char* name;
  std::string text;
  std::size_t max_depth;
  const char* error;  // ec.message(), or "" when the text is accepted
};

BOOST_AUTO_TEST_CASE(other_text_reads_as_boost_json_reads_it) {
  const TextCase cases[] = {
      {"object", R"({"a":[1,-2,18446744073709551615,"x\u0000y",true,null]})", 4,
       ""},
      {"integers stay integers", "[9223372036854775807,-9223372036854775808]",
       4, ""},
      {"at the depth limit", "[[[1]]]", 3, ""},
      {"beyond the depth limit", "[[[[1]]]]", 3, "too deep"},
      {"empty", "", 4, "incomplete JSON"},
      {"extra data", "{} {}", 4, "extra data"},
      {"comment", "[1 /* no */]", 4, "syntax error"},
      {"trailing comma", "[1,]", 4, "syntax error"},
      {"invalid UTF-8", "[\"\xC3\x28\"]", 4, "syntax error"},
      {"number beyond a double", "[1e400]", 4, "exponent overflow"},
      {"integer beyond a double", "[1" + std::string(400, '0') + "]", 4,
       "exponent overflow"},
      // Found by tests/fuzz/event_fuzzer: refused at the number, where
      // Boost.JSON reads infinity and fails later ("extra data").
      {"fuzzer: number beyond a double, then extra text", "3e6666.3", 4,
       "exponent overflow"},
  };
  for (const TextCase& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      json::parse_options options;
      options.max_depth = c.max_depth;
      boost::system::error_code ec, boost_ec;
      json::value value = ParseJson(c.text, c.max_depth, ec);
      json::value expected = json::parse(c.text, boost_ec, {}, options);
      BOOST_TEST(ec.message() == (*c.error ? c.error : "Success"));
      if (!ec) BOOST_TEST(value == expected);
      if (ec) BOOST_TEST(value.is_null());
    }
  }
}

}  // namespace
}  // namespace sigevents
