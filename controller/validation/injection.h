// Worker startup validation, what goes into the pod template: the init containers injected into a
// GPU worker (rollgate-validate, and optionally the worker's own check in its new image), each
// requesting the same GPU as the worker so it runs on the device the worker will use. Targets
// without a GPU container (the CPU-only worker) get nothing. Both are admitted wherever the worker
// is: rollgate-validate runs with the restricted Pod Security Standard's securityContext (as user
// 65532, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp) and the
// configured requests and limits, so a namespace that enforces `restricted` or a ResourceQuota
// admits it; the check in the worker's own image inherits the worker container's securityContext
// and resources. See docs/design.md "Worker startup validation".
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "controller/api/types.h"

namespace rollgate::validation {

struct InjectionOptions {
  std::string validator_image;                  // image of rollgate-validate; empty: none
  std::string gpu_resource = "nvidia.com/gpu";  // the extended resource that marks a GPU
  // rollgate-validate's own requests and limits (besides the GPU, which matches the worker's).
  std::map<std::string, std::string> validator_requests = {{"cpu", "10m"}, {"memory", "64Mi"}};
  std::map<std::string, std::string> validator_limits = {{"cpu", "1"}, {"memory", "1Gi"}};
};

// The securityContext of rollgate-validate: compliant with the restricted Pod Security Standard.
inline constexpr const char* kValidatorSecurityContext =
    R"({"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},)"
    R"("readOnlyRootFilesystem":true,"runAsGroup":65532,"runAsNonRoot":true,"runAsUser":65532,)"
    R"("seccompProfile":{"type":"RuntimeDefault"}})";

// An init container the rollout injects into a GPU worker's pod template.
struct InitContainer {
  std::string name;
  std::string image;
  std::vector<std::string> command;  // empty: the image's entrypoint
  std::string gpu_resource;
  std::string gpu_amount;
  // Injection only (a restore sets the image back and nothing else):
  std::string security_context_json;            // "" : none
  std::map<std::string, std::string> requests;  // besides the GPU
  std::map<std::string, std::string> limits;    // besides the GPU
};

// The validation a target needs: empty when it has no GPU container or no CUDA validation.
// `images`: logical image -> reference, as the Deployments are patched with it (spec.images, or
// the pinned references of PinnedImages).
std::vector<InitContainer> ValidationContainers(const std::map<std::string, std::string>& images,
                                                const api::TargetSpec& target,
                                                const api::DeploymentView& d,
                                                const InjectionOptions& opts);

}  // namespace rollgate::validation
