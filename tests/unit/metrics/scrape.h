// Test helper: scrapes a Metrics (what /metrics serves, Metrics::WriteText) or a
// prometheus::Registry through the text exposition format (the bytes Prometheus would read) and
// indexes the samples by series, e.g.
// `rollgate_rollout_phase{namespace="app",phase="Failed",rollout="r"}` -> 0.
// Thread-safety: plain functions.
#pragma once

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "controller/metrics/metrics.h"

namespace rollgate::metrics::testing {

inline std::string ScrapeText(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

inline std::string ScrapeText(const Metrics& metrics) {
  std::ostringstream out;
  metrics.WriteText(out);
  return out.str();
}

// Series (name plus labels, exactly as exposed) -> value; comment lines are skipped.
inline std::map<std::string, double> ParseSamples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

inline std::map<std::string, double> Scrape(prometheus::Registry& registry) {
  return ParseSamples(ScrapeText(registry));
}

inline std::map<std::string, double> Scrape(const Metrics& metrics) {
  return ParseSamples(ScrapeText(metrics));
}

// The samples whose series text contains every one of `parts`.
inline std::map<std::string, double> Matching(const std::map<std::string, double>& samples,
                                              const std::vector<std::string>& parts) {
  std::map<std::string, double> out;
  for (const auto& [series, value] : samples) {
    bool all = true;
    for (const auto& p : parts) all = all && series.find(p) != std::string::npos;
    if (all) out[series] = value;
  }
  return out;
}

}  // namespace rollgate::metrics::testing
