#include "common/lsn.h"

#include <gtest/gtest.h>

namespace pgha {
namespace {

TEST(LsnTest, RoundTripsPostgresText) {
  auto lsn = Lsn::Parse("0/3000060");
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(lsn->value(), 0x3000060u);
  EXPECT_EQ(lsn->ToString(), "0/3000060");
  EXPECT_EQ(lsn->ToPaddedString(), "0/03000060");

  auto high = Lsn::Parse("16/B374D848");
  ASSERT_TRUE(high.ok());
  EXPECT_EQ(high->value(), (0x16ULL << 32) | 0xB374D848ULL);
  EXPECT_EQ(high->ToString(), "16/B374D848");
  EXPECT_EQ(Lsn::Parse("16/b374d848")->value(), high->value());
}

TEST(LsnTest, MatchesPatroniIntegers) {
  // compat/patroni-3.0.2: xlog_location 67288520 is 0/402BDC8.
  EXPECT_EQ(Lsn(67288520).ToString(), "0/402BDC8");
  EXPECT_EQ(Lsn::Parse("0/402BDC8")->value(), 67288520u);
}

TEST(LsnTest, Orders) {
  EXPECT_LT(Lsn(1), Lsn(2));
  EXPECT_EQ(Lsn(5), Lsn(5));
}

TEST(LsnTest, RejectsMalformed) {
  for (const char* bad : {"", "/", "0/", "/1", "0x1/2", "1-2", "123456789/0", "0/123456789", "G/0",
                          "0/3000060 ", "3000060"}) {
    EXPECT_FALSE(Lsn::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace pgha
