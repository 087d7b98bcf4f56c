#include "common/time_format.h"

#include <fmt/format.h>

#include <cctype>
#include <chrono>

namespace pgha {

namespace {

// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool Digits(size_t count, int* out) {
    if (pos_ + count > s_.size()) {
      return false;
    }
    int v = 0;
    for (size_t i = 0; i < count; ++i) {
      char c = s_[pos_ + i];
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        return false;
      }
      v = v * 10 + (c - '0');
    }
    pos_ += count;
    *out = v;
    return true;
  }
  bool Accept(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool AtEnd() const { return pos_ == s_.size(); }
  void Skip() { ++pos_; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

std::string FormatIsoTimestamp(WallTime t, char separator) {
  using namespace std::chrono;
  auto micros = duration_cast<microseconds>(t.time_since_epoch()).count();
  int64_t secs = micros >= 0 ? micros / 1000000 : (micros - 999999) / 1000000;
  int64_t frac = micros - secs * 1000000;
  int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  int64_t sod = secs - days * 86400;
  // civil_from_days
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  return fmt::format("{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}.{:06d}+00:00", y, m, d, separator,
                     sod / 3600, (sod / 60) % 60, sod % 60, frac);
}

Result<WallTime> ParseIsoTimestamp(std::string_view text) {
  Cursor c(text);
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  auto bad = [&]() {
    return Error::Invalid(fmt::format(
        "'{}' is not an ISO-8601 timestamp with a time zone (e.g. 2026-11-25T20:00:00+00:00)",
        text));
  };
  if (!c.Digits(4, &year) || !c.Accept('-') || !c.Digits(2, &month) || !c.Accept('-') ||
      !c.Digits(2, &day)) {
    return bad();
  }
  if (!c.Accept('T') && !c.Accept(' ') && !c.Accept('t')) {
    return bad();
  }
  if (!c.Digits(2, &hour) || !c.Accept(':') || !c.Digits(2, &minute)) {
    return bad();
  }
  int64_t micros = 0;
  if (c.Accept(':')) {
    if (!c.Digits(2, &second)) {
      return bad();
    }
    if (c.Accept('.') || c.Accept(',')) {
      int digits = 0;
      while (std::isdigit(static_cast<unsigned char>(c.Peek()))) {
        if (digits < 6) {
          micros = micros * 10 + (c.Peek() - '0');
        }
        ++digits;
        c.Skip();
      }
      if (digits == 0) {
        return bad();
      }
      for (int i = digits; i < 6; ++i) {
        micros *= 10;
      }
    }
  }
  int offset_minutes = 0;
  if (c.Accept('Z') || c.Accept('z')) {
  } else if (c.Peek() == '+' || c.Peek() == '-') {
    int sign = c.Peek() == '-' ? -1 : 1;
    c.Skip();
    int oh = 0, om = 0;
    if (!c.Digits(2, &oh)) {
      return bad();
    }
    if (c.Accept(':')) {
      if (!c.Digits(2, &om)) {
        return bad();
      }
    } else if (!c.AtEnd()) {
      if (!c.Digits(2, &om)) {
        return bad();
      }
    }
    if (oh > 23 || om > 59) {
      return bad();
    }
    offset_minutes = sign * (oh * 60 + om);
  } else {
    return bad();
  }
  if (!c.AtEnd() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
      second > 60) {
    return bad();
  }
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return WallTime(std::chrono::duration_cast<WallTime::duration>(
      std::chrono::microseconds(secs * 1000000 + micros)));
}

}  // namespace pgha
