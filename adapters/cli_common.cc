#include <boost/program_options/parsers.hpp>
#include <cctype>
#include <iostream>

#include "adapters/cli.h"

namespace sigevents::cli {

namespace po = boost::program_options;

bool ParseArgs(int argc, char** argv, const std::string& usage,
               po::options_description& options, po::variables_map& values,
               Io& io, const po::positional_options_description* positional) {
  options.add_options()("help,h", "print this help and exit");
  try {
    po::command_line_parser parser(argc, argv);
    parser.options(options);
    if (positional != nullptr) parser.positional(*positional);
    po::store(parser.run(), values);
    if (values.count("help") != 0) {
      io.out << "usage: " << usage << "\n\n" << options;
      return false;
    }
    po::notify(values);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return true;
}

std::chrono::milliseconds ParseDuration(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(text[digits])) ++digits;
  std::string unit = text.substr(digits);
  const std::pair<const char*, long long> units[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
  if (digits > 0 && digits <= 12) {
    long long count = std::stoll(text.substr(0, digits));
    for (const auto& [name, millis] : units) {
      if (unit == name) return std::chrono::milliseconds(count * millis);
    }
  }
  throw UsageError("bad duration \"" + text +
                   "\": expected a whole number and a unit, one of ms, s, m, "
                   "h, d (like 30s, 5m, 2h)");
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  long long ms = duration.count();
  if (ms < 0) ms = 0;
  if (ms < 1000) return std::to_string(ms) + "ms";
  long long s = ms / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) {
    return std::to_string(s / 60) + "m" +
           (s % 60 != 0 ? " " + std::to_string(s % 60) + "s" : "");
  }
  if (s < 86400) {
    return std::to_string(s / 3600) + "h" +
           (s % 3600 / 60 != 0 ? " " + std::to_string(s % 3600 / 60) + "m"
                               : "");
  }
  return std::to_string(s / 86400) + "d" +
         (s % 86400 / 3600 != 0 ? " " + std::to_string(s % 86400 / 3600) + "h"
                                : "");
}

std::map<std::string, std::string> ParseProperties(
    const std::vector<std::string>& pairs) {
  std::map<std::string, std::string> properties;
  for (const std::string& pair : pairs) {
    std::size_t equals = pair.find('=');
    if (equals == 0 || equals == std::string::npos) {
      throw UsageError("bad property \"" + pair + "\": expected key=value");
    }
    properties[pair.substr(0, equals)] = pair.substr(equals + 1);
  }
  return properties;
}

}  // namespace sigevents::cli
