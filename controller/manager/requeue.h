// What the controller's work loop does with a key after a reconcile: the retry policy, as a pure
// function so that every case has a unit test. A retryable error requeues with per-key backoff
// (or after the server's Retry-After) -- a Conflict too: retrying it at once from a cache that has
// not caught up only conflicts again (the reconciler re-reads the rollout from the API server on a
// Conflict, so the retry plans from the current object) -- a terminal error is dropped (the status
// or the log says why), and a success forgets the key's failures and schedules the plan's next
// look. Thread-safety: pure function.
#pragma once

#include <chrono>
#include <optional>

#include "controller/rollout/reconciler.h"

namespace rollgate::manager {

struct RequeueDecision {
  enum class Action {
    kForget,       // done: reset the key's backoff (and requeue after `after` when set)
    kRateLimited,  // retry with the key's exponential backoff
    kAfter,        // retry after `after` (the server's Retry-After)
    kDrop,         // give up on this event: reset the backoff, do not requeue
  };
  Action action = Action::kForget;
  std::optional<std::chrono::nanoseconds> after;
  bool log_retry = false;  // a failure that will be retried (a warning)
  bool log_drop = false;   // a failure that will not be retried (an error)

  bool operator==(const RequeueDecision&) const = default;
};

RequeueDecision DecideRequeue(const rollout::ReconcileResult& result);

}  // namespace rollgate::manager
