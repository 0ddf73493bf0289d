// sigevents types [--json]: the event catalog.

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <iostream>

#include "adapters/cli.h"
#include "emitter/catalog.h"

namespace sigevents::cli {
namespace {

namespace json = boost::json;

json::array CatalogAsJson() {
  json::array types;
  for (std::size_t i = 0; i < EventTypeCount(); ++i) {
    const EventSpec& spec = EventSpecs()[i];
    json::array fields;
    for (const FieldSpec& field : spec.fields()) {
      fields.push_back(json::object{{"name", field.name},
                                    {"shape", ShapeName(field.shape)}});
    }
    types.push_back(json::object{{"type", spec.type},
                                 {"service", ServiceName(spec.service)},
                                 {"source", ServiceSource(spec.service)},
                                 {"key", spec.key_field},
                                 {"description", spec.description},
                                 {"fields", std::move(fields)}});
  }
  return types;
}

void PrintTable(std::ostream& out) {
  std::size_t type_width = 4, key_width = 3;
  for (std::size_t i = 0; i < EventTypeCount(); ++i) {
    type_width = std::max(type_width, EventSpecs()[i].type.size());
    key_width = std::max(key_width, EventSpecs()[i].key_field.size());
  }
  auto pad = [](std::string_view text, std::size_t width) {
    return std::string(text) + std::string(width - text.size() + 2, ' ');
  };
  out << pad("TYPE", type_width) << pad("SOURCE", 12) << pad("KEY", key_width)
      << "DATA FIELDS\n";
  for (std::size_t i = 0; i < EventTypeCount(); ++i) {
    const EventSpec& spec = EventSpecs()[i];
    out << pad(spec.type, type_width) << pad(ServiceName(spec.service), 12)
        << pad(spec.key_field, key_width);
    const char* separator = "";
    for (const FieldSpec& field : spec.fields()) {
      out << separator << field.name;
      if (field.shape != Shape::kString) out << ":" << ShapeName(field.shape);
      separator = " ";
    }
    out << "\n";
  }
  out << EventTypeCount() << " types; fields are strings unless marked.\n";
}

// The catalog as a Markdown table, for the README.
void PrintMarkdown(std::ostream& out) {
  out << "| Type | Source | Key | Data fields | Description |\n"
         "|---|---|---|---|---|\n";
  for (std::size_t i = 0; i < EventTypeCount(); ++i) {
    const EventSpec& spec = EventSpecs()[i];
    out << "| `" << spec.type << "` | " << ServiceName(spec.service) << " | `"
        << spec.key_field << "` | ";
    const char* separator = "";
    for (const FieldSpec& field : spec.fields()) {
      out << separator << "`" << field.name << "`";
      if (field.shape != Shape::kString) out << " " << ShapeName(field.shape);
      separator = ", ";
    }
    out << " | " << spec.description << " |\n";
  }
}

}  // namespace

int RunTypes(int argc, char** argv, Io& io) {
  namespace po = boost::program_options;
  po::options_description options("options");
  options.add_options()                              //
      ("json", "print the catalog as a JSON array")  //
      ("markdown", "print the catalog as a Markdown table");
  po::variables_map values;
  if (!ParseArgs(argc, argv, "sigevents types [--json | --markdown]", options,
                 values, io)) {
    return 0;
  }
  if (values.count("json") != 0) {
    io.out << json::serialize(CatalogAsJson()) << "\n";
  } else if (values.count("markdown") != 0) {
    PrintMarkdown(io.out);
  } else {
    PrintTable(io.out);
  }
  return 0;
}

}  // namespace sigevents::cli
