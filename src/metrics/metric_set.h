// The metrics of one scrape, grouped into families and rendered in Prometheus' text format.
// Families come out sorted by name and samples by their labels, as the Go client orders them,
// so that outputs of pgha-exporter and postgres_exporter compare line by line.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pgha::metrics {

enum class MetricType { kGauge, kCounter, kUntyped };

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
  Labels labels;  // sorted by name
  double value = 0;
};

struct Family {
  std::string help;
  MetricType type = MetricType::kUntyped;
  std::vector<Sample> samples;
};

class MetricSet {
 public:
  // Adds one sample; the first sample of a family fixes its help and type. Of samples with the
  // same labels only the first is rendered (Prometheus rejects a scrape with duplicates).
  void Add(const std::string& name, MetricType type, const std::string& help, Labels labels,
           double value);
  // Adds every family of `other`.
  void Merge(const MetricSet& other);
  bool Has(const std::string& name) const { return families_.count(name) > 0; }
  const std::map<std::string, Family>& families() const { return families_; }
  std::string Render() const;

 private:
  std::map<std::string, Family> families_;
};

const char* TypeName(MetricType type);

}  // namespace pgha::metrics
