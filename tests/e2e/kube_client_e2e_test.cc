// The Kubernetes API client against the real kube-apiserver of the local control plane
// (KUBECONFIG from the e2e fixture): TLS with the cluster's CA and admin client certificate,
// every REST verb, the errors the API server decides (AlreadyExists, Conflict, Invalid with
// causes, NotFound), watches/informers seeing the Deployment controller's work, and the Events
// AsyncEventRecorder creates and aggregates (the API server accepts its merge patch of count).
// Thread-safety: single-threaded tests (the informer runs on a thread of its own).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "controller/kube/event_recorder.h"
#include "controller/kube/informer.h"
#include "controller/kube/rest_client.h"
#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/rollout_checks.h"
#include "tests/e2e/support/scenario.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::kube {
namespace {

using e2e::Cluster;
using std::chrono::milliseconds;
using std::chrono::seconds;

class KubeClientE2E : public ::testing::Test {
 protected:
  // Given: a client on the shared cluster and a namespace of this test's own.
  void SetUp() override {
    ASSERT_EQ(e2e::RequireEnv({"KUBECONFIG"}), "") << "KUBECONFIG must point at the e2e cluster";
    Cluster& cluster = Cluster::Get();
    ASSERT_EQ(cluster.Connect(), "");
    client_ = &cluster.client();
    static int counter = 0;
    ns_ = "e2e-client-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    ASSERT_EQ(cluster.CreateNamespace(ns_), "");
    // Pods need the namespace's default service account (created by the controller-manager).
    (void)cluster.WaitForServiceAccount(ns_, e2e::Deadline(seconds(10)));
  }
  void TearDown() override {
    if (!ns_.empty()) Cluster::Get().DeleteNamespace(ns_);
  }

  Json DeploymentObj(const std::string& name, int replicas, const std::string& image) const {
    return e2e::DeploymentBuilder(name)
        .Namespace(ns_)
        .Replicas(replicas)
        .Container("api", image)
        .Build();
  }

  RestClient* client_ = nullptr;
  std::string ns_;
};

TEST_F(KubeClientE2E, ListsNodesIncludingGpuNodes) {
  // Given: the fixture's cluster (4 nodes, 2 of them with 8 GPUs).
  // When: every node is listed, then the GPU nodes one page at a time.
  auto nodes = ListAll(*client_, resources::Nodes(), "", {});
  ListOptions gpu;
  gpu.label_selector = "nvidia.com/gpu.present=true";
  gpu.limit = 1;  // paging through the real server's continue tokens
  auto gpus = ListAll(*client_, resources::Nodes(), "", gpu);

  // Then
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  EXPECT_GE(nodes->items.size(), 4u);
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_GE(gpus->items.size(), 2u);
  for (const auto& n : gpus->items) {
    EXPECT_EQ(n.at("status").at("allocatable").at("nvidia.com/gpu").as_string(), "8");
  }
  EXPECT_FALSE(gpus->resource_version.empty());
}

TEST_F(KubeClientE2E, DeploymentLifecycleAndServerDecidedErrors) {
  // Given: a Deployment.
  const auto rt = resources::Deployments();
  auto created = client_->Create(rt, ns_, DeploymentObj("api", 2, "registry.example.com/api:1.0"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();

  // When it is created again / Then: AlreadyExists.
  auto again = client_->Create(rt, ns_, DeploymentObj("api", 2, "registry.example.com/api:1.0"));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().ToString();

  // When it is updated from a stale resourceVersion / Then: a Conflict decided by the server.
  Json stale = *created;
  auto patched = client_->Patch(
      rt, ns_, "api", PatchType::kStrategicMerge,
      R"({"spec":{"template":{"spec":{"containers":[{"name":"api","image":"registry.example.com/api:2.0"}]}}}})",
      {});
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ(
      patched->at("spec").at("template").at("spec").at("containers").at(0).at("image").as_string(),
      "registry.example.com/api:2.0");
  stale["spec"]["replicas"] = Json::number(3);
  auto conflict = client_->Update(rt, ns_, stale);
  EXPECT_EQ(conflict.status().code(), StatusCode::kConflict) << conflict.status().ToString();

  // When an invalid object is created / Then: 422 with field causes.
  Json bad = DeploymentObj("bad", -1, "x");
  auto invalid = client_->Create(rt, ns_, bad);
  ASSERT_EQ(invalid.status().code(), StatusCode::kInvalid) << invalid.status().ToString();
  ASSERT_FALSE(invalid.status().causes().empty());
  EXPECT_EQ(invalid.status().causes()[0].field, "spec.replicas");

  // When: merge patch, JSON patch and server-side apply / Then: each applied.
  ASSERT_TRUE(client_
                  ->Patch(rt, ns_, "api", PatchType::kMerge,
                          R"({"metadata":{"annotations":{"rollgate.io/revision":"2"}}})", {})
                  .ok());
  auto jp = client_->Patch(rt, ns_, "api", PatchType::kJsonPatch,
                           R"([{"op":"replace","path":"/spec/replicas","value":1}])", {});
  ASSERT_TRUE(jp.ok()) << jp.status().ToString();
  EXPECT_EQ(jp->at("spec").at("replicas").as_integer(), 1);
  PatchOptions apply;
  apply.field_manager = "rollgate-e2e";
  apply.force = true;
  auto ssa = client_->Patch(
      rt, ns_, "api", PatchType::kApply,
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api","labels":{"owner":"rollgate"}}})",
      apply);
  ASSERT_TRUE(ssa.ok()) << ssa.status().ToString();
  EXPECT_EQ(ssa->at("metadata").at("labels").at("owner").as_string(), "rollgate");
  EXPECT_EQ(ssa->at("metadata").at("annotations").at("rollgate.io/revision").as_string(), "2");

  // When: it is deleted / Then: NotFound follows (deletion of a Deployment with finalizers may
  // take a moment), and deleting it again is NotFound.
  ASSERT_TRUE(client_->Delete(rt, ns_, "api", {}).ok());
  Status last;
  (void)e2e::Eventually(
      [&] {
        last = client_->Get(rt, ns_, "api").status();
        return last.code() == StatusCode::kNotFound;
      },
      seconds(5), milliseconds(100));
  EXPECT_EQ(last.code(), StatusCode::kNotFound) << last.ToString();
  EXPECT_EQ(client_->Delete(rt, ns_, "api", {}).code(), StatusCode::kNotFound);
}

TEST_F(KubeClientE2E, InformerSeesDeploymentBecomeAvailableAfterImagePatch) {
  // Given: a Deployment of 3 replicas and a synced informer on the namespace's Deployments.
  const auto rt = resources::Deployments();
  ASSERT_TRUE(client_->Create(rt, ns_, DeploymentObj("web", 3, "registry.example.com/web:1")).ok());
  InformerOptions io;
  io.type = rt;
  io.namespace_ = ns_;
  Informer inf(*client_, io);
  std::atomic<int> updates{0};
  inf.AddHandlers({nullptr, [&](const ObjectPtr&, const ObjectPtr&) { updates++; }, nullptr});
  CancelToken cancel;
  std::thread t([&] { inf.Run(cancel); });
  ASSERT_TRUE(inf.WaitForSync(cancel, std::chrono::seconds(20)));
  auto wait_available = [&](const std::string& image) {
    return e2e::Eventually(
        [&] {
          auto d = inf.Get(ns_ + "/web");
          return d && e2e::Available(*d) &&
                 d->at("spec")
                         .at("template")
                         .at("spec")
                         .at("containers")
                         .at(0)
                         .at("image")
                         .as_string() == image;
        },
        seconds(60), milliseconds(50));
  };
  EXPECT_TRUE(wait_available("registry.example.com/web:1"));

  // When: its image is patched.
  ASSERT_TRUE(
      client_
          ->Patch(
              rt, ns_, "web", PatchType::kStrategicMerge,
              R"({"spec":{"template":{"spec":{"containers":[{"name":"api","image":"registry.example.com/web:2"}]}}}})",
              {})
          .ok());

  // Then: the informer sees the new image rolled out, through its watch alone.
  EXPECT_TRUE(wait_available("registry.example.com/web:2"))
      << "the real Deployment controller, scheduler and kwok roll the new image out";
  cancel.Cancel();
  t.join();
  EXPECT_GT(updates.load(), 2);
  EXPECT_EQ(inf.lists(), 1u) << "no re-list while the watch is healthy";
}

// The recorder's Events as the API server stores them: distinct Events are separate objects; the
// same Event recorded again within the window is one object whose count (a merge patch of count
// and lastTimestamp) the API server accepts.
TEST_F(KubeClientE2E, AsyncEventRecorderCreatesAndAggregatesRealEvents) {
  const ObjectReference ref{"v1", "ConfigMap", ns_, "subject", "", ""};
  {
    const RealClock clock;
    AsyncEventRecorder rec(*client_, clock, "rollgate-e2e", "host");
    rec.Record(ref, "Normal", "Started", "one");
    rec.Record(ref, "Warning", "Retried", "the same text");
    ASSERT_TRUE(rec.Flush(milliseconds(10000)));
    rec.Record(ref, "Warning", "Retried", "the same text");
    rec.Record(ref, "Warning", "Retried", "the same text");
    ASSERT_TRUE(rec.Flush(milliseconds(10000)));
    EXPECT_EQ(rec.created(), 2u);
    EXPECT_EQ(rec.dropped(), 0u);
  }
  auto events = ListAll(*client_, ResourceType::Core("v1", "events"), ns_, {});
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  std::map<std::string, std::int64_t> counts;
  for (const auto& ev : events->items) {
    counts[ev.at("reason").as_string()] += ev.at("count").as_number().to_int64();
  }
  EXPECT_EQ(counts, (std::map<std::string, std::int64_t>{{"Retried", 3}, {"Started", 1}}));
  EXPECT_EQ(events->items.size(), 2u) << "three Retried records are one Event";
}

}  // namespace
}  // namespace rollgate::kube
