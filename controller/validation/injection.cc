#include "controller/validation/injection.h"

#include "controller/api/well_known.h"

namespace rollgate::validation {

std::vector<InitContainer> ValidationContainers(const std::map<std::string, std::string>& images,
                                                const api::TargetSpec& target,
                                                const api::DeploymentView& d,
                                                const InjectionOptions& opts) {
  std::vector<InitContainer> out;
  if (!target.worker_validation || !target.worker_validation->cuda_required ||
      opts.validator_image.empty()) {
    return out;
  }
  for (const auto& [container, logical] : target.containers) {
    auto gpu = d.gpu_requests.find(container);
    if (gpu == d.gpu_requests.end()) continue;  // not a GPU worker: CPU pods are not validated
    out.push_back({api::kValidatorContainer,
                   opts.validator_image,
                   {},
                   opts.gpu_resource,
                   gpu->second,
                   kValidatorSecurityContext,
                   opts.validator_requests,
                   opts.validator_limits});
    if (!target.worker_validation->command.empty()) {
      // The worker's own check runs as the worker does: its securityContext and resources.
      auto image = images.find(logical);
      api::ContainerSettings worker;
      if (auto it = d.gpu_container_settings.find(container);
          it != d.gpu_container_settings.end()) {
        worker = it->second;
      }
      out.push_back({api::kValidatorCommandContainer,
                     image == images.end() ? std::string() : image->second,
                     target.worker_validation->command, opts.gpu_resource, gpu->second,
                     worker.security_context_json, worker.requests, worker.limits});
    }
    break;  // one validation per pod
  }
  return out;
}

}  // namespace rollgate::validation
