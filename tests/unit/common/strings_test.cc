#include "common/strings.h"

#include <gtest/gtest.h>

namespace pgha {
namespace {

TEST(StringsTest, Base64RoundTrip) {
  for (std::string s : {std::string(""), std::string("f"), std::string("fo"), std::string("foo"),
                        std::string("/service/pg-ha/leader"), std::string("\0\xff\x10", 3)}) {
    auto decoded = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, s);
  }
  // A value from compat/patroni-3.0.2/initial-dcs.txt.
  EXPECT_EQ(Base64Encode("/service/pg-ha/leader"), "L3NlcnZpY2UvcGctaGEvbGVhZGVy");
  EXPECT_EQ(*Base64Decode("cGctMA=="), "pg-0");
}

TEST(StringsTest, Base64RejectsGarbage) {
  EXPECT_FALSE(Base64Decode("abc").ok());
  EXPECT_FALSE(Base64Decode("ab!d").ok());
  EXPECT_FALSE(Base64Decode("a===").ok());
  EXPECT_FALSE(Base64Decode("ab=d").ok());
  EXPECT_FALSE(Base64Decode("ab==cd==").ok());
}

TEST(StringsTest, PrefixRangeEnd) {
  EXPECT_EQ(PrefixRangeEnd("/service/pg-ha/"), "/service/pg-ha0");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixRangeEnd(std::string("\xff", 1)), std::string(1, '\0'));
}

TEST(StringsTest, SplitTrimAndCase) {
  EXPECT_EQ(SplitAndTrim(" a, b ,,c ", ','), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Split("a::b", ':'), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(Trim("  x "), "x");
  EXPECT_EQ(ToLower("ETCD3_Hosts"), "etcd3_hosts");
  EXPECT_EQ(ToUpper("abc"), "ABC");
}

TEST(StringsTest, IntegerParsing) {
  EXPECT_EQ(ParseInt64("-42"), -42);
  EXPECT_EQ(ParseUint64("7712196491986988846"), 7712196491986988846ULL);
  EXPECT_FALSE(ParseInt64("12a"));
  EXPECT_FALSE(ParseInt64(""));
  EXPECT_FALSE(ParseUint64("-1"));
  EXPECT_FALSE(ParseInt64("99999999999999999999"));
}

}  // namespace
}  // namespace pgha

namespace pgha {
namespace {

// Cases checked against Python's shlex.split.
TEST(SplitCommandLineTest, SplitsAsShlexDoes) {
  using V = std::vector<std::string>;
  EXPECT_EQ(*SplitCommandLine("/usr/bin/cb.sh"), V{"/usr/bin/cb.sh"});
  EXPECT_EQ(*SplitCommandLine("  a  b\tc "), (V{"a", "b", "c"}));
  EXPECT_EQ(*SplitCommandLine("sh -c 'echo \"$@\" >> /x'"), (V{"sh", "-c", "echo \"$@\" >> /x"}));
  EXPECT_EQ(*SplitCommandLine(R"(a "b c" d\ e)"), (V{"a", "b c", "d e"}));
  EXPECT_EQ(*SplitCommandLine(R"("a\"b\n" 'x\y')"), (V{"a\"b\\n", "x\\y"}));
  EXPECT_EQ(*SplitCommandLine(R"(pre"mid"'post')"), V{"premidpost"});
  EXPECT_EQ(*SplitCommandLine("''"), V{""});
  EXPECT_TRUE(SplitCommandLine("")->empty());
  EXPECT_FALSE(SplitCommandLine("a 'b").ok());
  EXPECT_FALSE(SplitCommandLine("a \"b").ok());
}

}  // namespace
}  // namespace pgha
