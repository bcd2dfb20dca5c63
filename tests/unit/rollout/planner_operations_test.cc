// The planner's manual operations driven by annotations and spec.paused: manual approval and
// promote, abort (rolling back what changed, or ending at once when nothing did), retry of a
// failed, rolled-back or aborted rollout, and pausing and unpausing.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

// ---------------------------------------------------------------------------------------------
// Manual approval

TEST(PlannerApproval, ManualEnvironmentWaitsForPromote) {
  World w(2, 1);
  w.Spec(0).manual_approval = true;
  w.Spec(1).manual_approval = true;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kAwaitingApproval);
  EXPECT_EQ(w.St().phase, RolloutPhase::kAwaitingApproval);
  EXPECT_TRUE(w.Env(0).targets.empty());
  EXPECT_EQ(Reasons(p), (std::vector<std::string>{"RolloutStarted", "AwaitingApproval"}));
  EXPECT_FALSE(p.requeue_after.has_value());
  EXPECT_EQ(Cond(w.St(), "Progressing")->status, "True");
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "False");

  // Waiting: nothing changes.
  w.obs.now += seconds(3600);
  Plan wait = w.Run();
  EXPECT_FALSE(wait.status.has_value());
  EXPECT_TRUE(wait.events.empty());
  EXPECT_TRUE(wait.patches.empty());

  // Promote with a new value: approved and proceeds in the same plan.
  w.obs.rollout.annotations[kPromoteAnnotation] = "v1";
  p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).approved_at, w.obs.now);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating);
  EXPECT_EQ(w.St().phase, RolloutPhase::kProgressing);
  EXPECT_EQ(w.St().handled_annotations.at(kPromoteAnnotation), "v1");
  EXPECT_EQ(Reasons(p), (std::vector<std::string>{"Promoted", "EnvironmentStarted"}));

  // The next environment awaits approval too; the old promote value does not approve it.
  ASSERT_TRUE(w.CompleteCurrent());
  p = w.Step();
  EXPECT_EQ(w.Env(1).phase, EnvironmentPhase::kAwaitingApproval);
  EXPECT_EQ(w.St().phase, RolloutPhase::kAwaitingApproval);
  EXPECT_FALSE(HasEvent(p, "Promoted"));
  Plan same = w.Run();
  EXPECT_FALSE(same.status.has_value());
  EXPECT_TRUE(same.events.empty());

  w.obs.rollout.annotations[kPromoteAnnotation] = "v2";
  p = w.Step();
  EXPECT_EQ(w.Env(1).phase, EnvironmentPhase::kUpdating);
  EXPECT_EQ(w.Env(1).approved_at, w.obs.now);
}

TEST(PlannerApproval, PromoteWhenNothingAwaitsIsIgnored) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.rollout.annotations[kPromoteAnnotation] = "now";
  Plan p = w.Step();
  EXPECT_TRUE(HasEvent(p, "PromoteIgnored"));
  EXPECT_FALSE(HasEvent(p, "Promoted"));
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kVerifying);
  EXPECT_FALSE(w.Env(0).approved_at.has_value());
  EXPECT_EQ(w.St().handled_annotations.at(kPromoteAnnotation), "now");
  // Handled once.
  Plan again = w.Run();
  EXPECT_FALSE(HasEvent(again, "PromoteIgnored"));
}

// ---------------------------------------------------------------------------------------------
// Abort

TEST(PlannerAbort, AbortWhileVerifyingRollsBackThenEndsAborted) {
  World w(2, 2);
  w.ToVerifying();
  w.obs.rollout.annotations[kAbortAnnotation] = "a1";
  Plan p = w.StepApply();
  EXPECT_TRUE(p.patches.empty()) << "the abort is persisted before the restoring patches";
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  EXPECT_EQ(w.Env(0).reason, "Aborted");
  EXPECT_EQ(w.St().phase, RolloutPhase::kRollingBack);
  EXPECT_EQ(p.requeue_after, seconds(1));
  EXPECT_TRUE(HasEvent(p, "Aborted"));
  EXPECT_EQ(w.St().handled_annotations.at(kAbortAnnotation), "a1");

  p = w.StepApply();
  ASSERT_EQ(p.patches.size(), 2u);
  for (const auto& patch : p.patches) {
    EXPECT_TRUE(patch.rollback);
    EXPECT_EQ(patch.revision, "1-rollback");
  }
  w.RollOut();
  p = w.StepApply();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kRolledBack);
  EXPECT_EQ(w.St().phase, RolloutPhase::kAborted);
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "True");
  EXPECT_EQ(Cond(w.St(), "Degraded")->reason, "Aborted");
  for (int t = 0; t < 2; ++t) {
    EXPECT_EQ(w.D(0, t).container_images.at(Container(t)), OldImage(t));
  }
  // Terminal; the same abort value does nothing more.
  Plan done = w.Run();
  EXPECT_FALSE(done.status.has_value());
  EXPECT_TRUE(done.events.empty());
}

TEST(PlannerAbort, AbortWhileUpdatingBeforeThePatchRestoresNothing) {
  World w(1, 1);
  w.ToUpdating();
  w.obs.rollout.annotations[kAbortAnnotation] = "a1";
  Plan p = w.StepApply();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  p = w.StepApply();
  EXPECT_TRUE(p.patches.empty()) << "the Deployment still runs the previous images";
  EXPECT_EQ(w.St().phase, RolloutPhase::kAborted);
  EXPECT_EQ(w.patch_count.count("app/d0-0"), 0u);
}

struct AbortPendingCase {
  std::string label;
  std::function<void(World&)> setup;
  int env;
};

TEST(PlannerAbort, AbortBeforeAnythingChangedEndsAbortedAtOnce) {
  const std::vector<AbortPendingCase> cases = {
      {.label = "first reconcile", .setup = [](World&) {}, .env = 0},
      {.label = "awaiting approval",
       .setup =
           [](World& w) {
             w.Spec(0).manual_approval = true;
             w.Step();
             ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kAwaitingApproval);
           },
       .env = 0},
      {.label = "next environment pending",
       .setup =
           [](World& w) {
             ASSERT_TRUE(w.CompleteCurrent());
             ASSERT_EQ(w.Env(1).phase, EnvironmentPhase::kPending);
           },
       .env = 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(2, 1);
    c.setup(w);
    const auto before = w.obs.deployments;
    w.obs.rollout.annotations[kAbortAnnotation] = "stop";
    Plan p = w.Step();
    EXPECT_TRUE(p.patches.empty());
    EXPECT_EQ(w.St().phase, RolloutPhase::kAborted);
    EXPECT_EQ(w.Env(c.env).reason, "Aborted");
    EXPECT_TRUE(w.Env(c.env).targets.empty());
    EXPECT_TRUE(HasEvent(p, "Aborted"));
    EXPECT_FALSE(HasEvent(p, "EnvironmentStarted"));
    EXPECT_FALSE(p.requeue_after.has_value());
    EXPECT_EQ(Cond(w.St(), "Degraded")->status, "True");
    Plan again = w.Run();
    EXPECT_FALSE(again.status.has_value());
    EXPECT_TRUE(again.patches.empty());
    EXPECT_EQ(w.obs.deployments.at("app/" + DeployName(c.env, 0)).container_images,
              before.at("app/" + DeployName(c.env, 0)).container_images);
  }
}

TEST(PlannerAbort, AbortAfterSuccessIsIgnored) {
  World w(1, 1);
  ASSERT_TRUE(w.CompleteCurrent());
  ASSERT_EQ(w.St().phase, RolloutPhase::kSucceeded);
  w.obs.rollout.annotations[kAbortAnnotation] = "late";
  Plan p = w.Step();
  EXPECT_TRUE(HasEvent(p, "AbortIgnored"));
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().phase, RolloutPhase::kSucceeded);
}

// ---------------------------------------------------------------------------------------------
// Retry

struct RetryCase {
  std::string label;
  std::function<void(World&)> fail;  // leaves the rollout Failed / RolledBack / Aborted
  RolloutPhase failed_phase;
};

TEST(PlannerRetry, RetryRestartsTheFailedEnvironment) {
  const std::vector<RetryCase> cases = {
      {.label = "after a pre-flight failure",
       .fail =
           [](World& w) {
             const DeploymentView keep = w.D(0, 0);
             w.obs.deployments.erase(keep.Key());
             w.Step();
             w.obs.deployments[keep.Key()] = keep;  // created since
           },
       .failed_phase = RolloutPhase::kFailed},
      {.label = "after a rollback",
       .fail =
           [](World& w) {
             w.ToVerifying();
             w.obs.now = kT0 + seconds(600);
             w.StepApply();
             w.StepApply();
             w.RollOut();
             w.StepApply();
           },
       .failed_phase = RolloutPhase::kRolledBack},
      {.label = "after an abort",
       .fail =
           [](World& w) {
             w.ToVerifying();
             w.obs.rollout.annotations[kAbortAnnotation] = "a";
             w.StepApply();
             w.StepApply();
             w.RollOut();
             w.StepApply();
           },
       .failed_phase = RolloutPhase::kAborted},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(2, 1);
    c.fail(w);
    ASSERT_EQ(w.St().phase, c.failed_phase) << w.St().message;
    w.obs.now = kT0 + seconds(2000);
    w.obs.rollout.annotations[kRetryAnnotation] = "r1";
    Plan p = w.Step();
    EXPECT_TRUE(p.patches.empty()) << "previous images are recorded again first";
    EXPECT_TRUE(HasEvent(p, "Retry"));
    EXPECT_EQ(w.St().phase, RolloutPhase::kProgressing);
    EXPECT_EQ(w.St().current_environment, "env0");
    EXPECT_EQ(w.St().revision, 1);
    const EnvironmentStatus& e0 = w.Env(0);
    EXPECT_EQ(e0.attempts, 1);
    // The Event counts retries as status.attempts does.
    for (const auto& ev : p.events) {
      if (ev.reason == "Retry") {
        EXPECT_EQ(ev.message, "retrying environment env0 (retry 1)") << ev.message;
      }
    }
    // Reset to Pending, and in the same plan through the pre-flight into Updating.
    EXPECT_EQ(e0.phase, EnvironmentPhase::kUpdating);
    EXPECT_EQ(e0.reason, "");
    EXPECT_EQ(e0.started_at, kT0 + seconds(2000));
    EXPECT_FALSE(e0.finished_at.has_value());
    ASSERT_EQ(e0.targets.size(), 1u);
    EXPECT_EQ(e0.targets[0].previous_images.at(Container(0)), OldImage(0));
    EXPECT_EQ(Cond(w.St(), "Degraded")->status, "False");
    EXPECT_EQ(Cond(w.St(), "Progressing")->status, "True");

    // The new attempt patches again, once.
    p = w.StepApply();
    ASSERT_EQ(p.patches.size(), 1u);
    EXPECT_EQ(p.patches[0].revision, "1");
    EXPECT_TRUE(w.StepApply().patches.empty());

    // A second failure needs a new retry value.
    w.obs.deployments.erase("app/d0-0");
    w.StepApply();
    ASSERT_EQ(w.St().phase, RolloutPhase::kRollingBack);
    w.StepApply();
    ASSERT_EQ(w.St().phase, RolloutPhase::kRolledBack);  // nothing left to restore
    Plan same = w.Run();
    EXPECT_FALSE(HasEvent(same, "Retry"));
    EXPECT_FALSE(same.status.has_value());
  }
}

TEST(PlannerRetry, RetryWhileProgressingIsIgnored) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.rollout.annotations[kRetryAnnotation] = "r1";
  Plan p = w.Step();
  EXPECT_TRUE(HasEvent(p, "RetryIgnored"));
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kVerifying);
  EXPECT_EQ(w.Env(0).attempts, 0);
}

// ---------------------------------------------------------------------------------------------
// Pause

TEST(PlannerPause, PausedPlansNoPatchesAndUnpausingContinues) {
  World w(1, 2);
  w.ToUpdating();
  w.obs.rollout.spec.paused = true;
  w.obs.rollout.generation = 2;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().phase, RolloutPhase::kPaused);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating);
  EXPECT_FALSE(p.requeue_after.has_value());
  EXPECT_EQ(Cond(w.St(), "Ready")->status, "False");
  EXPECT_EQ(Cond(w.St(), "Ready")->reason, "Paused");
  Plan still = w.Run();
  EXPECT_FALSE(still.status.has_value());
  EXPECT_TRUE(still.patches.empty());

  w.obs.rollout.spec.paused = false;
  w.obs.rollout.generation = 3;
  p = w.StepApply();
  EXPECT_EQ(p.patches.size(), 2u);
  EXPECT_EQ(w.St().phase, RolloutPhase::kProgressing);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kVerifying);
}

TEST(PlannerPause, PausedOnFirstReconcileRecordsNothing) {
  World w(1, 1);
  w.obs.rollout.spec.paused = true;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().revision, 1);
  EXPECT_EQ(w.St().phase, RolloutPhase::kPaused);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kPending);
  w.obs.rollout.spec.paused = false;
  w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating);
  EXPECT_EQ(w.St().phase, RolloutPhase::kProgressing);
}

// Unpausing an environment that is rolling back continues the rollback, and the rollout reports
// it: phase RollingBack (Degraded=True), not Progressing.
TEST(PlannerPause, UnpausingARollbackReportsRollingBack) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.now = kT0 + seconds(600);
  w.Step();
  ASSERT_EQ(w.St().phase, RolloutPhase::kRollingBack);
  w.obs.rollout.spec.paused = true;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().phase, RolloutPhase::kPaused);
  w.obs.rollout.spec.paused = false;
  p = w.Step();
  EXPECT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  EXPECT_EQ(w.St().phase, RolloutPhase::kRollingBack)
      << "rollout phase while its environment rolls back";
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "True");
}

// An annotation value longer than status can hold (the CRD allows 1024 characters per handled
// value) is recorded as its hash: it acts once, and the status write stays valid.
TEST(PlannerAbort, ALongAbortValueActsOnceAndIsRecordedAsItsHash) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.rollout.annotations[kAbortAnnotation] = std::string(5000, 'a');
  Plan p = w.StepApply();
  EXPECT_TRUE(HasEvent(p, "Aborted"));
  const std::string recorded = w.St().handled_annotations.at(kAbortAnnotation);
  EXPECT_EQ(recorded.rfind("sha256:", 0), 0u) << recorded.substr(0, 80);
  p = w.StepApply();
  EXPECT_FALSE(HasEvent(p, "Aborted")) << "the same value must not act twice";
  EXPECT_FALSE(HasEvent(p, "AbortIgnored"));
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
