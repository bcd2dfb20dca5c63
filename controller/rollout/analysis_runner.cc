// AnalysisRunner: analysis samples on a KeyedJobs pool (see analysis_runner.h).
#include "controller/rollout/analysis_runner.h"

#include <utility>

namespace rollgate::rollout {
namespace {

KeyedJobs<SampleResult>::Options JobOptions(AnalysisRunner::Options opts) {
  KeyedJobs<SampleResult>::Options o;
  o.workers = opts.workers;
  o.max_queued = opts.max_queued;
  o.on_done = std::move(opts.on_done);
  o.on_exception = [](const std::string& what) {
    return AggregateChecks({CheckResult{"analysis", SampleOutcome::kInconclusive, std::nullopt,
                                        "analysis: " + SanitizeForStatus(what, 200)}});
  };
  o.name = "analysis";
  return o;
}

}  // namespace

AnalysisRunner::AnalysisRunner(PrometheusClient& client, Options opts)
    : client_(client), jobs_(JobOptions(std::move(opts))) {}

std::optional<SampleResult> AnalysisRunner::Poll(const std::string& rollout, const std::string& id,
                                                 const std::string& address,
                                                 const std::vector<Check>& checks) {
  return jobs_.Poll(rollout, id,
                    [this, address, checks] { return client_.Sample(address, checks); });
}

}  // namespace rollgate::rollout
