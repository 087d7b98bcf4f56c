#include "metrics/metric_set.h"

#include <algorithm>

#include "common/prometheus_text.h"

namespace pgha::metrics {

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kCounter:
      return "counter";
    case MetricType::kUntyped:
      return "untyped";
  }
  return "untyped";
}

void MetricSet::Add(const std::string& name, MetricType type, const std::string& help,
                    Labels labels, double value) {
  std::sort(labels.begin(), labels.end());
  auto [it, inserted] = families_.try_emplace(name);
  Family& family = it->second;
  if (inserted) {
    family.help = help;
    family.type = type;
  }
  family.samples.push_back(Sample{std::move(labels), value});
}

void MetricSet::Merge(const MetricSet& other) {
  for (const auto& [name, family] : other.families_) {
    for (const auto& sample : family.samples) {
      Add(name, family.type, family.help, sample.labels, sample.value);
    }
  }
}

std::string MetricSet::Render() const {
  std::string out;
  for (const auto& [name, family] : families_) {
    out += "# HELP " + name + ' ';
    // HELP text escapes backslash and newline only.
    for (char c : family.help) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += "\n# TYPE " + name + ' ' + TypeName(family.type) + '\n';
    std::vector<const Sample*> ordered;
    ordered.reserve(family.samples.size());
    for (const auto& sample : family.samples) {
      ordered.push_back(&sample);
    }
    std::stable_sort(ordered.begin(), ordered.end(),
                     [](const Sample* a, const Sample* b) { return a->labels < b->labels; });
    const Labels* previous = nullptr;
    for (const Sample* sample : ordered) {
      if (previous != nullptr && *previous == sample->labels) {
        continue;
      }
      previous = &sample->labels;
      out += name;
      if (!sample->labels.empty()) {
        out += '{';
        bool first = true;
        for (const auto& [label, value] : sample->labels) {
          if (!first) {
            out += ',';
          }
          first = false;
          out += label + "=\"" + EscapeLabelValue(value) + '"';
        }
        out += '}';
      }
      out += ' ' + FormatSampleValue(sample->value) + '\n';
    }
  }
  return out;
}

}  // namespace pgha::metrics
