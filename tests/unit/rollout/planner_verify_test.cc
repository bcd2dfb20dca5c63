// The planner's Verifying and Baking phases: the table of health and progress-deadline transitions
// out of Verifying, replica counts and idempotent re-planning while waiting, success and the Ready
// condition, stale ProgressDeadlineExceeded conditions, and baking until verifiedAt + bakeSeconds.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

// ---------------------------------------------------------------------------------------------
// Verifying

struct PhaseCase {
  std::string label;
  int envs = 1;
  std::function<void(World&)> setup;  // runs with environment 0 Verifying, not rolled out
  Want want;
};

TEST(PlannerVerify, Transitions) {
  const std::vector<PhaseCase> cases = {
      {.label = "no replica updated yet",
       .setup = [](World&) {},
       .want = {.env_phase = EnvironmentPhase::kVerifying,
                .rollout_phase = RolloutPhase::kProgressing,
                .message_has = "d0-0: 0 updated",
                .requeue = seconds(30)}},
      {.label = "observedGeneration behind",
       .setup =
           [](World& w) {
             w.RollOut();
             w.D(0, 1).observed_generation = w.D(0, 1).generation - 1;
           },
       .want = {.env_phase = EnvironmentPhase::kVerifying,
                .rollout_phase = RolloutPhase::kProgressing,
                .message_has = "app/d0-1",
                .requeue = seconds(30)}},
      {.label = "replicas not all available",
       .setup =
           [](World& w) {
             w.RollOut();
             w.D(0, 0).available_replicas = 1;
           },
       .want = {.env_phase = EnvironmentPhase::kVerifying,
                .rollout_phase = RolloutPhase::kProgressing,
                .message_has = "1 available of 2",
                .requeue = seconds(30)}},
      {.label = "surge: more replicas than spec.replicas",
       .setup =
           [](World& w) {
             w.RollOut();
             w.D(0, 0).replicas = 3;
           },
       .want = {.env_phase = EnvironmentPhase::kVerifying,
                .rollout_phase = RolloutPhase::kProgressing,
                .message_has = "app/d0-0",
                .requeue = seconds(30)}},
      {.label = "one second before the own progress deadline",
       .setup = [](World& w) { w.obs.now = kT0 + seconds(599); },
       .want = {.env_phase = EnvironmentPhase::kVerifying,
                .rollout_phase = RolloutPhase::kProgressing,
                .requeue = seconds(2)}},
      {.label = "own progress deadline reached (startedAt + progressDeadlineSeconds == now)",
       .setup = [](World& w) { w.obs.now = kT0 + seconds(600); },
       .want = {.env_phase = EnvironmentPhase::kRollingBack,
                .rollout_phase = RolloutPhase::kRollingBack,
                .reason = "ProgressDeadlineExceeded",
                .message_has = "not rolled out within 600s",
                .events = {"ProgressDeadlineExceeded", "RollingBack"}}},
      {.label = "own progress deadline with rollback None",
       .setup =
           [](World& w) {
             w.obs.rollout.spec.automatic_rollback = false;
             w.obs.now = kT0 + seconds(900);
           },
       .want = {.env_phase = EnvironmentPhase::kFailed,
                .rollout_phase = RolloutPhase::kFailed,
                .reason = "ProgressDeadlineExceeded"}},
      {.label = "Deployment reports ProgressDeadlineExceeded",
       .setup =
           [](World& w) {
             w.D(0, 1).observed_generation = w.D(0, 1).generation;
             w.D(0, 1).progress_deadline_exceeded = true;
           },
       .want = {.env_phase = EnvironmentPhase::kRollingBack,
                .rollout_phase = RolloutPhase::kRollingBack,
                .reason = "ProgressDeadlineExceeded",
                .message_has = "app/d0-1 reports ProgressDeadlineExceeded",
                .events = {"ProgressDeadlineExceeded", "RollingBack"}}},
      {.label = "Deployment ProgressDeadlineExceeded with rollback None",
       .setup =
           [](World& w) {
             w.obs.rollout.spec.automatic_rollback = false;
             w.D(0, 0).observed_generation = w.D(0, 0).generation;
             w.D(0, 0).progress_deadline_exceeded = true;
           },
       .want = {.env_phase = EnvironmentPhase::kFailed,
                .rollout_phase = RolloutPhase::kFailed,
                .reason = "ProgressDeadlineExceeded",
                .events = {"ProgressDeadlineExceeded"}}},
      {.label = "Deployment deleted while verifying",
       .setup = [](World& w) { w.obs.deployments.erase("app/d0-1"); },
       .want = {.env_phase = EnvironmentPhase::kRollingBack,
                .rollout_phase = RolloutPhase::kRollingBack,
                .reason = "DeploymentNotFound"}},
      {.label = "images changed by someone else",
       .setup =
           [](World& w) {
             w.RollOut();
             w.D(0, 0).container_images[Container(0)] = Image(0, "hotfix");
           },
       .want = {.env_phase = EnvironmentPhase::kRollingBack,
                .rollout_phase = RolloutPhase::kRollingBack,
                .reason = "ImagesChangedExternally"}},
      {.label = "rolled out, more environments follow",
       .envs = 2,
       .setup = [](World& w) { w.RollOut(); },
       .want = {.env_phase = EnvironmentPhase::kSucceeded,
                .rollout_phase = RolloutPhase::kProgressing,
                .reason = "Succeeded",
                .events = {"EnvironmentSucceeded"},
                .requeue = seconds(1),
                .current_environment = "env1"}},
      {.label = "rolled out, last environment",
       .setup = [](World& w) { w.RollOut(); },
       .want = {.env_phase = EnvironmentPhase::kSucceeded,
                .rollout_phase = RolloutPhase::kSucceeded,
                .reason = "Succeeded",
                .events = {"EnvironmentSucceeded", "RolloutSucceeded"},
                .current_environment = "env0"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(c.envs, 2);
    w.ToVerifying();
    c.setup(w);
    Plan p = w.Run();
    EXPECT_TRUE(p.patches.empty()) << "verifying never patches";
    ExpectPlan(w, p, 0, c.want);
    const RolloutStatus& s = p.status ? *p.status : w.St();
    const EnvironmentStatus& e0 = s.environments[0];
    // Previous images survive every transition.
    EXPECT_EQ(e0.targets.at(1).previous_images.at(Container(1)), OldImage(1));
    if (e0.phase == EnvironmentPhase::kRollingBack || e0.phase == EnvironmentPhase::kFailed) {
      EXPECT_EQ(e0.finished_at, w.obs.now);
      EXPECT_EQ(Cond(s, "Degraded")->status, "True");
      EXPECT_EQ(Cond(s, "Degraded")->reason, c.want.reason);
      EXPECT_EQ(Cond(s, "Ready")->status, "False");
    }
  }
}

TEST(PlannerVerify, WaitingRecordsReplicaCountsAndStaysIdempotent) {
  World w(1, 2);
  w.ToVerifying();
  w.RollOut();
  w.D(0, 0).updated_replicas = 1;
  w.D(0, 0).available_replicas = 1;
  Plan p = w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kVerifying);
  EXPECT_EQ(w.Env(0).targets[0].updated_replicas, 1);
  EXPECT_EQ(w.Env(0).targets[0].available_replicas, 1);
  EXPECT_EQ(w.Env(0).targets[1].updated_replicas, 2);
  EXPECT_EQ(w.Env(0).targets[1].ready_replicas, 2);
  EXPECT_NE(w.Env(0).message.find("d0-0: 1 updated, 1 available of 2"), std::string::npos)
      << w.Env(0).message;
  // Nothing changed: planning again writes nothing and emits nothing.
  Plan again = w.Run();
  EXPECT_FALSE(again.status.has_value());
  EXPECT_TRUE(again.events.empty());
  EXPECT_TRUE(again.patches.empty());
  EXPECT_TRUE(again.requeue_after.has_value());
}

TEST(PlannerVerify, SuccessSetsReadyTrue) {
  World w(1, 1);
  w.ToVerifying();
  w.RollOut();
  w.obs.now = kT0 + seconds(42);
  Plan p = w.Step();
  EXPECT_EQ(w.St().phase, RolloutPhase::kSucceeded);
  EXPECT_EQ(w.Env(0).verified_at, kT0 + seconds(42));
  EXPECT_EQ(w.Env(0).finished_at, kT0 + seconds(42));
  const Condition* ready = Cond(w.St(), "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "True");
  EXPECT_EQ(ready->reason, "Succeeded");
  EXPECT_EQ(ready->last_transition_time, kT0 + seconds(42));
  EXPECT_EQ(Cond(w.St(), "Progressing")->status, "False");
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "False");
  // Terminal: nothing more to do.
  w.obs.now += seconds(3600);
  Plan done = w.Run();
  EXPECT_FALSE(done.status.has_value());
  EXPECT_TRUE(done.patches.empty());
  EXPECT_FALSE(done.requeue_after.has_value());
}

// A Deployment keeps the ProgressDeadlineExceeded condition of its previous generation until the
// Deployment controller observes the new template (kubectl rollout status only trusts the
// condition once observedGeneration >= generation). Rolling a fix out to a Deployment that was
// stuck must not fail on the stale condition.
TEST(PlannerVerify, StaleProgressDeadlineConditionOfThePreviousGenerationIsNotAFailure) {
  World w(1, 1);
  w.D(0, 0).progress_deadline_exceeded = true;  // the old generation was stuck
  w.D(0, 0).available_replicas = 0;
  w.ToVerifying();
  ASSERT_LT(w.D(0, 0).observed_generation, w.D(0, 0).generation);
  ASSERT_TRUE(w.D(0, 0).progress_deadline_exceeded);
  Plan p = w.Run();
  const RolloutStatus& s = p.status ? *p.status : w.St();
  EXPECT_EQ(s.environments[0].phase, EnvironmentPhase::kVerifying) << s.environments[0].message;
  EXPECT_EQ(s.phase, RolloutPhase::kProgressing) << s.message;
  EXPECT_TRUE(p.requeue_after.has_value());
}

// ---------------------------------------------------------------------------------------------
// Baking

TEST(PlannerBake, BakesUntilVerifiedAtPlusBakeSeconds) {
  World w(2, 1);
  w.Spec(0).bake_seconds = 300;
  w.ToVerifying();
  w.RollOut();
  w.obs.now = kT0 + seconds(10);
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kBaking);
  EXPECT_EQ(w.Env(0).verified_at, kT0 + seconds(10));
  EXPECT_EQ(p.requeue_after, seconds(300));
  EXPECT_EQ(w.St().current_environment, "env0");

  w.obs.now = kT0 + seconds(309);
  p = w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kBaking);
  EXPECT_EQ(p.requeue_after, seconds(2));

  w.obs.now = kT0 + seconds(310);
  p = w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kSucceeded);
  EXPECT_EQ(w.Env(0).finished_at, kT0 + seconds(310));
  EXPECT_EQ(w.St().current_environment, "env1");
  EXPECT_TRUE(HasEvent(p, "EnvironmentSucceeded"));
}

TEST(PlannerBake, UnhealthyDuringBakeFails) {
  const std::vector<std::pair<std::string, bool>> cases = {{"Automatic", true}, {"None", false}};
  for (const auto& [label, automatic] : cases) {
    SCOPED_TRACE(label);
    World w(1, 1);
    w.obs.rollout.spec.automatic_rollback = automatic;
    w.Spec(0).bake_seconds = 300;
    w.ToVerifying();
    w.RollOut();
    w.Step();
    ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kBaking);
    w.obs.now = kT0 + seconds(100);
    w.D(0, 0).available_replicas = 1;
    Plan p = w.Run();
    EXPECT_TRUE(p.patches.empty());
    ASSERT_TRUE(p.status.has_value());
    const auto want_env = automatic ? EnvironmentPhase::kRollingBack : EnvironmentPhase::kFailed;
    const auto want = automatic ? RolloutPhase::kRollingBack : RolloutPhase::kFailed;
    EXPECT_EQ(p.status->environments[0].phase, want_env);
    EXPECT_EQ(p.status->phase, want);
    EXPECT_EQ(p.status->environments[0].reason, "UnhealthyDuringBake");
    EXPECT_TRUE(HasEvent(p, "UnhealthyDuringBake"));
  }
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
