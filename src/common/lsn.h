// A PostgreSQL WAL position. PostgreSQL prints it as "%X/%X" ("0/3000060"); Patroni stores it
// in the DCS as a plain integer (bytes) and shows it in /cluster as "%X/%08X".
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace pgha {

class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  // Accepts "X/X" with 1-8 hex digits on each side, as pg_lsn does.
  static Result<Lsn> Parse(std::string_view text);

  constexpr uint64_t value() const { return value_; }
  // PostgreSQL's form: "0/3000060".
  std::string ToString() const;
  // Patroni's /cluster form: "0/03000060".
  std::string ToPaddedString() const;

  friend constexpr auto operator<=>(Lsn, Lsn) = default;

 private:
  uint64_t value_ = 0;
};

}  // namespace pgha
