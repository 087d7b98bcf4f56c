// Any bytes as what a client sends to the REST or exporter port: the parser never crashes,
// answers every refusal with an HTTP error status, and gives the same result however the bytes
// are split across reads (the first byte picks the split).
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "api/http/request_parser.h"

namespace {

using pgha::api::http::ParseLimits;
using pgha::api::http::RequestParser;

std::string Summary(const RequestParser& parser) {
  switch (parser.state()) {
    case RequestParser::State::kNeedMore:
      return "more";
    case RequestParser::State::kFailed:
      return "failed " + std::to_string(parser.error_status());
    case RequestParser::State::kComplete: {
      const auto& r = parser.request();
      std::string out = "complete " + r.method + " " + r.path + " " + std::to_string(r.body.size());
      for (const auto& [k, v] : r.query) out += " q" + k + "=" + v;
      for (const auto& [k, v] : r.headers) out += " h" + k + "=" + v;
      return out + " b" + r.body;
    }
  }
  return "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  size_t step = 1 + data[0] % 17;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  ParseLimits limits{.max_head_bytes = 4096, .max_body_bytes = 4096};

  RequestParser whole(limits);
  whole.Feed(bytes);
  RequestParser pieces(limits);
  for (size_t at = 0; at < bytes.size(); at += step) {
    pieces.Feed(bytes.substr(at, step));
  }
  if (Summary(whole) != Summary(pieces)) {
    __builtin_trap();  // the split changed the outcome
  }
  static const std::set<int> kStatuses = {400, 411, 413, 414, 431, 501, 505};
  if (whole.state() == RequestParser::State::kFailed &&
      (!kStatuses.count(whole.error_status()) || whole.error_message().empty())) {
    __builtin_trap();
  }
  if (whole.state() == RequestParser::State::kComplete) {
    const auto& r = whole.request();
    if (r.path.empty() || r.method.empty() || r.body.size() > limits.max_body_bytes) {
      __builtin_trap();
    }
  }
  return 0;
}
