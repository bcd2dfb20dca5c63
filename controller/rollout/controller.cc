#include "controller/rollout/controller.h"

#include <thread>

#include "controller/common/log.h"
#include "controller/metrics/heartbeat.h"
#include "controller/metrics/metrics.h"
#include "controller/rollout/codec.h"
#include "controller/validation/pod_validation.h"

namespace rollgate::rollout {
namespace {

// Drops what the controller never reads, to keep the caches small.
kube::Json Slim(kube::Json&& obj) {
  if (obj.has_field("metadata") && obj.at("metadata").is_object()) {
    obj["metadata"].erase("managedFields");
  }
  return std::move(obj);
}

kube::InformerOptions InformerFor(const kube::ResourceType& rt, const std::string& ns,
                                  const std::function<void(const std::string&)>& on_restart) {
  kube::InformerOptions io;
  io.on_watch_restart = on_restart;
  io.type = rt;
  io.namespace_ = ns;
  io.transform = Slim;
  return io;
}

}  // namespace

Controller::Controller(kube::KubeClient& client, const Clock& clock, kube::EventRecorder& events,
                       ControllerOptions opts)
    : client_(client), clock_(clock), opts_(std::move(opts)), queue_(clock, {}) {
  rollouts_ = std::make_unique<kube::Informer>(
      client_, InformerFor(kube::resources::ContainerRollouts(), opts_.watch_namespace,
                           opts_.on_watch_restart));
  // Targets may live in other (opted-in) namespaces: Deployments and Namespaces are watched
  // cluster-wide unless the controller is scoped to one namespace.
  deployments_ = std::make_unique<kube::Informer>(
      client_,
      InformerFor(kube::resources::Deployments(), opts_.watch_namespace, opts_.on_watch_restart));
  namespaces_ = std::make_unique<kube::Informer>(
      client_, InformerFor(kube::resources::Namespaces(), "", opts_.on_watch_restart));
  // Worker validation reads only the pods the rollout labelled for it.
  auto pod_opts =
      InformerFor(kube::resources::Pods(), opts_.watch_namespace, opts_.on_watch_restart);
  pod_opts.label_selector = kValidationLabel;
  pods_ = std::make_unique<kube::Informer>(client_, pod_opts);
  validation_ = std::make_unique<validation::PodValidationObserver>(*pods_, *deployments_,
                                                                    opts_.reconciler.planner);
  if (opts_.prometheus_factory) prometheus_ = opts_.prometheus_factory();
  reconciler_ =
      std::make_unique<Reconciler>(client_, clock_, *rollouts_, *deployments_, *namespaces_,
                                   prometheus_.get(), validation_.get(), events, opts_.reconciler);

  rollouts_->AddHandlers({[this](const kube::ObjectPtr& o) {
                            IndexRollout(o, false);
                            queue_.Add(kube::ObjectKey(*o));
                          },
                          [this](const kube::ObjectPtr&, const kube::ObjectPtr& o) {
                            IndexRollout(o, false);
                            queue_.Add(kube::ObjectKey(*o));
                          },
                          [this](const kube::ObjectPtr& o) {
                            IndexRollout(o, true);
                            queue_.Forget(kube::ObjectKey(*o));
                          }});
  auto on_deployment = [this](const kube::ObjectPtr& o) { EnqueueTargetsOf(kube::ObjectKey(*o)); };
  deployments_->AddHandlers(
      {on_deployment,
       [on_deployment](const kube::ObjectPtr&, const kube::ObjectPtr& o) { on_deployment(o); },
       on_deployment});
  auto on_namespace = [this](const kube::ObjectPtr& o) {
    EnqueueNamespace(kube::MetaString(*o, "name"));
  };
  auto on_pod = [this](const kube::ObjectPtr& o) {
    EnqueueNamespace(kube::MetaString(*o, "namespace"));
  };
  pods_->AddHandlers(
      {on_pod, [on_pod](const kube::ObjectPtr&, const kube::ObjectPtr& o) { on_pod(o); }, on_pod});
  namespaces_->AddHandlers(
      {on_namespace,
       [on_namespace](const kube::ObjectPtr&, const kube::ObjectPtr& o) { on_namespace(o); },
       on_namespace});
}

Controller::~Controller() = default;

void Controller::IndexRollout(const kube::ObjectPtr& obj, bool deleted) {
  const std::string key = kube::ObjectKey(*obj);
  std::vector<std::string> targets;
  std::vector<std::string> namespaces;
  if (!deleted) {
    auto r = DecodeRollout(*obj);
    if (r.ok()) {
      targets = TargetKeys(*r);
      for (const auto& e : r->spec.environments) namespaces.push_back(EnvironmentNamespace(*r, e));
    }
  }
  std::lock_guard<std::mutex> lock(index_mu_);
  for (const auto& old : targets_of_[key]) {
    by_deployment_[old].erase(key);
    if (by_deployment_[old].empty()) by_deployment_.erase(old);
  }
  for (auto& [ns, keys] : by_namespace_) keys.erase(key);
  if (deleted) {
    targets_of_.erase(key);
    return;
  }
  for (const auto& t : targets) by_deployment_[t].insert(key);
  for (const auto& ns : namespaces) by_namespace_[ns].insert(key);
  targets_of_[key] = std::move(targets);
}

void Controller::EnqueueTargetsOf(const std::string& deployment_key) {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    auto it = by_deployment_.find(deployment_key);
    if (it == by_deployment_.end()) return;
    keys.assign(it->second.begin(), it->second.end());
  }
  for (const auto& k : keys) queue_.Add(k);
}

void Controller::EnqueueNamespace(const std::string& ns) {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    auto it = by_namespace_.find(ns);
    if (it == by_namespace_.end()) return;
    keys.assign(it->second.begin(), it->second.end());
  }
  for (const auto& k : keys) queue_.Add(k);
}

bool Controller::HasSynced() const {
  return rollouts_->HasSynced() && deployments_->HasSynced() && namespaces_->HasSynced() &&
         pods_->HasSynced();
}

void Controller::Worker() {
  while (auto key = queue_.Get()) {
    if (opts_.heartbeat != nullptr) opts_.heartbeat->Beat();
    const auto start = clock_.Now();
    ReconcileResult res = reconciler_->Reconcile(*key);
    if (opts_.reconciler.metrics != nullptr) {
      opts_.reconciler.metrics->ObserveReconcile(
          std::chrono::duration<double>(clock_.Now() - start).count(), !res.status.ok());
    }
    if (opts_.heartbeat != nullptr) opts_.heartbeat->Beat();
    if (!res.status.ok()) {
      if (res.status.IsRetryable()) {
        log::Warn("controller", "reconcile failed; will retry",
                  {{"rollout", *key},
                   {"error", res.status.ToString()},
                   {"attempt", std::to_string(queue_.NumRequeues(*key) + 1)}});
        if (res.status.retry_after()) {
          queue_.AddAfter(*key, *res.status.retry_after());
        } else if (res.status.code() == StatusCode::kConflict) {
          queue_.Add(*key);  // a newer object is on its way through the watch
        } else {
          queue_.AddRateLimited(*key);
        }
      } else {
        log::Error("controller", "reconcile failed; not retrying",
                   {{"rollout", *key}, {"error", res.status.ToString()}});
        queue_.Forget(*key);
      }
    } else {
      queue_.Forget(*key);
      if (res.requeue_after) queue_.AddAfter(*key, *res.requeue_after);
    }
    queue_.Done(*key);
  }
}

void Controller::Run(const CancelToken& stop) {
  std::vector<std::thread> threads;
  threads.emplace_back([&] { rollouts_->Run(stop); });
  threads.emplace_back([&] { deployments_->Run(stop); });
  threads.emplace_back([&] { namespaces_->Run(stop); });
  threads.emplace_back([&] { pods_->Run(stop); });
  const bool synced = rollouts_->WaitForSync(stop, std::chrono::hours(24)) &&
                      deployments_->WaitForSync(stop, std::chrono::hours(24)) &&
                      namespaces_->WaitForSync(stop, std::chrono::hours(24)) &&
                      pods_->WaitForSync(stop, std::chrono::hours(24));
  // Caches warm up on every replica; only the leader starts the workers.
  const bool may_act = synced && (!opts_.wait_for_leadership || opts_.wait_for_leadership(stop));
  if (may_act) {
    log::Info("controller", "caches synced",
              {{"rollouts", std::to_string(rollouts_->Size())},
               {"deployments", std::to_string(deployments_->Size())},
               {"namespaces", std::to_string(namespaces_->Size())},
               {"workers", std::to_string(opts_.concurrency)}});
    for (int i = 0; i < std::max(1, opts_.concurrency); ++i)
      threads.emplace_back([this] { Worker(); });
  }
  // Wait for the stop signal, then stop the queue (workers finish their current key).
  auto reg = stop.OnCancel([this] { queue_.ShutDown(); });
  while (!stop.cancelled()) (void)stop.SleepFor(std::chrono::seconds(1));
  for (auto& t : threads) t.join();
}

}  // namespace rollgate::rollout
