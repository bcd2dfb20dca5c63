// AnalysisRunner: takes analysis samples off the reconcile workers, on a KeyedJobs pool
// (common/keyed_jobs.h: why, and how results are keyed and bounded). A sample queries a
// tenant-chosen (if operator-allowed) server and may take up to the client's sample deadline.
// Results are keyed by rollout, identified by an id the reconciler derives from what the sample
// is for (revision, environment, attempt, sample number).
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "controller/common/keyed_jobs.h"
#include "controller/rollout/analysis.h"

namespace rollgate::rollout {

class AnalysisRunner {
 public:
  struct Options {
    int workers = 4;              // samples taken at once
    std::size_t max_queued = 64;  // samples waiting for a worker
    // Called (on a runner thread, no lock held) with the rollout's key when its sample is done,
    // so that it is reconciled at once; may be empty (the reconciler's requeue polls anyway).
    std::function<void(const std::string& rollout)> on_done;
  };

  AnalysisRunner(PrometheusClient& client, Options opts);

  // Never blocks on I/O. The result of sample `id` of `rollout` when it is done (and forgets
  // it); otherwise nullopt, after queueing the sample unless it is queued or running already.
  std::optional<SampleResult> Poll(const std::string& rollout, const std::string& id,
                                   const std::string& address, const std::vector<Check>& checks);

  // Drops whatever the rollout has pending (deleted, or no longer analysing).
  void Forget(const std::string& rollout) { jobs_.Forget(rollout); }

  // Samples queued or running, for tests and metrics.
  std::size_t pending() const { return jobs_.pending(); }

 private:
  PrometheusClient& client_;
  KeyedJobs<SampleResult> jobs_;  // last: its workers stop first
};

}  // namespace rollgate::rollout
