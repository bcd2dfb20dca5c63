#include "controller/metrics/status_recorder.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "controller/api/codec.h"
#include "controller/api/reasons.h"

namespace rollgate::metrics {
namespace {

using api::EnvironmentPhase;
using api::EnvironmentStatus;

const EnvironmentStatus* FindEnvironment(const api::RolloutStatus* st,
                                         const EnvironmentStatus& like) {
  if (st == nullptr) return nullptr;
  for (const auto& e : st->environments) {
    // A retried environment (attempts changed) starts from nothing, like a new revision.
    if (e.name == like.name) return e.attempts == like.attempts ? &e : nullptr;
  }
  return nullptr;
}

// Whether `prev` (the same attempt of the environment, or null) already had this check's result.
bool HadResult(const EnvironmentStatus* prev, const api::SmokeCheckStatus& check) {
  if (prev == nullptr) return false;
  for (const auto& c : prev->smoke_checks) {
    if (c.name == check.name && c.job == check.job) {
      return c.phase != api::SmokeCheckPhase::kRunning;
    }
  }
  return false;
}

}  // namespace

std::string SmokeCheckResult(api::SmokeCheckPhase phase) {
  switch (phase) {
    case api::SmokeCheckPhase::kPassed:
      return "passed";
    case api::SmokeCheckPhase::kFailed:
      return "failed";
    case api::SmokeCheckPhase::kTimedOut:
      return "timed_out";
    case api::SmokeCheckPhase::kRunning:
      break;
  }
  return "";
}

StatusDelta DiffStatus(const api::RolloutStatus* before, const api::RolloutStatus& after) {
  if (before != nullptr && before->revision != after.revision) before = nullptr;
  StatusDelta d;
  for (const auto& env : after.environments) {
    const EnvironmentStatus* prev = FindEnvironment(before, env);
    const bool changed = prev == nullptr || env.phase != prev->phase;
    const bool aborted = env.reason == api::ReasonName(api::Reason::kAborted);
    if (changed && env.phase == EnvironmentPhase::kRollingBack && !aborted) {
      d.failures.push_back({env.name, env.reason.empty() ? "Unknown" : env.reason});
      d.rollbacks.push_back(env.name);
    }
    if (changed && env.phase == EnvironmentPhase::kFailed) {
      if (prev != nullptr && prev->phase == EnvironmentPhase::kRollingBack) {
        d.failures.push_back({env.name, api::ReasonName(api::Reason::kRollbackFailed)});
      } else {
        d.failures.push_back({env.name, env.reason.empty() ? "Unknown" : env.reason});
      }
    }
    if (changed && env.phase == EnvironmentPhase::kSucceeded && env.started_at && env.finished_at) {
      const double s = std::chrono::duration<double>(*env.finished_at - *env.started_at).count();
      if (s >= 0) d.durations.push_back({env.name, s});
    }
    if (env.validation) {
      const int prev_passed = prev != nullptr && prev->validation ? prev->validation->passed : 0;
      const int prev_failed = prev != nullptr && prev->validation ? prev->validation->failed : 0;
      StatusDelta::Validations v{env.name, 0, 0};
      if (env.validation->passed > prev_passed) {
        v.passed = static_cast<std::uint64_t>(env.validation->passed - prev_passed);
      }
      if (env.validation->failed > prev_failed) {
        v.failed = static_cast<std::uint64_t>(env.validation->failed - prev_failed);
      }
      if (v.passed > 0 || v.failed > 0) d.validations.push_back(std::move(v));
    }
    for (const auto& check : env.smoke_checks) {
      std::string result = SmokeCheckResult(check.phase);
      if (result.empty() || HadResult(prev, check)) continue;
      double seconds = 0;
      if (check.started_at && check.finished_at) {
        seconds = std::chrono::duration<double>(*check.finished_at - *check.started_at).count();
      }
      d.smoke_checks.push_back({env.name, check.name, std::move(result), std::max(seconds, 0.0)});
    }
  }
  return d;
}

void RecordStatus(Metrics& m, const std::string& ns, const std::string& name,
                  const api::RolloutStatus* before, const api::RolloutStatus& after) {
  std::vector<std::pair<std::string, std::string>> envs;
  envs.reserve(after.environments.size());
  for (const auto& e : after.environments) envs.emplace_back(e.name, api::PhaseName(e.phase));
  // Gauges first: the first observation creates the zero-valued counters the delta increments.
  m.ObserveRollout(ns, name, after.revision, api::PhaseName(after.phase), envs);
  const StatusDelta d = DiffStatus(before, after);
  for (const auto& f : d.failures) m.CountFailure(ns, name, f.environment, f.reason);
  for (const auto& env : d.rollbacks) m.CountRollback(ns, name, env);
  for (const auto& x : d.durations)
    m.ObserveEnvironmentDuration(ns, name, x.environment, x.seconds);
  for (const auto& v : d.validations) {
    if (v.passed > 0) m.CountValidation(ns, name, v.environment, true, v.passed);
    if (v.failed > 0) m.CountValidation(ns, name, v.environment, false, v.failed);
  }
  for (const auto& c : d.smoke_checks) m.ObserveSmokeCheck(c.result, c.seconds);
}

}  // namespace rollgate::metrics
