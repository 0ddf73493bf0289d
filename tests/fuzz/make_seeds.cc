// Writes the fuzzers' seed corpora and dictionary from the specification's
// examples and the catalog:
//
//   make_seeds EXAMPLES.ndjson EVENT_DIR NDJSON_DIR DICT_FILE
//
// Each example gives one seed per fuzzer: "type\0data-json" for the event
// fuzzer and {"type": ..., "data": ...} for the NDJSON fuzzer. The
// dictionary holds every type and field name, quoted, and JSON's tokens.

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <iostream>
#include <set>
#include <string>

#include "emitter/catalog.h"

namespace json = boost::json;

namespace {

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// A libFuzzer dictionary entry holding `token` between quotes.
std::string DictEntry(const std::string& token) {
  std::string entry = "\"";
  for (char c : token) {
    if (c == '"' || c == '\\') entry += '\\';
    entry += c;
  }
  return entry + "\"\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: make_seeds EXAMPLES EVENT_DIR NDJSON_DIR DICT\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  int count = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    json::object example = json::parse(line).as_object();
    std::string type(example.at("type").as_string());
    std::string data = json::serialize(example.at("data"));
    std::string name = std::to_string(++count) + "-" + type;
    WriteFile(std::string(argv[2]) + "/" + name, type + '\0' + data);
    json::object ndjson{{"type", type}, {"data", example.at("data")}};
    WriteFile(std::string(argv[3]) + "/" + name, json::serialize(ndjson));
  }

  std::set<std::string> names;
  for (std::size_t i = 0; i < sigevents::EventTypeCount(); ++i) {
    const sigevents::EventSpec& spec = sigevents::EventSpecs()[i];
    names.emplace(spec.type);
    for (const sigevents::FieldSpec& field : spec.fields()) {
      names.emplace(field.name);
    }
  }
  std::string dict;
  for (const std::string& name : names) dict += DictEntry("\"" + name + "\"");
  for (const char* token :
       {"{", "}", "[", "]", ":", ",", "\"", "true", "false", "null", "\\u0000",
        "\\ud800", "1e400", "-0", "\"type\"", "\"data\""}) {
    dict += DictEntry(token);
  }
  WriteFile(argv[4], dict);
  std::cout << count << " examples\n";
  return count > 0 ? 0 : 1;
}
