// The write guard in the planner: every patch -- roll forward and rollback alike -- is planned
// only when the target namespace exists and opts in, the Deployment and each container the patch
// names exist, no other active rollout claims the Deployment (rollgate.io/owner), and the
// Deployment has not had its bounded number of patches in this attempt. The reconciler feeds the
// planner a fresh read of each write target (reconciler_test.cc); here the observations are set
// directly.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

using api::kOwnerAnnotation;

// Environment 0 in namespace app-prod, which opts in to rollouts from app; two targets, the first
// rolled forward and Verifying, its pods never ready; then the progress deadline fails it.
World RollingBackInOtherNamespace() {
  World w(1, 2);
  w.MoveEnv(0, "app-prod");
  w.obs.namespaces["app-prod"] = NamespaceView{"app-prod", {{kAllowFromLabel, kNs}}};
  w.ToVerifying();
  EXPECT_EQ(w.Env(0).targets.at(0).namespace_, "app-prod");
  w.obs.now += seconds(w.obs.rollout.spec.progress_deadline_seconds + 1);
  Plan p = w.StepApply();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack) << w.St().message;
  return w;
}

TEST(PlannerGuard, RollbackIntoANamespaceThatWithdrewItsConsentPatchesNothing) {
  World w = RollingBackInOtherNamespace();
  w.obs.namespaces["app-prod"].labels.clear();  // the fresh read: the label was removed

  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "NamespaceNotPermitted",
              .message_has = "rollback of app-prod/d0-0 refused",
              .events = {"NamespaceNotPermitted", "RollbackFailed"}});
  EXPECT_NE(w.Env(0).message.find("it had failed: ProgressDeadlineExceeded"), std::string::npos)
      << w.Env(0).message;
  EXPECT_EQ(w.Env(0).targets.at(0).previous_images.at(Container(0)), OldImage(0))
      << "the previous images stay recorded";
  EXPECT_TRUE(w.Run().patches.empty()) << "Failed is terminal: no patch later either";
}

TEST(PlannerGuard, RollbackIntoANamespaceThatNoLongerExistsIsNamespaceNotFound) {
  World w = RollingBackInOtherNamespace();
  w.obs.namespaces.erase("app-prod");

  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).reason, "NamespaceNotFound");
  EXPECT_NE(w.Env(0).message.find("namespace app-prod does not exist"), std::string::npos)
      << w.Env(0).message;
  EXPECT_EQ(w.St().phase, RolloutPhase::kFailed);
}

TEST(PlannerGuard, RollbackPatchesTheNamespaceRecordedInStatusNotTheSpecs) {
  World w = RollingBackInOtherNamespace();
  // The spec now names another namespace for the environment (the status keeps app-prod).
  w.Spec(0).namespace_ = "app-elsewhere";
  w.obs.namespaces["app-elsewhere"] = NamespaceView{"app-elsewhere", {{kAllowFromLabel, kNs}}};

  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  for (const auto& patch : p.patches) {
    EXPECT_EQ(patch.namespace_, "app-prod");
    EXPECT_TRUE(patch.rollback);
  }
}

TEST(PlannerGuard, AContainerRenamedMidRolloutFailsContainerNotFoundAndIsNeverReAdded) {
  World w(1, 2);
  w.ToVerifying();
  // The owner renames container c0 to c0-renamed (same image it had).
  DeploymentView& d = w.D(0, 0);
  d.container_images["c0-renamed"] = d.container_images.at(Container(0));
  d.container_images.erase(Container(0));

  Plan p = w.StepApply();
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kRollingBack,
              .rollout_phase = RolloutPhase::kRollingBack,
              .reason = "ContainerNotFound",
              .message_has = "no longer has container \"c0\"",
              .events = {"ContainerNotFound"}});

  // The rollback restores the other target; the renamed one is refused, not re-created.
  p = w.StepApply();
  ASSERT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(p.patches[0].name, DeployName(0, 1));
  EXPECT_FALSE(w.D(0, 0).container_images.contains(Container(0)));
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "ContainerNotFound",
              .message_has = "app/d0-0 has no container \"c0\"",
              .events = {"ContainerNotFound", "RollbackFailed"}});
}

TEST(PlannerGuard, PatchesCarryTheClaimAndTheReadsResourceVersion) {
  World w(1, 1);
  w.D(0, 0).resource_version = "4711";
  w.ToUpdating();
  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(p.patches[0].owner, "app/r");
  EXPECT_EQ(p.patches[0].resource_version, "4711");
  ASSERT_TRUE(p.status);
  EXPECT_EQ(p.status->environments.at(0).targets.at(0).patches, 1);
}

struct ClaimCase {
  std::string label;
  std::string owner;                        // the rollgate.io/owner value on d0-0
  std::optional<RolloutPhase> owner_phase;  // nullopt: that rollout does not exist
  bool conflict;
};

TEST(PlannerGuard, AnotherActiveRolloutsClaimFailsTargetConflictBeforeAnyChange) {
  const std::vector<ClaimCase> cases = {
      {"claimed by an active rollout", "team-a/x", RolloutPhase::kProgressing, true},
      {"claimed by a rollout rolling back", "team-a/x", RolloutPhase::kRollingBack, true},
      {"claimed by a paused rollout", "team-a/x", RolloutPhase::kPaused, true},
      {"claimed by a finished rollout", "team-a/x", RolloutPhase::kSucceeded, false},
      {"claimed by a failed rollout", "team-a/x", RolloutPhase::kFailed, false},
      {"claimed by a deleted rollout", "team-a/x", std::nullopt, false},
      {"claimed by itself", "app/r", RolloutPhase::kProgressing, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(1, 1);
    w.D(0, 0).annotations[kOwnerAnnotation] = c.owner;
    if (c.owner_phase) w.obs.claim_owners[c.owner] = *c.owner_phase;
    Plan p = w.Step();
    EXPECT_TRUE(p.patches.empty());
    if (c.conflict) {
      ExpectPlan(w, p, 0,
                 {.env_phase = EnvironmentPhase::kFailed,
                  .rollout_phase = RolloutPhase::kFailed,
                  .reason = "TargetConflict",
                  .message_has = "claimed by rollout team-a/x",
                  .events = {"TargetConflict"}});
      EXPECT_TRUE(w.Env(0).targets.empty()) << "nothing recorded or changed";
    } else {
      EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating) << w.St().message;
      p = w.Run();
      ASSERT_EQ(p.patches.size(), 1u);
      EXPECT_EQ(p.patches[0].owner, "app/r") << "the patch takes the claim over";
    }
  }
}

TEST(PlannerGuard, AClaimTakenWhileUpdatingStopsTheRollForward) {
  World w(1, 1);
  w.ToUpdating();
  w.D(0, 0).annotations[kOwnerAnnotation] = "team-a/x";
  w.obs.claim_owners["team-a/x"] = RolloutPhase::kProgressing;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).reason, "TargetConflict");
}

TEST(PlannerGuard, PatchesPerDeploymentAreBoundedPerAttempt) {
  // Someone else keeps putting the new image back while the rollback restores the old one.
  World w(1, 1);
  w.ToVerifying();
  w.obs.now += seconds(w.obs.rollout.spec.progress_deadline_seconds + 1);
  w.StepApply();
  ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  int restores = 0;
  Plan p;
  for (int i = 0; i < 10 && w.St().phase == RolloutPhase::kRollingBack; ++i) {
    p = w.StepApply();
    restores += static_cast<int>(p.patches.size());
    w.D(0, 0).container_images[Container(0)] = NewImage(0);  // the other writer
  }
  EXPECT_EQ(restores, kMaxPatchesPerAttempt - 1) << "one patch went to the roll forward";
  EXPECT_EQ(w.Env(0).targets.at(0).patches, kMaxPatchesPerAttempt);
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "PatchLimitExceeded",
              .message_has = "already patched 3 times",
              .events = {"PatchLimitExceeded", "RollbackFailed"}});
}

TEST(PlannerGuard, ARetryStartsANewPatchBudget) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.now += seconds(w.obs.rollout.spec.progress_deadline_seconds + 1);
  w.StepApply();
  w.StepApply();  // restored
  w.RollOut();
  w.StepApply();
  ASSERT_EQ(w.St().phase, RolloutPhase::kRolledBack) << w.St().message;
  ASSERT_EQ(w.Env(0).targets.at(0).patches, 2);
  w.obs.rollout.annotations[kRetryAnnotation] = "1";
  w.Step();
  EXPECT_EQ(w.Env(0).targets.at(0).patches, 0);
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
