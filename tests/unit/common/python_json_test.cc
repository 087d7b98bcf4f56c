#include "common/python_json.h"

#include <gtest/gtest.h>

#include "fakes/compat_data.h"

namespace pgha {
namespace {

using nlohmann::ordered_json;

TEST(PythonJsonTest, SeparatorsAndEscapesAreJsonDumpsDefaults) {
  ordered_json value = ordered_json::parse(
      R"({"state":"running","xlog":{"location":5},"tags":[1,2.5,true,null],"name":"pg-é\n\"x\""})");
  EXPECT_EQ(PythonJsonDumps(value),
            R"({"state": "running", "xlog": {"location": 5}, "tags": [1, 2.5, true, null], )"
            R"("name": "pg-\u00e9\n\"x\""})");
  EXPECT_EQ(PythonJsonDumps(ordered_json::object()), "{}");
  EXPECT_EQ(PythonJsonDumps(ordered_json::array()), "[]");
}

TEST(PythonJsonTest, EveryBodyARealPatroniSentComesOutByteForByte) {
  int bodies = 0;
  for (const char* file : {"initial-rest-leader.txt", "initial-rest-replica.txt",
                           "after-failover-rest-leader.txt", "after-switchover-rest-replica.txt"}) {
    for (const auto& exchange : testing::ReadExchanges(file)) {
      if (exchange.body.empty() || (exchange.body[0] != '{' && exchange.body[0] != '[')) {
        continue;
      }
      ordered_json parsed = ordered_json::parse(exchange.body);
      EXPECT_EQ(PythonJsonDumps(parsed), exchange.body) << file << " " << exchange.target;
      ++bodies;
    }
  }
  EXPECT_GT(bodies, 20);
}

}  // namespace
}  // namespace pgha
