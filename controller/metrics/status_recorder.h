// From ContainerRollout statuses to metrics: DiffStatus (pure) finds what happened between the
// status a reconcile started from and the one it wrote (failures, rollbacks, finished
// environments, worker validations); RecordStatus reports that delta and sets the phase gauges.
// Call RecordStatus only after the status write succeeded, so that a retried reconcile that
// recomputes the same transition does not count it twice.
//
// Counting rules, per environment (matched by name; a new revision starts from nothing):
//   failure     the environment enters Failed or RollingBack with a reason other than "Aborted";
//               Failed entered from RollingBack counts reason "RollbackFailed".
//   rollback    the environment enters RollingBack with a reason other than "Aborted".
//   duration    the environment enters Succeeded: finishedAt - startedAt.
//   validation  growth of validation.passed / validation.failed (a retried environment restarts).
// A rollout-level failure without a failed environment (InvalidSpec) counts nothing here; it
// shows as rollgate_rollout_phase{phase="Failed"}.
// Thread-safety: DiffStatus is pure; RecordStatus is as safe as Metrics (any thread).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controller/metrics/metrics.h"
#include "controller/rollout/types.h"

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
  std::vector<Failure> failures;
  std::vector<std::string> rollbacks;  // environments
  std::vector<Duration> durations;
  std::vector<Validations> validations;
};

// `before` is null for a rollout seen for the first time.
StatusDelta DiffStatus(const rollout::RolloutStatus* before, const rollout::RolloutStatus& after);

// Reports DiffStatus(before, after) and calls Metrics::ObserveRollout with `after`.
void RecordStatus(Metrics& m, const std::string& ns, const std::string& name,
                  const rollout::RolloutStatus* before, const rollout::RolloutStatus& after);

}  // namespace rollgate::metrics
