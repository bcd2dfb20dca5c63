#include "controller/manager/requeue.h"

namespace rollgate::manager {

RequeueDecision DecideRequeue(const rollout::ReconcileResult& result) {
  using Action = RequeueDecision::Action;
  const Status& st = result.status;
  if (st.ok()) return {Action::kForget, result.requeue_after, false, false};
  if (!st.IsRetryable()) return {Action::kDrop, std::nullopt, false, true};
  if (st.retry_after()) return {Action::kAfter, *st.retry_after(), true, false};
  return {Action::kRateLimited, std::nullopt, true, false};
}

}  // namespace rollgate::manager
