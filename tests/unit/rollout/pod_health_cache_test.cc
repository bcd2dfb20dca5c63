// PodHealthCache: which pods it keeps (those of the Deployments some rollout watches, told by
// their ReplicaSet owner), what it keeps of them (enough for PodTroubles to say the same), and the
// watch / prime / release protocol the reconciler follows.
#include "controller/rollout/pod_health_cache.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "controller/rollout/pod_health.h"
#include "tests/fakes/fake_pods.h"

namespace rollgate::rollout {
namespace {

using kube::Json;

// A pod of ReplicaSet "<deployment>-<hash>" in `ns`, as the API server returns it (with the
// fields a cache must not keep), its container "web" waiting on a failing pull or restarted.
Json RsPod(const std::string& ns, const std::string& deployment, const std::string& name,
           const std::string& hash = "6d4f9", int restarts = 0) {
  const std::string rs = deployment + "-" + hash;
  return Json::parse(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name + R"(","namespace":")" + ns +
      R"(","uid":"u-1","resourceVersion":"17","creationTimestamp":"2026-12-03T08:00:00Z",)"
      R"("labels":{"app":"web","team":"payments","pod-template-hash":")" +
      hash + R"("},"annotations":{"big":")" + std::string(2000, 'x') +
      R"("},"managedFields":[{"manager":"kube-controller-manager"}],)"
      R"("ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":")" +
      rs +
      R"(","uid":"rs-1","controller":true,"blockOwnerDeletion":true}]},)"
      R"("spec":{"nodeName":"n1","volumes":[{"name":"v"}],"containers":[{"name":"web",)"
      R"("image":"registry.example.com/web:2","env":[{"name":"A","value":"b"}],)"
      R"("resources":{"requests":{"cpu":"1"}}}],"initContainers":[{"name":"init",)"
      R"("image":"registry.example.com/init:1"}]},)"
      R"("status":{"phase":"Pending","conditions":[{"type":"Ready","status":"False"}],)"
      R"("containerStatuses":[{"name":"web","image":"registry.example.com/web:2",)"
      R"("imageID":"","ready":false,"started":false,"restartCount":)" +
      std::to_string(restarts) +
      R"(,"state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image"}},)"
      R"("lastState":{"terminated":{"exitCode":3,"reason":"Error","message":"boom",)"
      R"("startedAt":"2026-12-03T08:00:01Z","finishedAt":"2026-12-03T08:00:02Z"}}}],)"
      R"("initContainerStatuses":[{"name":"init","restartCount":0,"state":{"running":)"
      R"({"startedAt":"2026-12-03T08:00:01Z"}}}]}})");
}

struct CacheHarness {
  testing::FakePods pods;
  PodHealthCache cache{pods, [this](const std::string& p) { (void)pods.Prune(p); }};
  CacheHarness() {
    pods.keep = [this](const Json& p) { return cache.Keeps(p); };
  }
};

TEST(PodDeploymentTest, IsTheReplicaSetOwnersNameLessItsHash) {
  EXPECT_EQ(PodDeployment(RsPod("app", "web", "web-6d4f9-abcde")), "app/web");
  EXPECT_EQ(PodDeployment(RsPod("app", "web-api", "web-api-6d4f9-abcde")), "app/web-api");

  Json other_hash = RsPod("app", "web", "web-6d4f9-abcde");
  other_hash["metadata"]["labels"]["pod-template-hash"] = Json::string("77aa1");
  EXPECT_EQ(PodDeployment(other_hash), "") << "a ReplicaSet not named after the pods' hash";

  Json sts = RsPod("app", "web", "web-0");
  sts["metadata"]["ownerReferences"][0]["kind"] = Json::string("StatefulSet");
  EXPECT_EQ(PodDeployment(sts), "");

  Json not_controller = RsPod("app", "web", "web-6d4f9-abcde");
  not_controller["metadata"]["ownerReferences"][0]["controller"] = Json::boolean(false);
  EXPECT_EQ(PodDeployment(not_controller), "") << "only the controlling owner counts";

  Json bare = RsPod("app", "web", "web-6d4f9-abcde");
  bare["metadata"].erase("ownerReferences");
  EXPECT_EQ(PodDeployment(bare), "");
  EXPECT_EQ(PodDeployment(Json::parse(R"({"metadata":{"name":"x"}})")), "");
}

// The trimmed pod says the same to PodTroubles and PodDeployment as the full one, and keeps
// nothing else: not the tenant's annotations, labels, env, volumes or managedFields.
TEST(TrimHealthPodTest, KeepsWhatPodTroublesReadsAndNothingElse) {
  const std::map<std::string, std::string> want = {{"web", "registry.example.com/web:2"}};
  for (const int restarts : {0, 4}) {
    const Json full = RsPod("app", "web", "web-6d4f9-abcde", "6d4f9", restarts);
    const Json trimmed = TrimHealthPod(Json(full));
    const auto a = PodTroubles(full, "app/web", want);
    const auto b = PodTroubles(trimmed, "app/web", want);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].kind, b[i].kind);
      EXPECT_EQ(a[i].pod, b[i].pod);
      EXPECT_EQ(a[i].node, b[i].node);
      EXPECT_EQ(a[i].container, b[i].container);
      EXPECT_EQ(a[i].image, b[i].image);
      EXPECT_EQ(a[i].reason, b[i].reason);
      EXPECT_EQ(a[i].message, b[i].message);
      EXPECT_EQ(a[i].restarts, b[i].restarts);
      EXPECT_EQ(a[i].since, b[i].since);
    }
    EXPECT_EQ(PodDeployment(trimmed), "app/web");
  }
  // A running init container that restarted: still a crash trouble after the trim.
  Json crashing = RsPod("app", "web", "web-6d4f9-abcde");
  crashing["status"]["initContainerStatuses"][0]["restartCount"] = Json::number(2);
  const auto init = PodTroubles(TrimHealthPod(Json(crashing)), "app/web",
                                {{"web", "registry.example.com/web:2"}});
  ASSERT_EQ(init.size(), 2u);
  EXPECT_EQ(init[0].container, "init");
  EXPECT_EQ(init[0].reason, "Running");

  const Json trimmed = TrimHealthPod(RsPod("app", "web", "web-6d4f9-abcde"));
  const std::string text = trimmed.serialize();
  for (const char* gone : {"payments", "xxxx", "managedFields", "env", "volumes", "uid",
                           "conditions", "startedAt", "imageID", "resources"}) {
    EXPECT_EQ(text.find(gone), std::string::npos) << gone << " kept in " << text;
  }
  EXPECT_LT(text.size(), 800u) << text;
}

// A healthy pod's changes reconcile nothing; a trouble appearing, changing or going does.
TEST(TroubleMayHaveChangedTest, OnlyWhatPodTroublesSaysCounts) {
  Json healthy = RsPod("app", "web", "web-6d4f9-abcde");
  healthy["status"]["containerStatuses"][0]["state"] =
      Json::parse(R"({"running":{"startedAt":"2026-12-03T08:00:05Z"}})");
  healthy["status"]["containerStatuses"][0].erase("lastState");
  Json created = healthy;
  created["status"] = Json::parse(R"({"phase":"Pending"})");
  EXPECT_FALSE(TroubleMayHaveChanged(nullptr, created)) << "a new pod without statuses";
  EXPECT_FALSE(TroubleMayHaveChanged(&created, healthy)) << "started";
  Json ready = healthy;
  ready["status"]["conditions"][0]["status"] = Json::string("True");
  ready["metadata"]["resourceVersion"] = Json::string("18");
  EXPECT_FALSE(TroubleMayHaveChanged(&healthy, ready)) << "became ready";

  const Json pulling = RsPod("app", "web", "web-6d4f9-abcde");
  EXPECT_TRUE(TroubleMayHaveChanged(&created, pulling)) << "a pull started failing";
  EXPECT_TRUE(TroubleMayHaveChanged(nullptr, pulling));
  Json err = pulling;
  err["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] =
      Json::string("ErrImagePull");
  EXPECT_TRUE(TroubleMayHaveChanged(&pulling, err)) << "another reason";
  Json message = pulling;
  message["status"]["containerStatuses"][0]["state"]["waiting"]["message"] =
      Json::string("Back-off pulling image again");
  EXPECT_FALSE(TroubleMayHaveChanged(&pulling, message)) << "the same trouble";
  EXPECT_TRUE(TroubleMayHaveChanged(&pulling, healthy)) << "the pull went through";

  Json crashed = RsPod("app", "web", "web-6d4f9-abcde", "6d4f9", 2);
  crashed["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] =
      Json::string("CrashLoopBackOff");
  Json again = crashed;
  again["status"]["containerStatuses"][0]["restartCount"] = Json::number(3);
  EXPECT_TRUE(TroubleMayHaveChanged(&crashed, again)) << "one more restart";
  Json deleting = again;
  deleting["metadata"]["deletionTimestamp"] = Json::string("2026-12-03T08:05:00Z");
  EXPECT_TRUE(TroubleMayHaveChanged(&again, deleting)) << "a troubled pod goes away";
}

// Nothing is kept before a rollout watches; its first Watch is unprimed (list, offer, Primed),
// the next for the same stage is primed; another stage or set of Deployments lists again.
TEST(PodHealthCacheTest, WatchListsOncePerStageThenReadsTheCache) {
  CacheHarness h;
  const Json pod = RsPod("app", "web", "web-6d4f9-abcde");
  EXPECT_FALSE(h.cache.Keeps(pod)) << "no rollout watches app/web";
  h.pods.resource_version = "";
  auto lease = h.cache.Watch("app/r", "2/dev", {"app/web"});
  EXPECT_FALSE(lease.primed);
  EXPECT_EQ(lease.mark, 7u);
  EXPECT_EQ(lease.resource_version, "0") << "a cache that knows no version yet lists at any";
  EXPECT_TRUE(h.cache.Keeps(pod));
  EXPECT_EQ(h.cache.WatchersOf(pod), (std::vector<std::string>{"app/r"}));
  EXPECT_FALSE(h.cache.Watch("app/r", "2/dev", {"app/web"}).primed) << "not primed before Primed";

  h.cache.Offer(pod, lease.mark);
  h.cache.Offer(RsPod("app", "web-api", "web-api-6d4f9-zzzzz"), lease.mark);
  h.cache.Primed("app/r", "2/dev");
  h.pods.resource_version = "912";
  EXPECT_TRUE(h.cache.Watch("app/r", "2/dev", {"app/web"}).primed);
  EXPECT_EQ(h.pods.objects.size(), 1u) << "web-api's pod is nobody's: refused";
  ASSERT_EQ(h.cache.PodsOf("app/web").size(), 1u);
  EXPECT_TRUE(h.cache.PodsOf("app/web-api").empty());

  // web-api's pod in the cache (another rollout's) is not web's, though its key shares the prefix.
  auto other = h.cache.Watch("app/other", "1/dev", {"app/web-api"});
  h.cache.Offer(RsPod("app", "web-api", "web-api-6d4f9-zzzzz"), other.mark);
  EXPECT_EQ(h.pods.ListPrefix("app/web-").size(), 2u);
  EXPECT_EQ(h.cache.PodsOf("app/web").size(), 1u);

  const auto next = h.cache.Watch("app/r", "2/staging", {"app/web"});
  EXPECT_FALSE(next.primed) << "another environment lists again";
  EXPECT_EQ(next.resource_version, "912") << "not older than what the cache has seen";
  h.cache.Primed("app/r", "2/staging");
  EXPECT_FALSE(h.cache.Watch("app/r", "2/staging", {"app/web", "app/db"}).primed)
      << "another set of targets lists again";
}

// Release drops the pods of the Deployments nobody watches any more, and only those; a stage
// that moves to other Deployments drops the ones it left.
TEST(PodHealthCacheTest, ReleaseDropsThePodsNobodyWatches) {
  CacheHarness h;
  auto a = h.cache.Watch("app/a", "1/dev", {"app/web"});
  auto b = h.cache.Watch("app/b", "3/dev", {"app/web", "app/db"});
  h.cache.Offer(RsPod("app", "web", "web-6d4f9-aaaaa"), a.mark);
  h.cache.Offer(RsPod("app", "db", "db-6d4f9-bbbbb"), b.mark);
  EXPECT_EQ(h.cache.watched_deployments(), 2u);

  h.cache.Release("app/a");
  EXPECT_TRUE(h.pods.prunes.empty()) << "app/b still watches app/web";
  EXPECT_EQ(h.pods.objects.size(), 2u);

  (void)h.cache.Watch("app/b", "3/staging", {"app/db"});
  EXPECT_EQ(h.pods.prunes, (std::vector<std::string>{"app/web-"}));
  EXPECT_EQ(h.pods.objects.size(), 1u);
  EXPECT_EQ(h.pods.Get("app/web-6d4f9-aaaaa"), nullptr);

  h.cache.Release("app/b");
  EXPECT_TRUE(h.pods.objects.empty());
  EXPECT_EQ(h.cache.watched_deployments(), 0u);
  h.cache.Release("app/b");  // again: nothing to do
  EXPECT_EQ(h.pods.prunes.size(), 2u);
  EXPECT_TRUE(h.cache.WatchersOf(RsPod("app", "db", "db-6d4f9-bbbbb")).empty());
}

}  // namespace
}  // namespace rollgate::rollout
