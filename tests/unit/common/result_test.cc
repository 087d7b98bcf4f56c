#include "common/result.h"

#include <gtest/gtest.h>

namespace pgha {
namespace {

Result<int> Half(int n) {
  if (n % 2 != 0) {
    return Error::Invalid("odd");
  }
  return n / 2;
}

Status Chain(int n) {
  PGHA_RETURN_IF_ERROR(Half(n));
  return OkStatus();
}

TEST(ResultTest, HoldsValueOrError) {
  auto ok = Half(4);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 2);
  auto bad = Half(3);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.error().IsInvalid());
  EXPECT_EQ(bad.error().ToString(), "Invalid: odd");
  EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(ResultTest, ReturnIfErrorPropagates) {
  EXPECT_TRUE(Chain(2).ok());
  auto failed = Chain(1);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(), "odd");
}

TEST(ResultTest, EveryCodeHasANameAndPredicate) {
  EXPECT_TRUE(Error::Unavailable("x").IsUnavailable());
  EXPECT_TRUE(Error::Conflict("x").IsConflict());
  EXPECT_TRUE(Error::NotFound("x").IsNotFound());
  EXPECT_TRUE(Error::Timeout("x").IsTimeout());
  EXPECT_TRUE(Error::Corrupt("x").IsCorrupt());
  EXPECT_TRUE(Error::PermissionDenied("x").IsPermissionDenied());
  EXPECT_STREQ(ErrorCodeName(ErrorCode::kInternal), "Internal");
  EXPECT_EQ(Error::NotFound("key").WithContext("leader").message(), "leader: key");
}

}  // namespace
}  // namespace pgha
