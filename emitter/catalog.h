// The catalog of significant events: every event type the module can emit,
// the service that emits it, its data fields with their shapes, and the field
// whose value identifies the entity (the Kafka partition key).
//
// The table is generated from catalog.inc, the single definition of the
// catalog; validation, the typed builders in events.h, the command line and
// the documentation all read it from here.
//
//   const sigevents::EventSpec* spec =
//   sigevents::FindEventSpec("user.created"); if (spec != nullptr) {
//     for (const sigevents::FieldSpec& field : spec->fields()) { ... }
//   }
//
// Everything here is immutable and safe to use from any thread.

#ifndef SIGEVENTS_EMITTER_CATALOG_H_
#define SIGEVENTS_EMITTER_CATALOG_H_

#include <cstddef>
#include <string_view>

namespace sigevents {

// The service that emits an event; it determines the CloudEvents `source`.
enum class Service { kInventory, kAuth, kOrchestrator };

// The JSON shape of one data field. Scalar values are always strings.
enum class Shape { kString, kStringArray, kObjectArray, kObject };

// One identifier per event type, in catalog order.
enum class EventType : int {
#define SIGEVENTS_SCHEMA_BEGIN(schema, key)
#define SIGEVENTS_FIELD(schema, name, shape)
#define SIGEVENTS_SCHEMA_END(schema)
#define SIGEVENTS_EVENT(cls, type, service, schema, description) k##cls,
#include "emitter/catalog.inc"
#undef SIGEVENTS_SCHEMA_BEGIN
#undef SIGEVENTS_FIELD
#undef SIGEVENTS_SCHEMA_END
#undef SIGEVENTS_EVENT
};

struct FieldSpec {
  std::string_view name;
  Shape shape;
};

// A contiguous, immutable list of fields.
class FieldList {
 public:
  constexpr FieldList(const FieldSpec* begin, std::size_t size)
      : begin_(begin), size_(size) {}
  const FieldSpec* begin() const { return begin_; }
  const FieldSpec* end() const { return begin_ + size_; }
  std::size_t size() const { return size_; }

 private:
  const FieldSpec* begin_;
  std::size_t size_;
};

struct EventSpec {
  EventType id;
  std::string_view type;  // "server.registered"
  Service service;
  std::string_view description;  // one line, from the specification's table
  std::string_view schema;       // name of the shared field list
  std::string_view key_field;    // the partition key field, e.g. "serverId"
  FieldList fields_;

  const FieldList& fields() const { return fields_; }
  // The field named `name`, or nullptr when the type has no such field.
  const FieldSpec* FindField(std::string_view name) const;
};

// The number of event types in the catalog.
std::size_t EventTypeCount();

// The spec of every event type, in catalog order (EventType order).
const EventSpec* EventSpecs();

const EventSpec& GetEventSpec(EventType type);

// The spec of the type named `type` ("user.created"), or nullptr.
const EventSpec* FindEventSpec(std::string_view type);

// "inventory", "auth" or "orchestrator".
std::string_view ServiceName(Service service);

// The CloudEvents source of a service:
// "https://metalsoft.io/<service>-microservice".
std::string_view ServiceSource(Service service);

// "string", "string[]", "object[]" or "object", as the specification writes
// the shapes.
std::string_view ShapeName(Shape shape);

}  // namespace sigevents

#endif  // SIGEVENTS_EMITTER_CATALOG_H_
