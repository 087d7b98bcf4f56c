#include "common/units.h"

#include <gtest/gtest.h>

namespace pgha {
namespace {

TEST(UnitsTest, SizesAsPatroniAcceptsThem) {
  EXPECT_EQ(*ParseSizeBytes("16kB"), 16 * 1024);
  EXPECT_EQ(*ParseSizeBytes("64MB"), 64LL * 1024 * 1024);
  EXPECT_EQ(*ParseSizeBytes("1GB"), 1LL << 30);
  EXPECT_EQ(*ParseSizeBytes("1TB"), 1LL << 40);
  EXPECT_EQ(*ParseSizeBytes("1048576"), 1048576);
  EXPECT_EQ(*ParseSizeBytes(" 32 MB "), 32LL * 1024 * 1024);
  EXPECT_EQ(*ParseSizeBytes("0.5kB"), 512);
}

TEST(UnitsTest, BaseUnitConversionRounds) {
  EXPECT_EQ(*ParseInt("128MB", "kB"), 128 * 1024);
  EXPECT_EQ(*ParseInt("1500kB", "MB"), 1);  // 1.46 rounds to 1
  EXPECT_EQ(*ParseInt("1600kB", "MB"), 2);  // 1.56 rounds to 2
  EXPECT_EQ(*ParseInt("2min", "s"), 120);
  EXPECT_EQ(*ParseInt("250ms", "s"), 0);
  EXPECT_EQ(*ParseInt("1d", "h"), 24);
  EXPECT_EQ(*ParseInt("-5"), -5);
}

TEST(UnitsTest, DurationsDefaultToSeconds) {
  EXPECT_EQ(ParseDuration("10s")->count(), 10000);
  EXPECT_EQ(ParseDuration("500ms")->count(), 500);
  EXPECT_EQ(ParseDuration("1.5")->count(), 1500);
  EXPECT_EQ(ParseDuration("2min")->count(), 120000);
  EXPECT_EQ(ParseDuration("100us")->count(), 0);
}

TEST(UnitsTest, BadInputSaysWhatIsWrong) {
  auto no_number = ParseSizeBytes("MB");
  ASSERT_FALSE(no_number.ok());
  EXPECT_NE(no_number.error().message().find("not a number"), std::string::npos);

  auto wrong_unit = ParseSizeBytes("10s");
  ASSERT_FALSE(wrong_unit.ok());
  EXPECT_NE(wrong_unit.error().message().find("invalid unit 's'"), std::string::npos);

  auto case_matters = ParseSizeBytes("16KB");
  ASSERT_FALSE(case_matters.ok());

  EXPECT_FALSE(ParseInt("1.5").ok());   // not an integer without a unit
  EXPECT_FALSE(ParseInt("10kB").ok());  // unit but no base unit
  EXPECT_FALSE(ParseSizeBytes("").ok());
  EXPECT_FALSE(ParseSizeBytes("1e400").ok());
  EXPECT_FALSE(ParseSizeBytes("99999999999TB").ok());  // out of range
  EXPECT_FALSE(ParseDuration("1..2s").ok());
}

TEST(UnitsTest, FormatDuration) {
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(2000)), "2 s");
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(250)), "250 ms");
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(1500)), "1.500 s");
}

}  // namespace
}  // namespace pgha
