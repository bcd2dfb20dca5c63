#include "controller/manager/wiring.h"

#include "controller/api/codec.h"
#include "controller/api/well_known.h"
#include "controller/validation/pod_validation.h"

namespace rollgate::manager {
namespace {

std::unique_ptr<kube::Informer> NewInformer(
    kube::KubeClient& client, const kube::ResourceType& rt, const std::string& ns,
    const std::function<void(const std::string&)>& on_restart,
    std::function<kube::Json(kube::Json&&)> trim, const std::string& selector = "",
    bool offers_follow_interest = false) {
  kube::InformerOptions io;
  io.on_watch_restart = on_restart;
  io.type = rt;
  io.namespace_ = ns;
  // Each cache keeps only what the controller reads of its objects (api::Trim*).
  io.transform = std::move(trim);
  // Objects are parsed a page at a time before they are trimmed: smaller pages bound the peak
  // of a re-list when tenants' objects are large (up to ~1.5 MiB each in etcd).
  io.page_size = 100;
  io.label_selector = selector;
  io.offers_follow_interest = offers_follow_interest;
  return std::make_unique<kube::Informer>(client, io);
}

}  // namespace

ControllerSet::ControllerSet(kube::KubeClient& client, const Clock& clock,
                             kube::EventRecorder& events, const WiringOptions& opts) {
  const std::string& ns = opts.watch_namespace;
  rollouts_ = NewInformer(client, kube::resources::ContainerRollouts(), ns, opts.on_watch_restart,
                          api::TrimRollout);
  // Targets may live in other (opted-in) namespaces: Deployments and Namespaces are watched
  // cluster-wide unless the controller is scoped to one namespace.
  deployments_ = NewInformer(client, kube::resources::Deployments(), ns, opts.on_watch_restart,
                             api::TrimDeployment);
  namespaces_ = NewInformer(client, kube::resources::Namespaces(), "", opts.on_watch_restart,
                            api::TrimNamespace);
  // Worker validation reads only the pods the rollout labelled for it.
  pods_ = NewInformer(client, kube::resources::Pods(), ns, opts.on_watch_restart,
                      validation::TrimPod, api::kValidationLabel);
  validation_ = std::make_unique<validation::PodValidationObserver>(*pods_, *deployments_,
                                                                    opts.planner.injection());
  // Pod health reads the pods of the targets it observes from a watch of all pods that keeps only
  // those (pod_health_cache.h); a change of one reconciles the rollouts observing it.
  health_pods_ = NewInformer(client, kube::resources::Pods(), ns, opts.on_watch_restart,
                             rollout::TrimHealthPod, "", /*offers_follow_interest=*/true);
  pod_cache_ = std::make_unique<rollout::PodHealthCache>(
      *health_pods_, [this](const std::string& prefix) { health_pods_->PruneWithPrefix(prefix); });
  health_pods_->SetKeep([c = pod_cache_.get()](const kube::Json& p) { return c->Keeps(p); });
  // Only a change that can change a verdict reconciles (at xlarge, reconciling on every pod
  // update was 55,000 more reconciles in 30 minutes); a deletion never adds a trouble.
  auto on_health_pod = [this](const kube::ObjectPtr& before, const kube::ObjectPtr& p) {
    if (!controller_ || !rollout::TroubleMayHaveChanged(before.get(), *p)) return;
    for (const auto& key : pod_cache_->WatchersOf(*p)) controller_->Enqueue(key);
  };
  health_pods_->AddHandlers(
      {[on_health_pod](const kube::ObjectPtr& p) { on_health_pod(nullptr, p); }, on_health_pod,
       nullptr});
  if (opts.prometheus_factory) prometheus_ = opts.prometheus_factory();
  if (prometheus_) {
    // Samples are taken off the reconcile workers; a finished one reconciles its rollout at once.
    rollout::AnalysisRunner::Options ao;
    ao.workers = opts.analysis_workers;
    ao.on_done = [this](const std::string& key) {
      if (controller_) controller_->Enqueue(key);
    };
    analysis_ = std::make_unique<rollout::AnalysisRunner>(*prometheus_, ao);
  }
  if (opts.registry_factory) registry_ = opts.registry_factory();
  if (registry_) {
    rollout::ImageResolver::Options io;
    io.workers = opts.registry_workers;
    io.on_done = [this](const std::string& key) {
      if (controller_) controller_->Enqueue(key);
    };
    if (metrics::Metrics* m = opts.controller.metrics; m != nullptr) {
      io.observe = [m](std::string_view result, std::chrono::duration<double> took) {
        m->ObserveImageResolution(std::string(result), took.count());
      };
    }
    images_ = std::make_unique<rollout::ImageResolver>(*registry_, io);
  }
  rollout::ReconcilerOptions ro;
  if (opts.cluster_factory) {
    clusters_ = std::make_unique<kube::ClusterRegistry>(client, clock, opts.cluster_factory);
    ro.clusters = clusters_.get();
    remote_watches_ = std::make_unique<kube::RemoteWatches>(clock, [this](const std::string& key) {
      if (controller_) controller_->Enqueue(key);
    });
    ro.remote_watches = remote_watches_.get();
  }
  ro.planner = opts.planner;
  ro.images = images_.get();
  ro.dry_run = opts.dry_run;
  ro.smoke = opts.smoke;
  ro.pod_cache = pod_cache_.get();
  if (opts.controller.metrics != nullptr) {
    recorder_ = std::make_unique<metrics::MetricsRecorder>(*opts.controller.metrics);
    ro.recorder = recorder_.get();
  }
  reconciler_ =
      std::make_unique<rollout::Reconciler>(client, clock, *rollouts_, *deployments_, *namespaces_,
                                            analysis_.get(), validation_.get(), events, ro);
  controller_ = std::make_unique<Controller>(
      clock, Informers{*rollouts_, *deployments_, *namespaces_, *pods_, health_pods_.get()},
      [r = reconciler_.get()](const std::string& key) { return r->Reconcile(key); },
      opts.controller);
}

// The remote watches, the analysis runner and the image resolver first: their threads may still
// call back into the controller.
ControllerSet::~ControllerSet() {
  remote_watches_.reset();
  analysis_.reset();
  images_.reset();
}

std::optional<std::string> ControllerSet::Stalled(std::chrono::nanoseconds bound) const {
  for (const auto* i :
       {rollouts_.get(), deployments_.get(), namespaces_.get(), pods_.get(), health_pods_.get()}) {
    if (auto why = i->Stalled(bound)) return why;
  }
  return std::nullopt;
}

}  // namespace rollgate::manager
