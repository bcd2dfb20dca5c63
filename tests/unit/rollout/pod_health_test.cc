// PodTroubles on pods shaped as a real kubelet (v1.36, containerd 1.6) reports them: pulls that
// fail (ErrImagePull, ImagePullBackOff, InvalidImageName) for containers and init containers,
// crash loops with their last termination, and the pods it must ignore (another revision's, a
// pod being deleted, a healthy one).
#include "controller/rollout/pod_health.h"

#include <gtest/gtest.h>

#include <string>

#include "controller/api/codec.h"

namespace rollgate::rollout {
namespace {

using kube::Json;

constexpr char kNew[] = "127.0.0.1:5000/rollgate-test/testapp:2.0-missing";
constexpr char kOld[] = "127.0.0.1:5000/rollgate-test/testapp:1.0";
constexpr char kValidator[] = "127.0.0.1:5000/rollgate/rollgate-validate:0.1.0";

// A pod of Deployment app/web running `image` in container "web", with `init` (may be "") as
// its init container's image, and the given containerStatuses / initContainerStatuses.
Json Pod(const std::string& image, const std::string& container_statuses,
         const std::string& init = "", const std::string& init_statuses = "[]",
         const std::string& extra_meta = "") {
  std::string init_spec = init.empty()
                              ? std::string("[]")
                              : R"([{"name":"rollgate-validate","image":")" + init + R"("}])";
  return Json::parse(R"({"metadata":{"name":"web-7f9c-abcde","namespace":"app",)"
                     R"("creationTimestamp":"2026-12-02T08:00:00Z")" +
                     extra_meta + R"(},"spec":{"nodeName":"rollgate-real-0","initContainers":)" +
                     init_spec + R"(,"containers":[{"name":"web","image":")" + image +
                     R"("},{"name":"sidecar","image":"registry.example.com/sidecar:1"}]},)"
                     R"("status":{"phase":"Pending","initContainerStatuses":)" +
                     init_statuses + R"(,"containerStatuses":)" + container_statuses + "}}");
}

// What the rollout wants of the pods: container web on the new image.
std::map<std::string, std::string> Want() { return {{"web", kNew}}; }

std::string Waiting(const std::string& name, const std::string& image, const std::string& reason,
                    const std::string& message, int restarts = 0,
                    const std::string& last_state = "{}") {
  return R"({"name":")" + name + R"(","image":")" + image + R"(","ready":false,"restartCount":)" +
         std::to_string(restarts) + R"(,"started":false,"state":{"waiting":{"reason":")" + reason +
         R"(","message":")" + message + R"("}},"lastState":)" + last_state + "}";
}

TEST(PodTroubles, ErrImagePullOfTheNewImage) {
  const std::string msg = R"(failed to pull and unpack image \")" + std::string(kNew) +
                          R"(\": failed to resolve reference \")" + kNew + R"(\": )" + kNew +
                          ": not found";
  Json pod = Pod(kNew, "[" + Waiting("web", kNew, "ErrImagePull", msg) + "]");
  auto troubles = PodTroubles(pod, "app/web", Want());
  ASSERT_EQ(troubles.size(), 1U);
  const PodTrouble& t = troubles[0];
  EXPECT_EQ(t.kind, PodTrouble::Kind::kImagePull);
  EXPECT_EQ(t.deployment, "app/web");
  EXPECT_EQ(t.pod, "web-7f9c-abcde");
  EXPECT_EQ(t.node, "rollgate-real-0");
  EXPECT_EQ(t.container, "web");
  EXPECT_EQ(t.image, kNew);
  EXPECT_EQ(t.reason, "ErrImagePull");
  EXPECT_NE(t.message.find(": not found"), std::string::npos) << t.message;
  EXPECT_FALSE(t.permanent);
  EXPECT_EQ(t.since, api::ParseTime("2026-12-02T08:00:00Z").value());
}

TEST(PodTroubles, ImagePullBackOffOfTheValidatorInitContainer) {
  Json pod = Pod(kNew, "[]", kValidator,
                 "[" +
                     Waiting("rollgate-validate", kValidator, "ImagePullBackOff",
                             "Back-off pulling image \\\"" + std::string(kValidator) + "\\\"") +
                     "]");
  auto troubles = PodTroubles(pod, "app/web", Want());
  ASSERT_EQ(troubles.size(), 1U);
  EXPECT_EQ(troubles[0].kind, PodTrouble::Kind::kImagePull);
  EXPECT_EQ(troubles[0].container, "rollgate-validate");
  EXPECT_EQ(troubles[0].image, kValidator);
  EXPECT_EQ(troubles[0].reason, "ImagePullBackOff");
}

TEST(PodTroubles, InvalidImageNameAndNeverPullAreBeyondRetry) {
  for (const char* reason : {"InvalidImageName", "ErrImageNeverPull"}) {
    SCOPED_TRACE(reason);
    auto troubles = PodTroubles(
        Pod(kNew, "[" + Waiting("web", kNew, reason, "couldn't parse image name") + "]"), "app/web",
        Want());
    ASSERT_EQ(troubles.size(), 1U);
    EXPECT_TRUE(troubles[0].permanent);
  }
  auto retried = PodTroubles(
      Pod(kNew, "[" + Waiting("web", kNew, "ImagePullBackOff", "Back-off pulling image") + "]"),
      "app/web", Want());
  ASSERT_EQ(retried.size(), 1U);
  EXPECT_FALSE(retried[0].permanent);
}

TEST(PodTroubles, CrashLoopCarriesTheLastTermination) {
  const std::string last =
      R"({"terminated":{"exitCode":3,"reason":"Error","message":"testapp: crashing on purpose",)"
      R"("startedAt":"2026-12-02T08:00:40Z","finishedAt":"2026-12-02T08:00:40Z"}})";
  Json pod = Pod(kNew, "[" +
                           Waiting("web", kNew, "CrashLoopBackOff",
                                   "back-off 20s restarting failed container=web", 2, last) +
                           "]");
  auto troubles = PodTroubles(pod, "app/web", Want());
  ASSERT_EQ(troubles.size(), 1U);
  const PodTrouble& t = troubles[0];
  EXPECT_EQ(t.kind, PodTrouble::Kind::kCrash);
  EXPECT_EQ(t.restarts, 2);
  EXPECT_EQ(t.reason, "CrashLoopBackOff");
  EXPECT_EQ(t.message, "last exit 3 (Error): testapp: crashing on purpose");
}

TEST(PodTroubles, ARunningContainerThatRestartedIsReportedWithItsCount) {
  Json pod = Pod(kNew, R"([{"name":"web","restartCount":1,"state":{"running":{"startedAt":"x"}},)"
                       R"("lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled"}}}])");
  auto troubles = PodTroubles(pod, "app/web", Want());
  ASSERT_EQ(troubles.size(), 1U);
  EXPECT_EQ(troubles[0].restarts, 1);
  EXPECT_EQ(troubles[0].reason, "Running");
  EXPECT_EQ(troubles[0].message, "last exit 137 (OOMKilled)");
}

TEST(PodTroubles, IgnoresOtherRevisionsDeletedAndHealthyPods) {
  const std::string pulling = "[" + Waiting("web", kOld, "ImagePullBackOff", "Back-off") + "]";
  EXPECT_TRUE(PodTroubles(Pod(kOld, pulling), "app/web", Want()).empty()) << "old ReplicaSet";
  const std::string failing = "[" + Waiting("web", kNew, "ErrImagePull", "not found") + "]";
  EXPECT_TRUE(
      PodTroubles(Pod(kNew, failing, "", "[]", R"(,"deletionTimestamp":"2026-12-02T08:01:00Z")"),
                  "app/web", Want())
          .empty())
      << "being deleted";
  EXPECT_TRUE(PodTroubles(Pod(kNew, R"([{"name":"web","restartCount":0,"state":{"running":{}}}])"),
                          "app/web", Want())
                  .empty())
      << "healthy";
  EXPECT_TRUE(PodTroubles(Pod(kNew, "[]"), "app/web", Want()).empty()) << "no status yet";
  EXPECT_TRUE(PodTroubles(Json::parse(R"({"kind":"Pod"})"), "app/web", Want()).empty());
  EXPECT_TRUE(PodTroubles(Json::parse("[1,2]"), "app/web", Want()).empty());
}

TEST(PodTroubles, LongMessagesAreCutOnACharacterBoundary) {
  std::string msg(598, 'x');
  msg += "\xc3\xa9\xc3\xa9\xc3\xa9";  // "ééé": the cut at 600 falls inside the second one
  Json pod = Pod(kNew, "[" + Waiting("web", kNew, "ErrImagePull", msg) + "]");
  auto troubles = PodTroubles(pod, "app/web", Want());
  ASSERT_EQ(troubles.size(), 1U);
  EXPECT_EQ(troubles[0].message, std::string(598, 'x') + "\xc3\xa9...");
}

TEST(PodTroubles, AMissingCreationTimeLeavesSinceUnset) {
  Json pod = Pod(kNew, "[" + Waiting("web", kNew, "ErrImagePull", "not found") + "]");
  pod["metadata"].erase("creationTimestamp");
  auto troubles = PodTroubles(pod, "app/web", Want());
  ASSERT_EQ(troubles.size(), 1U);
  EXPECT_EQ(troubles[0].since, api::WallTime{});
}

TEST(SelectorString, JoinsMatchLabelsInOrder) {
  EXPECT_EQ(SelectorString({}), "");
  EXPECT_EQ(SelectorString({{"app", "web"}}), "app=web");
  EXPECT_EQ(SelectorString({{"tier", "gpu"}, {"app.kubernetes.io/name", "web"}}),
            "app.kubernetes.io/name=web,tier=gpu");
}

}  // namespace
}  // namespace rollgate::rollout
