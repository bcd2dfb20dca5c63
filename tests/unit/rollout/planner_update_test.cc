// The planner's Updating phase: which targets are patched (only those whose images or revision
// annotation differ) and what a roll-forward patch carries.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

// ---------------------------------------------------------------------------------------------
// Updating

struct UpdateCase {
  std::string label;
  std::function<void(World&)> setup;  // runs with environment 0 Updating
  std::vector<std::string> want_patched;
};

TEST(PlannerUpdate, PatchesOnlyTargetsThatDiffer) {
  const std::vector<UpdateCase> cases = {
      {.label = "both deployments on the old images",
       .setup = [](World&) {},
       .want_patched = {"d0-0", "d0-1"}},
      {.label = "one deployment already patched (images and annotation)",
       .setup =
           [](World& w) {
             w.D(0, 0).container_images[Container(0)] = NewImage(0);
             w.D(0, 0).annotations[kRevisionAnnotation] = "1";
           },
       .want_patched = {"d0-1"}},
      {.label = "images right but revision annotation missing",
       .setup =
           [](World& w) {
             w.D(0, 0).container_images[Container(0)] = NewImage(0);
             w.D(0, 1).container_images[Container(1)] = NewImage(1);
             w.D(0, 1).annotations[kRevisionAnnotation] = "1";
           },
       .want_patched = {"d0-0"}},
      {.label = "annotation right but an image differs",
       .setup =
           [](World& w) {
             w.D(0, 0).annotations[kRevisionAnnotation] = "1";
             w.D(0, 1).container_images[Container(1)] = NewImage(1);
             w.D(0, 1).annotations[kRevisionAnnotation] = "1";
           },
       .want_patched = {"d0-0"}},
      {.label = "annotation of another revision",
       .setup =
           [](World& w) {
             for (int t = 0; t < 2; ++t) {
               w.D(0, t).container_images[Container(t)] = NewImage(t);
               w.D(0, t).annotations[kRevisionAnnotation] = t == 0 ? "0" : "1";
             }
           },
       .want_patched = {"d0-0"}},
      {.label = "everything already patched (restart after the patch)",
       .setup =
           [](World& w) {
             for (int t = 0; t < 2; ++t) {
               w.D(0, t).container_images[Container(t)] = NewImage(t);
               w.D(0, t).annotations[kRevisionAnnotation] = "1";
             }
           },
       .want_patched = {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(1, 2);
    w.ToUpdating();
    c.setup(w);
    Plan p = w.Run();
    std::vector<std::string> patched;
    for (const auto& patch : p.patches) {
      patched.push_back(patch.name);
      EXPECT_EQ(patch.namespace_, kNs);
      EXPECT_EQ(patch.revision, "1");
      EXPECT_FALSE(patch.rollback);
      const int t = patch.name == "d0-0" ? 0 : 1;
      // Only the rollout's containers, with the images from spec.images.
      EXPECT_EQ(patch.images, (std::map<std::string, std::string>{{Container(t), NewImage(t)}}));
    }
    EXPECT_EQ(patched, c.want_patched);
    ASSERT_TRUE(p.status.has_value());
    EXPECT_EQ(p.status->environments[0].phase, EnvironmentPhase::kVerifying);
    EXPECT_EQ(p.status->phase, RolloutPhase::kProgressing);
    // Previous images are never overwritten by the new ones.
    EXPECT_EQ(p.status->environments[0].targets[0].previous_images.at(Container(0)), OldImage(0));
    ASSERT_TRUE(p.requeue_after.has_value());
  }
}

TEST(PlannerUpdate, PatchCarriesEveryContainerOfTheTarget) {
  World w(1, 2);
  w.Spec(0).targets[0].containers["sidecar"] = Logical(1);
  w.D(0, 0).container_images["sidecar"] = "registry.example.com/app/side:0.9";
  w.ToUpdating();
  EXPECT_EQ(w.Env(0).targets[0].previous_images,
            (std::map<std::string, std::string>{{Container(0), OldImage(0)},
                                                {"sidecar", "registry.example.com/app/side:0.9"}}));
  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  EXPECT_EQ(p.patches[0].name, "d0-0");
  EXPECT_EQ(p.patches[0].images, (std::map<std::string, std::string>{{Container(0), NewImage(0)},
                                                                     {"sidecar", NewImage(1)}}));
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
