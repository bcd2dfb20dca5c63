#include "controller/manager/controller.h"

#include <thread>

#include "controller/api/codec.h"
#include "controller/api/well_known.h"
#include "controller/common/log.h"
#include "controller/common/reverse_index.h"
#include "controller/kube/json_fields.h"
#include "controller/manager/requeue.h"
#include "controller/metrics/heartbeat.h"
#include "controller/metrics/metrics.h"

namespace rollgate::manager {
namespace {

kube::WorkQueue::Options QueueOptions(const ControllerOptions& o) {
  kube::WorkQueue::Options q;
  q.max_delay = o.max_retry_delay;
  return q;
}

}  // namespace

Controller::Controller(const Clock& clock, Informers informers, ReconcileFn reconcile,
                       ControllerOptions opts)
    : clock_(clock),
      informers_(informers),
      reconcile_(std::move(reconcile)),
      opts_(std::move(opts)),
      queue_(clock, QueueOptions(opts_)) {
  // The Deployment and pod caches keep only what some rollout targets or waits for: a tenant's
  // other objects cost nothing. Both start after the rollout cache synced (Run), so that their
  // first list already knows every rollout's interest.
  informers_.deployments.SetKeep([this](const kube::Json& d) { return Targeted(d); });
  informers_.pods.SetKeep([this](const kube::Json& p) { return Awaited(p); });
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

// A rollout's interest: every Deployment it targets (in its spec, or recorded in its status from
// an earlier spec: a rollback may still patch that one), the namespaces of its environments, and
// the worker-validation label values it may wait for there: its revision, and the next one (the
// reconcile that writes a new revision patches before the watch brings that status back here).
Controller::Interest Controller::InterestOf(const api::Rollout& r) {
  Interest in;
  for (const auto& e : r.spec.environments) {
    const std::string ns = api::EnvironmentNamespace(r, e);
    in.namespaces.insert(ns);
    for (const std::int64_t rev : {r.status.revision, r.status.revision + 1}) {
      in.pod_labels.insert(ns + "/" += std::to_string(rev));
    }
    for (const auto& t : e.targets) in.deployments.insert(ns + "/" + t.deployment);
  }
  for (const auto& e : r.status.environments) {
    for (const auto& t : e.targets) {
      if (!t.namespace_.empty() && !t.deployment.empty()) {
        in.deployments.insert(t.namespace_ + "/" + t.deployment);
      }
    }
  }
  return in;
}

// Keeps the index current and the Deployment and pod caches to what some rollout still needs:
// what no rollout needs any more is pruned from them (outside the index lock: a cache's keep
// predicate takes it).
void Controller::IndexRollout(const kube::ObjectPtr& obj, bool deleted) {
  const std::string key = kube::ObjectKey(*obj);
  Interest now;
  if (!deleted) {
    auto r = api::DecodeRollout(*obj);
    if (r.ok()) now = InterestOf(*r);
  }
  bool prune_deployments = false;
  bool prune_pods = false;
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    Interest& before = interest_of_[key];
    prune_deployments = !Reindex(by_deployment_, key, before.deployments, now.deployments).empty();
    (void)Reindex(by_namespace_, key, before.namespaces, now.namespaces);
    prune_pods = !Reindex(by_pod_label_, key, before.pod_labels, now.pod_labels).empty();
    if (deleted) {
      interest_of_.erase(key);
    } else {
      before = std::move(now);
    }
  }
  if (prune_deployments) informers_.deployments.Prune();
  if (prune_pods) informers_.pods.Prune();
}

bool Controller::Targeted(const kube::Json& deployment) {
  const std::string key = kube::ObjectKey(deployment);
  std::lock_guard<std::mutex> lock(index_mu_);
  return by_deployment_.contains(key);
}

bool Controller::Awaited(const kube::Json& pod) {
  const kube::Json* meta = kube::Field(pod, "metadata");
  const kube::Json* labels = meta != nullptr ? kube::Field(*meta, "labels") : nullptr;
  if (labels == nullptr) return false;
  const std::string value = kube::StringField(*labels, api::kValidationLabel);
  const std::string key = kube::MetaString(pod, "namespace") + "/" + value;
  std::lock_guard<std::mutex> lock(index_mu_);
  return by_pod_label_.contains(key);
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
         informers_.namespaces.HasSynced() && informers_.pods.HasSynced() &&
         (informers_.health_pods == nullptr || informers_.health_pods->HasSynced());
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
  for (kube::Informer* i : {&informers_.rollouts, &informers_.namespaces}) {
    threads.emplace_back([i, &stop] { i->Run(stop); });
  }
  // The Deployment and pod caches keep what the rollouts name: they list once those are known.
  if (informers_.rollouts.WaitForSync(stop, std::chrono::hours(24))) {
    for (kube::Informer* i : {&informers_.deployments, &informers_.pods}) {
      threads.emplace_back([i, &stop] { i->Run(stop); });
    }
    if (kube::Informer* i = informers_.health_pods; i != nullptr) {
      threads.emplace_back([i, &stop] { i->Run(stop); });
    }
  }
  const bool synced = informers_.deployments.WaitForSync(stop, std::chrono::hours(24)) &&
                      informers_.namespaces.WaitForSync(stop, std::chrono::hours(24)) &&
                      informers_.pods.WaitForSync(stop, std::chrono::hours(24)) &&
                      (informers_.health_pods == nullptr ||
                       informers_.health_pods->WaitForSync(stop, std::chrono::hours(24)));
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
