#include "emitter/event.h"

#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <utility>

#include "emitter/json_parse.h"
#include "emitter/utf8.h"

namespace sigevents {
namespace {

namespace json = boost::json;

// Type and field names may be anything the caller sent; they are escaped
// and shortened so that the message stays one line.
std::string DescribeError(const std::string& type, const std::string& field,
                          const std::string& reason) {
  std::string text;
  if (!type.empty()) text += "event \"" + EscapeForMessage(type) + "\": ";
  if (!field.empty()) text += "field \"" + EscapeForMessage(field) + "\": ";
  return text + reason;
}

std::string_view KindOfValue(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

// The decimal text of a JSON number: integers exactly, other numbers in the
// shortest form that reads back to the same double ("25.5", "1e+21").
std::string NumberText(const json::value& value) {
  if (value.is_int64()) return std::to_string(value.get_int64());
  if (value.is_uint64()) return std::to_string(value.get_uint64());
  char text[64];
  auto result = std::to_chars(text, text + sizeof(text), value.get_double());
  return std::string(text, result.ptr);
}

// Checks one data field against its catalog shape and returns it normalized.
class FieldChecker {
 public:
  FieldChecker(const EventSpec& spec, std::string_view field)
      : spec_(spec), field_(field) {}

  json::value Check(Shape shape, const json::value& value) const {
    switch (shape) {
      case Shape::kString:
        return json::value(ScalarAsString(value, ""));
      case Shape::kStringArray:
        return StringArray(value);
      case Shape::kObjectArray:
        return ObjectArray(value);
      case Shape::kObject:
        if (!value.is_object()) {
          Fail(EventErrorKind::kWrongShape,
               "expected an object, got " + std::string(KindOfValue(value)));
        }
        CheckNested(value, 1);
        return value;
    }
    return value;
  }

  [[noreturn]] void Fail(EventErrorKind kind, std::string reason) const {
    throw EventError(kind, std::string(spec_.type), std::string(field_),
                     std::move(reason));
  }

 private:
  // A string stays as it is; a number becomes its decimal text.
  json::string ScalarAsString(const json::value& value,
                              const std::string& where) const {
    if (value.is_string()) {
      CheckUtf8(value.get_string(), where);
      return value.get_string();
    }
    if (value.is_number()) {
      CheckFinite(value, where);
      return json::string(NumberText(value));
    }
    Fail(EventErrorKind::kWrongShape,
         where + "expected a string, got " + std::string(KindOfValue(value)));
  }

  json::value StringArray(const json::value& value) const {
    if (!value.is_array()) {
      Fail(EventErrorKind::kWrongShape, "expected an array of strings, got " +
                                            std::string(KindOfValue(value)));
    }
    json::array out;
    out.reserve(value.get_array().size());
    std::size_t index = 0;
    for (const json::value& item : value.get_array()) {
      out.emplace_back(
          ScalarAsString(item, "item " + std::to_string(index++) + ": "));
    }
    return out;
  }

  json::value ObjectArray(const json::value& value) const {
    if (!value.is_array()) {
      Fail(EventErrorKind::kWrongShape, "expected an array of objects, got " +
                                            std::string(KindOfValue(value)));
    }
    std::size_t index = 0;
    for (const json::value& item : value.get_array()) {
      if (!item.is_object()) {
        Fail(EventErrorKind::kWrongShape, "item " + std::to_string(index) +
                                              ": expected an object, got " +
                                              std::string(KindOfValue(item)));
      }
      ++index;
    }
    CheckNested(value, 1);
    return value;
  }

  // Nested content keeps its shape; it must be well-formed UTF-8 and no
  // deeper than Event::kMaxDepth.
  void CheckNested(const json::value& value, int depth) const {
    if (depth > Event::kMaxDepth) {
      Fail(
          EventErrorKind::kTooDeep,
          "nested deeper than " + std::to_string(Event::kMaxDepth) + " levels");
    }
    if (value.is_string()) {
      CheckUtf8(value.get_string(), "");
    } else if (value.is_double()) {
      CheckFinite(value, "");
    } else if (value.is_array()) {
      for (const json::value& item : value.get_array()) {
        CheckNested(item, depth + 1);
      }
    } else if (value.is_object()) {
      for (const auto& member : value.get_object()) {
        CheckUtf8(member.key(), "a key: ");
        CheckNested(member.value(), depth + 1);
      }
    }
  }

  // NaN and infinity have no JSON form: serialized, they would make the
  // envelope unreadable ("NaN"), or the entity id "nan". Only a value built
  // in code can hold them; parsed text cannot.
  void CheckFinite(const json::value& value, const std::string& where) const {
    if (value.is_double() && !std::isfinite(value.get_double())) {
      Fail(EventErrorKind::kNotJson,
           where + "NaN or infinity, which JSON cannot hold");
    }
  }

  void CheckUtf8(std::string_view text, const std::string& where) const {
    std::size_t at = FindInvalidUtf8(text);
    if (at != std::string_view::npos) {
      Fail(EventErrorKind::kInvalidUtf8,
           where + "invalid UTF-8 at byte " + std::to_string(at));
    }
  }

  const EventSpec& spec_;
  std::string_view field_;
};

std::string FieldNames(const EventSpec& spec) {
  std::string names;
  for (const FieldSpec& field : spec.fields()) {
    if (!names.empty()) names += ", ";
    names += field.name;
  }
  return names;
}

const EventSpec& RequireSpec(std::string_view type) {
  const EventSpec* spec = FindEventSpec(type);
  if (spec == nullptr) {
    std::string shown(type);
    if (!IsValidUtf8(shown)) shown = "(invalid UTF-8)";
    throw EventError(EventErrorKind::kUnknownType, shown, "",
                     "unknown event type; `sigevents types` lists the " +
                         std::to_string(EventTypeCount()) + " known types");
  }
  return *spec;
}

}  // namespace

std::string_view EventErrorKindName(EventErrorKind kind) {
  switch (kind) {
    case EventErrorKind::kUnknownType:
      return "unknown_type";
    case EventErrorKind::kMissingField:
      return "missing_field";
    case EventErrorKind::kUnknownField:
      return "unknown_field";
    case EventErrorKind::kWrongShape:
      return "wrong_shape";
    case EventErrorKind::kEmptyKey:
      return "empty_key";
    case EventErrorKind::kInvalidUtf8:
      return "invalid_utf8";
    case EventErrorKind::kTooDeep:
      return "too_deep";
    case EventErrorKind::kNotJson:
      return "not_json";
    case EventErrorKind::kTooLarge:
      return "too_large";
  }
  return "unknown";
}

EventError::EventError(EventErrorKind kind, std::string type, std::string field,
                       std::string reason)
    : std::runtime_error(DescribeError(type, field, reason)),
      kind_(kind),
      type_(std::move(type)),
      field_(std::move(field)),
      reason_(std::move(reason)) {}

Event::Event(const EventSpec& spec, json::object data, std::string key)
    : spec_(&spec), data_(std::move(data)), key_(std::move(key)) {}

Event Event::FromObject(const EventSpec& spec, const json::object& data) {
  // Unknown fields first: a misspelt name also shows up as a missing one,
  // and the misspelling is the more useful message.
  for (const auto& member : data) {
    if (spec.FindField(member.key()) == nullptr) {
      std::string name(member.key());
      if (!IsValidUtf8(name)) name = "(invalid UTF-8)";
      throw EventError(
          EventErrorKind::kUnknownField, std::string(spec.type), name,
          "unknown field; the fields of this type are " + FieldNames(spec));
    }
  }

  json::object normalized;
  normalized.reserve(spec.fields().size());
  for (const FieldSpec& field : spec.fields()) {
    FieldChecker checker(spec, field.name);
    const json::value* value = data.if_contains(field.name);
    if (value == nullptr) {
      checker.Fail(
          EventErrorKind::kMissingField,
          "missing (expected " + std::string(ShapeName(field.shape)) + ")");
    }
    normalized.emplace(field.name, checker.Check(field.shape, *value));
  }

  const json::string& key = normalized.at(spec.key_field).get_string();
  if (key.empty()) {
    throw EventError(EventErrorKind::kEmptyKey, std::string(spec.type),
                     std::string(spec.key_field),
                     "empty; it identifies the entity and keys the Kafka "
                     "message");
  }
  return Event(spec, std::move(normalized), std::string(key));
}

Event Event::FromJson(std::string_view type, const json::value& data) {
  const EventSpec& spec = RequireSpec(type);
  if (!data.is_object()) {
    throw EventError(
        EventErrorKind::kWrongShape, std::string(spec.type), "",
        "data must be a JSON object, got " + std::string(KindOfValue(data)));
  }
  return FromObject(spec, data.get_object());
}

Event Event::FromJson(std::string_view type, std::string_view data_json) {
  const EventSpec& spec = RequireSpec(type);
  JsonError error;
  json::value data = ParseJson(data_json, kMaxDepth + 1, error);
  if (error) {
    throw EventError(EventErrorKind::kNotJson, std::string(spec.type), "",
                     "data is not valid JSON: " + error.message);
  }
  return FromJson(type, data);
}

}  // namespace sigevents
