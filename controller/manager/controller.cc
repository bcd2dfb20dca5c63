#include "controller/manager/controller.h"

#include <thread>

#include "controller/api/codec.h"
#include "controller/common/log.h"
#include "controller/manager/requeue.h"
#include "controller/metrics/heartbeat.h"
#include "controller/metrics/metrics.h"

namespace rollgate::manager {

Controller::Controller(const Clock& clock, Informers informers, ReconcileFn reconcile,
                       ControllerOptions opts)
    : clock_(clock),
      informers_(informers),
      reconcile_(std::move(reconcile)),
      opts_(std::move(opts)),
      queue_(clock, {}) {
  informers_.rollouts.AddHandlers({[this](const kube::ObjectPtr& o) {
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
  informers_.deployments.AddHandlers(
      {on_deployment,
       [on_deployment](const kube::ObjectPtr&, const kube::ObjectPtr& o) { on_deployment(o); },
       on_deployment});
  auto on_namespace = [this](const kube::ObjectPtr& o) {
    EnqueueNamespace(kube::MetaString(*o, "name"));
  };
  auto on_pod = [this](const kube::ObjectPtr& o) {
    EnqueueNamespace(kube::MetaString(*o, "namespace"));
  };
  informers_.pods.AddHandlers(
      {on_pod, [on_pod](const kube::ObjectPtr&, const kube::ObjectPtr& o) { on_pod(o); }, on_pod});
  informers_.namespaces.AddHandlers(
      {on_namespace,
       [on_namespace](const kube::ObjectPtr&, const kube::ObjectPtr& o) { on_namespace(o); },
       on_namespace});
}

void Controller::IndexRollout(const kube::ObjectPtr& obj, bool deleted) {
  const std::string key = kube::ObjectKey(*obj);
  std::vector<std::string> targets;
  std::vector<std::string> namespaces;
  if (!deleted) {
    auto r = api::DecodeRollout(*obj);
    if (r.ok()) {
      targets = api::TargetKeys(*r);
      for (const auto& e : r->spec.environments) {
        namespaces.push_back(api::EnvironmentNamespace(*r, e));
      }
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
  return informers_.rollouts.HasSynced() && informers_.deployments.HasSynced() &&
         informers_.namespaces.HasSynced() && informers_.pods.HasSynced();
}

void Controller::ProcessOne(const std::string& key) {
  if (opts_.heartbeat != nullptr) opts_.heartbeat->Beat();
  const auto start = clock_.Now();
  const rollout::ReconcileResult res = reconcile_(key);
  if (opts_.metrics != nullptr) {
    opts_.metrics->ObserveReconcile(std::chrono::duration<double>(clock_.Now() - start).count(),
                                    !res.status.ok());
  }
  if (opts_.heartbeat != nullptr) opts_.heartbeat->Beat();
  const RequeueDecision d = DecideRequeue(res);
  if (d.log_retry) {
    log::Warn("controller", "reconcile failed; will retry",
              {{"rollout", key},
               {"error", res.status.ToString()},
               {"attempt", std::to_string(queue_.NumRequeues(key) + 1)}});
  }
  if (d.log_drop) {
    log::Error("controller", "reconcile failed; not retrying",
               {{"rollout", key}, {"error", res.status.ToString()}});
  }
  switch (d.action) {
    case RequeueDecision::Action::kForget:
      queue_.Forget(key);
      if (d.after) queue_.AddAfter(key, *d.after);
      break;
    case RequeueDecision::Action::kRateLimited:
      queue_.AddRateLimited(key);
      break;
    case RequeueDecision::Action::kAfter:
      queue_.AddAfter(key, *d.after);
      break;
    case RequeueDecision::Action::kDrop:
      queue_.Forget(key);
      break;
  }
  queue_.Done(key);
}

void Controller::Worker() {
  while (auto key = queue_.Get()) ProcessOne(*key);
}

void Controller::Run(const CancelToken& stop) {
  std::vector<std::thread> threads;
  for (kube::Informer* i :
       {&informers_.rollouts, &informers_.deployments, &informers_.namespaces, &informers_.pods}) {
    threads.emplace_back([i, &stop] { i->Run(stop); });
  }
  const bool synced = informers_.rollouts.WaitForSync(stop, std::chrono::hours(24)) &&
                      informers_.deployments.WaitForSync(stop, std::chrono::hours(24)) &&
                      informers_.namespaces.WaitForSync(stop, std::chrono::hours(24)) &&
                      informers_.pods.WaitForSync(stop, std::chrono::hours(24));
  // Caches warm up on every replica; only the leader starts the workers.
  const bool may_act = synced && (!opts_.wait_for_leadership || opts_.wait_for_leadership(stop));
  if (may_act) {
    log::Info("controller", "caches synced",
              {{"rollouts", std::to_string(informers_.rollouts.Size())},
               {"deployments", std::to_string(informers_.deployments.Size())},
               {"namespaces", std::to_string(informers_.namespaces.Size())},
               {"workers", std::to_string(opts_.concurrency)}});
    for (int i = 0; i < std::max(1, opts_.concurrency); ++i) {
      threads.emplace_back([this] { Worker(); });
    }
  }
  // Wait for the stop signal, then stop the queue (workers finish their current key).
  auto reg = stop.OnCancel([this] { queue_.ShutDown(); });
  while (!stop.cancelled()) (void)stop.SleepFor(std::chrono::seconds(1));
  for (auto& t : threads) t.join();
}

}  // namespace rollgate::manager
