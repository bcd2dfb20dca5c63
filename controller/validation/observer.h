// Worker startup validation as the planner sees it: what the current environment's new GPU pods
// reported, and the interface through which the reconciler asks for it. The implementation that
// reads pods from the informer cache is PodValidationObserver (pod_validation.h); tests hand in
// their own.
// Thread-safety: ValidationObservation is a value; an observer's Observe() may be called from
// several reconcile workers at once.
#pragma once

#include <optional>
#include <string>

#include "controller/api/types.h"

namespace rollgate::validation {

// What worker startup validation saw for the current environment's new pods.
struct ValidationObservation {
  bool required = false;  // some target of the environment requires CUDA validation
  int gpu_pods = 0;       // new pods that must validate
  int passed = 0;
  int failed = 0;
  std::string message;  // the first failure's verdict, or what is still pending
};

// Computes the worker-validation observation of an environment; nullopt: none.
class ValidationObserver {
 public:
  virtual ~ValidationObserver() = default;
  virtual std::optional<ValidationObservation> Observe(const api::Rollout& r,
                                                       const api::EnvironmentSpec& env) = 0;
};

}  // namespace rollgate::validation
