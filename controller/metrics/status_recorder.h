// From ContainerRollout statuses to metrics: DiffStatus (pure) finds what happened between the
// status a reconcile started from and the one it wrote (failures, rollbacks, finished
// environments, worker validations, smoke check results); RecordStatus reports that delta and sets
// the phase gauges. Call RecordStatus only after the status write succeeded, so that a retried
// reconcile that recomputes the same transition does not count it twice.
//
// Counting rules, per environment (matched by name; a new revision starts from nothing):
//   failure     the environment enters Failed or RollingBack with a reason other than "Aborted";
//               Failed entered from RollingBack counts reason "RollbackFailed".
//   rollback    the environment enters RollingBack with a reason other than "Aborted".
//   duration    the environment enters Succeeded: finishedAt - startedAt.
//   validation  growth of validation.passed / validation.failed (a retried environment restarts).
//   smoke check a smokeChecks[] entry that is Passed, Failed or TimedOut and was not final (absent
//               or Running) for the same check name and Job name; a retried environment (new
//               attempt: new Job names, a cleared list) starts from nothing. Seconds: finishedAt -
//               startedAt, 0 when either is missing. Reported controller-wide, without labels of
//               the rollout (Metrics::ObserveSmokeCheck).
// A rollout-level failure without a failed environment (InvalidSpec) counts nothing here; it
// shows as rollgate_rollout_phase{phase="Failed"}.
// MetricsRecorder is the reconciler's ReconcileRecorder that feeds all of this into Metrics.
// Thread-safety: DiffStatus is pure; RecordStatus and MetricsRecorder are as safe as Metrics (any
// thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "controller/api/types.h"
#include "controller/metrics/metrics.h"
#include "controller/rollout/reconciler.h"

namespace rollgate::metrics {

struct StatusDelta {
  struct Failure {
    std::string environment;
    std::string reason;
    bool operator==(const Failure&) const = default;
  };
  struct Duration {
    std::string environment;
    double seconds = 0;
    bool operator==(const Duration&) const = default;
  };
  struct Validations {
    std::string environment;
    std::uint64_t passed = 0;
    std::uint64_t failed = 0;
    bool operator==(const Validations&) const = default;
  };
  struct SmokeCheck {
    std::string environment;
    std::string name;
    std::string result;  // passed, failed, timed_out (SmokeCheckResult)
    double seconds = 0;
    bool operator==(const SmokeCheck&) const = default;
  };
  std::vector<Failure> failures;
  std::vector<std::string> rollbacks;  // environments
  std::vector<Duration> durations;
  std::vector<Validations> validations;
  std::vector<SmokeCheck> smoke_checks;
};

// The `result` label of rollgate_smoke_checks_total for a final phase ("passed", "failed",
// "timed_out"); "" for Running.
std::string SmokeCheckResult(api::SmokeCheckPhase phase);

// `before` is null for a rollout seen for the first time.
StatusDelta DiffStatus(const api::RolloutStatus* before, const api::RolloutStatus& after);

// Reports DiffStatus(before, after) and calls Metrics::ObserveRollout with `after`.
void RecordStatus(Metrics& m, const std::string& ns, const std::string& name,
                  const api::RolloutStatus* before, const api::RolloutStatus& after);

// The reconciler's recorder: statuses, deletions and reaction latency into Metrics.
class MetricsRecorder final : public rollout::ReconcileRecorder {
 public:
  explicit MetricsRecorder(Metrics& m) : m_(m) {}
  void StatusWritten(const api::Rollout& r, const api::RolloutStatus* before,
                     const api::RolloutStatus& after) override {
    RecordStatus(m_, r.namespace_, r.name, before, after);
    std::map<std::string, std::string> remote;
    for (const auto& e : r.spec.environments) {
      if (!e.cluster.empty()) remote[e.name] = e.cluster;
    }
    m_.ObserveEnvironmentClusters(r.namespace_, r.name, remote);
  }
  void RolloutDeleted(const std::string& ns, const std::string& name) override {
    m_.RolloutDeleted(ns, name);
  }
  void ReactionLatency(std::chrono::duration<double> latency) override {
    m_.ObserveReactionLatency(latency.count());
  }

 private:
  Metrics& m_;
};

}  // namespace rollgate::metrics
