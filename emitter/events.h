// Typed builders for the 39 significant events, one class per event type,
// generated from catalog.inc. Each field of the type is a setter named
// exactly like the field in the specification, so a misspelt field does not
// compile:
//
//   emitter.Emit(sigevents::events::ServerRegistered()
//                    .serverId(123)
//                    .serverStatus("AVAILABLE")
//                    .serverTypeId("25")
//                    .siteId("1")
//                    .userId("456"));
//
// String fields also take integers, written as decimal strings. Missing
// fields, an empty entity id or ill-formed UTF-8 are found when the builder
// is turned into an Event (Build(), or Emitter::Emit), which throws
// EventError.
//
// Thread safety: builders are plain values; use one from one thread at a
// time.

#ifndef SIGEVENTS_EMITTER_EVENTS_H_
#define SIGEVENTS_EMITTER_EVENTS_H_

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "emitter/catalog.h"
#include "emitter/event.h"

namespace sigevents {

// The common part of every typed builder: the type and the fields set so far.
class EventBuilder {
 public:
  EventType type() const { return type_; }

  // Validates the fields set so far; throws EventError.
  Event Build() const { return Event::FromObject(GetEventSpec(type_), data_); }

 protected:
  explicit EventBuilder(EventType type) : type_(type) {}

  void SetString(std::string_view field, std::string_view value) {
    data_[field] = boost::json::string(value);
  }
  void SetStrings(std::string_view field,
                  const std::vector<std::string>& values) {
    boost::json::array array;
    for (const std::string& value : values) array.emplace_back(value);
    data_[field] = std::move(array);
  }
  void SetValue(std::string_view field, boost::json::value value) {
    data_[field] = std::move(value);
  }

 private:
  EventType type_;
  boost::json::object data_;
};

namespace events {

// One base class per schema, holding the setters of its fields.
#define SIGEVENTS_SETTER_kString(schema, name)                       \
  schema##Fields& name(std::string_view value) {                     \
    SetString(#name, value);                                         \
    return *this;                                                    \
  }                                                                  \
  template <typename Int,                                            \
            typename = std::enable_if_t<std::is_integral_v<Int> &&   \
                                        !std::is_same_v<Int, bool>>> \
  schema##Fields& name(Int value) {                                  \
    SetString(#name, std::to_string(value));                         \
    return *this;                                                    \
  }
#define SIGEVENTS_SETTER_kStringArray(schema, name)              \
  schema##Fields& name(const std::vector<std::string>& values) { \
    SetStrings(#name, values);                                   \
    return *this;                                                \
  }
#define SIGEVENTS_SETTER_kObjectArray(schema, name) \
  schema##Fields& name(boost::json::array value) {  \
    SetValue(#name, std::move(value));              \
    return *this;                                   \
  }
#define SIGEVENTS_SETTER_kObject(schema, name)      \
  schema##Fields& name(boost::json::object value) { \
    SetValue(#name, std::move(value));              \
    return *this;                                   \
  }

#define SIGEVENTS_SCHEMA_BEGIN(schema, key)    \
  class schema##Fields : public EventBuilder { \
   protected:                                  \
    using EventBuilder::EventBuilder;          \
                                               \
   public:
#define SIGEVENTS_FIELD(schema, name, shape) \
  SIGEVENTS_SETTER_##shape(schema, name)
#define SIGEVENTS_SCHEMA_END(schema) \
  }                                  \
  ;
#define SIGEVENTS_EVENT(cls, type, service, schema, description)
#include "emitter/catalog.inc"
#undef SIGEVENTS_SCHEMA_BEGIN
#undef SIGEVENTS_FIELD
#undef SIGEVENTS_SCHEMA_END
#undef SIGEVENTS_EVENT
#undef SIGEVENTS_SETTER_kString
#undef SIGEVENTS_SETTER_kStringArray
#undef SIGEVENTS_SETTER_kObjectArray
#undef SIGEVENTS_SETTER_kObject

// One final class per event type: events::ServerRegistered, ...
#define SIGEVENTS_SCHEMA_BEGIN(schema, key)
#define SIGEVENTS_FIELD(schema, name, shape)
#define SIGEVENTS_SCHEMA_END(schema)
#define SIGEVENTS_EVENT(cls, type, service, schema, description) \
  class cls final : public schema##Fields {                      \
   public:                                                       \
    cls() : schema##Fields(EventType::k##cls) {}                 \
  };
#include "emitter/catalog.inc"
#undef SIGEVENTS_SCHEMA_BEGIN
#undef SIGEVENTS_FIELD
#undef SIGEVENTS_SCHEMA_END
#undef SIGEVENTS_EVENT

}  // namespace events
}  // namespace sigevents

#endif  // SIGEVENTS_EMITTER_EVENTS_H_
