// Tests of the work loop's retry policy (DecideRequeue): one case per kind of reconcile outcome.
// Thread-safety: single-threaded tests.
#include "controller/manager/requeue.h"

#include <gtest/gtest.h>

#include <chrono>

namespace rollgate::manager {
namespace {

using Action = RequeueDecision::Action;
using std::chrono::seconds;

rollout::ReconcileResult Result(Status st, std::optional<std::chrono::nanoseconds> after = {}) {
  return {std::move(st), after};
}

TEST(DecideRequeue, SuccessForgetsTheKeyAndKeepsThePlansNextLook) {
  EXPECT_EQ(DecideRequeue(Result(Status::Ok())),
            (RequeueDecision{Action::kForget, std::nullopt, false, false}));
  EXPECT_EQ(DecideRequeue(Result(Status::Ok(), seconds(30))),
            (RequeueDecision{Action::kForget, seconds(30), false, false}));
}

TEST(DecideRequeue, ATerminalErrorIsDroppedAndLoggedAsAnError) {
  const auto d = DecideRequeue(Result(Status(StatusCode::kInvalidArgument, "bad status")));
  EXPECT_EQ(d, (RequeueDecision{Action::kDrop, std::nullopt, false, true}));
}

TEST(DecideRequeue, TheServersRetryAfterWins) {
  Status st(StatusCode::kTooManyRequests, "slow down");
  st.set_retry_after(seconds(7));
  EXPECT_EQ(DecideRequeue(Result(st)), (RequeueDecision{Action::kAfter, seconds(7), true, false}));
}

// Retried at once, a Conflict planned again from the same stale cache made about 1,200 failed
// reconciles a minute; with the key's backoff it cannot hot-loop.
TEST(DecideRequeue, AConflictBacksOffPerKey) {
  const auto d = DecideRequeue(Result(Status(StatusCode::kConflict, "stale resourceVersion")));
  EXPECT_EQ(d, (RequeueDecision{Action::kRateLimited, std::nullopt, true, false}));
}

TEST(DecideRequeue, OtherRetryableErrorsBackOffPerKey) {
  for (StatusCode code : {StatusCode::kUnavailable, StatusCode::kInternal, StatusCode::kTransport,
                          StatusCode::kTimeout, StatusCode::kGone, StatusCode::kMalformed}) {
    const Status st(code, "x");
    EXPECT_EQ(DecideRequeue(Result(st)),
              (RequeueDecision{Action::kRateLimited, std::nullopt, true, false}))
        << st.ToString();
  }
}

}  // namespace
}  // namespace rollgate::manager
