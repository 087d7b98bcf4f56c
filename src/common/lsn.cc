#include "common/lsn.h"

#include <fmt/format.h>

#include <charconv>

namespace pgha {
namespace {

bool ParseHex32(std::string_view text, uint32_t* out) {
  if (text.empty() || text.size() > 8) {
    return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out, 16);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Result<Lsn> Lsn::Parse(std::string_view text) {
  size_t slash = text.find('/');
  uint32_t high = 0;
  uint32_t low = 0;
  if (slash == std::string_view::npos || !ParseHex32(text.substr(0, slash), &high) ||
      !ParseHex32(text.substr(slash + 1), &low)) {
    return Error::Invalid(fmt::format("'{}' is not a WAL position like 0/3000060", text));
  }
  return Lsn((static_cast<uint64_t>(high) << 32) | low);
}

std::string Lsn::ToString() const {
  return fmt::format("{:X}/{:X}", value_ >> 32, value_ & 0xffffffffULL);
}

std::string Lsn::ToPaddedString() const {
  return fmt::format("{:X}/{:08X}", value_ >> 32, value_ & 0xffffffffULL);
}

}  // namespace pgha
