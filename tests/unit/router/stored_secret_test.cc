// The forms of a role's stored password the session mode reads, and the md5 arithmetic checked
// against values computed independently (Python's hashlib).
#include "router/stored_secret.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::router {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(StoredSecretTest, NullIsARoleWithoutAPassword) {
  auto secret = ParseStoredSecret(std::nullopt);
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(secret->kind, StoredSecret::Kind::kNone);
}

TEST(StoredSecretTest, AnMd5HashKeepsItsHexDigits) {
  auto secret = ParseStoredSecret("md53858f62230ac3c915f300c664312c63f");
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(secret->kind, StoredSecret::Kind::kMd5);
  EXPECT_EQ(secret->md5, "3858f62230ac3c915f300c664312c63f");
}

TEST(StoredSecretTest, AScramVerifierIsParsed) {
  auto made = scram::MakeVerifier("pencil", "0123456789abcdef", 4096);
  auto secret = ParseStoredSecret(scram::FormatVerifier(made));
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(secret->kind, StoredSecret::Kind::kScram);
  EXPECT_EQ(secret->scram.stored_key, made.stored_key);
  EXPECT_EQ(secret->scram.iterations, 4096);
}

TEST(StoredSecretTest, OtherFormsAreRefusedWithoutRepeatingTheSecret) {
  for (const char* text : {"plain text password", "md5short", "md53858F62230AC3C915F300C664312C63F",
                           "md53858f62230ac3c915f300c664312c63fz", ""}) {
    auto secret = ParseStoredSecret(std::string_view(text));
    ASSERT_FALSE(secret.ok()) << text;
    if (*text != '\0') {
      EXPECT_THAT(secret.error().message(), Not(HasSubstr(text)));
    }
  }
}

TEST(StoredSecretTest, Md5ArithmeticIsPostgresqls) {
  // md5("foo" || "bar") and md5(that || "abcd"), from hashlib.
  EXPECT_EQ(Md5Secret("foo", "bar"), "md53858f62230ac3c915f300c664312c63f");
  EXPECT_EQ(Md5Response("3858f62230ac3c915f300c664312c63f", "abcd"),
            "md5f159bdced6a9f4c4c195caf229b6154e");
}

}  // namespace
}  // namespace pgha::router
