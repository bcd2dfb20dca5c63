// The planner's start of a revision: the first reconcile (previous images recorded before any
// patch, conditions, target keys and environment namespaces), specs that fail validation
// (InvalidSpec: terminal without a loop, before or during a rollout, until the spec is fixed) and
// spec changes mid-rollout that start a new revision at the first environment.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

// ---------------------------------------------------------------------------------------------
// First reconcile

TEST(PlannerStart, FirstReconcileRecordsPreviousImagesAndDoesNotPatch) {
  World w(2, 2);
  Plan p = w.Run();
  ASSERT_TRUE(p.status.has_value());
  const RolloutStatus& s = *p.status;
  EXPECT_EQ(s.revision, 1);
  EXPECT_EQ(s.spec_hash, "hash-1");
  EXPECT_EQ(s.observed_generation, 1);
  EXPECT_EQ(s.phase, RolloutPhase::kProgressing);
  EXPECT_EQ(s.current_environment, "env0");
  ASSERT_EQ(s.environments.size(), 2u);
  EXPECT_EQ(s.environments[0].name, "env0");
  EXPECT_EQ(s.environments[1].name, "env1");
  EXPECT_EQ(s.environments[0].phase, EnvironmentPhase::kUpdating);
  EXPECT_EQ(s.environments[1].phase, EnvironmentPhase::kPending);
  EXPECT_EQ(s.environments[0].started_at, kT0);
  EXPECT_FALSE(s.environments[1].started_at.has_value());
  ASSERT_EQ(s.environments[0].targets.size(), 2u);
  for (int t = 0; t < 2; ++t) {
    const TargetStatus& ts = s.environments[0].targets[static_cast<size_t>(t)];
    EXPECT_EQ(ts.deployment, DeployName(0, t));
    EXPECT_EQ(ts.namespace_, kNs);
    // Only the containers the rollout changes are recorded.
    EXPECT_EQ(ts.previous_images,
              (std::map<std::string, std::string>{{Container(t), OldImage(t)}}));
  }
  EXPECT_TRUE(s.environments[1].targets.empty());
  // The previous images must be persisted before any patch.
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(Reasons(p), (std::vector<std::string>{"RolloutStarted", "EnvironmentStarted"}));
  EXPECT_FALSE(p.sample_analysis);
  ASSERT_NE(Cond(s, "Ready"), nullptr);
  EXPECT_EQ(Cond(s, "Ready")->status, "False");
  EXPECT_EQ(Cond(s, "Progressing")->status, "True");
  EXPECT_EQ(Cond(s, "Degraded")->status, "False");
  EXPECT_EQ(s.conditions[0].type, "Ready");
  EXPECT_EQ(s.conditions[1].type, "Progressing");
  EXPECT_EQ(s.conditions[2].type, "Degraded");
}

TEST(PlannerStart, EnvironmentNamespace) {
  World w(2, 1);
  w.MoveEnv(1, "app-prod");
  EXPECT_EQ(api::EnvironmentNamespace(w.obs.rollout, w.Spec(0)), "app");
  EXPECT_EQ(api::EnvironmentNamespace(w.obs.rollout, w.Spec(1)), "app-prod");
}

// ---------------------------------------------------------------------------------------------
// Invalid spec

TEST(PlannerInvalidSpec, BadImageReferenceFailsWithoutLoop) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"uppercase repository", "registry.example.com/App/img:2"},
      {"bad tag", "registry.example.com/app/img:bad tag"},
      {"short digest", "registry.example.com/app/img@sha256:1234"},
      {"empty", ""},
  };
  for (const auto& [label, ref] : cases) {
    SCOPED_TRACE(label);
    World w(2, 1);
    w.obs.rollout.spec.images[Logical(0)] = ref;
    Plan p = w.Run();
    EXPECT_TRUE(p.patches.empty());
    EXPECT_FALSE(p.requeue_after.has_value());
    EXPECT_FALSE(p.sample_analysis);
    ASSERT_TRUE(p.status.has_value());
    EXPECT_EQ(p.status->phase, RolloutPhase::kFailed);
    EXPECT_NE(p.status->message.find("spec.images.img0"), std::string::npos) << p.status->message;
    const Condition* ready = Cond(*p.status, "Ready");
    ASSERT_NE(ready, nullptr);
    EXPECT_EQ(ready->status, "False");
    EXPECT_EQ(ready->reason, "InvalidSpec");
    EXPECT_EQ(Cond(*p.status, "Degraded")->reason, "InvalidSpec");
    EXPECT_TRUE(HasEvent(p, "InvalidSpec"));

    // Planning again with the status it produced changes nothing.
    w.Persist(p);
    const RolloutStatus before = w.St();
    for (int i = 0; i < 3; ++i) {
      w.obs.now += seconds(30);
      Plan again = w.Run();
      EXPECT_TRUE(again.patches.empty());
      EXPECT_FALSE(again.requeue_after.has_value());
      if (again.status) {
        EXPECT_TRUE(*again.status == before);
      }
      w.Persist(again);
    }
    // Fixing the spec starts revision 1.
    w.obs.rollout.spec.images[Logical(0)] = NewImage(0);
    w.obs.spec_hash = "hash-2";
    Plan fixed = w.Step();
    EXPECT_EQ(w.St().revision, 1);
    EXPECT_EQ(w.St().phase, RolloutPhase::kProgressing);
    EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating);
    EXPECT_EQ(Cond(w.St(), "Ready")->reason, "Progressing");
    EXPECT_TRUE(HasEvent(fixed, "RolloutStarted"));
  }
}

// Plan::status is "written when it differs from the observed one", and the reconciler writes the
// status (and records the plan's events) whenever it is set: an unchanged invalid spec must plan
// nothing, or every resync rewrites the status and emits another InvalidSpec warning.
TEST(PlannerInvalidSpec, ReplanningAnUnchangedInvalidSpecWritesNothing) {
  World w(1, 1);
  w.obs.rollout.spec.images[Logical(0)] = "registry.example.com/App/img:2";
  w.Step();
  ASSERT_EQ(w.St().phase, RolloutPhase::kFailed);
  Plan again = w.Run();
  EXPECT_FALSE(again.status.has_value());
  EXPECT_FALSE(HasEvent(again, "InvalidSpec")) << "the same InvalidSpec warning again";
}

TEST(PlannerInvalidSpec, InvalidSpecMidRolloutStopsWithoutPatching) {
  World w(2, 1);
  w.ToVerifying();
  w.obs.rollout.spec.images[Logical(0)] = "Not A Reference";
  w.obs.spec_hash = "hash-2";
  w.obs.rollout.generation = 2;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().phase, RolloutPhase::kFailed);
  EXPECT_EQ(w.St().observed_generation, 2);
  EXPECT_EQ(Cond(w.St(), "Ready")->reason, "InvalidSpec");
  EXPECT_FALSE(p.requeue_after.has_value());
  // Fixed: a new revision starting at the first environment.
  w.obs.rollout.spec.images[Logical(0)] = Image(0, "3.0.0");
  w.obs.spec_hash = "hash-3";
  p = w.Step();
  EXPECT_EQ(w.St().revision, 2);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating);
  EXPECT_EQ(w.Env(0).targets[0].previous_images.at(Container(0)), NewImage(0));
  p = w.Run();
  ASSERT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(p.patches[0].revision, "2");
}

// ---------------------------------------------------------------------------------------------
// New revisions

TEST(PlannerRevision, SpecChangeMidRolloutStartsRevision2AtTheFirstEnvironment) {
  World w(3, 2);
  w.ToVerifying(1);
  ASSERT_EQ(w.St().current_environment, "env1");
  for (int t = 0; t < 2; ++t) w.obs.rollout.spec.images[Logical(t)] = Image(t, "3.0.0");
  w.obs.spec_hash = "hash-2";
  w.obs.rollout.generation = 2;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().revision, 2);
  EXPECT_EQ(w.St().spec_hash, "hash-2");
  EXPECT_EQ(w.St().observed_generation, 2);
  EXPECT_EQ(w.St().current_environment, "env0");
  EXPECT_EQ(w.St().phase, RolloutPhase::kProgressing);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating);
  EXPECT_EQ(w.Env(1).phase, EnvironmentPhase::kPending);
  EXPECT_EQ(w.Env(2).phase, EnvironmentPhase::kPending);
  EXPECT_TRUE(w.Env(1).targets.empty());
  // env0 now runs revision 1's images: those are its previous images.
  EXPECT_EQ(w.Env(0).targets[0].previous_images.at(Container(0)), NewImage(0));
  EXPECT_TRUE(HasEvent(p, "NewRevision"));
  EXPECT_FALSE(HasEvent(p, "RolloutStarted"));

  p = w.StepApply();
  ASSERT_EQ(p.patches.size(), 2u);
  for (const auto& patch : p.patches) EXPECT_EQ(patch.revision, "2");
  EXPECT_EQ(w.D(0, 1).container_images.at(Container(1)), Image(1, "3.0.0"));
}

TEST(PlannerRevision, EnvironmentsOnlyChangeReannotatesOnce) {
  World w(1, 1);
  ASSERT_TRUE(w.CompleteCurrent());
  ASSERT_EQ(w.St().phase, RolloutPhase::kSucceeded);
  w.Spec(0).bake_seconds = 0;
  w.obs.spec_hash = "hash-envs";
  w.Step();
  EXPECT_EQ(w.St().revision, 2);
  Plan p = w.StepApply();
  ASSERT_EQ(p.patches.size(), 1u);  // same images, new revision annotation
  EXPECT_EQ(p.patches[0].images.at(Container(0)), NewImage(0));
  EXPECT_EQ(p.patches[0].revision, "2");
  EXPECT_TRUE(w.Run().patches.empty());
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
