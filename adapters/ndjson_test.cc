// The NDJSON line parser of `sigevents emit`: every example of the
// specification is read, and every class of bad line is refused with its
// own one-line reason.

#define BOOST_TEST_MODULE ndjson_test
#include "adapters/ndjson.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <string>

namespace sigevents {
namespace {

const char kUserData[] =
    R"({"userId":"123","userEmail":"u@example.com","loggedInUserId":"456",)"
    R"("loggedInUserEmail":"a@example.com","message":"created"})";

std::string Line(const std::string& type, const std::string& data) {
  return R"({"type":")" + type + R"(","data":)" + data + "}";
}

// `levels` arrays inside each other around a number.
std::string Nested(int levels) {
  return std::string(levels, '[') + "1" + std::string(levels, ']');
}

// `levels` objects inside each other around a number.
std::string NestedObjects(int levels) {
  std::string text;
  for (int i = 0; i < levels; ++i) text += R"({"a":)";
  return text + "1" + std::string(levels, '}');
}

BOOST_AUTO_TEST_CASE(a_valid_line_gives_its_event) {
  std::string error;
  std::optional<Event> event =
      ParseEventLine(Line("user.created", kUserData), error);
  BOOST_REQUIRE_MESSAGE(event.has_value(), error);
  BOOST_TEST(event->type() == "user.created");
  BOOST_TEST(event->key() == "123");
  BOOST_TEST(boost::json::serialize(event->data()) ==
             boost::json::serialize(boost::json::parse(kUserData)));
}

BOOST_AUTO_TEST_CASE(every_example_of_the_specification_is_read) {
  std::ifstream in("tests/testdata/spec_examples.ndjson");
  int read = 0;
  for (std::string text; std::getline(in, text);) {
    boost::json::object example = boost::json::parse(text).as_object();
    boost::json::object line{{"type", example.at("type")},
                             {"data", example.at("data")}};
    BOOST_TEST_CONTEXT(example.at("type").as_string()) {
      std::string error;
      std::optional<Event> event =
          ParseEventLine(boost::json::serialize(line), error);
      BOOST_REQUIRE_MESSAGE(event.has_value(), error);
      BOOST_TEST(event->data() == example.at("data").as_object());
    }
    ++read;
  }
  BOOST_TEST(read == 39);
}

struct BadLine {
  const char* name;
  std::string line;
  std::string error;  // expected, exactly
};

BOOST_AUTO_TEST_CASE(bad_lines_are_refused_with_their_reason) {
  const BadLine cases[] = {
      {"empty", "", "not valid JSON: incomplete JSON"},
      {"not JSON", "type=user.created", "not valid JSON: syntax error"},
      {"truncated", Line("user.created", kUserData).substr(0, 40),
       "not valid JSON: incomplete JSON"},
      {"two objects", Line("user.created", kUserData) + "{}",
       "not valid JSON: extra data"},
      {"an array", "[]", "expected an object {\"type\": ..., \"data\": {...}}"},
      {"a string", "\"user.created\"",
       "expected an object {\"type\": ..., \"data\": {...}}"},
      {"unknown member", R"({"type":"user.created","data":{},"id":"1"})",
       "unknown member \"id\"; a line holds only \"type\" and \"data\""},
      {"unknown member with a newline and a quote",
       R"({"type":"user.created","data":{},"a\n\"b":1})",
       "unknown member \"a\\n\\\"b\"; a line holds only \"type\" and "
       "\"data\""},
      {"type twice", R"({"type":"user.created","type":"user.deleted"})",
       "not valid JSON: duplicate key \"type\""},
      {"missing type", R"({"data":{}})", "missing \"type\" string"},
      {"type not a string", R"({"type":7,"data":{}})",
       "missing \"type\" string"},
      {"missing data", R"({"type":"user.created"})",
       "event \"user.created\": missing \"data\" object"},
      {"data an array", Line("user.created", "[]"),
       "event \"user.created\": data must be a JSON object, got an array"},
      {"unknown type", Line("user.creatd", kUserData),
       "event \"user.creatd\": unknown event type; `sigevents types` lists "
       "the 39 known types"},
      {"type with control characters", Line("user\\u0000.created\\t", "{}"),
       "event \"user\\u0000.created\\t\": unknown event type; `sigevents "
       "types` lists the 39 known types"},
      {"1000-byte type shown cut", Line(std::string(1000, 'x'), "{}"),
       "event \"" + std::string(120, 'x') +
           "...\": unknown event type; `sigevents types` lists the 39 known "
           "types"},
      {"invalid UTF-8", Line("user.created", "{\"userId\":\"\xC3\x28\"}"),
       "not valid JSON: syntax error"},
      {"lone surrogate escape", Line("user.created", R"({"userId":"\ud800"})"),
       "not valid JSON: syntax error"},
      {"data nested one level too deep",
       Line("server.updated", R"({"serverId":"1","userId":"2","changes":)" +
                                  NestedObjects(Event::kMaxDepth) + "}"),
       "event \"server.updated\": field \"changes\": nested deeper than 16 "
       "levels"},
      {"data nested beyond the parser's limit",
       Line("server.updated", R"({"serverId":"1","userId":"2","changes":)" +
                                  NestedObjects(Event::kMaxDepth + 2) + "}"),
       "not valid JSON: too deep"},
      {"10,000 levels of nesting",
       Line("server.updated", "{\"changes\":" + Nested(10000) + "}"),
       "not valid JSON: too deep"},
      {"10,000 unclosed levels",
       Line("server.updated", std::string(10000, '[')),
       "not valid JSON: too deep"},
  };
  for (const BadLine& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      std::string error;
      std::optional<Event> event = ParseEventLine(c.line, error);
      BOOST_TEST(!event.has_value());
      BOOST_TEST(error == c.error);
    }
  }
}

}  // namespace
}  // namespace sigevents
