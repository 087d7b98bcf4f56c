#include "common/units.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <map>

#include "common/strings.h"

namespace pgha {
namespace {

enum class UnitKind { kSize, kTime };

struct Unit {
  UnitKind kind;
  double factor;  // in bytes or in microseconds
};

const std::map<std::string_view, Unit>& Units() {
  static const std::map<std::string_view, Unit> units = {
      {"B", {UnitKind::kSize, 1.0}},
      {"kB", {UnitKind::kSize, 1024.0}},
      {"MB", {UnitKind::kSize, 1024.0 * 1024}},
      {"GB", {UnitKind::kSize, 1024.0 * 1024 * 1024}},
      {"TB", {UnitKind::kSize, 1024.0 * 1024 * 1024 * 1024}},
      {"us", {UnitKind::kTime, 1.0}},
      {"ms", {UnitKind::kTime, 1e3}},
      {"s", {UnitKind::kTime, 1e6}},
      {"min", {UnitKind::kTime, 60e6}},
      {"h", {UnitKind::kTime, 3600e6}},
      {"d", {UnitKind::kTime, 86400e6}},
  };
  return units;
}

struct NumberAndUnit {
  double number;
  std::string_view unit;
};

Result<NumberAndUnit> Split(std::string_view value) {
  std::string_view text = Trim(value);
  if (text.empty()) {
    return Error::Invalid("empty value where a number was expected");
  }
  size_t pos = 0;
  if (text[pos] == '+' || text[pos] == '-') {
    ++pos;
  }
  size_t digits_start = pos;
  while (pos < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[pos])) || text[pos] == '.')) {
    ++pos;
  }
  if (pos == digits_start) {
    return Error::Invalid(fmt::format("'{}' is not a number", value));
  }
  std::string number_text(text.substr(0, pos));
  if (number_text.front() == '+') {
    number_text.erase(0, 1);
  }
  double number = 0;
  auto [end, ec] =
      std::from_chars(number_text.data(), number_text.data() + number_text.size(), number);
  if (ec != std::errc() || end != number_text.data() + number_text.size() ||
      !std::isfinite(number)) {
    return Error::Invalid(fmt::format("'{}' is not a number", value));
  }
  return NumberAndUnit{number, Trim(text.substr(pos))};
}

Result<double> ToBaseUnit(std::string_view value, const NumberAndUnit& parsed,
                          std::string_view base_unit) {
  if (parsed.unit.empty()) {
    return parsed.number;
  }
  if (base_unit.empty()) {
    return Error::Invalid(fmt::format("'{}' has a unit but a plain number was expected", value));
  }
  auto& units = Units();
  auto unit = units.find(parsed.unit);
  auto base = units.find(base_unit);
  if (base == units.end()) {
    return Error::Internal(fmt::format("unknown base unit '{}'", base_unit));
  }
  if (unit == units.end() || unit->second.kind != base->second.kind) {
    const char* valid =
        base->second.kind == UnitKind::kSize ? "B, kB, MB, GB, TB" : "us, ms, s, min, h, d";
    return Error::Invalid(
        fmt::format("'{}' has an invalid unit '{}' (valid units: {})", value, parsed.unit, valid));
  }
  return parsed.number * unit->second.factor / base->second.factor;
}

}  // namespace

Result<double> ParseReal(std::string_view value, std::string_view base_unit) {
  auto parsed = Split(value);
  if (!parsed.ok()) {
    return parsed.error();
  }
  return ToBaseUnit(value, *parsed, base_unit);
}

Result<int64_t> ParseInt(std::string_view value, std::string_view base_unit) {
  auto parsed = Split(value);
  if (!parsed.ok()) {
    return parsed.error();
  }
  if (parsed->unit.empty() && parsed->number != std::floor(parsed->number)) {
    return Error::Invalid(fmt::format("'{}' is not an integer", value));
  }
  auto real = ToBaseUnit(value, *parsed, base_unit);
  if (!real.ok()) {
    return real.error();
  }
  double rounded = std::round(*real);
  if (rounded >= 9.2e18 || rounded <= -9.2e18) {
    return Error::Invalid(fmt::format("'{}' is out of range", value));
  }
  return static_cast<int64_t>(rounded);
}

Result<int64_t> ParseSizeBytes(std::string_view value) { return ParseInt(value, "B"); }

Result<std::chrono::milliseconds> ParseDuration(std::string_view value) {
  auto ms = ParseReal(value, "ms");
  if (!ms.ok()) {
    return ms.error();
  }
  auto parsed = Split(value);
  double millis = parsed->unit.empty() ? *ms * 1000.0 : *ms;  // bare numbers are seconds
  if (millis >= 9.2e15 || millis <= -9.2e15) {
    return Error::Invalid(fmt::format("'{}' is out of range", value));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(millis)));
}

std::string FormatDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) {
    return fmt::format("{} s", d.count() / 1000);
  }
  if (d.count() < 1000 && d.count() > -1000) {
    return fmt::format("{} ms", d.count());
  }
  return fmt::format("{:.3f} s", static_cast<double>(d.count()) / 1000.0);
}

}  // namespace pgha
