// The composition root of the controller loop: builds the informers (trimmed of what the
// controller never reads), the worker-validation observer over the pod cache, the Prometheus
// client, the metrics recorder and the Reconciler, and hands them to a Controller. Nothing below
// this file constructs its own dependencies.
// Thread-safety: construct and destroy on one thread; Run() as Controller::Run.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "controller/common/clock.h"
#include "controller/kube/cluster_registry.h"
#include "controller/kube/event_recorder.h"
#include "controller/kube/informer.h"
#include "controller/kube/kube_client.h"
#include "controller/manager/controller.h"
#include "controller/metrics/status_recorder.h"
#include "controller/rollout/analysis.h"
#include "controller/rollout/image_resolver.h"
#include "controller/rollout/pod_health_cache.h"
#include "controller/rollout/reconciler.h"
#include "controller/rollout/registry_client.h"
#include "controller/validation/pod_validation.h"

namespace rollgate::manager {

struct WiringOptions {
  std::string watch_namespace;  // "" = all namespaces
  rollout::PlannerOptions planner;
  bool dry_run = false;
  ControllerOptions controller;  // its metrics (when set) also receive the reconciler's records
  std::function<std::unique_ptr<rollout::PrometheusClient>()> prometheus_factory;
  int analysis_workers = 4;  // --analysis-workers: samples taken at once, off the reconcile workers
  std::function<void(const std::string& resource)> on_watch_restart;  // metrics hook
  // The registry client of the pre-flight of spec.imagePolicy; empty: none (such rollouts wait
  // on RegistryUnreachable, then fail). Lookups run on registry_workers threads.
  std::function<std::unique_ptr<rollout::RegistryClient>()> registry_factory;
  int registry_workers = 2;
  rollout::SmokeJobOptions smoke{};  // the smoke-check Jobs' settings
  // Builds the client of a remote cluster (environments[].cluster) from its kubeconfig; empty:
  // remote clusters cannot be reached (such environments wait on ClusterUnreachable, then fail).
  kube::ClusterClientFactory cluster_factory;
};

class ControllerSet {
 public:
  ControllerSet(kube::KubeClient& client, const Clock& clock, kube::EventRecorder& events,
                const WiringOptions& opts);
  ~ControllerSet();

  Controller& controller() { return *controller_; }
  const rollout::Reconciler& reconciler() const { return *reconciler_; }
  // The first cache whose watch has delivered nothing for longer than `bound` (Informer::Stalled),
  // for /healthz; nullopt while every one is fresh.
  std::optional<std::string> Stalled(std::chrono::nanoseconds bound) const;

 private:
  std::unique_ptr<kube::Informer> rollouts_;
  std::unique_ptr<kube::Informer> deployments_;
  std::unique_ptr<kube::Informer> namespaces_;
  std::unique_ptr<kube::Informer> pods_;
  std::unique_ptr<kube::Informer> health_pods_;  // the pods whose health is observed
  std::unique_ptr<rollout::PodHealthCache> pod_cache_;
  std::unique_ptr<validation::PodValidationObserver> validation_;
  std::unique_ptr<rollout::PrometheusClient> prometheus_;
  std::unique_ptr<rollout::AnalysisRunner> analysis_;  // after prometheus_: destroyed first
  std::unique_ptr<rollout::RegistryClient> registry_;
  std::unique_ptr<rollout::ImageResolver> images_;  // after registry_: destroyed first
  std::unique_ptr<kube::ClusterRegistry> clusters_;
  std::unique_ptr<metrics::MetricsRecorder> recorder_;
  std::unique_ptr<rollout::Reconciler> reconciler_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<kube::RemoteWatches> remote_watches_;  // after controller_: destroyed first
};

}  // namespace rollgate::manager
