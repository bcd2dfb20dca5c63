// What `rollgate history` and `rollgate diff` print (controller/cli/history.h), from decoded
// rollouts, Events and Deployment views, against golden files in tests/testdata/cli/
// (ROLLGATE_UPDATE_GOLDEN=1 rewrites them).
// Thread-safety: single-threaded tests.
#include "controller/cli/history.h"

#include <gtest/gtest.h>

#include "controller/api/codec.h"
#include "tests/unit/cli/golden.h"

namespace rollgate::cli {
namespace {

using testing::CliJson;
using testing::ExpectGolden;

constexpr char kPinned[] =
    "registry.example/"
    "api:2.0@sha256:1111111111111111111111111111111111111111111111111111111111111111";

api::Rollout Load(const std::string& name) {
  auto r = api::DecodeRollout(CliJson(name + ".json"));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : api::Rollout{};
}

api::WallTime Now() { return *api::ParseTime("2026-11-28T10:06:00Z"); }

std::vector<web::json::value> Events() {
  std::vector<web::json::value> out;
  const web::json::value list = CliJson("history-events.json");
  for (const auto& e : list.at("items").as_array()) out.push_back(e);
  return out;
}

api::DeploymentView View(const std::string& ns, const std::string& name,
                         std::map<std::string, std::string> images) {
  api::DeploymentView d;
  d.namespace_ = ns;
  d.name = name;
  d.container_images = std::move(images);
  return d;
}

TEST(CliHistoryTest, HistoryGolden) {
  const api::Rollout r = Load("history");
  ExpectGolden("history.txt", HistoryTable(r, Now()) + "\n" + EventsTable(Events(), r.uid, Now()));
  ExpectGolden("history.out.json", FormatHistory(r, OutputFormat::kJson));
  ExpectGolden("history.out.yaml", FormatHistory(r, OutputFormat::kYaml));
}

TEST(CliHistoryTest, TheCurrentRevisionIsMarkedAndRunsUntilNow) {
  const api::Rollout r = Load("history");
  const std::string table = HistoryTable(r, Now());
  EXPECT_NE(table.find("3 (current)   Progressing   2026-11-28T10:00:00Z   6m00s"),
            std::string::npos)
      << table;
  EXPECT_EQ(table.find("2 (current)"), std::string::npos) << table;
  // Newest last.
  EXPECT_LT(table.find("\n1 "), table.find("\n2 "));
  EXPECT_LT(table.find("\n2 "), table.find("\n3 "));
}

TEST(CliHistoryTest, AStatusWithoutHistoryShowsItsCurrentRevision) {
  const api::Rollout r = Load("midflight");  // written before status.history existed
  ASSERT_TRUE(r.status.history.empty());
  const auto records = HistoryOf(r);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].revision, 2);
  EXPECT_EQ(records[0].images, r.spec.images);
  EXPECT_EQ(records[0].phase, api::RolloutPhase::kProgressing);
  EXPECT_FALSE(records[0].started_at.has_value());
  ExpectGolden("history-legacy.txt", HistoryTable(r, Now()));
  // A rollout never reconciled has no revision to show.
  api::Rollout fresh = r;
  fresh.status = api::RolloutStatus{};
  EXPECT_TRUE(HistoryOf(fresh).empty());
  EXPECT_EQ(HistoryTable(fresh, Now()),
            "REVISION   PHASE   STARTED   DURATION   IMAGES   REASON\n");
  EXPECT_EQ(FormatHistory(fresh, OutputFormat::kJson), "[]\n");
}

TEST(CliHistoryTest, EventsOfAnotherRolloutOfTheSameNameAreLeftOut) {
  const std::string table = EventsTable(Events(), "u-1", Now());
  EXPECT_EQ(table.find("an earlier rollout named web"), std::string::npos) << table;
  EXPECT_NE(table.find("no data from prometheus"), std::string::npos) << "one line" << table;
  EXPECT_NE(table.find("30s (x3)"), std::string::npos) << table;
  // Oldest first, eventTime when there is no lastTimestamp.
  EXPECT_LT(table.find("NewRevision"), table.find("EnvironmentSucceeded"));
  EXPECT_LT(table.find("EnvironmentSucceeded"), table.find("SmokeCheckPassed"));
  EXPECT_LT(table.find("SmokeCheckPassed"), table.find("AnalysisInconclusive"));
  EXPECT_EQ(EventsTable({}, "u-1", Now()), "Events:  <none>\n");
}

TEST(CliDiffTest, DiffGolden) {
  const api::Rollout r = Load("midflight");
  const std::vector<api::DeploymentView> running = {
      View("shop", "api", {{"api", kPinned}, {"sidecar", "registry.example/proxy:1"}}),
      View("shop-staging", "api", {{"api", "registry.example/api:1.9"}}),
      View("shop-staging", "worker", {{"gpu-worker", "registry.example/worker:2.0"}}),
  };
  const auto rows = DiffImages(r, running);
  ExpectGolden("diff.txt", DiffTable(rows));
  ExpectGolden("diff.out.json", FormatDiff(rows, OutputFormat::kJson));
  ExpectGolden("diff.out.yaml", FormatDiff(rows, OutputFormat::kYaml));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].state, ImageState::kSame);
  EXPECT_EQ(rows[1].state, ImageState::kDiffers);
  EXPECT_EQ(rows[2].state, ImageState::kMissing);
  EXPECT_EQ(rows[2].missing, "container");
  EXPECT_EQ(rows[3].state, ImageState::kMissing);
  EXPECT_EQ(rows[3].missing, "deployment");
}

TEST(CliDiffTest, TheSpecSideIsPinnedExactlyWhenThePlannerPins) {
  api::Rollout r = Load("midflight");
  const std::vector<api::DeploymentView> running = {
      View("shop-prod", "api", {{"api", "registry.example/api:2.0"}})};
  // Pinned (imagePolicy.pinDigests and a record of the reference): the tag alone differs.
  auto rows = DiffImages(r, running);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[3].environment, "prod");
  EXPECT_EQ(rows[3].spec, kPinned);
  EXPECT_EQ(rows[3].state, ImageState::kDiffers);
  // The worker has no record: as spec.images names it.
  EXPECT_EQ(rows[2].spec, "registry.example/worker:2.0");
  // Not pinned: the reference as written.
  r.spec.image_policy->pin_digests = false;
  rows = DiffImages(r, running);
  EXPECT_EQ(rows[3].spec, "registry.example/api:2.0");
  EXPECT_EQ(rows[3].state, ImageState::kSame);
  // A record of another reference (spec.images changed since) does not pin.
  r.spec.image_policy->pin_digests = true;
  r.spec.images["api"] = "registry.example/api:2.1";
  rows = DiffImages(r, running);
  EXPECT_EQ(rows[3].spec, "registry.example/api:2.1");
}

TEST(CliDiffTest, AnUnreadableDeploymentIsNamedSo) {
  const api::Rollout r = Load("midflight");
  const auto rows = DiffImages(r, {}, {{"shop-prod/api", "Forbidden: no"}});
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[3].missing, "unreadable");
  EXPECT_EQ(rows[0].missing, "deployment");
  const std::string table = DiffTable(rows);
  EXPECT_NE(table.find("<unreadable>"), std::string::npos) << table;
  EXPECT_NE(table.find("<no deployment>"), std::string::npos) << table;
}

}  // namespace
}  // namespace rollgate::cli
