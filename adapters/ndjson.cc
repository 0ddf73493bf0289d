#include "adapters/ndjson.h"

#include "emitter/json_parse.h"
#include "emitter/utf8.h"

namespace sigevents {

namespace json = boost::json;

std::optional<Event> ParseEventLine(std::string_view line, std::string& error) {
  // The parser's limit stops runaway nesting before it costs anything;
  // validation applies Event::kMaxDepth to the data below the line's two
  // levels (the line's object and "data").
  JsonError json_error;
  json::value value = ParseJson(line, Event::kMaxDepth + 3, json_error);
  if (json_error) {
    error = "not valid JSON: " + json_error.message;
    return std::nullopt;
  }
  if (!value.is_object()) {
    error = "expected an object {\"type\": ..., \"data\": {...}}";
    return std::nullopt;
  }
  const json::object& object = value.get_object();
  for (const auto& member : object) {
    if (member.key() != "type" && member.key() != "data") {
      error = "unknown member \"" + EscapeForMessage(member.key()) +
              "\"; a line holds only \"type\" and \"data\"";
      return std::nullopt;
    }
  }
  const json::value* type = object.if_contains("type");
  const json::value* data = object.if_contains("data");
  if (type == nullptr || !type->is_string()) {
    error = "missing \"type\" string";
    return std::nullopt;
  }
  if (data == nullptr) {
    error = "event \"" + EscapeForMessage(type->get_string()) +
            "\": missing \"data\" object";
    return std::nullopt;
  }
  try {
    return Event::FromJson(type->get_string(), *data);
  } catch (const EventError& e) {
    error = e.what();
    return std::nullopt;
  }
}

}  // namespace sigevents
