// Pieces of Prometheus' text exposition format (0.0.4) shared by every /metrics endpoint.
#pragma once

#include <string>
#include <string_view>

namespace pgha {

// A label value with backslash, double quote and newline escaped.
std::string EscapeLabelValue(std::string_view value);

// A sample value as the Go client writes it (shortest round-trip digits, exponent form from
// 1e6 up and below 1e-4, NaN, +Inf, -Inf), so that outputs diff cleanly against Go exporters.
std::string FormatSampleValue(double value);

// A metric or label name: characters outside [a-zA-Z0-9_:] become '_', and a leading digit
// gets a '_' in front.
std::string SanitizeMetricName(std::string_view name);

}  // namespace pgha
