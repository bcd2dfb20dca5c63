// AnalysisRunner: takes analysis samples off the reconcile workers. A sample queries a
// tenant-chosen (if operator-allowed) server and may take up to the client's sample deadline;
// run on a reconcile worker, a few slow servers would stall every rollout in the cluster. Here a
// small fixed pool of threads takes the samples; the reconciler polls (Poll) and requeues until
// the result is in, then plans with it on a later reconcile.
//
// Results are keyed: one pending sample per rollout, identified by an id the reconciler derives
// from what the sample is for (revision, environment, attempt, sample number). Polling with
// another id drops the older sample (its result, when it comes, is discarded), so a result is
// never used for another revision or sample than it was taken for.
//
// Bounded: at most `workers` samples run at once and at most `max_queued` wait; a rollout whose
// sample does not fit is not queued (Poll returns nullopt; it is tried again on the next poll).
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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
  AnalysisRunner(const AnalysisRunner&) = delete;
  AnalysisRunner& operator=(const AnalysisRunner&) = delete;
  // Stops taking samples and joins the workers (each running sample ends within the client's
  // sample deadline).
  ~AnalysisRunner();

  // Never blocks on I/O. The result of sample `id` of `rollout` when it is done (and forgets
  // it); otherwise nullopt, after queueing the sample unless it is queued or running already.
  std::optional<SampleResult> Poll(const std::string& rollout, const std::string& id,
                                   const std::string& address, const std::vector<Check>& checks);

  // Drops whatever the rollout has pending (deleted, or no longer analysing).
  void Forget(const std::string& rollout);

  // Samples queued or running, for tests and metrics.
  std::size_t pending() const;

 private:
  struct Job {
    std::string rollout;
    std::string id;
    std::string address;
    std::vector<Check> checks;
  };
  struct Entry {
    std::string id;
    std::optional<SampleResult> result;  // set when done
  };

  void Work();

  PrometheusClient& client_;
  Options opts_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job> queue_;                 // guarded by mu_
  std::map<std::string, Entry> entries_;  // by rollout; guarded by mu_
  std::size_t running_ = 0;               // guarded by mu_
  bool stopping_ = false;                 // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace rollgate::rollout
