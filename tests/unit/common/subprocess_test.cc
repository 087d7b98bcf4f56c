#include "common/subprocess.h"

#include <gtest/gtest.h>

namespace pgha {
namespace {

TEST(SubprocessTest, CapturesOutputLinesAndExitCode) {
  std::vector<std::string> lines;
  auto result = RunProgram({"sh", "-c", "printf 'a\\rb\\nc'; printf 'err' >&2; exit 3"},
                           std::chrono::seconds(10), {}, "",
                           [&lines](const std::string& line) { lines.push_back(line); });
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.output, "a\rb\ncerr");
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "b"}));  // "cerr" never ended with a newline
}

TEST(SubprocessTest, PassesEnvironmentAndInput) {
  auto result = RunProgram({"sh", "-c", "read x; echo \"$x-$PGHA_TEST_VAR\""},
                           std::chrono::seconds(10), {{"PGHA_TEST_VAR", "env"}}, "in\n");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, "in-env\n");
}

TEST(SubprocessTest, KillsAProgramAtItsDeadline) {
  auto start = std::chrono::steady_clock::now();
  auto result = RunProgram({"sleep", "30"}, std::chrono::milliseconds(200));
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(SubprocessTest, MissingProgramIsAnError) {
  auto result = RunProgram({"/nonexistent/pgha-no-such-program"});
  EXPECT_EQ(result.exit_code, 127);
  EXPECT_EQ(RunProgram({}).exit_code, -1);
}

}  // namespace
}  // namespace pgha
