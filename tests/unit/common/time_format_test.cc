#include "common/time_format.h"

#include <gtest/gtest.h>

namespace pgha {
namespace {

using std::chrono::microseconds;

TEST(TimeFormatTest, RoundTripsPatroniTimestamps) {
  const char* text = "2026-11-25T19:43:35.502715+00:00";  // from compat history
  auto t = ParseIsoTimestamp(text);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatIsoTimestamp(*t), text);
  EXPECT_EQ(FormatIsoTimestamp(*t, ' '), "2026-11-25 19:43:35.502715+00:00");
}

TEST(TimeFormatTest, HonoursOffsets) {
  auto utc = ParseIsoTimestamp("2026-11-25T10:00:00Z");
  auto plus = ParseIsoTimestamp("2026-11-25T12:30:00+02:30");
  auto compact = ParseIsoTimestamp("2026-11-25 05:00:00-0500");
  ASSERT_TRUE(utc.ok() && plus.ok() && compact.ok());
  EXPECT_EQ(*utc, *plus);
  EXPECT_EQ(*utc, *compact);
  auto epoch = ParseIsoTimestamp("1970-01-01T00:00:00+00:00");
  EXPECT_EQ(epoch->time_since_epoch().count(), 0);
  auto leap = ParseIsoTimestamp("2024-02-29T00:00:00.5+00:00");
  ASSERT_TRUE(leap.ok());
  EXPECT_EQ(FormatIsoTimestamp(*leap), "2024-02-29T00:00:00.500000+00:00");
}

TEST(TimeFormatTest, RefusesAmbiguousOrBroken) {
  for (const char* bad :
       {"", "2026-11-25", "2026-11-25T10:00:00", "2026-13-01T00:00:00Z", "2026-11-25T25:00:00Z",
        "2026-11-25T10:00:00+0", "tomorrow", "2026-11-25T10:00:00Zjunk", "2026-11-25T10:00:00.Z"}) {
    EXPECT_FALSE(ParseIsoTimestamp(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace pgha
