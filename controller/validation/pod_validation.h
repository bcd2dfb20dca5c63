// Worker startup validation, controller side: reads the injected init containers' results from
// the new pods of an environment's GPU workers. A pod passes when every injected init container
// terminated with exit code 0; it fails when one terminated otherwise (its termination message,
// the JSON verdict of rollgate-validate, becomes the reason). Pods of targets without GPU
// containers (the CPU-only dev worker) are not validated.
// Thread-safety: PodVerdict is pure; PodValidationObserver only reads thread-safe listers.
#pragma once

#include <string>
#include <vector>

#include "controller/kube/informer.h"
#include "controller/validation/injection.h"
#include "controller/validation/observer.h"

namespace rollgate::validation {

struct Verdict {
  enum class State { kPending, kPassed, kFailed };
  State state = State::kPending;
  std::string message;  // failure detail (container, exit code, termination message)
};

// The verdict of one pod for the given injected init container names.
Verdict PodVerdict(const kube::Json& pod, const std::vector<std::string>& init_containers);

// What the pod cache keeps of a pod: its identity, labels and deletionTimestamp, spec.nodeName and
// each init container's name and terminated state (exit code, reason, message): what PodVerdict
// and the observer read, so a pod costs the same whatever its spec holds.
kube::Json TrimPod(kube::Json&& pod);

class PodValidationObserver final : public ValidationObserver {
 public:
  PodValidationObserver(const kube::ObjectLister& pods, const kube::ObjectLister& deployments,
                        InjectionOptions opts);
  std::optional<ValidationObservation> Observe(const api::Rollout& r,
                                               const api::EnvironmentSpec& env) override;

 private:
  const kube::ObjectLister& pods_;
  const kube::ObjectLister& deployments_;
  InjectionOptions opts_;
};

}  // namespace rollgate::validation
