// Tests of what worker validation injects into a GPU worker's pod template (ValidationContainers):
// rollgate-validate with the restricted securityContext and the configured resources, the worker's
// own check with the worker's securityContext and resources, nothing for CPU-only targets.
// Thread-safety: single-threaded tests.
#include "controller/validation/injection.h"

#include <gtest/gtest.h>

#include "controller/api/well_known.h"
#include "controller/kube/kube_client.h"

namespace rollgate::validation {
namespace {

api::TargetSpec GpuTarget(std::vector<std::string> command = {}) {
  api::TargetSpec t;
  t.deployment = "worker";
  t.containers["worker"] = "worker-gpu";
  t.worker_validation = api::WorkerValidationSpec{true, std::move(command)};
  return t;
}

api::DeploymentView GpuDeployment() {
  api::DeploymentView d;
  d.name = "worker";
  d.container_images["worker"] = "registry.example.com/worker-gpu:1";
  d.gpu_requests["worker"] = "2";
  d.gpu_container_settings["worker"] = {R"({"runAsNonRoot":true,"runAsUser":1000})",
                                        {{"cpu", "2"}, {"memory", "8Gi"}},
                                        {{"memory", "16Gi"}}};
  return d;
}

api::RolloutSpec Spec() {
  api::RolloutSpec s;
  s.images["worker-gpu"] = "registry.example.com/worker-gpu:2";
  return s;
}

InjectionOptions Options() {
  InjectionOptions o;
  o.validator_image = "registry.example.com/rollgate-validate:1";
  return o;
}

TEST(ValidationContainers, TheValidatorIsRestrictedAndHasTheConfiguredResources) {
  const auto inits = ValidationContainers(Spec().images, GpuTarget(), GpuDeployment(), Options());
  ASSERT_EQ(inits.size(), 1u);
  const InitContainer& v = inits[0];
  EXPECT_EQ(v.name, api::kValidatorContainer);
  EXPECT_EQ(v.image, "registry.example.com/rollgate-validate:1");
  EXPECT_EQ(v.gpu_resource, "nvidia.com/gpu");
  EXPECT_EQ(v.gpu_amount, "2");
  EXPECT_EQ(v.requests, (std::map<std::string, std::string>{{"cpu", "10m"}, {"memory", "64Mi"}}));
  EXPECT_EQ(v.limits, (std::map<std::string, std::string>{{"cpu", "1"}, {"memory", "1Gi"}}));
  const kube::Json sc = kube::Json::parse(v.security_context_json);
  EXPECT_FALSE(sc.at("allowPrivilegeEscalation").as_bool());
  EXPECT_TRUE(sc.at("runAsNonRoot").as_bool());
  EXPECT_EQ(sc.at("runAsUser").as_integer(), 65532);
  EXPECT_TRUE(sc.at("readOnlyRootFilesystem").as_bool());
  EXPECT_EQ(sc.at("capabilities").at("drop").at(0).as_string(), "ALL");
  EXPECT_EQ(sc.at("seccompProfile").at("type").as_string(), "RuntimeDefault");
}

TEST(ValidationContainers, ConfiguredResourcesReplaceTheDefaults) {
  InjectionOptions o = Options();
  o.validator_requests = {{"memory", "128Mi"}};
  o.validator_limits = {{"memory", "2Gi"}, {"ephemeral-storage", "1Gi"}};
  const auto inits = ValidationContainers(Spec().images, GpuTarget(), GpuDeployment(), o);
  ASSERT_EQ(inits.size(), 1u);
  EXPECT_EQ(inits[0].requests, o.validator_requests);
  EXPECT_EQ(inits[0].limits, o.validator_limits);
}

TEST(ValidationContainers, TheWorkersCheckRunsAsTheWorkerWithItsResources) {
  const auto inits = ValidationContainers(
      Spec().images, GpuTarget({"python", "-c", "import torch"}), GpuDeployment(), Options());
  ASSERT_EQ(inits.size(), 2u);
  const InitContainer& c = inits[1];
  EXPECT_EQ(c.name, api::kValidatorCommandContainer);
  EXPECT_EQ(c.image, "registry.example.com/worker-gpu:2");
  EXPECT_EQ(c.command, (std::vector<std::string>{"python", "-c", "import torch"}));
  EXPECT_EQ(c.security_context_json, R"({"runAsNonRoot":true,"runAsUser":1000})");
  EXPECT_EQ(c.requests, (std::map<std::string, std::string>{{"cpu", "2"}, {"memory", "8Gi"}}));
  EXPECT_EQ(c.limits, (std::map<std::string, std::string>{{"memory", "16Gi"}}));
  EXPECT_EQ(c.gpu_amount, "2");
}

TEST(ValidationContainers, CpuTargetsAndDisabledValidationGetNothing) {
  api::DeploymentView cpu = GpuDeployment();
  cpu.gpu_requests.clear();
  cpu.gpu_container_settings.clear();
  EXPECT_TRUE(ValidationContainers(Spec().images, GpuTarget(), cpu, Options()).empty());
  api::TargetSpec off = GpuTarget();
  off.worker_validation->cuda_required = false;
  EXPECT_TRUE(ValidationContainers(Spec().images, off, GpuDeployment(), Options()).empty());
  EXPECT_TRUE(ValidationContainers(Spec().images, GpuTarget(), GpuDeployment(), {}).empty())
      << "no validator image";
}

}  // namespace
}  // namespace rollgate::validation
