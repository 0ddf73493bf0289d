// Hostile input through the whole emit path, against a real SQLite file:
// huge strings, deep nesting, keys written twice, NUL bytes, ill-formed UTF-8,
// near-miss names.
// Each case is either accepted and published intact, or refused with a
// one-line message naming the type or field, with nothing written.

#define BOOST_TEST_MODULE hostile_input_test
#include <SQLiteCpp/SQLiteCpp.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "emitter/emitter.h"
#include "emitter/envelope.h"
#include "emitter/json_parse.h"
#include "emitter/utf8.h"
#include "outbox/schema.h"
#include "tests/test_util.h"

namespace json = boost::json;

namespace sigevents {
namespace {

using testing::ScratchDir;

json::object UserData(const std::string& message = "suspended") {
  return {{"userId", "123"},
          {"userEmail", "u@example.com"},
          {"loggedInUserId", "456"},
          {"loggedInUserEmail", "a@example.com"},
          {"message", message}};
}

// user.suspended data with one member replaced, added or (for a null
// value) removed.
json::object UserDataWith(const std::string& key, json::value value) {
  json::object data = UserData();
  if (value.is_null()) {
    data.erase(key);
  } else {
    data[key] = std::move(value);
  }
  return data;
}

// user.suspended data whose envelope is exactly `bytes` long.
json::object UserDataOfEnvelopeSize(std::size_t bytes) {
  Event empty = Event::FromJson("user.suspended", json::value(UserData("")));
  std::size_t base = SerializeEnvelope(empty, NewEventStamp()).size();
  return UserData(std::string(bytes - base, 'x'));
}

// server.updated data with the given `changes` object.
json::object ChangesData(json::value changes) {
  return {{"serverId", "7"}, {"userId", "456"}, {"changes", changes}};
}

// `levels` objects inside each other around the number 1, as a value.
json::value NestedObjects(int levels) {
  json::value value = 1;
  for (int i = 0; i < levels; ++i) value = json::object{{"a", value}};
  return value;
}

std::string NestedArraysText(int levels) {
  return std::string(levels, '[') + "1" + std::string(levels, ']');
}

struct HostileCase {
  const char* name;
  std::string type;
  // The data: as JSON text when `text` is set, else as this value (which
  // can hold bytes that JSON text cannot, like ill-formed UTF-8).
  json::value data;
  std::optional<std::string> text;
  // Refused with this kind, or accepted when unset.
  std::optional<EventErrorKind> refused;
  // Refused: what the message must hold. Accepted: what the published
  // payload must hold.
  std::vector<std::string> expect;
  std::size_t envelope_bytes = 0;  // accepted: the exact size, if set
};

HostileCase Refused(const char* name, std::string type, json::value data,
                    EventErrorKind kind, std::vector<std::string> expect) {
  return {name, std::move(type),  std::move(data), std::nullopt,
          kind, std::move(expect)};
}

HostileCase RefusedText(const char* name, std::string type, std::string text,
                        EventErrorKind kind, std::vector<std::string> expect) {
  return {name, std::move(type),  nullptr, std::move(text),
          kind, std::move(expect)};
}

HostileCase Accepted(const char* name, std::string type, json::value data,
                     std::vector<std::string> expect,
                     std::size_t envelope_bytes = 0) {
  return {name,         std::move(type),   std::move(data), std::nullopt,
          std::nullopt, std::move(expect), envelope_bytes};
}

HostileCase AcceptedText(const char* name, std::string type, std::string text,
                         std::vector<std::string> expect) {
  return {name,         std::move(type),  nullptr, std::move(text),
          std::nullopt, std::move(expect)};
}

std::vector<HostileCase> Cases() {
  const auto kTooLarge = EventErrorKind::kTooLarge;
  const auto kTooDeep = EventErrorKind::kTooDeep;
  const auto kNotJson = EventErrorKind::kNotJson;
  const auto kInvalidUtf8 = EventErrorKind::kInvalidUtf8;
  const auto kUnknownType = EventErrorKind::kUnknownType;
  const auto kUnknownField = EventErrorKind::kUnknownField;
  const std::string mb(1000000, 'x');
  const std::string suspended = "event \"user.suspended\": ";
  const std::string too_large = "more than the maximum of 1000000";
  return {
      // ---- Size ----
      Refused("1 MB message", "user.suspended", UserData(mb), kTooLarge,
              {suspended + "event is 1000", too_large}),
      Refused("1 MB entity id", "user.suspended",
              UserDataWith("userId", json::string(mb)), kTooLarge,
              {suspended, too_large}),
      Refused("2 MB event", "user.suspended", UserData(mb + mb), kTooLarge,
              {suspended + "event is 2000", too_large}),
      Accepted("64 KiB event", "user.suspended",
               UserDataOfEnvelopeSize(64 * 1024), {"xxxxxxxx"}, 64 * 1024),
      Accepted("event of exactly the maximum size", "user.suspended",
               UserDataOfEnvelopeSize(1000000), {"xxxxxxxx"}, 1000000),
      Refused("event one byte over the maximum", "user.suspended",
              UserDataOfEnvelopeSize(1000001), kTooLarge,
              {suspended + "event is 1000001 bytes, " + too_large}),
      Refused("1 MB type name", mb, UserData(), kUnknownType,
              {"event \"" + std::string(kMaxShownBytes, 'x') +
               "...\": "
               "unknown event type"}),
      Refused("1 MB field name", "user.suspended", UserDataWith(mb, "1"),
              kUnknownField,
              {suspended + "field \"" + std::string(kMaxShownBytes, 'x') +
               "...\": unknown field"}),

      // ---- Depth ----
      Accepted("changes nested to the limit", "server.updated",
               ChangesData(NestedObjects(Event::kMaxDepth - 1)), {"{\"a\":1}"}),
      Refused("changes nested one level too deep", "server.updated",
              ChangesData(NestedObjects(Event::kMaxDepth)), kTooDeep,
              {"event \"server.updated\": field \"changes\": nested deeper "
               "than 16 levels"}),
      Refused("changes nested 1,000 levels, as a value", "server.updated",
              ChangesData(NestedObjects(1000)), kTooDeep,
              {"field \"changes\": nested deeper than 16 levels"}),
      Refused("object array item nested too deep", "instance.dns.updated",
              json::object{{"instanceId", "1"},
                           {"infrastructureId", "2"},
                           {"dnsRecords", json::array{NestedObjects(16)}},
                           {"userIdAuthenticated", "3"}},
              kTooDeep, {"field \"dnsRecords\": nested deeper than 16"}),
      RefusedText("10,000 levels of nesting in JSON text", "server.updated",
                  R"({"serverId":"7","userId":"456","changes":{"a":)" +
                      NestedArraysText(10000) + "}}",
                  kNotJson,
                  {"event \"server.updated\": data is not valid JSON: too "
                   "deep"}),
      RefusedText("10,000 unclosed arrays", "server.updated",
                  std::string(10000, '['), kNotJson,
                  {"data is not valid JSON: too deep"}),

      // ---- Keys written twice ----
      // Boost.JSON would keep the last value without a word.
      RefusedText("the entity id written twice", "user.suspended",
                  R"({"userId":"1","userEmail":"","loggedInUserId":"",)"
                  R"("loggedInUserEmail":"","message":"","userId":"2"})",
                  kNotJson,
                  {"event \"user.suspended\": data is not valid JSON: "
                   "duplicate key \"userId\""}),
      RefusedText("a key twice deep inside an object field", "server.updated",
                  R"({"serverId":"7","userId":"456",)"
                  R"("changes":{"ram":{"from":1,"to":2,"to":3}}})",
                  kNotJson, {"duplicate key \"to\""}),

      // ---- NUL bytes ----
      Accepted("NUL inside a string field", "user.suspended",
               UserData(std::string("a\0b", 3)), {R"("message":"a\u0000b")"}),
      Accepted("NUL inside the entity id", "user.suspended",
               UserDataWith("userId", json::string(std::string("1\0002", 3))),
               {R"("userId":"1\u00002")"}),
      AcceptedText("NUL inside a nested key and value", "server.updated",
                   R"({"serverId":"7","userId":"456",)"
                   R"("changes":{"a\u0000k":"v\u0000"}})",
                   {R"({"a\u0000k":"v\u0000"})"}),
      Refused("NUL inside the type name", std::string("user.suspended\0", 15),
              UserData(), kUnknownType,
              {"event \"user.suspended\\u0000\": unknown event type"}),
      Refused("NUL inside a field name", "user.suspended",
              UserDataWith(std::string("message\0", 8), "1"), kUnknownField,
              {suspended + "field \"message\\u0000\": unknown field"}),

      // ---- Ill-formed UTF-8 ----
      Refused("UTF-8 cut short in a string field", "user.suspended",
              UserDataWith("userEmail", json::string("ab\xE2\x82")),
              kInvalidUtf8,
              {suspended + "field \"userEmail\": invalid UTF-8 at byte 2"}),
      Refused("overlong UTF-8 in a string field", "user.suspended",
              UserDataWith("message", json::string("\xC0\xAF")), kInvalidUtf8,
              {suspended + "field \"message\": invalid UTF-8 at byte 0"}),
      Refused("UTF-8 surrogate in a string field", "user.suspended",
              UserDataWith("message", json::string("\xED\xA0\x80")),
              kInvalidUtf8, {"field \"message\": invalid UTF-8 at byte 0"}),
      Refused("UTF-8 above U+10FFFF in a string field", "user.suspended",
              UserDataWith("message", json::string("\xF4\x90\x80\x80")),
              kInvalidUtf8, {"field \"message\": invalid UTF-8 at byte 0"}),
      Refused("ill-formed UTF-8 in a string array item",
              "network.device.assigned.to.fabric",
              json::object{{"fabricId", "42"},
                           {"networkDeviceIds", json::array{"1", "\xFF"}},
                           {"fabricName", "f"}},
              kInvalidUtf8,
              {"field \"networkDeviceIds\": item 1: invalid UTF-8 at byte 0"}),
      Refused("ill-formed UTF-8 in a nested value", "server.updated",
              ChangesData(json::object{{"a", json::object{{"b", "\xFF"}}}}),
              kInvalidUtf8, {"field \"changes\": invalid UTF-8 at byte 0"}),
      Refused("ill-formed UTF-8 in a nested key", "server.updated",
              ChangesData(json::object{{"a", json::object{{"\xFF", "b"}}}}),
              kInvalidUtf8,
              {"field \"changes\": a key: invalid UTF-8 at byte 0"}),
      Refused("ill-formed UTF-8 in an object array item's key",
              "instance.dns.updated",
              json::object{{"instanceId", "1"},
                           {"infrastructureId", "2"},
                           {"dnsRecords", json::array{json::object{
                                              {"ok", "1"}, {"\xC3", "2"}}}},
                           {"userIdAuthenticated", "3"}},
              kInvalidUtf8, {"field \"dnsRecords\": a key: invalid UTF-8"}),
      Refused("ill-formed UTF-8 in an unknown field's name", "user.suspended",
              UserDataWith("mess\xFF", "1"), kUnknownField,
              {suspended + "field \"(invalid UTF-8)\": unknown field"}),
      Refused("ill-formed UTF-8 in the type name", "user.\xFF", UserData(),
              kUnknownType, {"event \"(invalid UTF-8)\": unknown event type"}),
      RefusedText("ill-formed UTF-8 in JSON text", "user.suspended",
                  "{\"userId\":\"\xFF\"}", kNotJson,
                  {suspended + "data is not valid JSON: syntax error"}),
      RefusedText("lone surrogate escape in JSON text", "user.suspended",
                  R"({"userId":"\udc00"})", kNotJson,
                  {suspended + "data is not valid JSON"}),

      // ---- Near-miss type names ----
      Refused("type in another case", "User.Suspended", UserData(),
              kUnknownType, {"event \"User.Suspended\": unknown event type"}),
      Refused("type with a trailing dot", "user.suspended.", UserData(),
              kUnknownType, {"event \"user.suspended.\": unknown event type"}),
      Refused("type with a trailing space", "user.suspended ", UserData(),
              kUnknownType, {"event \"user.suspended \": unknown event type"}),
      Refused("type with a leading space", " user.suspended", UserData(),
              kUnknownType, {"event \" user.suspended\": unknown event type"}),
      Refused("type with an underscore", "user_suspended", UserData(),
              kUnknownType, {"event \"user_suspended\": unknown event type"}),
      // U+0435 CYRILLIC SMALL LETTER IE for the "e".
      Refused("type with a Cyrillic lookalike", "us\xD0\xB5r.suspended",
              UserData(), kUnknownType,
              {"event \"us\xD0\xB5r.suspended\": unknown event type"}),
      Refused("type with a zero-width space", "user.suspended\xE2\x80\x8B",
              UserData(), kUnknownType,
              {"event \"user.suspended\xE2\x80\x8B\": unknown event type"}),

      // ---- Near-miss field names ----
      Refused("field in another case", "user.suspended",
              UserDataWith("UserId", "1"), kUnknownField,
              {suspended + "field \"UserId\": unknown field"}),
      Refused("field with a trailing dot", "user.suspended",
              UserDataWith("userId.", "1"), kUnknownField,
              {suspended + "field \"userId.\": unknown field"}),
      Refused("field with a trailing space", "user.suspended",
              UserDataWith("userId ", "1"), kUnknownField,
              {suspended + "field \"userId \": unknown field"}),
      Refused("field with an underscore", "user.suspended",
              UserDataWith("user_id", "1"), kUnknownField,
              {suspended + "field \"user_id\": unknown field"}),
      // U+0406 CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I for the "I".
      Refused("field with a Cyrillic lookalike", "user.suspended",
              UserDataWith("user\xD0\x86"
                           "d",
                           "1"),
              kUnknownField,
              {suspended + "field \"user\xD0\x86"
                           "d\": unknown field"}),
      Refused("field with a no-break space", "user.suspended",
              UserDataWith("userId\xC2\xA0", "1"), kUnknownField,
              {suspended + "field \"userId\xC2\xA0\": unknown field"}),

      // ---- Numbers JSON cannot hold (only values built in code) ----
      Refused("NaN in a nested object", "server.updated",
              ChangesData(json::object{{"n", std::nan("")}}), kNotJson,
              {"event \"server.updated\": field \"changes\": NaN or "
               "infinity, which JSON cannot hold"}),
      Refused("infinity for the entity id", "user.suspended",
              UserDataWith("userId", HUGE_VAL), kNotJson,
              {suspended + "field \"userId\": NaN or infinity"}),
      Refused("minus infinity in a string array",
              "network.device.assigned.to.fabric",
              json::object{{"fabricId", "42"},
                           {"networkDeviceIds", json::array{"1", -HUGE_VAL}},
                           {"fabricName", "f"}},
              kNotJson,
              {"field \"networkDeviceIds\": item 1: NaN or infinity"}),
      Refused("infinity in an object array item", "instance.dns.updated",
              json::object{
                  {"instanceId", "1"},
                  {"infrastructureId", "2"},
                  {"dnsRecords", json::array{json::object{{"ttl", HUGE_VAL}}}},
                  {"userIdAuthenticated", "3"}},
              kNotJson, {"field \"dnsRecords\": NaN or infinity"}),

      // ---- Found by tests/fuzz ----
      // Names were quoted raw: a control character or newline in them
      // broke the one-line message (and could forge log lines).
      Refused("fuzzer: control byte in the type name", "server\x12.registered",
              UserData(), kUnknownType,
              {"event \"server\\u0012.registered\": unknown event type"}),
      Refused("fuzzer: newline in a field name", "user.created",
              UserDataWith("logged\nUserId", "456"), kUnknownField,
              {"field \"logged\\nUserId\": unknown field"}),
      // Boost.JSON 1.81 read 68e74 as 6.7999999999999994e75.
      AcceptedText("fuzzer: number read to the nearest double",
                   "server.updated",
                   R"({"serverId":"7","userId":"456","changes":{"n":68e74}})",
                   {R"("changes":{"n":6.8E75})"}),
      // Boost.JSON 1.81 read -0e4000 as NaN: the entity id was "-nan".
      AcceptedText("fuzzer: zero with a huge exponent for the entity id",
                   "user.suspended",
                   R"({"userId":-0e4000,"userEmail":"",)"
                   R"("loggedInUserId":"","loggedInUserEmail":"",)"
                   R"("message":""})",
                   {R"("userId":"-0")"}),
      AcceptedText("fuzzer: 17-digit number for a string field",
                   "user.suspended",
                   R"({"userId":1.1030161663305387,"userEmail":"",)"
                   R"("loggedInUserId":"","loggedInUserEmail":"",)"
                   R"("message":""})",
                   {R"("userId":"1.1030161663305387")"}),
  };
}

long long OutboxRows(SQLite::Database& db) {
  return db.execAndGet("SELECT count(*) FROM sigevents_outbox").getInt64();
}

void CheckOneLine(const std::string& message) {
  BOOST_TEST(IsValidUtf8(message));
  BOOST_TEST(message.size() < 1024u);
  for (char c : message) {
    BOOST_TEST_REQUIRE(static_cast<unsigned char>(c) >= 0x20,
                       "control character in " << message);
  }
}

BOOST_AUTO_TEST_CASE(hostile_input_is_refused_or_published_intact) {
  ScratchDir dir;
  auto db = OpenDatabase(dir.File("auth.db"), OpenOptions{});
  db->exec("CREATE TABLE changes (name TEXT PRIMARY KEY)");
  Emitter emitter(*db);

  int index = 0;
  for (const HostileCase& c : Cases()) {
    BOOST_TEST_CONTEXT(c.name) {
      const std::string change = "case " + std::to_string(index++);
      long long rows_before = OutboxRows(*db);
      std::optional<Event> event;
      std::optional<EmitReceipt> receipt;
      std::optional<EventError> error;
      try {
        SQLite::Transaction txn(*db);
        SQLite::Statement insert(*db, "INSERT INTO changes VALUES (?)");
        insert.bind(1, change);
        insert.exec();
        event.emplace(c.text
                          ? Event::FromJson(c.type, std::string_view(*c.text))
                          : Event::FromJson(c.type, c.data));
        receipt = emitter.Emit(*event);
        txn.commit();
      } catch (const EventError& e) {
        error.emplace(e);
      }
      SQLite::Statement changes(*db,
                                "SELECT count(*) FROM changes WHERE name = ?");
      changes.bind(1, change);
      changes.executeStep();

      if (c.refused) {
        BOOST_TEST_REQUIRE(error.has_value(), "accepted");
        BOOST_TEST(EventErrorKindName(error->kind()) ==
                   EventErrorKindName(*c.refused));
        for (const std::string& part : c.expect) {
          BOOST_TEST(std::string(error->what()).find(part) != std::string::npos,
                     error->what() << "\n lacks " << part);
        }
        CheckOneLine(error->what());
        BOOST_TEST(OutboxRows(*db) == rows_before);
        BOOST_TEST(changes.getColumn(0).getInt() == 0);
        continue;
      }

      BOOST_TEST_REQUIRE(!error.has_value(), (error ? error->what() : ""));
      BOOST_TEST(changes.getColumn(0).getInt() == 1);
      SQLite::Statement row(*db,
                            "SELECT payload, CAST(partition_key AS BLOB)"
                            " FROM sigevents_outbox WHERE seq = ?");
      row.bind(1, receipt->seq);
      BOOST_TEST_REQUIRE(row.executeStep());
      std::string payload = row.getColumn(0).getString();
      BOOST_TEST(payload.size() == receipt->size);
      if (c.envelope_bytes != 0) BOOST_TEST(payload.size() == c.envelope_bytes);
      BOOST_TEST(IsValidUtf8(payload));
      BOOST_TEST(payload.find('\0') == std::string::npos, "raw NUL published");
      BOOST_TEST(row.getColumn(1).getString() == event->key());
      JsonError json_error;
      json::value published = ParseJson(payload, 64, json_error);
      BOOST_TEST_REQUIRE(!json_error, json_error.message);
      BOOST_TEST(published.at("type").as_string() == c.type);
      BOOST_TEST(published.at("data") == event->data());
      for (const std::string& part : c.expect) {
        BOOST_TEST(payload.find(part) != std::string::npos,
                   "payload lacks " << part);
      }
    }
  }
  BOOST_TEST_MESSAGE(index << " hostile inputs tried");
}

}  // namespace
}  // namespace sigevents
