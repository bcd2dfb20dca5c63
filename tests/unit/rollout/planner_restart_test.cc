// Restart simulations and whole-rollout properties of the planner: a reconciler killed between
// executing a plan's patches and writing its status never patches twice and keeps the recorded
// previous images, at every step; and a whole happy path patches each Deployment once per
// revision.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

// ---------------------------------------------------------------------------------------------
// Restarts: the reconciler is killed between executing a plan's patches and writing its status.

TEST(PlannerRestart, CrashBeforeTheFirstStatusWriteRecordsTheSameImages) {
  World w(1, 2);
  Plan first = w.Run();  // status never written
  Plan second = w.Run();
  ASSERT_TRUE(first.status && second.status);
  EXPECT_TRUE(*first.status == *second.status);
  EXPECT_TRUE(second.patches.empty());
}

TEST(PlannerRestart, CrashBeforeTheRollForwardPatchPatchesOnce) {
  World w(1, 2);
  w.ToUpdating();
  Plan p = w.Run();  // crash: neither the patches nor the status were executed
  ASSERT_EQ(p.patches.size(), 2u);
  Plan again = w.Run();
  EXPECT_EQ(again.patches.size(), 2u);
  w.Apply(again);
  w.Persist(again);
  EXPECT_EQ(w.patch_count.at("app/d0-0"), 1);
  EXPECT_EQ(w.patch_count.at("app/d0-1"), 1);
}

TEST(PlannerRestart, CrashAfterTheRollForwardPatchNeverPatchesTwice) {
  World w(1, 2);
  w.ToUpdating();
  const RolloutStatus updating = w.St();
  Plan p = w.Run();
  w.Apply(p);  // patched; the status write (Verifying) is lost
  for (int i = 0; i < 3; ++i) {
    Plan again = w.Run();
    EXPECT_TRUE(again.patches.empty()) << "restart " << i;
    ASSERT_TRUE(again.status.has_value());
    EXPECT_EQ(again.status->environments[0].phase, EnvironmentPhase::kVerifying);
    for (int t = 0; t < 2; ++t) {
      EXPECT_EQ(again.status->environments[0].targets[static_cast<size_t>(t)].previous_images.at(
                    Container(t)),
                OldImage(t))
          << "previous images lost";
    }
  }
  EXPECT_TRUE(w.St() == updating);
}

TEST(PlannerRestart, CrashAfterOnePatchOfTwoPatchesTheOther) {
  World w(1, 2);
  w.ToUpdating();
  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  Plan partial = p;
  partial.patches.resize(1);
  w.Apply(partial);
  Plan again = w.Run();
  ASSERT_EQ(again.patches.size(), 1u);
  EXPECT_EQ(again.patches[0].name, "d0-1");
}

TEST(PlannerRestart, CrashAfterTheRollbackPatchKeepsThePreviousImages) {
  World w(1, 2);
  w.ToVerifying();
  w.obs.now = kT0 + seconds(600);
  w.Step();  // RollingBack persisted
  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  w.Apply(p);  // restore executed, status write lost
  Plan again = w.Run();
  EXPECT_TRUE(again.patches.empty());
  const RolloutStatus& s = again.status ? *again.status : w.St();
  EXPECT_EQ(s.environments[0].phase, EnvironmentPhase::kRollingBack);
  EXPECT_EQ(s.environments[0].targets[1].previous_images.at(Container(1)), OldImage(1));
}

// At every step of a rollout over 3 environments, a restart that replays the same observation
// after the patches were executed (status write lost) plans no patch again and keeps the
// recorded previous images.
TEST(PlannerRestart, EveryStepSurvivesARestart) {
  World w(3, 2);
  for (int i = 0; i < 60 && w.St().phase != RolloutPhase::kSucceeded; ++i) {
    Plan p = w.Run();
    w.Apply(p);
    if (!p.patches.empty()) {
      Plan replay = w.Run();  // restarted: same status, patched Deployments
      EXPECT_TRUE(replay.patches.empty()) << "step " << i;
      ASSERT_TRUE(replay.status.has_value());
      for (const auto& e : replay.status->environments) {
        for (const auto& t : e.targets) {
          for (const auto& [c, image] : t.previous_images) {
            EXPECT_NE(image.find(":1.0.0"), std::string::npos)
                << e.name << "/" << t.deployment << " previous image " << image;
          }
        }
      }
    }
    w.Persist(p);
    if (p.patches.empty()) w.RollOut();
    w.obs.now += seconds(1);
  }
  EXPECT_EQ(w.St().phase, RolloutPhase::kSucceeded);
  for (const auto& [key, n] : w.patch_count) EXPECT_EQ(n, 1) << key;
}

// ---------------------------------------------------------------------------------------------
// A whole happy path: 3 environments x 2 targets, each Deployment patched once per revision.

TEST(PlannerHappyPath, EachDeploymentIsPatchedOncePerRevision) {
  World w(3, 2);
  std::vector<std::string> events;
  std::vector<std::string> env_trail;
  auto run = [&](const std::string& want_revision) {
    for (int i = 0; i < 60; ++i) {
      Plan p = w.Run();
      for (const auto& patch : p.patches) {
        EXPECT_EQ(patch.revision, want_revision);
        EXPECT_FALSE(patch.rollback);
      }
      w.Apply(p);
      w.Persist(p);
      for (const auto& e : p.events) events.push_back(e.reason);
      if (env_trail.empty() || env_trail.back() != w.St().current_environment) {
        env_trail.push_back(w.St().current_environment);
      }
      // The Deployment controller catches up after the patches.
      if (p.patches.empty()) w.RollOut();
      w.obs.now += seconds(5);
      if (w.St().phase == RolloutPhase::kSucceeded) return;
      ASSERT_EQ(w.St().phase, RolloutPhase::kProgressing) << w.St().message;
    }
    FAIL() << "no success after 60 steps";
  };
  run("1");
  EXPECT_EQ(w.St().phase, RolloutPhase::kSucceeded);
  EXPECT_EQ(env_trail, (std::vector<std::string>{"env0", "env1", "env2"}));
  ASSERT_EQ(w.patch_count.size(), 6u);
  for (int e = 0; e < 3; ++e) {
    EXPECT_EQ(w.Env(e).phase, EnvironmentPhase::kSucceeded);
    for (int t = 0; t < 2; ++t) {
      const std::string key = "app/" + DeployName(e, t);
      EXPECT_EQ(w.patch_count[key], 1) << key;
      EXPECT_EQ(w.D(e, t).container_images.at(Container(t)), NewImage(t));
      EXPECT_EQ(w.D(e, t).annotations.at(kRevisionAnnotation), "1");
      EXPECT_EQ(w.D(e, t).container_images.at("log-shipper"), "registry.example.com/ops/shipper:7");
      EXPECT_EQ(w.Env(e).targets[static_cast<size_t>(t)].previous_images.at(Container(t)),
                OldImage(t));
    }
  }
  EXPECT_EQ(std::count(events.begin(), events.end(), "EnvironmentStarted"), 3);
  EXPECT_EQ(std::count(events.begin(), events.end(), "EnvironmentSucceeded"), 3);
  EXPECT_EQ(std::count(events.begin(), events.end(), "RolloutSucceeded"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "RolloutStarted"), 1);
  EXPECT_EQ(Cond(w.St(), "Ready")->status, "True");

  // Revision 2: every Deployment once more.
  for (int t = 0; t < 2; ++t) w.obs.rollout.spec.images[Logical(t)] = Image(t, "3.0.0");
  w.obs.spec_hash = "hash-2";
  w.obs.rollout.generation = 2;
  env_trail.clear();
  run("2");
  EXPECT_EQ(w.St().revision, 2);
  EXPECT_EQ(env_trail, (std::vector<std::string>{"env0", "env1", "env2"}));
  for (int e = 0; e < 3; ++e) {
    for (int t = 0; t < 2; ++t) {
      const std::string key = "app/" + DeployName(e, t);
      EXPECT_EQ(w.patch_count[key], 2) << key;
      EXPECT_EQ(w.D(e, t).annotations.at(kRevisionAnnotation), "2");
      EXPECT_EQ(w.Env(e).targets[static_cast<size_t>(t)].previous_images.at(Container(t)),
                NewImage(t));
    }
  }
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
