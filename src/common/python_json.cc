#include "common/python_json.h"

namespace pgha {

namespace {

template <typename Json>
void Write(const Json& value, std::string& out) {
  if (value.is_object()) {
    out += '{';
    bool first = true;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (!first) out += ", ";
      first = false;
      out += Json(it.key()).dump(-1, ' ', true);
      out += ": ";
      Write(it.value(), out);
    }
    out += '}';
  } else if (value.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& item : value) {
      if (!first) out += ", ";
      first = false;
      Write(item, out);
    }
    out += ']';
  } else {
    // Scalars: nlohmann's escapes with ensure_ascii match Python's (lower-case \u00e9, \n, \").
    out += value.dump(-1, ' ', true);
  }
}

}  // namespace

std::string PythonJsonDumps(const nlohmann::ordered_json& value) {
  std::string out;
  Write(value, out);
  return out;
}

std::string PythonJsonDumps(const nlohmann::json& value) {
  std::string out;
  Write(value, out);
  return out;
}

}  // namespace pgha
