// The event server's request parser: bytes in any split, the limits, and what it refuses.
#include "api/http/request_parser.h"

#include <gtest/gtest.h>

namespace pgha::api::http {
namespace {

using State = RequestParser::State;

TEST(RequestParserTest, ParsesAHealthCheckFedOneByteAtATime) {
  std::string bytes =
      "GET /replica?lag=16MB&tag_dc=eu%2Dwest HTTP/1.1\r\nHost: x\r\nUser-Agent: HAProxy\r\n\r\n";
  RequestParser parser;
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    ASSERT_EQ(parser.Feed(bytes.substr(i, 1)), State::kNeedMore) << i;
  }
  ASSERT_EQ(parser.Feed(bytes.substr(bytes.size() - 1)), State::kComplete);
  const auto& r = parser.request();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/replica");
  EXPECT_EQ(r.query.find("lag")->second, "16MB");
  EXPECT_EQ(r.query.find("tag_dc")->second, "eu-west");
  EXPECT_EQ(r.Header("user-agent"), "HAProxy");
  EXPECT_EQ(r.body, "");
}

TEST(RequestParserTest, ReadsTheBodyByContentLength) {
  RequestParser parser;
  EXPECT_EQ(parser.Feed("POST /switchover HTTP/1.0\r\nContent-Length: 17\r\n\r\n{\"leader\":"),
            State::kNeedMore);
  EXPECT_EQ(parser.Feed("\"pg-0\"}"), State::kComplete);
  EXPECT_EQ(parser.request().body, "{\"leader\":\"pg-0\"}");
}

TEST(RequestParserTest, ToleratesBareLineFeedsAndLeadingEmptyLines) {
  RequestParser parser;
  EXPECT_EQ(parser.Feed("\r\nOPTIONS /primary HTTP/1.1\nHost: x\n\n"), State::kComplete);
  EXPECT_EQ(parser.request().method, "OPTIONS");
  EXPECT_EQ(parser.request().path, "/primary");
}

TEST(RequestParserTest, AbsoluteFormTargetsNameTheirPath) {
  RequestParser parser;
  ASSERT_EQ(parser.Feed("GET http://10.0.0.1:8008/patroni HTTP/1.1\r\n\r\n"), State::kComplete);
  EXPECT_EQ(parser.request().path, "/patroni");
}

TEST(RequestParserTest, AsksForContinueWhenTheClientWaitsForIt) {
  RequestParser parser;
  EXPECT_EQ(
      parser.Feed("PATCH /config HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"),
      State::kNeedMore);
  EXPECT_TRUE(parser.expects_continue());
  EXPECT_EQ(parser.Feed("{}"), State::kComplete);
  EXPECT_FALSE(parser.expects_continue());
}

struct Refusal {
  std::string bytes;
  int status;
};

class RequestParserRefusalTest : public ::testing::TestWithParam<Refusal> {};

TEST_P(RequestParserRefusalTest, RefusesWithTheRightStatus) {
  RequestParser parser(ParseLimits{.max_head_bytes = 1024, .max_body_bytes = 100});
  EXPECT_EQ(parser.Feed(GetParam().bytes), State::kFailed);
  EXPECT_EQ(parser.error_status(), GetParam().status) << parser.error_message();
  EXPECT_FALSE(parser.error_message().empty());
  // A refused parser stays refused.
  EXPECT_EQ(parser.Feed("GET / HTTP/1.1\r\n\r\n"), State::kFailed);
}

INSTANTIATE_TEST_SUITE_P(
    Refusals, RequestParserRefusalTest,
    ::testing::Values(
        Refusal{"GARBAGE\r\n\r\n", 400}, Refusal{"GET /x\r\n\r\n", 400},
        Refusal{"GET x HTTP/1.1\r\n\r\n", 400}, Refusal{"G(T / HTTP/1.1\r\n\r\n", 400},
        Refusal{"GET / HTTP/2.0\r\n\r\n", 505}, Refusal{"GET / FTP/1.0\r\n\r\n", 400},
        Refusal{"GET / HTTP/1.1\r\n folded: header\r\n\r\n", 400},
        Refusal{"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
        Refusal{"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        Refusal{"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        Refusal{"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413},
        Refusal{"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
        Refusal{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        Refusal{"GET /" + std::string(2000, 'a'), 414},
        Refusal{"GET / HTTP/1.1\r\nX: " + std::string(2000, 'a'), 431}));

TEST(PercentDecodeTest, DecodesValidEscapesOnly) {
  EXPECT_EQ(PercentDecode("%41b+c", true), "Ab c");
  EXPECT_EQ(PercentDecode("%41b+c", false), "Ab+c");
  EXPECT_EQ(PercentDecode("100%", true), "100%");
  EXPECT_EQ(PercentDecode("%zz%4", true), "%zz%4");
}

}  // namespace
}  // namespace pgha::api::http
