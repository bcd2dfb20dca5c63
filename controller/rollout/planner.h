// The planner: every rollout decision, as a pure function of the observed ContainerRollout, the
// Deployments and namespaces it targets, the worker-validation and analysis observations, and the
// clock. It returns the actions to take and the new status; the reconciler only executes them.
//
// Crash safety comes from the order the plan imposes and the reconciler keeps:
//  - entering an environment writes the previous images into status BEFORE any patch;
//  - roll-forward patches are executed before the status write that leaves Updating, and a patch
//    is only planned when a Deployment differs from the desired images or revision annotation, so
//    a restart after the patch never patches again;
//  - a rollback is first recorded in status (RollingBack), then the recorded images are restored.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controller/rollout/types.h"

namespace rollgate::rollout {

inline constexpr const char* kRevisionAnnotation = "rollgate.io/revision";
inline constexpr const char* kPromoteAnnotation = "rollgate.io/promote";
inline constexpr const char* kAbortAnnotation = "rollgate.io/abort";
inline constexpr const char* kRetryAnnotation = "rollgate.io/retry";
inline constexpr const char* kAllowFromLabel = "rollgate.io/allow-rollouts-from";
// Worker startup validation: injected init containers and the pod label that narrows the pod watch.
inline constexpr const char* kValidatorContainer = "rollgate-validate";
inline constexpr const char* kValidatorCommandContainer = "rollgate-validate-command";
inline constexpr const char* kValidationLabel = "rollgate.io/validation";

// What worker startup validation saw for the current environment's new pods (see validation/).
struct ValidationObservation {
  bool required = false;  // some target of the environment requires CUDA validation
  int gpu_pods = 0;       // new pods that must validate
  int passed = 0;
  int failed = 0;
  std::string message;  // the first failure's verdict, or what is still pending
};

// One analysis sample taken for the current environment just before planning.
struct AnalysisObservation {
  enum class Outcome { kPass, kFail, kInconclusive };
  Outcome outcome = Outcome::kInconclusive;
  std::string value;    // last value as Prometheus rendered it
  std::string message;  // human summary of every check
};

struct Observed {
  Rollout rollout;
  std::string spec_hash;
  std::map<std::string, DeploymentView> deployments;  // "ns/name"; absent: not found
  std::map<std::string, NamespaceView> namespaces;    // absent: not found
  std::optional<ValidationObservation> validation;    // for the current environment
  std::optional<AnalysisObservation> analysis_sample;
  WallTime now;
};

struct PlannerOptions {
  std::vector<std::string> allowed_registries;  // empty: any registry
  std::string validator_image;                  // image of rollgate-validate (--validator-image)
  std::string gpu_resource = "nvidia.com/gpu";  // --gpu-resource
};

// An init container the rollout injects into a GPU worker's pod template.
struct InitContainer {
  std::string name;
  std::string image;
  std::vector<std::string> command;  // empty: the image's entrypoint
  std::string gpu_resource;
  std::string gpu_amount;
};

// The validation a target needs: empty when it has no GPU container or no CUDA validation.
std::vector<InitContainer> ValidationContainers(const RolloutSpec& spec, const TargetSpec& target,
                                                const DeploymentView& d,
                                                const PlannerOptions& opts);

struct DeploymentPatch {
  std::string namespace_;
  std::string name;
  std::map<std::string, std::string> images;  // container -> image
  std::string revision;                       // value of rollgate.io/revision
  bool rollback = false;
  // Worker validation: init containers to inject and the pod label value (the revision).
  std::vector<InitContainer> init_containers;
  std::string validation_label;
  // Rollback of worker validation: init containers to remove, and the label to remove.
  std::vector<std::string> remove_init_containers;
  bool remove_validation_label = false;
};

struct EventRecord {
  std::string type;  // Normal | Warning
  std::string reason;
  std::string message;
};

struct Plan {
  std::vector<DeploymentPatch> patches;  // executed first (never together with a rollback start)
  std::optional<RolloutStatus> status;   // written next, when it differs from the observed one
  std::vector<EventRecord> events;       // emitted after the status write succeeded
  bool sample_analysis = false;          // take an analysis sample, then plan again
  std::optional<std::chrono::seconds> requeue_after;
};

// The namespace an environment's targets live in.
std::string EnvironmentNamespace(const Rollout& r, const EnvironmentSpec& env);

// Every Deployment the rollout targets ("ns/name"), for watch-to-rollout mapping.
std::vector<std::string> TargetKeys(const Rollout& r);

Plan PlanRollout(const Observed& obs, const PlannerOptions& opts);

}  // namespace rollgate::rollout
