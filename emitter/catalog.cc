#include "emitter/catalog.h"

#include <string>
#include <unordered_map>

namespace sigevents {
namespace {

// One array of fields per schema: kServerRemovalFields, ...
#define SIGEVENTS_SCHEMA_BEGIN(schema, key) \
  constexpr FieldSpec k##schema##Fields[] = {
#define SIGEVENTS_FIELD(schema, name, shape) {#name, Shape::shape},
#define SIGEVENTS_SCHEMA_END(schema) \
  }                                  \
  ;
#define SIGEVENTS_EVENT(cls, type, service, schema, description)
#include "emitter/catalog.inc"
#undef SIGEVENTS_SCHEMA_BEGIN
#undef SIGEVENTS_FIELD
#undef SIGEVENTS_SCHEMA_END
#undef SIGEVENTS_EVENT

// The partition key field of each schema: kServerRemovalKey, ...
#define SIGEVENTS_SCHEMA_BEGIN(schema, key) \
  constexpr std::string_view k##schema##Key = #key;
#define SIGEVENTS_FIELD(schema, name, shape)
#define SIGEVENTS_SCHEMA_END(schema)
#define SIGEVENTS_EVENT(cls, type, service, schema, description)
#include "emitter/catalog.inc"
#undef SIGEVENTS_SCHEMA_BEGIN
#undef SIGEVENTS_FIELD
#undef SIGEVENTS_SCHEMA_END
#undef SIGEVENTS_EVENT

template <std::size_t N>
constexpr FieldList MakeFieldList(const FieldSpec (&fields)[N]) {
  return FieldList(fields, N);
}

const EventSpec kEventSpecs[] = {
#define SIGEVENTS_SCHEMA_BEGIN(schema, key)
#define SIGEVENTS_FIELD(schema, name, shape)
#define SIGEVENTS_SCHEMA_END(schema)
#define SIGEVENTS_EVENT(cls, type, service, schema, description) \
  EventSpec{EventType::k##cls,                                   \
            type,                                                \
            Service::service,                                    \
            description,                                         \
            #schema,                                             \
            k##schema##Key,                                      \
            MakeFieldList(k##schema##Fields)},
#include "emitter/catalog.inc"
#undef SIGEVENTS_SCHEMA_BEGIN
#undef SIGEVENTS_FIELD
#undef SIGEVENTS_SCHEMA_END
#undef SIGEVENTS_EVENT
};

constexpr std::size_t kEventTypeCount =
    sizeof(kEventSpecs) / sizeof(kEventSpecs[0]);

const std::unordered_map<std::string_view, const EventSpec*>& SpecsByName() {
  static const auto* by_name = [] {
    auto* map = new std::unordered_map<std::string_view, const EventSpec*>();
    for (const EventSpec& spec : kEventSpecs) map->emplace(spec.type, &spec);
    return map;
  }();
  return *by_name;
}

}  // namespace

const FieldSpec* EventSpec::FindField(std::string_view name) const {
  for (const FieldSpec& field : fields_) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

std::size_t EventTypeCount() { return kEventTypeCount; }

const EventSpec* EventSpecs() { return kEventSpecs; }

const EventSpec& GetEventSpec(EventType type) {
  return kEventSpecs[static_cast<int>(type)];
}

const EventSpec* FindEventSpec(std::string_view type) {
  const auto& by_name = SpecsByName();
  auto it = by_name.find(type);
  return it == by_name.end() ? nullptr : it->second;
}

std::string_view ServiceName(Service service) {
  switch (service) {
    case Service::kInventory:
      return "inventory";
    case Service::kAuth:
      return "auth";
    case Service::kOrchestrator:
      return "orchestrator";
  }
  return "unknown";
}

std::string_view ServiceSource(Service service) {
  switch (service) {
    case Service::kInventory:
      return "https://metalsoft.io/inventory-microservice";
    case Service::kAuth:
      return "https://metalsoft.io/auth-microservice";
    case Service::kOrchestrator:
      return "https://metalsoft.io/orchestrator-microservice";
  }
  return "unknown";
}

std::string_view ShapeName(Shape shape) {
  switch (shape) {
    case Shape::kString:
      return "string";
    case Shape::kStringArray:
      return "string[]";
    case Shape::kObjectArray:
      return "object[]";
    case Shape::kObject:
      return "object";
  }
  return "unknown";
}

}  // namespace sigevents
