// The planner's worker startup validation gate: how validation observations gate an environment,
// and the injection of the validation init containers into GPU workers (and their removal on
// rollback), with the same never-twice guarantees as the images.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

// ---------------------------------------------------------------------------------------------
// Worker startup validation

struct ValidationCase {
  std::string label;
  ValidationObservation v;
  WallTime now;
  Want want;
  bool recorded;  // the observation is copied into the environment's status
};

TEST(PlannerValidation, GatesTheEnvironment) {
  const std::vector<ValidationCase> cases = {
      {.label = "not required",
       .v = {.required = false, .message = ""},
       .now = kT0,
       .want = {.env_phase = EnvironmentPhase::kSucceeded,
                .rollout_phase = RolloutPhase::kSucceeded,
                .reason = "Succeeded"},
       .recorded = false},
      {.label = "a GPU pod failed",
       .v = {.required = true,
             .gpu_pods = 2,
             .passed = 1,
             .failed = 1,
             .message = "pod w-1: cuInit failed: CUDA_ERROR_NO_DEVICE"},
       .now = kT0,
       .want = {.env_phase = EnvironmentPhase::kRollingBack,
                .rollout_phase = RolloutPhase::kRollingBack,
                .reason = "WorkerValidationFailed",
                .message_has = "CUDA_ERROR_NO_DEVICE",
                .events = {"WorkerValidationFailed"}},
       .recorded = true},
      {.label = "pending",
       .v = {.required = true, .gpu_pods = 2, .passed = 1, .message = "1 of 2 GPU pods validated"},
       .now = kT0,
       .want = {.env_phase = EnvironmentPhase::kVerifying,
                .rollout_phase = RolloutPhase::kProgressing,
                .message_has = "waiting for worker validation: 1 of 2",
                .requeue = seconds(30)},
       .recorded = true},
      {.label = "no GPU pod seen yet",
       .v = {.required = true, .message = "no new GPU pod yet"},
       .now = kT0,
       .want = {.env_phase = EnvironmentPhase::kVerifying,
                .rollout_phase = RolloutPhase::kProgressing,
                .message_has = "waiting for worker validation",
                .requeue = seconds(30)},
       .recorded = true},
      {.label = "pending past the progress deadline",
       .v = {.required = true, .gpu_pods = 2, .message = "0 of 2 GPU pods validated"},
       .now = kT0 + seconds(600),
       .want = {.env_phase = EnvironmentPhase::kRollingBack,
                .rollout_phase = RolloutPhase::kRollingBack,
                .reason = "WorkerValidationTimeout"},
       .recorded = true},
      {.label = "every GPU pod passed",
       .v = {.required = true, .gpu_pods = 2, .passed = 2, .message = "2 of 2 GPU pods validated"},
       .now = kT0,
       .want = {.env_phase = EnvironmentPhase::kSucceeded,
                .rollout_phase = RolloutPhase::kSucceeded,
                .reason = "Succeeded"},
       .recorded = true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(1, 1);
    w.Spec(0).targets[0].worker_validation = WorkerValidationSpec{};
    w.ToVerifying();
    w.RollOut();
    w.obs.now = c.now;
    w.obs.validation = c.v;
    Plan p = w.Run();
    EXPECT_TRUE(p.patches.empty());
    ExpectPlan(w, p, 0, c.want);
    const RolloutStatus& s = p.status ? *p.status : w.St();
    if (c.recorded) {
      ASSERT_TRUE(s.environments[0].validation.has_value());
      EXPECT_EQ(s.environments[0].validation->gpu_pods, c.v.gpu_pods);
      EXPECT_EQ(s.environments[0].validation->passed, c.v.passed);
      EXPECT_EQ(s.environments[0].validation->failed, c.v.failed);
      EXPECT_EQ(s.environments[0].validation->message, c.v.message);
    }
  }
}

// A failed validation keeps its pod from ever becoming ready: it fails the environment at once;
// a pending one is only waited for once the Deployments are rolled out.
TEST(PlannerValidation, FailureCountsBeforeTheRolloutCompletesPendingDoesNot) {
  {
    World w(1, 1);
    w.ToVerifying();
    w.obs.validation = ValidationObservation{
        .required = true, .gpu_pods = 1, .failed = 1, .message = "pod w-0: CUDA_ERROR_NO_DEVICE"};
    Plan p = w.Run();
    ASSERT_TRUE(p.status.has_value());
    EXPECT_EQ(p.status->environments[0].phase, EnvironmentPhase::kRollingBack);
    EXPECT_EQ(p.status->environments[0].reason, "WorkerValidationFailed");
    EXPECT_TRUE(p.patches.empty());
  }
  {
    World w(1, 1);
    w.ToVerifying();
    w.obs.validation = ValidationObservation{
        .required = true, .gpu_pods = 1, .message = "0 of 1 GPU pods validated"};
    Plan p = w.Run();
    const RolloutStatus& s = p.status ? *p.status : w.St();
    EXPECT_EQ(s.environments[0].phase, EnvironmentPhase::kVerifying);
    EXPECT_NE(s.environments[0].message.find("0 updated"), std::string::npos)
        << s.environments[0].message;
  }
}

// Injection of the validation init containers into GPU workers' pod templates (and their removal
// on rollback), with the same never-twice guarantees as the images.
TEST(PlannerValidation, InjectsValidationIntoGpuWorkersOnly) {
  const std::string validator = "registry.example.com/rollgate/validate:0.1.0";
  const std::vector<std::string> check = {"python", "-c",
                                          "import torch; assert torch.cuda.is_available()"};
  World w(1, 2);
  w.opts.validator_image = validator;
  for (int t = 0; t < 2; ++t) {
    w.Spec(0).targets[static_cast<size_t>(t)].worker_validation =
        WorkerValidationSpec{.cuda_required = true, .command = check};
  }
  w.D(0, 0).gpu_requests[Container(0)] = "1";  // d0-0 is a GPU worker, d0-1 runs on CPUs
  w.ToUpdating();
  EXPECT_TRUE(w.Env(0).targets[0].previous_init_containers.empty());
  EXPECT_EQ(w.Env(0).targets[0].previous_validation_label, "");
  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  const DeploymentPatch& gpu = p.patches[0];
  ASSERT_EQ(gpu.name, "d0-0");
  ASSERT_EQ(gpu.init_containers.size(), 2u);
  EXPECT_EQ(gpu.init_containers[0].name, kValidatorContainer);
  EXPECT_EQ(gpu.init_containers[0].image, validator);
  EXPECT_EQ(gpu.init_containers[0].gpu_resource, "nvidia.com/gpu");
  EXPECT_EQ(gpu.init_containers[0].gpu_amount, "1");
  EXPECT_EQ(gpu.init_containers[1].name, kValidatorCommandContainer);
  EXPECT_EQ(gpu.init_containers[1].image, NewImage(0));
  EXPECT_EQ(gpu.init_containers[1].command, check);
  EXPECT_EQ(gpu.validation_label, "1");
  EXPECT_TRUE(p.patches[1].init_containers.empty()) << "CPU pods are not validated";
  EXPECT_EQ(p.patches[1].validation_label, "");

  // Restart after the patch: injected already, nothing to patch.
  w.Apply(p);
  EXPECT_TRUE(w.Run().patches.empty());
  // Injection undone by someone else while Updating: patched again.
  w.D(0, 0).init_container_images.erase(kValidatorCommandContainer);
  Plan again = w.Run();
  ASSERT_EQ(again.patches.size(), 1u);
  EXPECT_EQ(again.patches[0].name, "d0-0");
  w.Apply(again);
  w.Persist(again);

  // Rollback removes what this revision injected.
  w.obs.validation = ValidationObservation{
      .required = true, .gpu_pods = 2, .failed = 1, .message = "pod w-0: CUDA_ERROR_NO_DEVICE"};
  w.Step();
  ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  w.obs.validation.reset();
  Plan back = w.Run();
  ASSERT_EQ(back.patches.size(), 2u);
  EXPECT_EQ(back.patches[0].remove_init_containers,
            (std::vector<std::string>{kValidatorContainer, kValidatorCommandContainer}));
  EXPECT_TRUE(back.patches[0].remove_validation_label);
  EXPECT_TRUE(back.patches[1].remove_init_containers.empty());
  EXPECT_FALSE(back.patches[1].remove_validation_label);
  w.Apply(back);
  EXPECT_TRUE(w.D(0, 0).init_container_images.empty());
  EXPECT_EQ(w.D(0, 0).template_labels.count(kValidationLabel), 0u);
  EXPECT_TRUE(w.Run().patches.empty()) << "restored: no second rollback patch";
}

TEST(PlannerValidation, GpuWorkerWithoutValidatorImageFailsPreflight) {
  World w(1, 1);
  w.Spec(0).targets[0].worker_validation = WorkerValidationSpec{};
  w.D(0, 0).gpu_requests[Container(0)] = "1";
  Plan p = w.Run();
  EXPECT_TRUE(p.patches.empty());
  ASSERT_TRUE(p.status.has_value());
  EXPECT_EQ(p.status->environments[0].phase, EnvironmentPhase::kFailed);
  EXPECT_EQ(p.status->environments[0].reason, "WorkerValidationUnavailable");
  EXPECT_EQ(p.status->phase, RolloutPhase::kFailed);
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
