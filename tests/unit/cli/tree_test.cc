#include "controller/cli/tree.h"

#include <gtest/gtest.h>

#include "controller/api/codec.h"
#include "tests/unit/cli/golden.h"

namespace rollgate::cli {
namespace {

using testing::CliJson;
using testing::ExpectGolden;

api::Rollout Load(const std::string& name) {
  auto r = api::DecodeRollout(CliJson(name + ".json"));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : api::Rollout{};
}

std::string Render(const api::Rollout& r, const std::vector<api::DeploymentView>& ds, bool color,
                   const std::string& now = "2026-11-28T10:06:00Z") {
  TreeOptions o;
  o.now = *api::ParseTime(now);
  o.color = color;
  o.program = "kubectl rollgate";
  std::string out;
  for (const auto& l : RenderTree(r, ds, o)) out += l + "\n";
  return out;
}

std::vector<api::DeploymentView> ProdApi() {
  auto d = api::DecodeDeployment(CliJson("deployment-prod-api.json"));
  EXPECT_TRUE(d.ok());
  return {*d};
}

TEST(CliTreeTest, MidFlightGolden) {
  const api::Rollout r = Load("midflight");
  ExpectGolden("midflight.tree.txt", Render(r, ProdApi(), false));
  ExpectGolden("midflight.tree.tty.txt", Render(r, ProdApi(), true));
}

TEST(CliTreeTest, FailedGolden) {
  const api::Rollout r = Load("failed");
  ExpectGolden("failed.tree.txt", Render(r, {}, false, "2026-11-28T09:10:00Z"));
  ExpectGolden("failed.tree.tty.txt", Render(r, {}, true, "2026-11-28T09:10:00Z"));
}

TEST(CliTreeTest, AwaitingApprovalGolden) {
  const api::Rollout r = Load("approval");
  ExpectGolden("approval.tree.txt", Render(r, ProdApi(), false));
  ExpectGolden("approval.tree.tty.txt", Render(r, ProdApi(), true));
}

TEST(CliTreeTest, PlainOutputHasNoEscapesAndColourOutputDoes) {
  for (const char* name : {"midflight", "failed", "approval"}) {
    const api::Rollout r = Load(name);
    EXPECT_EQ(Render(r, {}, false).find('\x1b'), std::string::npos) << name;
    EXPECT_NE(Render(r, {}, true).find("\x1b["), std::string::npos) << name;
  }
}

TEST(CliTreeTest, TheClocksMoveWithNow) {
  api::Rollout r = Load("approval");
  r.status.phase = api::RolloutPhase::kProgressing;
  r.status.current_environment = "staging";
  r.status.environments[0].phase = api::EnvironmentPhase::kBaking;
  r.status.environments[0].finished_at.reset();
  TreeOptions o;
  o.now = *api::ParseTime("2026-11-28T10:01:20Z");
  EXPECT_EQ(WaitingFor(r, o), "the bake time of environment staging: 40s left");
  const std::string tree = Render(r, {}, false, "2026-11-28T10:01:20Z");
  EXPECT_NE(tree.find("bake: 40s left of 1m00s"), std::string::npos) << tree;
  EXPECT_NE(tree.find("Baking  1m20s"), std::string::npos) << tree;
}

TEST(CliTreeTest, WaitingForInWords) {
  TreeOptions o;
  o.now = *api::ParseTime("2026-11-28T10:06:00Z");
  o.program = "rollgate";
  EXPECT_EQ(WaitingFor(Load("approval"), o), "approval of environment prod: rollgate promote web");
  EXPECT_EQ(WaitingFor(Load("midflight"), o), "analysis of environment staging: 2/4 samples");
  EXPECT_EQ(WaitingFor(Load("failed"), o), "");
  api::Rollout fresh = Load("approval");
  fresh.status = {};
  EXPECT_EQ(WaitingFor(fresh, o), "the controller to pick the rollout up");
  fresh.spec.paused = true;
  EXPECT_EQ(WaitingFor(fresh, o), "the rollout to be resumed (spec.paused is true)");
}

TEST(CliTreeTest, HumanDurationsAndColourChoice) {
  using std::chrono::seconds;
  EXPECT_EQ(HumanDuration(seconds(-5)), "0s");
  EXPECT_EQ(HumanDuration(seconds(45)), "45s");
  EXPECT_EQ(HumanDuration(seconds(185)), "3m05s");
  EXPECT_EQ(HumanDuration(seconds(7380)), "2h03m");
  EXPECT_EQ(HumanDuration(seconds(273600)), "3d04h");
  EXPECT_TRUE(UseColor(true, nullptr));
  EXPECT_TRUE(UseColor(true, ""));
  EXPECT_FALSE(UseColor(true, "1"));
  EXPECT_FALSE(UseColor(false, nullptr));
}

}  // namespace
}  // namespace rollgate::cli
