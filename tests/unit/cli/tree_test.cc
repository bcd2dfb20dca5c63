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

TEST(CliTreeTest, DisplayWidthSkipsEscapesAndCountsCodePoints) {
  EXPECT_EQ(DisplayWidth(""), 0);
  EXPECT_EQ(DisplayWidth("abc"), 3);
  EXPECT_EQ(DisplayWidth("\x1b[1mName:\x1b[0m web"), 9);
  EXPECT_EQ(DisplayWidth("├── prod  ‖ AwaitingApproval"), 28);
  EXPECT_EQ(DisplayWidth("│   └── ✔"), 9);
  EXPECT_EQ(DisplayWidth("\x1b]8;;http://x\x07link\x1b]8;;\x07"), 4);  // OSC: no columns
}

TEST(CliTreeTest, CutToWidthAscii) {
  EXPECT_EQ(CutToWidth("abcdefghij", 5), "abcd…");
  EXPECT_EQ(CutToWidth("abcdefghij", 10), "abcdefghij");  // exactly the width: as it is
  EXPECT_EQ(CutToWidth("abcdefghij", 11), "abcdefghij");
  EXPECT_EQ(CutToWidth("abcdefghij", 9), "abcdefgh…");
  EXPECT_EQ(CutToWidth("", 3), "");
  // Unknown width: never cut.
  EXPECT_EQ(CutToWidth("abcdefghij", 0), "abcdefghij");
  EXPECT_EQ(CutToWidth("abcdefghij", -1), "abcdefghij");
}

TEST(CliTreeTest, CutToWidthOne) {
  EXPECT_EQ(CutToWidth("ab", 1), "…");
  EXPECT_EQ(CutToWidth("a", 1), "a");
  EXPECT_EQ(CutToWidth("├── x", 1), "…");
  EXPECT_EQ(CutToWidth("\x1b[31mab\x1b[0m", 1), "\x1b[31m…\x1b[0m");
  EXPECT_EQ(DisplayWidth(CutToWidth("\x1b[31mab\x1b[0m", 1)), 1);
}

TEST(CliTreeTest, CutToWidthKeepsColoursWholeAndResetsThem) {
  const std::string line = "\x1b[1mPhase:\x1b[0m       \x1b[35m‖ AwaitingApproval\x1b[0m";
  EXPECT_EQ(DisplayWidth(line), 31);
  EXPECT_EQ(CutToWidth(line, 31), line);
  // Cut inside the colour: the ellipsis, then a reset.
  EXPECT_EQ(CutToWidth(line, 20), "\x1b[1mPhase:\x1b[0m       \x1b[35m‖ Awai…\x1b[0m");
  // Cut where no colour is on: no reset.
  EXPECT_EQ(CutToWidth(line, 10), "\x1b[1mPhase:\x1b[0m   …");
  // Cut inside the bold: reset.
  EXPECT_EQ(CutToWidth(line, 4), "\x1b[1mPha…\x1b[0m");
  for (int w = 1; w <= 32; ++w) {
    const std::string cut = CutToWidth(line, w);
    EXPECT_EQ(DisplayWidth(cut), std::min(w, 31)) << w;
    // Never an escape sequence cut in two: every ESC [ ends with its final letter.
    for (std::size_t at = cut.find("\x1b["); at != std::string::npos;
         at = cut.find("\x1b[", at + 1)) {
      EXPECT_NE(cut.find('m', at), std::string::npos) << w << ": " << cut;
    }
  }
}

TEST(CliTreeTest, CutToWidthCountsGlyphsAsOneColumn) {
  const std::string line = "│   ├── Deployment shop-prod/api  updated 2/3  ✓";
  EXPECT_EQ(CutToWidth(line, 8), "│   ├──…");
  EXPECT_EQ(CutToWidth(line, 5), "│   …");
  EXPECT_EQ(CutToWidth("‖‖‖‖", 3), "‖‖…");
  EXPECT_EQ(CutToWidth("‖‖‖‖", 4), "‖‖‖‖");
  // Never a code point cut in two: the result is whole UTF-8 (no lead byte without its tail).
  for (int w = 1; w < DisplayWidth(line); ++w) {
    const std::string cut = CutToWidth(line, w);
    EXPECT_EQ(DisplayWidth(cut), w) << w;
    EXPECT_EQ(cut.substr(cut.size() - 3), "…") << w;
    const std::string body = cut.substr(0, cut.size() - 3);
    EXPECT_EQ(line.compare(0, body.size(), body), 0) << w;
    EXPECT_TRUE(body.size() == line.size() ||
                (static_cast<unsigned char>(line[body.size()]) & 0xc0) != 0x80)
        << w;
  }
}

}  // namespace
}  // namespace rollgate::cli
