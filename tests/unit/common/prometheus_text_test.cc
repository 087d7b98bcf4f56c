#include "common/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace pgha {
namespace {

// Values as postgres_exporter (Go's strconv 'g', shortest) wrote them in the golden output.
TEST(PrometheusTextTest, SampleValuesAsTheGoClientWritesThem) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(1), "1");
  EXPECT_EQ(FormatSampleValue(126415), "126415");
  EXPECT_EQ(FormatSampleValue(25009511), "2.5009511e+07");
  EXPECT_EQ(FormatSampleValue(2749552), "2.749552e+06");
  EXPECT_EQ(FormatSampleValue(1795636069), "1.795636069e+09");
  EXPECT_EQ(FormatSampleValue(0.014319091), "0.014319091");
  EXPECT_EQ(FormatSampleValue(44348.821), "44348.821");
  EXPECT_EQ(FormatSampleValue(18446744073709551615.0), "1.8446744073709552e+19");
  EXPECT_EQ(FormatSampleValue(0.00001), "1e-05");
  EXPECT_EQ(FormatSampleValue(-1), "-1");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(PrometheusTextTest, LabelValuesAndNamesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(SanitizeMetricName("pg_stat_statements.max"), "pg_stat_statements_max");
  EXPECT_EQ(SanitizeMetricName("9lives-x"), "_9lives_x");
  EXPECT_EQ(SanitizeMetricName("ok:name_1"), "ok:name_1");
}

}  // namespace
}  // namespace pgha
