// The planner's registry pre-flight (spec.imagePolicy): when it asks for the lookups
// (Plan::resolve_images), what it records (status.resolvedImages), how pinned references reach
// the patches of every environment even when a tag moves (TagMoved), and each failure with
// nothing patched: ImageNotFound, ImageTooLarge, PlatformMissing, ImageManifestInvalid, and
// RegistryUnreachable / RegistryAuthFailed retried with backoff until the progress deadline.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

std::string Digest(char c) { return "sha256:" + std::string(64, c); }

// A lookup of every image of `w`'s spec that resolved to an index `digest` offering `platforms`
// (platform -> compressed size).
std::map<std::string, ImageLookup> Resolved(const World& w, char digest,
                                            const std::map<std::string, std::int64_t>& platforms = {
                                                {"linux/amd64", 1000}}) {
  std::map<std::string, ImageLookup> out;
  for (const auto& [logical, ref] : w.obs.rollout.spec.images) {
    ImageLookup l;
    l.image.name = logical;
    l.image.reference = ref;
    l.image.digest = Digest(digest);
    l.image.media_type = "application/vnd.oci.image.index.v1+json";
    char p = 'a';
    for (const auto& [platform, size] : platforms) {
      l.image.platforms.push_back({platform, Digest(p++), size});
      l.image.size = std::max(l.image.size, size);
    }
    out[logical] = l;
  }
  return out;
}

std::map<std::string, ImageLookup> Failed(const World& w, StatusCode code, const std::string& msg) {
  std::map<std::string, ImageLookup> out;
  for (const auto& [logical, ref] : w.obs.rollout.spec.images) {
    out[logical].status = Status(code, msg);
  }
  return out;
}

World WithPolicy(int envs = 2, api::ImagePolicySpec policy = {}) {
  World w(envs, 1);
  w.obs.rollout.spec.image_policy = std::move(policy);
  return w;
}

TEST(PlannerRegistry, WithoutAnImagePolicyTheRegistryIsNeverAsked) {
  World w(2, 1);
  Plan p = w.Step();
  EXPECT_FALSE(p.resolve_images);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating);
  EXPECT_TRUE(w.St().resolved_images.empty());
}

TEST(PlannerRegistry, ThePreFlightAsksForTheLookupsAndChangesNothingUntilTheyAreIn) {
  World w = WithPolicy();
  w.Step();  // the revision starts
  Plan p = w.Run();
  EXPECT_TRUE(p.resolve_images);
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(w, p, 0, {.env_phase = EnvironmentPhase::kPending});
}

TEST(PlannerRegistry, TheFirstEnvironmentRecordsTheDigestsAndEveryPatchIsPinned) {
  World w = WithPolicy();
  w.obs.images = Resolved(w, '1', {{"linux/amd64", 52'428'800}, {"linux/arm64", 1000}});
  Plan p = w.Step();
  ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating) << w.Env(0).message;
  EXPECT_TRUE(HasEvent(p, "ImagesResolved")) << Join(Reasons(p));
  ASSERT_EQ(w.St().resolved_images.size(), 1u);
  const api::ResolvedImage& r = w.St().resolved_images[0];
  EXPECT_EQ(r.name, Logical(0));
  EXPECT_EQ(r.reference, NewImage(0));
  EXPECT_EQ(r.digest, Digest('1'));
  EXPECT_EQ(r.size, 52'428'800);
  ASSERT_EQ(r.platforms.size(), 2u);
  EXPECT_EQ(r.platforms[1].platform, "linux/arm64");
  EXPECT_EQ(w.St().resolved_summary, Logical(0) + "@sha256:111111111111 50.0 MiB");

  Plan patch = w.StepApply();
  ASSERT_EQ(patch.patches.size(), 1u);
  EXPECT_EQ(patch.patches[0].images.at(Container(0)), NewImage(0) + "@" + Digest('1'));
  // Verifying sees the pinned image as this rollout's own (not ImagesChangedExternally).
  w.RollOut();
  w.obs.images.reset();
  w.StepApply();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kSucceeded) << w.Env(0).message;
}

TEST(PlannerRegistry, AMovedTagIsReportedAndPinnedEnvironmentsGetTheRecordedDigest) {
  World w = WithPolicy();
  w.obs.images = Resolved(w, '1');
  ASSERT_TRUE(w.CompleteCurrent());
  ASSERT_EQ(w.St().current_environment, EnvName(1));
  w.obs.images = Resolved(w, '2');  // the tag was pushed again
  Plan p = w.Step();
  ASSERT_EQ(w.Env(1).phase, EnvironmentPhase::kUpdating) << w.Env(1).message;
  ASSERT_TRUE(HasEvent(p, "TagMoved")) << Join(Reasons(p));
  for (const auto& e : p.events) {
    if (e.reason != "TagMoved") continue;
    EXPECT_EQ(e.type, "Warning");
    EXPECT_NE(e.message.find(Digest('2')), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("gets the recorded " + Digest('1')), std::string::npos) << e.message;
  }
  EXPECT_EQ(w.St().resolved_images.at(0).digest, Digest('1'));
  Plan patch = w.StepApply();
  ASSERT_EQ(patch.patches.size(), 1u);
  EXPECT_EQ(patch.patches[0].images.at(Container(0)), NewImage(0) + "@" + Digest('1'));
}

TEST(PlannerRegistry, WithoutPinningPatchesKeepTheTagAndAMovedTagIsRecorded) {
  api::ImagePolicySpec policy;
  policy.pin_digests = false;
  World w = WithPolicy(2, policy);
  w.obs.images = Resolved(w, '1');
  w.Step();
  Plan first = w.StepApply();
  ASSERT_EQ(first.patches.size(), 1u);
  EXPECT_EQ(first.patches[0].images.at(Container(0)), NewImage(0));
  w.RollOut();
  ASSERT_TRUE(w.CompleteCurrent());
  w.obs.images = Resolved(w, '2');
  Plan p = w.Step();
  EXPECT_TRUE(HasEvent(p, "TagMoved"));
  EXPECT_EQ(w.St().resolved_images.at(0).digest, Digest('2'));
  Plan patch = w.StepApply();
  ASSERT_EQ(patch.patches.size(), 1u);
  EXPECT_EQ(patch.patches[0].images.at(Container(0)), NewImage(0));
}

TEST(PlannerRegistry, AReferenceWithADigestIsPatchedAsWritten) {
  World w = WithPolicy();
  const std::string by_digest = "registry.example.com/app/img0@" + Digest('1');
  w.obs.rollout.spec.images[Logical(0)] = by_digest;
  w.obs.images = Resolved(w, '1');
  w.Step();
  Plan patch = w.StepApply();
  ASSERT_EQ(patch.patches.size(), 1u);
  EXPECT_EQ(patch.patches[0].images.at(Container(0)), by_digest);
}

TEST(PlannerRegistry, AnImageTheRegistryDoesNotHaveFailsWithNothingPatched) {
  World w = WithPolicy();
  w.obs.images = Failed(w, StatusCode::kNotFound,
                        "image registry.example.com/app/img0:2.0.0 at registry.example.com (HTTP "
                        "404: MANIFEST_UNKNOWN: manifest unknown)");
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "ImageNotFound",
              .message_has = "image img0 (\"" + NewImage(0) + "\"): "});
  EXPECT_NE(w.Env(0).message.find("MANIFEST_UNKNOWN"), std::string::npos);
  EXPECT_TRUE(w.Env(0).targets.empty()) << "nothing recorded: nothing was changed";
}

TEST(PlannerRegistry, AMalformedAnswerFailsImageManifestInvalid) {
  World w = WithPolicy();
  w.obs.images = Failed(w, StatusCode::kMalformed, "the manifest does not match the digest");
  w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kFailed);
  EXPECT_EQ(w.Env(0).reason, "ImageManifestInvalid");
}

TEST(PlannerRegistry, AnImageOverItsMaxSizeFailsNamingTheSizesAndPlatform) {
  api::ImagePolicySpec policy;
  policy.max_size[Logical(0)] = "900Mi";
  World w = WithPolicy(2, policy);
  w.obs.images = Resolved(w, '1', {{"linux/amd64", std::int64_t{1} << 30}});
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "ImageTooLarge",
              .message_has = "is 1.0 GiB compressed for linux/amd64, over its "
                             "spec.imagePolicy.maxSize 900Mi"});

  World fits = WithPolicy(2, policy);
  fits.obs.images = Resolved(fits, '1', {{"linux/amd64", 900LL << 20}});
  fits.Step();
  EXPECT_EQ(fits.Env(0).phase, EnvironmentPhase::kUpdating) << fits.Env(0).message;
}

TEST(PlannerRegistry, TheSizeThatCountsIsThePlatformTheDeploymentRunsOn) {
  api::ImagePolicySpec policy;
  policy.max_size[Logical(0)] = "1Mi";
  World w = WithPolicy(2, policy);
  w.D(0, 0).node_archs = {"arm64"};
  // The amd64 image is too large, but the Deployment runs on arm64 nodes only.
  w.obs.images = Resolved(w, '1', {{"linux/amd64", 5 << 20}, {"linux/arm64/v8", 1000}});
  w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating) << w.Env(0).message;

  // Not known where it runs: every platform counts.
  World any = WithPolicy(2, policy);
  any.obs.images = Resolved(any, '1', {{"linux/amd64", 5 << 20}, {"linux/arm64/v8", 1000}});
  any.Step();
  EXPECT_EQ(any.Env(0).reason, "ImageTooLarge") << any.Env(0).message;
}

TEST(PlannerRegistry, AnArchitectureTheDeploymentRunsOnThatTheImageLacksFailsPlatformMissing) {
  World w = WithPolicy();
  w.D(0, 0).node_archs = {"amd64", "s390x"};
  w.obs.images = Resolved(w, '1', {{"linux/amd64", 1000}, {"linux/arm64", 1000}});
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "PlatformMissing",
              .message_has = "offers linux/amd64, linux/arm64, not linux/s390x, which deployment "
                             "app/d0-0 runs on (its pod template's kubernetes.io/arch "
                             "constraint)"});
}

TEST(PlannerRegistry, DeclaredPlatformsApplyWhereTheDeploymentNamesNoArchitecture) {
  api::ImagePolicySpec policy;
  policy.platforms = {"linux/arm64"};
  World w = WithPolicy(2, policy);
  w.obs.images = Resolved(w, '1', {{"linux/amd64", 1000}});
  w.Step();
  EXPECT_EQ(w.Env(0).reason, "PlatformMissing");
  EXPECT_NE(w.Env(0).message.find("(spec.imagePolicy.platforms)"), std::string::npos)
      << w.Env(0).message;

  // A variant in the index matches a platform named without one (containerd's matching).
  World v = WithPolicy(2, policy);
  v.obs.images = Resolved(v, '1', {{"linux/arm64/v8", 1000}});
  v.Step();
  EXPECT_EQ(v.Env(0).phase, EnvironmentPhase::kUpdating) << v.Env(0).message;
}

TEST(PlannerRegistry, AnUnreachableRegistryIsRetriedWithBackoffThenFailsAtTheDeadline) {
  World w = WithPolicy();
  w.obs.rollout.spec.progress_deadline_seconds = 60;
  w.obs.images = Failed(w, StatusCode::kTransport, "image x: connection refused");
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kPending,
              .message_has = "waiting for the registry (RegistryUnreachable): image img0",
              .requeue = seconds(2)});
  ASSERT_TRUE(w.Env(0).started_at.has_value());
  EXPECT_EQ(*w.Env(0).started_at, kT0) << "the deadline counts from the first failed attempt";

  w.obs.now = kT0 + seconds(40);
  p = w.Step();
  EXPECT_EQ(p.requeue_after, seconds(20)) << "backs off as the wait grows";
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kPending);

  w.obs.now = kT0 + seconds(60);
  p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "RegistryUnreachable",
              .message_has = "connection refused (retried for 60s, the progress deadline)"});
}

TEST(PlannerRegistry, ARegistryThatComesBackBeforeTheDeadlineLetsTheEnvironmentStart) {
  World w = WithPolicy();
  w.obs.images = Failed(w, StatusCode::kUnavailable, "HTTP 503");
  w.Step();
  ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kPending);
  w.obs.now = kT0 + seconds(20);
  w.obs.images = Resolved(w, '1');
  w.Step();
  ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating) << w.Env(0).message;
  EXPECT_EQ(*w.Env(0).started_at, kT0 + seconds(20)) << "the rollout's own deadline starts now";
}

TEST(PlannerRegistry, RefusedCredentialsAreRetriedThenFailRegistryAuthFailed) {
  World w = WithPolicy();
  w.obs.rollout.spec.progress_deadline_seconds = 15;
  w.obs.images = Failed(w, StatusCode::kUnauthorized, "image x: access denied (HTTP 401)");
  w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kPending);
  EXPECT_NE(w.Env(0).message.find("RegistryAuthFailed"), std::string::npos);
  w.obs.now = kT0 + seconds(15);
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kFailed);
  EXPECT_EQ(w.Env(0).reason, "RegistryAuthFailed");
}

TEST(PlannerRegistry, ANewRevisionResolvesAfresh) {
  World w = WithPolicy();
  w.obs.images = Resolved(w, '1');
  w.Step();
  ASSERT_FALSE(w.St().resolved_images.empty());
  w.obs.rollout.spec.images[Logical(0)] = Image(0, "3.0.0");
  w.obs.spec_hash = "hash-2";
  w.obs.images.reset();
  Plan p = w.Step();
  EXPECT_EQ(w.St().revision, 2);
  EXPECT_TRUE(w.St().resolved_images.empty());
  EXPECT_TRUE(w.St().resolved_summary.empty());
}

TEST(PlannerRegistry, AnImagePolicyTheControllerCannotActOnIsAnInvalidSpec) {
  auto invalid = [](api::ImagePolicySpec policy) {
    World w = WithPolicy(2, std::move(policy));
    w.Step();
    EXPECT_EQ(w.St().phase, RolloutPhase::kFailed);
    return Cond(w.St(), "Ready") == nullptr ? std::string() : w.St().message;
  };
  api::ImagePolicySpec unknown;
  unknown.max_size["nope"] = "1Gi";
  EXPECT_EQ(invalid(unknown), "spec.imagePolicy.maxSize.nope: names no image of spec.images");
  api::ImagePolicySpec bad_size;
  bad_size.max_size[Logical(0)] = "a lot";
  EXPECT_NE(invalid(bad_size).find("spec.imagePolicy.maxSize.img0: "), std::string::npos);
  api::ImagePolicySpec bad_platform;
  bad_platform.platforms = {"amd64"};
  EXPECT_NE(invalid(bad_platform).find("spec.imagePolicy.platforms: "), std::string::npos);
}

TEST(PlannerRegistry, PinnedReferenceAppendsTheDigestOnlyToATag) {
  EXPECT_EQ(PinnedReference("r.io/a:1", Digest('1')), "r.io/a:1@" + Digest('1'));
  EXPECT_EQ(PinnedReference("r.io/a@" + Digest('2'), Digest('1')), "r.io/a@" + Digest('2'));
  EXPECT_EQ(PinnedReference("r.io/a:1", ""), "r.io/a:1");
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
