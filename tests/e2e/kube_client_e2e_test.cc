// The Kubernetes API client against the real kube-apiserver of the local control plane
// (KUBECONFIG from the e2e fixture): TLS with the cluster's CA and admin client certificate,
// every REST verb, the errors the API server decides (AlreadyExists, Conflict, Invalid with
// causes, NotFound), and watches/informers seeing the Deployment controller's work.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "controller/common/clock.h"
#include "controller/kube/informer.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/rest_client.h"

namespace rollgate::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class KubeClientE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* kc = std::getenv("KUBECONFIG");  // NOLINT(concurrency-mt-unsafe)
    ASSERT_NE(kc, nullptr) << "KUBECONFIG must point at the e2e cluster";
    auto cfg = LoadKubeconfig({kc, ""});
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    auto c = RestClient::FromConfig(*cfg, clock_, {});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(c).value();
    static int counter = 0;
    ns_ = "e2e-client-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    Json nsobj = Json::parse(R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + ns_ +
                             R"("}})");
    auto created = client_->Create(resources::Namespaces(), "", nsobj);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    // Pods need the namespace's default service account (created by the controller-manager).
    for (int i = 0; i < 100; ++i) {
      if (client_->Get(ResourceType::Core("v1", "serviceaccounts"), ns_, "default").ok()) break;
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  void TearDown() override {
    if (client_) {
      DeleteOptions d;
      d.propagation_policy = "Background";
      (void)client_->Delete(resources::Namespaces(), "", ns_, d);
    }
  }

  Json DeploymentObj(const std::string& name, int replicas, const std::string& image) const {
    return Json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")" +
                       name + R"(","namespace":")" + ns_ + R"(","labels":{"app":")" + name +
                       R"("}},"spec":{"replicas":)" + std::to_string(replicas) +
                       R"(,"selector":{"matchLabels":{"app":")" + name +
                       R"("}},"template":{"metadata":{"labels":{"app":")" + name +
                       R"("}},"spec":{"containers":[{"name":"api","image":")" + image +
                       R"("}]}}}})");
  }

  static bool Available(const Json& d) {
    if (!d.has_field("status") || !d.at("status").is_object()) return false;
    const auto& s = d.at("status");
    const auto num = [&](const char* f) {
      return s.has_field(f) && s.at(f).is_integer() ? s.at(f).as_integer() : -1;
    };
    const int want = d.at("spec").at("replicas").as_integer();
    return num("observedGeneration") >= d.at("metadata").at("generation").as_integer() &&
           num("updatedReplicas") == want && num("availableReplicas") == want &&
           num("replicas") == want;
  }

  RealClock clock_;
  std::unique_ptr<RestClient> client_;
  std::string ns_;
};

TEST_F(KubeClientE2E, ListsNodesIncludingGpuNodes) {
  auto nodes = ListAll(*client_, resources::Nodes(), "", {});
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  EXPECT_GE(nodes->items.size(), 4u);
  ListOptions gpu;
  gpu.label_selector = "nvidia.com/gpu.present=true";
  gpu.limit = 1;  // paging through the real server's continue tokens
  auto gpus = ListAll(*client_, resources::Nodes(), "", gpu);
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_GE(gpus->items.size(), 2u);
  for (const auto& n : gpus->items) {
    EXPECT_EQ(n.at("status").at("allocatable").at("nvidia.com/gpu").as_string(), "8");
  }
  EXPECT_FALSE(gpus->resource_version.empty());
}

TEST_F(KubeClientE2E, DeploymentLifecycleAndServerDecidedErrors) {
  const auto rt = resources::Deployments();
  auto created = client_->Create(rt, ns_, DeploymentObj("api", 2, "registry.example.com/api:1.0"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();

  auto again = client_->Create(rt, ns_, DeploymentObj("api", 2, "registry.example.com/api:1.0"));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().ToString();

  // A stale resourceVersion is a Conflict decided by the server.
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

  // Invalid objects come back as 422 with field causes.
  Json bad = DeploymentObj("bad", -1, "x");
  auto invalid = client_->Create(rt, ns_, bad);
  ASSERT_EQ(invalid.status().code(), StatusCode::kInvalid) << invalid.status().ToString();
  ASSERT_FALSE(invalid.status().causes().empty());
  EXPECT_EQ(invalid.status().causes()[0].field, "spec.replicas");

  // Merge patch, JSON patch and server-side apply.
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

  ASSERT_TRUE(client_->Delete(rt, ns_, "api", {}).ok());
  // Deletion of a Deployment with finalizers may take a moment; NotFound must follow.
  Status last;
  for (int i = 0; i < 50; ++i) {
    last = client_->Get(rt, ns_, "api").status();
    if (last.code() == StatusCode::kNotFound) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(last.code(), StatusCode::kNotFound) << last.ToString();
  EXPECT_EQ(client_->Delete(rt, ns_, "api", {}).code(), StatusCode::kNotFound);
}

TEST_F(KubeClientE2E, InformerSeesDeploymentBecomeAvailableAfterImagePatch) {
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
    const auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      auto d = inf.Get(ns_ + "/web");
      if (d && Available(*d) &&
          d->at("spec").at("template").at("spec").at("containers").at(0).at("image").as_string() ==
              image) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  };
  EXPECT_TRUE(wait_available("registry.example.com/web:1"));
  ASSERT_TRUE(
      client_
          ->Patch(
              rt, ns_, "web", PatchType::kStrategicMerge,
              R"({"spec":{"template":{"spec":{"containers":[{"name":"api","image":"registry.example.com/web:2"}]}}}})",
              {})
          .ok());
  EXPECT_TRUE(wait_available("registry.example.com/web:2"))
      << "the real Deployment controller, scheduler and kwok roll the new image out";
  cancel.Cancel();
  t.join();
  EXPECT_GT(updates.load(), 2);
  EXPECT_EQ(inf.lists(), 1u) << "no re-list while the watch is healthy";
}

}  // namespace
}  // namespace rollgate::kube
