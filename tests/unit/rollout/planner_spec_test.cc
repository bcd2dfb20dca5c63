// The planner's acceptance of a spec. The spec hash: a recorded hash decides whether the observed
// spec is the current revision; a short hash recorded by Rollgate 0.1 (8 bytes) continues the same
// revision after an upgrade and is replaced by the full SHA-256; any other difference starts a
// new revision. Image references: one without a tag or digest is InvalidSpec, nothing changes.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "controller/api/codec.h"
#include "controller/rollout/planner.h"

namespace rollgate::rollout {
namespace {

constexpr std::string_view kFullHash =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

// A rollout in revision 1, environment dev Verifying, whose status recorded `recorded`.
Observed InRevisionOne(const std::string& recorded) {
  Observed obs;
  api::Rollout& r = obs.rollout;
  r.namespace_ = "app";
  r.name = "r";
  r.generation = 1;
  r.spec.images["app"] = "registry.example.com/app:2";
  api::EnvironmentSpec env;
  env.name = "dev";
  r.spec.environments.push_back(env);
  r.status.revision = 1;
  r.status.phase = api::RolloutPhase::kProgressing;
  r.status.current_environment = "dev";
  r.status.spec_hash = recorded;
  api::EnvironmentStatus es;
  es.name = "dev";
  es.phase = api::EnvironmentPhase::kVerifying;
  es.started_at = std::chrono::system_clock::from_time_t(1'800'000'000);
  r.status.environments.push_back(es);
  obs.spec_hash = std::string(kFullHash);
  obs.now = std::chrono::system_clock::from_time_t(1'800'000'010);
  return obs;
}

bool StartedARevision(const Plan& p) {
  for (const auto& e : p.events) {
    if (e.reason == "NewRevision" || e.reason == "RolloutStarted") return true;
  }
  return false;
}

TEST(PlannerSpec, ALegacyPrefixContinuesTheRevisionAndRecordsTheFullHash) {
  const Plan p =
      PlanRollout(InRevisionOne(std::string(kFullHash).substr(0, api::kLegacySpecHashLength)), {});
  EXPECT_FALSE(StartedARevision(p));
  ASSERT_TRUE(p.status.has_value());
  EXPECT_EQ(p.status->revision, 1);
  EXPECT_EQ(p.status->spec_hash, std::string(kFullHash));
}

TEST(PlannerSpec, AnyOtherHashStartsTheNextRevision) {
  for (const std::string& recorded : {std::string(16, 'b'), std::string(kFullHash).substr(0, 32),
                                      std::string(64, 'b'), std::string()}) {
    const Plan p = PlanRollout(InRevisionOne(recorded), {});
    EXPECT_TRUE(StartedARevision(p)) << recorded;
    ASSERT_TRUE(p.status.has_value());
    EXPECT_EQ(p.status->revision, 2) << recorded;
    EXPECT_EQ(p.status->spec_hash, std::string(kFullHash));
  }
}

TEST(PlannerSpec, TheSameFullHashIsTheSameRevision) {
  const Plan p = PlanRollout(InRevisionOne(std::string(kFullHash)), {});
  EXPECT_FALSE(StartedARevision(p));
  if (p.status) {
    EXPECT_EQ(p.status->revision, 1);
  }
}

TEST(PlannerSpec, AnUntaggedImageIsInvalidSpecAndNothingChanges) {
  for (const std::string& ref : {std::string("registry.example.com/app"), std::string("nginx")}) {
    Observed obs = InRevisionOne(std::string(kFullHash));
    obs.rollout.status = {};  // a new rollout
    obs.rollout.spec.images["app"] = ref;
    const Plan p = PlanRollout(obs, {});
    EXPECT_TRUE(p.patches.empty()) << ref;
    ASSERT_TRUE(p.status.has_value()) << ref;
    EXPECT_EQ(p.status->phase, api::RolloutPhase::kFailed) << ref;
    EXPECT_EQ(p.status->revision, 0) << ref;
    EXPECT_NE(p.status->message.find("spec.images.app: image \"" + ref +
                                     "\" has neither a tag nor a digest"),
              std::string::npos)
        << p.status->message;
    ASSERT_FALSE(p.status->conditions.empty());
    EXPECT_EQ(p.status->conditions[0].reason, "InvalidSpec");
    ASSERT_EQ(p.events.size(), 1u);
    EXPECT_EQ(p.events[0].reason, "InvalidSpec");
  }
}

TEST(PlannerSpec, ATagOrADigestIsEnough) {
  for (const std::string& ref : {std::string("registry.example.com/app:2"),
                                 "registry.example.com/app@sha256:" + std::string(64, '0')}) {
    Observed obs = InRevisionOne(std::string(kFullHash));
    obs.rollout.status = {};
    obs.rollout.spec.images["app"] = ref;
    const Plan p = PlanRollout(obs, {});
    ASSERT_TRUE(p.status.has_value()) << ref;
    EXPECT_EQ(p.status->phase, api::RolloutPhase::kProgressing) << ref << ": " << p.status->message;
  }
}

}  // namespace
}  // namespace rollgate::rollout
