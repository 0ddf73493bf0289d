#include "emitter/envelope.h"

#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <random>

namespace sigevents {
namespace {

// UUIDv7 state: the last timestamp used and a 12-bit counter in `rand_a`
// that keeps ids made within one millisecond increasing (RFC 9562, section
// 6.2, method 1). The counter starts at a random value below 2048 each new
// millisecond, leaving room to count up.
class UuidV7Generator {
 public:
  UuidV7Generator() : random_(std::random_device{}()) {}

  EventStamp Next() {
    std::int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count();
    std::uint64_t rand_b;
    std::int64_t ms;
    std::uint32_t counter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (now_ms > last_ms_) {
        last_ms_ = now_ms;
        counter_ = static_cast<std::uint32_t>(random_() & 0x7FF);
      } else if (++counter_ > 0xFFF) {
        // 4096 ids in one millisecond, or the clock went back: borrow the
        // next millisecond so that ids keep increasing.
        ++last_ms_;
        counter_ = 0;
      }
      ms = last_ms_;
      counter = counter_;
      rand_b = random_();
    }
    return EventStamp{Format(ms, counter, rand_b), FormatRfc3339Millis(ms), ms};
  }

 private:
  static std::string Format(std::int64_t ms, std::uint32_t counter,
                            std::uint64_t rand_b) {
    unsigned char bytes[16];
    for (int i = 0; i < 6; ++i) {
      bytes[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
    }
    bytes[6] = static_cast<unsigned char>(0x70 | ((counter >> 8) & 0x0F));
    bytes[7] = static_cast<unsigned char>(counter);
    for (int i = 0; i < 8; ++i) {
      bytes[8 + i] = static_cast<unsigned char>(rand_b >> (56 - 8 * i));
    }
    bytes[8] = static_cast<unsigned char>(0x80 | (bytes[8] & 0x3F));

    static const char kHex[] = "0123456789abcdef";
    std::string text;
    text.reserve(36);
    for (int i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
      text += kHex[bytes[i] >> 4];
      text += kHex[bytes[i] & 0x0F];
    }
    return text;
  }

  std::mutex mu_;
  std::mt19937_64 random_;     // guarded by mu_
  std::int64_t last_ms_ = 0;   // guarded by mu_
  std::uint32_t counter_ = 0;  // guarded by mu_
};

}  // namespace

EventStamp NewEventStamp() {
  static UuidV7Generator* generator = new UuidV7Generator();
  return generator->Next();
}

std::string FormatRfc3339Millis(std::int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  int millis = static_cast<int>(unix_ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[80];  // room for any int the compiler cannot rule out
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                utc.tm_min, utc.tm_sec, millis);
  return text;
}

std::string SerializeEnvelope(const Event& event, const EventStamp& stamp) {
  // Written directly, in the specification's member order: the id (a
  // UUID), the time and the catalog's type and source are ASCII with
  // nothing to escape, so only the data goes through the JSON serializer.
  // This is the hot part of emit(); building a JSON object first copied
  // the whole data once more.
  std::string data = boost::json::serialize(event.data());
  std::string_view type = event.type();
  std::string_view source = ServiceSource(event.spec().service);
  std::string out;
  out.reserve(128 + stamp.id.size() + stamp.time.size() + type.size() +
              source.size() + data.size());
  out += "{\"id\":\"";
  out += stamp.id;
  out += "\",\"time\":\"";
  out += stamp.time;
  out += "\",\"type\":\"";
  out += type;
  out += "\",\"source\":\"";
  out += source;
  out +=
      "\",\"specversion\":\"1.0\",\"datacontenttype\":"
      "\"application/json\",\"data\":";
  out += data;
  out += '}';
  return out;
}

}  // namespace sigevents
