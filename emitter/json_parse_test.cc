// ParseJson: numbers rounded correctly where Boost.JSON 1.81 is off in the
// last places, and otherwise the same as boost::json::parse.

#define BOOST_TEST_MODULE json_parse_test
#include "emitter/json_parse.h"

#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <string>

#include "emitter/utf8.h"

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
      JsonError error;
      json::value value = ParseJson("[" + c.text + "]", 4, error);
      BOOST_TEST_REQUIRE(!error, error.message);
      double parsed = value.at(0).as_double();
      BOOST_TEST(parsed == c.expected);
      BOOST_TEST(std::signbit(parsed) == std::signbit(c.expected));
      // Written and read again, the number stays the same double.
      json::value again = ParseJson(json::serialize(value), 4, error);
      BOOST_TEST(again.at(0).as_double() == parsed);
    }
  }
}

struct TextCase {
  const char* name;
  std::string text;
  std::size_t max_depth;
  std::string error;  // JsonError::message, or "" when the text is accepted
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
      boost::system::error_code boost_ec;
      JsonError error;
      json::value value = ParseJson(c.text, c.max_depth, error);
      json::value expected = json::parse(c.text, boost_ec, {}, options);
      BOOST_TEST(error.message == c.error);
      if (!error) BOOST_TEST(value == expected);
      if (error) BOOST_TEST(value.is_null());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_key_twice_in_one_object_is_refused) {
  const std::string long_key = std::string(5000, 'k') + "\\n" + "k";
  const TextCase cases[] = {
      {"repeated key", R"({"userId":"1","userId":"2"})", 4,
       "duplicate key \"userId\""},
      {"repeated with the same value", R"({"a":1,"b":2,"a":1})", 4,
       "duplicate key \"a\""},
      {"in a nested object", R"({"a":{"b":[{"c":1,"c":2}]}})", 4,
       "duplicate key \"c\""},
      {"written with an escape", R"({"a":1,"\u0061":2})", 4,
       "duplicate key \"a\""},
      {"long, read in parts", "{\"" + long_key + "\":1,\"" + long_key + "\":2}",
       4, "duplicate key \"" + std::string(kMaxShownBytes, 'k') + "...\""},
      {"same key in sibling objects", R"([{"a":1},{"a":2}])", 4, ""},
      {"same key at two depths", R"({"a":{"a":{"a":1}}})", 4, ""},
      {"differ only in case", R"({"id":1,"ID":2})", 4, ""},
  };
  for (const TextCase& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      JsonError error;
      json::value value = ParseJson(c.text, c.max_depth, error);
      BOOST_TEST(error.message == c.error);
      if (!c.error.empty()) {
        BOOST_TEST(error.code == MakeErrorCode(JsonParseErrc::kDuplicateKey));
        BOOST_TEST(value.is_null());
      } else {
        BOOST_TEST(value == json::parse(c.text));
      }
    }
  }
}

// A wide object leaves a large set of keys behind. Clearing a set costs as
// much as its buckets, so were that set cleared for each small object after
// it, parsing them would cost the wide object's size each (about 12 times
// longer here). Timed against the two parts parsed apart, in the same run.
BOOST_AUTO_TEST_CASE(small_objects_after_a_wide_one_cost_no_more) {
  std::string wide = "{";
  for (int i = 0; i < 50000; ++i) {
    wide += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
  }
  wide += "}";
  std::string smalls;
  for (int i = 0; i < 100000; ++i) smalls += ",{}";
  auto seconds_to_parse = [](const std::string& text, std::size_t items) {
    auto start = std::chrono::steady_clock::now();
    JsonError error;
    json::value value = ParseJson(text, 4, error);
    std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start;
    BOOST_TEST_REQUIRE(!error, error.message);
    BOOST_TEST(value.as_array().size() == items);
    return took.count();
  };
  double apart = seconds_to_parse("[" + wide + "]", 1) +
                 seconds_to_parse("[{}" + smalls + "]", 100001);
  double together = seconds_to_parse("[" + wide + smalls + "]", 100001);
  BOOST_TEST_MESSAGE("together " << together << " s, apart " << apart << " s");
  BOOST_TEST(together < 3 * apart);
}

}  // namespace
}  // namespace sigevents
