// A validated significant event: its catalog entry and its data, normalized
// to the shape the specification publishes (fields in catalog order, scalar
// values as strings). An Event can only be made through validation, so one
// that exists is always fit to publish.
//
// Dynamic callers (the command line, bindings for other languages) make one
// from a type name and a JSON object; C++ callers use the typed builders in
// events.h, which end here too.
//
//   sigevents::Event event = sigevents::Event::FromJson(
//       "user.suspended", R"({"userId": "123", "userEmail": ..., ...})");
//
// Errors: every function that validates throws EventError, whose message
// names the event type, the field and what is wrong. Nothing is partly
// built.
//
// Thread safety: an Event is a value; const methods may be called from many
// threads at once.

#ifndef SIGEVENTS_EMITTER_EVENT_H_
#define SIGEVENTS_EMITTER_EVENT_H_

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "emitter/catalog.h"

namespace sigevents {

// Why an event was refused. Each value is a distinct class of bad input.
enum class EventErrorKind {
  kUnknownType,
  kMissingField,
  kUnknownField,
  kWrongShape,
  kEmptyKey,
  kInvalidUtf8,
  kTooDeep,
  kNotJson,
  kTooLarge,
};

std::string_view EventErrorKindName(EventErrorKind kind);

// Bad input: what() reads like
//   event "server.registered": field "siteId": missing
class EventError : public std::runtime_error {
 public:
  EventError(EventErrorKind kind, std::string type, std::string field,
             std::string reason);

  EventErrorKind kind() const { return kind_; }
  const std::string& type() const { return type_; }    // may be empty
  const std::string& field() const { return field_; }  // may be empty
  const std::string& reason() const { return reason_; }

 private:
  EventErrorKind kind_;
  std::string type_;
  std::string field_;
  std::string reason_;
};

class Event {
 public:
  // Nested objects and arrays deeper than this are refused.
  static constexpr int kMaxDepth = 16;

  // Validates `data` against the catalog entry of `type`. A number given for
  // a string field is written as a string, as the specification requires.
  static Event FromJson(std::string_view type, const boost::json::value& data);

  // As above, with `data_json` the text of a JSON object. Text that names a
  // key twice in one object is refused (kNotJson), not read as its last
  // value.
  static Event FromJson(std::string_view type, std::string_view data_json);

  // Validates data already keyed by the typed builders.
  static Event FromObject(const EventSpec& spec,
                          const boost::json::object& data);

  const EventSpec& spec() const { return *spec_; }
  std::string_view type() const { return spec_->type; }

  // The data object, fields in catalog order.
  const boost::json::object& data() const { return data_; }

  // The value of the partition key field: the entity id, never empty.
  const std::string& key() const { return key_; }

 private:
  Event(const EventSpec& spec, boost::json::object data, std::string key);

  const EventSpec* spec_;
  boost::json::object data_;
  std::string key_;
};

}  // namespace sigevents

#endif  // SIGEVENTS_EMITTER_EVENT_H_
