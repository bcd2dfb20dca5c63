// Worker validation in a locked-down namespace, end to end on the real control plane: the target
// namespace enforces the restricted Pod Security Standard and has a ResourceQuota on CPU, memory
// and GPUs. The pod template Rollgate patches (the injected rollgate-validate init container and
// the worker's own check) must still be admitted by the API server's PodSecurity and quota
// admission, so the new pods are created and the rollout succeeds. Without a restricted
// securityContext and requests/limits on the injected containers, the ReplicaSet's pod creation
// is refused and the rollout can only fail.
// Needs: KUBECONFIG, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD, CONTROL_PLANE_BIN (kubectl).
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "controller/kube/rest_client.h"
#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/controller.h"
#include "tests/e2e/support/log_reader.h"
#include "tests/e2e/support/rollout_checks.h"
#include "tests/e2e/support/scenario.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {
namespace {

namespace resources = kube::resources;
using std::chrono::seconds;

constexpr const char* kOld = "registry.example.com/app/worker-gpu:1.9.0";
constexpr const char* kNew = "registry.example.com/app/worker-gpu:2.0.0";
constexpr const char* kValidator = "registry.example.com/rollgate/rollgate-validate:0.1.0";

// A GPU worker that the restricted standard and the quota admit on its own.
Json RestrictedGpuWorker(const std::string& ns) {
  return Json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"worker","namespace":")" +
                     ns + R"("},
    "spec":{"replicas":2,"selector":{"matchLabels":{"app":"worker"}},
      "template":{"metadata":{"labels":{"app":"worker"}},
        "spec":{"terminationGracePeriodSeconds":0,
          "securityContext":{"runAsNonRoot":true,"runAsUser":1000,
                             "seccompProfile":{"type":"RuntimeDefault"}},
          "containers":[{"name":"worker","image":")" +
                     kOld + R"(",
            "securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
            "resources":{"requests":{"cpu":"100m","memory":"128Mi","nvidia.com/gpu":"1"},
                         "limits":{"cpu":"1","memory":"1Gi","nvidia.com/gpu":"1"}}}]}}}})");
}

Json Quota(const std::string& ns) {
  return Json::parse(R"({"apiVersion":"v1","kind":"ResourceQuota",
    "metadata":{"name":"team","namespace":")" +
                     ns + R"("},
    "spec":{"hard":{"requests.cpu":"8","requests.memory":"16Gi","limits.cpu":"16",
                    "limits.memory":"32Gi","requests.nvidia.com/gpu":"8"}}})");
}

Json Rollout(const std::string& ns) {
  return Json::parse(R"({"apiVersion":"rollgate.io/v1alpha1","kind":"ContainerRollout",
    "metadata":{"name":"app","namespace":")" +
                     ns + R"("},
    "spec":{"images":{"worker-gpu":")" +
                     kNew + R"("},
      "progressDeadlineSeconds":90,
      "environments":[{"name":"canary","targets":[{"deployment":"worker",
        "containers":{"worker":"worker-gpu"},
        "workerValidation":{"cuda":"Required","command":["python","-c","import torch"]}}]}]}})");
}

class RestrictedE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing =
        RequireEnv({"KUBECONFIG", "ROLLGATE_CONTROLLER_BIN", "ROLLGATE_CRD", "CONTROL_PLANE_BIN"});
    ASSERT_EQ(missing, "");
    Cluster& c = Cluster::Get();
    ASSERT_EQ(c.Connect(), "");
    ASSERT_EQ(c.ApplyCrd(), "");
    ns_ = UniquePrefix("rg-restricted");
    log_ = MakeTempDir("restricted") + "/controller.log";
  }
  void TearDown() override {
    if (controller_) controller_->Stop(seconds(5));
    Cluster::Get().DeleteNamespaces();
  }

  std::string ns_;
  std::string log_;
  std::unique_ptr<ControllerProcess> controller_;
};

TEST_F(RestrictedE2E, InjectedValidationIsAdmittedUnderRestrictedPodSecurityAndAQuota) {
  // Given: a namespace that enforces `restricted` and has a quota, with a compliant GPU worker.
  Cluster& c = Cluster::Get();
  ASSERT_EQ(c.CreateNamespace(ns_, {{"pod-security.kubernetes.io/enforce", "restricted"},
                                    {"pod-security.kubernetes.io/enforce-version", "latest"}}),
            "");
  ASSERT_EQ(c.WaitForServiceAccount(ns_, Deadline(seconds(60))), "");
  const auto quotas = kube::ResourceType::Core("v1", "resourcequotas");
  ASSERT_TRUE(c.client().Create(quotas, ns_, Quota(ns_)).ok());
  auto created = c.client().Create(resources::Deployments(), ns_, RestrictedGpuWorker(ns_));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  Workload worker{ns_, "worker", {{"worker", kOld}}, "", 0};
  ASSERT_TRUE(WaitUntil("the worker available before the rollout", seconds(120), [&] {
    Json d = GetDeployment(worker);
    return Int(d, "status.availableReplicas", 0) == 2;
  }));

  // When: a rollout with CUDA worker validation (and the worker's own check) updates it.
  controller_ = std::make_unique<ControllerProcess>("restricted", log_);
  ASSERT_EQ(
      controller_->Start({"--namespace=" + ns_, "--validator-image=" + std::string(kValidator)},
                         Endpoint::kOff, Endpoint::kOff),
      "");
  ASSERT_TRUE(c.client().Create(resources::ContainerRollouts(), ns_, Rollout(ns_)).ok());
  Scenario s = RolloutNamed(ns_, "app", log_);

  // Then: the new pods, injected containers included, are admitted and the rollout succeeds.
  auto r = WaitPhase(s, "Succeeded", seconds(150));
  ASSERT_TRUE(r);
  Json d = GetDeployment(worker);
  const Json& inits = d.at("spec").at("template").at("spec").at("initContainers");
  ASSERT_EQ(inits.size(), 2u) << d.serialize();
  for (const auto& ic : inits.as_array()) {
    EXPECT_TRUE(ic.at("securityContext").has_field("allowPrivilegeEscalation")) << ic.serialize();
    EXPECT_TRUE(ic.at("resources").at("limits").has_field("memory")) << ic.serialize();
  }
  auto events = c.client().List(resources::Events(), ns_, {});
  ASSERT_TRUE(events.ok());
  for (const auto& ev : events->items) {
    EXPECT_NE(Str(ev, "reason"), "FailedCreate") << Str(ev, "message");
  }
}

}  // namespace
}  // namespace rollgate::e2e
