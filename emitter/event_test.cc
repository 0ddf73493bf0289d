// Validation of event data: every class of bad input refused with its own
// message, and the normalizations the specification asks for.

#define BOOST_TEST_MODULE event_test
#include "emitter/event.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>
#include <functional>
#include <string>

#include "emitter/envelope.h"
#include "emitter/events.h"
#include "emitter/utf8.h"

namespace json = boost::json;

namespace sigevents {
namespace {

const char kUserData[] =
    R"({"userId":"123","userEmail":"u@example.com","loggedInUserId":"456",)"
    R"("loggedInUserEmail":"a@example.com","message":"created"})";

struct BadInput {
  const char* name;
  std::string type;
  std::string data;
  EventErrorKind kind;
  std::string message;  // expected what()
};

BOOST_AUTO_TEST_CASE(bad_inputs_are_refused_with_a_message_naming_them) {
  const BadInput cases[] = {
      {"unknown type", "server.registred", R"({"serverId":"1"})",
       EventErrorKind::kUnknownType,
       "event \"server.registred\": unknown event type; `sigevents types` "
       "lists the 39 known types"},
      {"missing field", "server.registration.initiated",
       R"({"serverId":"1","managementAddress":"10.0.0.1"})",
       EventErrorKind::kMissingField,
       "event \"server.registration.initiated\": field \"siteId\": missing "
       "(expected string)"},
      {"unknown field (near miss)", "server.registration.initiated",
       R"({"serverID":"1","managementAddress":"10.0.0.1","siteId":"1"})",
       EventErrorKind::kUnknownField,
       "event \"server.registration.initiated\": field \"serverID\": unknown "
       "field; the fields of this type are serverId, managementAddress, "
       "siteId"},
      {"object for a string", "network.device.replaced",
       R"({"oldNetworkDeviceId":{},"newNetworkDeviceId":"2"})",
       EventErrorKind::kWrongShape,
       "event \"network.device.replaced\": field \"oldNetworkDeviceId\": "
       "expected a string, got an object"},
      {"boolean for a string", "network.device.replaced",
       R"({"oldNetworkDeviceId":"1","newNetworkDeviceId":true})",
       EventErrorKind::kWrongShape,
       "event \"network.device.replaced\": field \"newNetworkDeviceId\": "
       "expected a string, got a boolean"},
      {"null for a string", "network.device.replaced",
       R"({"oldNetworkDeviceId":"1","newNetworkDeviceId":null})",
       EventErrorKind::kWrongShape,
       "event \"network.device.replaced\": field \"newNetworkDeviceId\": "
       "expected a string, got null"},
      {"string for a string array", "network.device.assigned.to.fabric",
       R"({"fabricId":"42","networkDeviceIds":"123","fabricName":"f"})",
       EventErrorKind::kWrongShape,
       "event \"network.device.assigned.to.fabric\": field "
       "\"networkDeviceIds\": expected an array of strings, got a string"},
      {"object inside a string array", "network.device.assigned.to.fabric",
       R"({"fabricId":"42","networkDeviceIds":["1",{}],"fabricName":"f"})",
       EventErrorKind::kWrongShape,
       "event \"network.device.assigned.to.fabric\": field "
       "\"networkDeviceIds\": item 1: expected a string, got an object"},
      {"string inside an object array", "instance.dns.updated",
       R"({"instanceId":"1","infrastructureId":"2","dnsRecords":["a"],)"
       R"("userIdAuthenticated":"3"})",
       EventErrorKind::kWrongShape,
       "event \"instance.dns.updated\": field \"dnsRecords\": item 0: "
       "expected an object, got a string"},
      {"array for an object", "server.updated",
       R"({"serverId":"1","userId":"2","changes":[]})",
       EventErrorKind::kWrongShape,
       "event \"server.updated\": field \"changes\": expected an object, got "
       "an array"},
      {"empty entity id", "network.device.archived",
       R"({"networkDeviceId":"","userIdAuthenticated":"3"})",
       EventErrorKind::kEmptyKey,
       "event \"network.device.archived\": field \"networkDeviceId\": empty; "
       "it identifies the entity and keys the Kafka message"},
      {"data not an object", "network.device.archived", R"(["x"])",
       EventErrorKind::kWrongShape,
       "event \"network.device.archived\": data must be a JSON object, got "
       "an array"},
      {"data not JSON", "network.device.archived", R"({"networkDeviceId":)",
       EventErrorKind::kNotJson,
       "event \"network.device.archived\": data is not valid JSON: "},
      {"invalid UTF-8 in JSON text", "network.device.archived",
       "{\"networkDeviceId\":\"\xC3\x28\",\"userIdAuthenticated\":\"3\"}",
       EventErrorKind::kNotJson,
       "event \"network.device.archived\": data is not valid JSON: "},
  };
  for (const BadInput& bad : cases) {
    BOOST_TEST_CONTEXT("case: " << bad.name) {
      try {
        Event::FromJson(bad.type, std::string_view(bad.data));
        BOOST_ERROR("accepted");
      } catch (const EventError& e) {
        BOOST_TEST(static_cast<int>(e.kind()) == static_cast<int>(bad.kind));
        std::string what = e.what();
        // A parse error ends with the parser's own words.
        BOOST_TEST(what.substr(0, bad.message.size()) == bad.message);
        if (bad.kind != EventErrorKind::kNotJson) {
          BOOST_TEST(what == bad.message);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(builder_strings_are_checked_for_utf8_and_depth) {
  struct Case {
    const char* name;
    std::function<Event()> build;
    EventErrorKind kind;
  };
  json::value deep = json::object();
  for (int i = 0; i < 20; ++i) deep = json::object{{"d", deep}};
  const Case cases[] = {
      {"invalid UTF-8 in a string",
       [] {
         return events::NetworkDeviceArchived()
             .networkDeviceId("\xFF")
             .userIdAuthenticated("1")
             .Build();
       },
       EventErrorKind::kInvalidUtf8},
      {"surrogate encoded in UTF-8",
       [] {
         return events::NetworkDeviceArchived()
             .networkDeviceId("1")
             .userIdAuthenticated("\xED\xA0\x80")
             .Build();
       },
       EventErrorKind::kInvalidUtf8},
      {"missing field in a builder",
       [] {
         return events::NetworkDeviceArchived().networkDeviceId("1").Build();
       },
       EventErrorKind::kMissingField},
      {"deeply nested changes",
       [&deep] {
         return events::ServerUpdated()
             .serverId("1")
             .userId("2")
             .changes(deep.as_object())
             .Build();
       },
       EventErrorKind::kTooDeep},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT("case: " << c.name) {
      try {
        c.build();
        BOOST_ERROR("accepted");
      } catch (const EventError& e) {
        BOOST_TEST(static_cast<int>(e.kind()) == static_cast<int>(c.kind));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(numbers_become_strings_and_fields_take_catalog_order) {
  Event event = Event::FromJson(
      "server.registered",
      std::string_view(R"({"userId":456,"siteId":1,"serverTypeId":25.5,)"
                       R"("serverStatus":"AVAILABLE","serverId":123})"));
  BOOST_TEST(json::serialize(event.data()) ==
             R"({"serverId":"123","serverStatus":"AVAILABLE",)"
             R"("serverTypeId":"25.5","siteId":"1","userId":"456"})");
  BOOST_TEST(event.key() == "123");

  Event typed = events::ServerRegistered()
                    .serverId(123)
                    .serverStatus("AVAILABLE")
                    .serverTypeId(25)
                    .siteId(1)
                    .userId(456u)
                    .Build();
  BOOST_TEST(json::serialize(typed.data()) ==
             R"({"serverId":"123","serverStatus":"AVAILABLE",)"
             R"("serverTypeId":"25","siteId":"1","userId":"456"})");
}

BOOST_AUTO_TEST_CASE(any_string_is_escaped_into_valid_json) {
  std::string hostile = "quote\" backslash\\ nul";
  hostile += '\0';
  hostile += " ctrl\x01\x1f tab\t newline\n emoji \xF0\x9F\x9A\x80 e\xCC\x81";
  Event event = events::UserCreated()
                    .userId("1")
                    .userEmail(hostile)
                    .loggedInUserId("2")
                    .loggedInUserEmail("a@b")
                    .message(hostile)
                    .Build();
  std::string text = SerializeEnvelope(event, NewEventStamp());
  BOOST_TEST(IsValidUtf8(text));
  BOOST_TEST(text.find('\0') == std::string::npos);
  BOOST_TEST(text.find('\n') == std::string::npos);
  json::value parsed = json::parse(text);
  BOOST_TEST(parsed.at("data").at("message").as_string() == hostile);
}

BOOST_AUTO_TEST_CASE(event_ids_increase_and_are_unique) {
  std::string previous;
  for (int i = 0; i < 20000; ++i) {
    EventStamp stamp = NewEventStamp();
    BOOST_TEST_REQUIRE(stamp.id > previous);
    previous = stamp.id;
  }
}

BOOST_AUTO_TEST_CASE(utf8_validation_table) {
  struct Case {
    std::string text;
    std::size_t invalid_at;
  };
  const std::size_t ok = std::string_view::npos;
  const Case cases[] = {
      {"", ok},
      {"plain ascii", ok},
      {"\xC3\xA9", ok},          // é
      {"\xE2\x82\xAC", ok},      // €
      {"\xF4\x8F\xBF\xBF", ok},  // U+10FFFF
      {"a\xC0\xAF", 1},          // overlong '/'
      {"\xE0\x80\xAF", 0},       // overlong, three bytes
      {"\xED\xA0\x80", 0},       // surrogate
      {"\xF4\x90\x80\x80", 0},   // above U+10FFFF
      {"ab\xE2\x82", 2},         // truncated
      {"\x80", 0},               // lone continuation byte
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT("text of " << c.text.size() << " bytes") {
      BOOST_TEST(FindInvalidUtf8(c.text) == c.invalid_at);
    }
  }
}

}  // namespace
}  // namespace sigevents
