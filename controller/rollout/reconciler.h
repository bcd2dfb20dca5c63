// Reconciler: executes what the planner decides for one ContainerRollout key. It reads the
// rollout, its target Deployments and namespaces (and the pods for worker validation) from the
// informer caches, takes an analysis sample when the plan asks for one, then applies the plan in
// its fixed order: Deployment patches, the status write (optimistic concurrency on the observed
// resourceVersion), then events. Objects returned by its own writes are kept as an overlay until
// the caches catch up, so a reconcile that runs before the watch delivers its own change never
// patches twice or plans from a stale status.
// Thread-safety: Reconcile() may run concurrently for different keys (the work queue never hands
// one key to two workers); the overlay is internally locked.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "controller/common/clock.h"
#include "controller/common/status.h"
#include "controller/kube/event_recorder.h"
#include "controller/kube/informer.h"
#include "controller/kube/kube_client.h"
#include "controller/rollout/analysis.h"
#include "controller/rollout/planner.h"

namespace rollgate::metrics {
class Metrics;
}  // namespace rollgate::metrics

namespace rollgate::rollout {

// Computes the worker-validation observation of an environment (see validation/); null: none.
class ValidationObserver {
 public:
  virtual ~ValidationObserver() = default;
  virtual std::optional<ValidationObservation> Observe(const Rollout& r,
                                                       const EnvironmentSpec& env) = 0;
};

struct ReconcilerOptions {
  PlannerOptions planner;
  bool dry_run = false;                 // plan and report, change nothing
  metrics::Metrics* metrics = nullptr;  // optional
};

struct ReconcileResult {
  Status status;  // non-OK: retry with backoff when retryable, else give up on this event
  std::optional<std::chrono::nanoseconds> requeue_after;
};

class Reconciler {
 public:
  Reconciler(kube::KubeClient& client, const Clock& clock, const kube::ObjectLister& rollouts,
             const kube::ObjectLister& deployments, const kube::ObjectLister& namespaces,
             PrometheusClient* prometheus, ValidationObserver* validation,
             kube::EventRecorder& events, ReconcilerOptions opts);

  ReconcileResult Reconcile(const std::string& key);

  // Counters for tests and metrics.
  std::uint64_t patches() const { return patches_; }
  std::uint64_t status_writes() const { return status_writes_; }

 private:
  kube::ObjectPtr Fresher(const std::string& kind, const std::string& key,
                          const kube::ObjectPtr& cached);
  void Remember(const std::string& kind, const std::string& key, kube::Json obj);
  Status ApplyPatch(const DeploymentPatch& p);

  kube::KubeClient& client_;
  const Clock& clock_;
  const kube::ObjectLister& rollouts_;
  const kube::ObjectLister& deployments_;
  const kube::ObjectLister& namespaces_;
  PrometheusClient* prometheus_;
  ValidationObserver* validation_;
  kube::EventRecorder& events_;
  ReconcilerOptions opts_;

  std::mutex mu_;
  std::map<std::string, kube::ObjectPtr> written_;  // "kind:ns/name" -> object from our write
  // When each rollout's current environment became eligible (entered Updating), for the
  // reaction-latency histogram: "ns/name" -> (revision/environment, time).
  std::map<std::string, std::pair<std::string, Clock::MonoTime>> eligible_;
  std::atomic<std::uint64_t> patches_{0};
  std::atomic<std::uint64_t> status_writes_{0};
};

// The strategic-merge patch that sets container images and the revision annotation.
std::string BuildImagePatch(const DeploymentPatch& p);

}  // namespace rollgate::rollout
