// The catalog against the specification: its 39 types, and for each of the
// specification's examples, the envelope built from the example's data.

#define BOOST_TEST_MODULE catalog_test
#include "emitter/catalog.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "emitter/envelope.h"
#include "emitter/event.h"

namespace json = boost::json;

namespace sigevents {
namespace {

std::vector<std::string> ReadExamples() {
  std::vector<std::string> lines;
  std::ifstream in("tests/testdata/spec_examples.ndjson");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> Keys(const json::object& object) {
  std::vector<std::string> keys;
  for (const auto& member : object) keys.emplace_back(member.key());
  return keys;
}

BOOST_AUTO_TEST_CASE(has_the_39_types_of_the_specification) {
  BOOST_TEST(EventTypeCount() == 39u);
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < EventTypeCount(); ++i) {
    const EventSpec& spec = EventSpecs()[i];
    BOOST_TEST_CONTEXT("type " << spec.type) {
      BOOST_TEST(static_cast<std::size_t>(spec.id) == i);
      BOOST_TEST(names.insert(spec.type).second);
      BOOST_TEST(spec.FindField(spec.key_field) != nullptr);
      BOOST_TEST(ShapeName(spec.FindField(spec.key_field)->shape) == "string");
      BOOST_TEST(FindEventSpec(spec.type) == &spec);
    }
  }
  BOOST_TEST(FindEventSpec("server.registred") == nullptr);
}

BOOST_AUTO_TEST_CASE(source_service_follows_the_type_prefix) {
  struct Row {
    std::string prefix;
    Service service;
  };
  const Row rows[] = {{"server.", Service::kInventory},
                      {"network.device.", Service::kInventory},
                      {"user.", Service::kAuth},
                      {"instance.", Service::kOrchestrator}};
  for (std::size_t i = 0; i < EventTypeCount(); ++i) {
    const EventSpec& spec = EventSpecs()[i];
    BOOST_TEST_CONTEXT("type " << spec.type) {
      int matched = 0;
      for (const Row& row : rows) {
        if (spec.type.rfind(row.prefix, 0) == 0) {
          BOOST_TEST(ServiceName(spec.service) == ServiceName(row.service));
          ++matched;
        }
      }
      BOOST_TEST(matched == 1);
    }
  }
}

BOOST_AUTO_TEST_CASE(every_example_of_the_specification_is_reproduced) {
  std::vector<std::string> examples = ReadExamples();
  BOOST_REQUIRE(examples.size() == 39u);
  std::set<std::string> covered;
  const std::regex uuid_v7(
      "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  const std::regex rfc3339(
      "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z");

  for (const std::string& line : examples) {
    json::object expected = json::parse(line).as_object();
    std::string type(expected.at("type").as_string());
    BOOST_TEST_CONTEXT("example " << type) {
      Event event = Event::FromJson(type, expected.at("data"));
      EventStamp stamp = NewEventStamp();
      std::string published = SerializeEnvelope(event, stamp);
      json::object actual = json::parse(published).as_object();

      BOOST_TEST(
          std::regex_match(std::string(actual.at("id").as_string()), uuid_v7));
      BOOST_TEST(std::regex_match(std::string(actual.at("time").as_string()),
                                  rfc3339));
      actual["id"] = expected.at("id");
      actual["time"] = expected.at("time");
      BOOST_TEST(json::serialize(actual) == json::serialize(expected));
      BOOST_TEST(Keys(actual) == Keys(expected),
                 boost::test_tools::per_element());
      BOOST_TEST(Keys(actual.at("data").as_object()) ==
                     Keys(expected.at("data").as_object()),
                 boost::test_tools::per_element());
      covered.insert(type);
    }
  }
  BOOST_TEST(covered.size() == EventTypeCount());
}

}  // namespace
}  // namespace sigevents
