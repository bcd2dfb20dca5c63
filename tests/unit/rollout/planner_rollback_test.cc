// The planner's rollbacks: automatic restoration of the recorded previous images until they are
// healthy again (RolledBack) or the rollback deadline passes (Failed), rollback None, earlier
// environments keeping the new images, and failures found while Updating.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

// ---------------------------------------------------------------------------------------------
// Rollback

TEST(PlannerRollback, AutomaticRestoresThePreviousImagesThenEndsRolledBack) {
  World w(2, 2);
  w.ToVerifying();
  w.D(0, 0).observed_generation = w.D(0, 0).generation;
  w.D(0, 0).progress_deadline_exceeded = true;

  // 1. The failure is recorded first: RollingBack, no patch in the same plan.
  Plan p = w.StepApply();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  EXPECT_EQ(w.St().phase, RolloutPhase::kRollingBack);
  EXPECT_EQ(w.Env(0).reason, "ProgressDeadlineExceeded");
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "True");
  EXPECT_EQ(Cond(w.St(), "Progressing")->status, "True");
  EXPECT_TRUE(HasEvent(p, "RollingBack"));

  // 2. The recorded previous images are restored.
  w.obs.now += seconds(1);
  p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  for (int t = 0; t < 2; ++t) {
    const DeploymentPatch& patch = p.patches[static_cast<size_t>(t)];
    EXPECT_EQ(patch.name, DeployName(0, t));
    EXPECT_EQ(patch.namespace_, kNs);
    EXPECT_TRUE(patch.rollback);
    EXPECT_EQ(patch.revision, "1-rollback");
    EXPECT_EQ(patch.images, (std::map<std::string, std::string>{{Container(t), OldImage(t)}}));
  }
  EXPECT_TRUE(p.requeue_after.has_value());
  // Crash right after the patch, before the status write: no second patch.
  w.Apply(p);
  Plan again = w.Run();
  EXPECT_TRUE(again.patches.empty());
  w.Persist(p);
  EXPECT_TRUE(w.Run().patches.empty());

  // 3. Waits until the restored Deployments are healthy.
  p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  EXPECT_EQ(w.St().phase, RolloutPhase::kRollingBack);
  EXPECT_TRUE(p.requeue_after.has_value());
  EXPECT_NE(w.St().message.find("rolling back"), std::string::npos) << w.St().message;
  // The environment keeps saying why it failed.
  EXPECT_NE(w.Env(0).message.find("ProgressDeadlineExceeded"), std::string::npos)
      << w.Env(0).message;

  // 4. Restored and healthy.
  w.RollOut();
  w.obs.now += seconds(20);
  p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kRolledBack);
  EXPECT_EQ(w.St().phase, RolloutPhase::kRolledBack);
  EXPECT_EQ(w.Env(0).reason, "ProgressDeadlineExceeded");
  EXPECT_EQ(w.Env(0).finished_at, w.obs.now);
  EXPECT_EQ(w.Env(1).phase, EnvironmentPhase::kPending);
  EXPECT_TRUE(HasEvent(p, "RolledBack"));
  EXPECT_FALSE(p.requeue_after.has_value());
  const Condition* degraded = Cond(w.St(), "Degraded");
  ASSERT_NE(degraded, nullptr);
  EXPECT_EQ(degraded->status, "True");
  EXPECT_EQ(degraded->reason, "ProgressDeadlineExceeded");
  EXPECT_EQ(Cond(w.St(), "Ready")->status, "False");
  EXPECT_EQ(Cond(w.St(), "Progressing")->status, "False");
  for (int t = 0; t < 2; ++t) {
    EXPECT_EQ(w.D(0, t).container_images.at(Container(t)), OldImage(t));
    EXPECT_EQ(w.D(0, t).annotations.at(kRevisionAnnotation), "1-rollback");
    EXPECT_EQ(w.patch_count.at("app/" + DeployName(0, t)), 2);  // forward once, back once
  }
  // Terminal.
  Plan done = w.Run();
  EXPECT_FALSE(done.status.has_value());
  EXPECT_TRUE(done.patches.empty());
}

TEST(PlannerRollback, EarlierEnvironmentsKeepTheNewImages) {
  World w(2, 1);
  w.ToVerifying(1);
  w.obs.now = kT0 + seconds(700);  // env1 started at kT0 too: its own deadline passes
  w.StepApply();
  ASSERT_EQ(w.Env(1).phase, EnvironmentPhase::kRollingBack);
  Plan p = w.StepApply();
  ASSERT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(p.patches[0].name, "d1-0");
  w.RollOut();
  w.StepApply();
  EXPECT_EQ(w.St().phase, RolloutPhase::kRolledBack);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kSucceeded);
  EXPECT_EQ(w.D(0, 0).container_images.at(Container(0)), NewImage(0));
  EXPECT_EQ(w.D(1, 0).container_images.at(Container(0)), OldImage(0));
}

TEST(PlannerRollback, RollbackThatNeverBecomesHealthyEndsFailed) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.now = kT0 + seconds(600);
  w.StepApply();  // RollingBack, finishedAt = kT0+600
  w.StepApply();  // restore patch
  w.obs.now = kT0 + seconds(1199);
  Plan p = w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  w.obs.now = kT0 + seconds(1200);
  p = w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kFailed);
  EXPECT_EQ(w.St().phase, RolloutPhase::kFailed);
  EXPECT_TRUE(HasEvent(p, "RollbackFailed"));
  EXPECT_TRUE(p.patches.empty());
}

TEST(PlannerRollback, NoneFailsWithoutPatching) {
  World w(2, 2);
  w.obs.rollout.spec.automatic_rollback = false;
  w.ToVerifying();
  w.obs.now = kT0 + seconds(600);
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kFailed);
  EXPECT_EQ(w.St().phase, RolloutPhase::kFailed);
  EXPECT_FALSE(HasEvent(p, "RollingBack"));
  EXPECT_EQ(Cond(w.St(), "Degraded")->reason, "ProgressDeadlineExceeded");
  for (int i = 0; i < 3; ++i) {
    w.obs.now += seconds(60);
    Plan later = w.Step();
    EXPECT_TRUE(later.patches.empty());
    EXPECT_FALSE(later.status.has_value());
  }
  EXPECT_EQ(w.D(0, 0).container_images.at(Container(0)), NewImage(0));
}

// Rollback waits for every restored Deployment to become healthy before ending RolledBack, even
// when another target of the environment has disappeared.
TEST(PlannerRollback, MissingDeploymentDoesNotCutShortTheWaitForTheOthers) {
  World w(1, 2);
  w.ToVerifying();
  w.obs.deployments.erase("app/d0-1");
  Plan p = w.StepApply();
  ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  ASSERT_EQ(w.Env(0).reason, "DeploymentNotFound");
  p = w.StepApply();  // restores d0-0 (d0-1 is gone: nothing to restore)
  ASSERT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(p.patches[0].name, "d0-0");
  ASSERT_EQ(w.D(0, 0).updated_replicas, 0);  // restored template not rolled out yet
  p = w.Run();
  const RolloutStatus& s = p.status ? *p.status : w.St();
  EXPECT_EQ(s.environments[0].phase, EnvironmentPhase::kRollingBack)
      << "d0-0 is restored but not rolled out: " << s.environments[0].message;
  EXPECT_EQ(s.phase, RolloutPhase::kRollingBack);
}

// A failure found while planning the roll-forward patches must not be planned together with
// those patches (planner.h: patches are "never together with a rollback start"; the rollback is
// first recorded in status).
TEST(PlannerRollback, FailureWhileUpdatingPlansNoRollForwardPatch) {
  World w(1, 2);
  w.ToUpdating();
  w.obs.deployments.erase("app/d0-1");  // deleted between pre-flight and the patch
  Plan p = w.Run();
  ASSERT_TRUE(p.status.has_value());
  EXPECT_EQ(p.status->environments[0].reason, "DeploymentNotFound");
  EXPECT_EQ(p.status->environments[0].phase, EnvironmentPhase::kRollingBack);
  EXPECT_TRUE(p.patches.empty()) << "planned " << p.patches.size()
                                 << " roll-forward patch(es) together with the rollback start, "
                                    "first: "
                                 << (p.patches.empty() ? "" : p.patches[0].name);
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
