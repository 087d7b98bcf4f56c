#include "config/yaml_json.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace pgha::config {

using nlohmann::json;

namespace {

constexpr int kMaxDepth = 64;  // deeper documents are refused rather than risking the stack

bool IsOneOf(const std::string& text, std::initializer_list<const char*> words) {
  for (const char* w : words) {
    if (text == w) {
      return true;
    }
  }
  return false;
}

bool AllOf(std::string_view s, const char* allowed) {
  return !s.empty() && s.find_first_not_of(allowed) == std::string_view::npos;
}

// YAML 1.1 int: [-+]? then 0x<hex>, 0<octal>, or a decimal without a leading zero.
bool LooksLikeYamlInt(std::string_view text) {
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    text.remove_prefix(1);
  }
  if (text.size() > 2 && text[0] == '0' && text[1] == 'x') {
    return AllOf(text.substr(2), "0123456789abcdefABCDEF_");
  }
  if (text.size() > 1 && text[0] == '0') {
    return AllOf(text.substr(1), "01234567_");
  }
  return AllOf(text, "0123456789_") && text[0] != '_';
}

// YAML 1.1 float: [-+]? digits? '.' digits? ([eE][-+]digits)?; infinities and NaN are left as
// strings on purpose (no configuration value wants them).
bool LooksLikeYamlFloat(std::string_view text) {
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    text.remove_prefix(1);
  }
  size_t dot = text.find('.');
  if (dot == std::string_view::npos) {
    return false;
  }
  std::string_view whole = text.substr(0, dot);
  std::string_view rest = text.substr(dot + 1);
  std::string_view exponent;
  if (size_t e = rest.find_first_of("eE"); e != std::string_view::npos) {
    exponent = rest.substr(e + 1);
    rest = rest.substr(0, e);
    if (exponent.size() < 2 || (exponent[0] != '+' && exponent[0] != '-') ||
        !AllOf(exponent.substr(1), "0123456789")) {
      return false;
    }
  }
  bool whole_ok = whole.empty() || (AllOf(whole, "0123456789_") && whole[0] != '_');
  bool rest_ok = rest.empty() || AllOf(rest, "0123456789_");
  return whole_ok && rest_ok && (!whole.empty() || !rest.empty());
}

std::optional<int64_t> ParseYamlInt(std::string text) {
  // YAML 1.1 allows '_' as a digit separator.
  std::erase(text, '_');
  if (text.empty()) {
    return std::nullopt;
  }
  bool negative = false;
  size_t pos = 0;
  if (text[0] == '+' || text[0] == '-') {
    negative = text[0] == '-';
    pos = 1;
  }
  int base = 10;
  if (text.compare(pos, 2, "0x") == 0) {
    base = 16;
    pos += 2;
  } else if (text.compare(pos, 2, "0o") == 0) {
    base = 8;
    pos += 2;
  } else if (text.size() > pos + 1 && text[pos] == '0') {
    base = 8;  // YAML 1.1: a leading zero means octal
    pos += 1;
  }
  if (pos >= text.size()) {
    return text == "0" || text == "+0" || text == "-0" ? std::optional<int64_t>(0) : std::nullopt;
  }
  uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), magnitude, base);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  if (magnitude > static_cast<uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  auto value = static_cast<int64_t>(magnitude);
  return negative ? -value : value;
}

Result<json> Convert(const YAML::Node& node, int depth) {
  if (depth > kMaxDepth) {
    return Error::Invalid(fmt::format("YAML nesting deeper than {} levels", kMaxDepth));
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") {
        return json(node.Scalar());  // quoted, or explicitly a string
      }
      return ResolvePlainScalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) {
        auto converted = Convert(item, depth + 1);
        if (!converted.ok()) {
          return converted.error();
        }
        out.push_back(std::move(converted).value());
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& item : node) {
        std::string key;
        if (item.first.IsScalar()) {
          key = item.first.Scalar();
        } else if (item.first.IsNull()) {
          key = "null";
        } else {
          return Error::Invalid(
              fmt::format("line {}: mapping keys must be scalars", item.first.Mark().line + 1));
        }
        auto converted = Convert(item.second, depth + 1);
        if (!converted.ok()) {
          return converted.error();
        }
        out[key] = std::move(converted).value();
      }
      return out;
    }
  }
  return json(nullptr);
}

bool NeedsQuotes(const std::string& s) {
  if (s.empty()) {
    return true;
  }
  json resolved = ResolvePlainScalar(s);
  if (!resolved.is_string()) {
    return true;  // would read back as a number, bool or null
  }
  static const std::string kSpecialStart = "-?:,[]{}#&*!|>'\"%@` ";
  if (kSpecialStart.find(s.front()) != std::string::npos || s.back() == ' ') {
    return true;
  }
  return s.find(": ") != std::string::npos || s.find(" #") != std::string::npos ||
         s.find('\n') != std::string::npos || s.find('\t') != std::string::npos || s.back() == ':';
}

std::string QuoteScalar(const std::string& s) {
  if (!NeedsQuotes(s)) {
    return s;
  }
  // PyYAML prefers single quotes ('' escapes a quote) and falls back to double quotes for
  // strings with control characters or line breaks; a JSON string is valid double-quoted YAML.
  bool printable = std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  });
  if (!printable) {
    return json(s).dump();
  }
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("''") : std::string(1, c);
  }
  return out + "'";
}

std::string ScalarText(const json& value) {
  if (value.is_string()) {
    return QuoteScalar(value.get<std::string>());
  }
  if (value.is_null()) {
    return "null";
  }
  return value.dump();
}

void Emit(const json& value, int indent, std::string& out) {
  std::string pad(indent, ' ');
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      out += pad + QuoteScalar(key) + ":";
      if ((item.is_object() || item.is_array()) && !item.empty()) {
        out += "\n";
        Emit(item, indent + 2, out);
      } else if (item.is_object()) {
        out += " {}\n";
      } else if (item.is_array()) {
        out += " []\n";
      } else {
        out += " " + ScalarText(item) + "\n";
      }
    }
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if ((item.is_object() || item.is_array()) && !item.empty()) {
        out += pad + "-\n";
        Emit(item, indent + 2, out);
      } else if (item.is_object()) {
        out += pad + "- {}\n";
      } else if (item.is_array()) {
        out += pad + "- []\n";
      } else {
        out += pad + "- " + ScalarText(item) + "\n";
      }
    }
  } else {
    out += pad + ScalarText(value) + "\n";
  }
}

}  // namespace

json ResolvePlainScalar(const std::string& text) {
  if (text.empty() || IsOneOf(text, {"~", "null", "Null", "NULL"})) {
    return nullptr;
  }
  if (IsOneOf(text, {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})) {
    return true;
  }
  if (IsOneOf(text, {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})) {
    return false;
  }
  if (LooksLikeYamlInt(text)) {
    if (auto n = ParseYamlInt(text)) {
      return *n;
    }
    return text;  // too large: keep the digits rather than lose them
  }
  if (LooksLikeYamlFloat(text)) {
    std::string digits = text;
    std::erase(digits, '_');
    if (!digits.empty() && digits.front() == '+') {
      digits.erase(0, 1);
    }
    double value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec == std::errc() && end == digits.data() + digits.size() && std::isfinite(value)) {
      return value;
    }
  }
  return text;
}

Result<json> YamlToJson(std::string_view text) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return Convert(root, 0);
  } catch (const YAML::Exception& e) {
    return Error::Invalid(fmt::format("invalid YAML at line {}, column {}: {}", e.mark.line + 1,
                                      e.mark.column + 1, e.msg));
  } catch (const std::exception& e) {
    return Error::Invalid(fmt::format("invalid YAML: {}", e.what()));
  }
}

std::string JsonToYaml(const json& value) {
  std::string out;
  Emit(value, 0, out);
  return out;
}

void DeepMerge(json& base, const json& overlay) {
  if (!base.is_object() || !overlay.is_object()) {
    base = overlay;
    return;
  }
  for (const auto& [key, item] : overlay.items()) {
    auto it = base.find(key);
    if (it != base.end() && it->is_object() && item.is_object()) {
      DeepMerge(*it, item);
    } else {
      base[key] = item;
    }
  }
}

}  // namespace pgha::config
