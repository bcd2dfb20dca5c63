// PodHealthCache: the pods of the Deployments whose pod health the reconciler is observing, from
// a watch instead of a list per look. An environment that verifies without rolling out is looked
// at on every reconcile (PodHealth in the planner); listing its pods each time cost one LIST per
// target per look, and at 1,000 environments verifying at once that was 33 LISTs a second, each
// scanning a namespace of thousands of pods in the API server's watch cache (README,
// Performance). Now a rollout's first look at an environment lists its targets' pods once and
// hands them to a pod cache (Watch, then Offer); from then on the cache, kept current by a watch
// of pods, answers (PodsOf) and a change of one of those pods reconciles the rollout at once.
// The cache keeps only the pods of Deployments some rollout watches (Keeps, its keep predicate),
// trimmed to what PodTroubles reads (TrimHealthPod): when a rollout stops looking (Release), the
// pods of the Deployments nobody watches any more are dropped from the cache.
// A pod belongs to the Deployment its ReplicaSet is named after: the ReplicaSet controller names
// a ReplicaSet "<deployment>-<pod-template-hash>" and labels its pods with that hash
// (PodDeployment); a pod of any other owner is never kept. The pod cache must be built with
// InformerOptions::offers_follow_interest: Watch registers the interest before it takes the mark.
// Thread-safety: every method may be called from any thread (the informer's and the workers').
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "controller/common/reverse_index.h"
#include "controller/kube/informer.h"

namespace rollgate::rollout {

// "ns/deployment" of a pod made by a Deployment's ReplicaSet; "" for any other pod.
std::string PodDeployment(const kube::Json& pod);

// What the pod-health cache keeps of a pod: what PodTroubles and PodDeployment read (identity,
// creation and deletion time, the ReplicaSet owner and its hash label, the node, the containers'
// names and images, and their statuses' waiting state, restart count and last termination).
kube::Json TrimHealthPod(kube::Json&& pod);

// Whether a pod's change changes what PodTroubles says of it (a pull failing or not, a container's
// reason or restart count, the pod's deletion); `before` null: the pod is new. A healthy pod's
// changes (created, scheduled, started, ready) reconcile no rollout: readiness reaches the
// rollout through its Deployment's status, and a trouble's threshold through the planner's
// requeue.
bool TroubleMayHaveChanged(const kube::Json* before, const kube::Json& after);

class PodHealthCache {
 public:
  // `pods`: the cache of pods (an Informer whose keep predicate is Keeps); `prune(prefix)`
  // re-asks that predicate of its pods whose key starts with `prefix` (Informer::PruneWithPrefix).
  PodHealthCache(kube::ObjectLister& pods, std::function<void(const std::string&)> prune);

  // The keep predicate of the pod cache: a pod of a Deployment some rollout watches.
  bool Keeps(const kube::Json& pod) const;
  // The rollouts that watch the Deployment of `pod` (to reconcile on its change).
  std::vector<std::string> WatchersOf(const kube::Json& pod) const;

  struct Lease {
    bool primed = false;     // the cache holds these pods: read them with PodsOf
    std::uint64_t mark = 0;  // otherwise: list them, Offer each with this mark, then Primed
    // The list's resourceVersion: not older than what the cache has seen (a pod it saw deleted
    // is not offered back to it from a lagging server); "0" when the cache knows none yet.
    std::string resource_version;
  };
  // Rollout `rollout` observes the pods of `deployments` ("ns/name") for `stage` (its revision
  // and environment). Primed when it did so for the same stage and Deployments since its list
  // went in; otherwise its interest is registered (replacing an earlier one) and the caller lists.
  Lease Watch(const std::string& rollout, const std::string& stage,
              const std::set<std::string>& deployments);
  // The pods listed for `rollout` after Watch are in the cache (each Offered with the mark).
  void Primed(const std::string& rollout, const std::string& stage);
  void Offer(const kube::Json& pod, std::uint64_t mark) { pods_.Offer(pod, mark); }
  // The cached pods of `deployment` ("ns/name").
  std::vector<kube::ObjectPtr> PodsOf(const std::string& deployment) const;
  // Rollout `rollout` no longer observes pods (its environment rolled out, moved on, or it was
  // deleted): the pods of Deployments nobody watches any more leave the cache.
  void Release(const std::string& rollout);

  std::size_t watched_deployments() const;

 private:
  struct Watcher {
    std::string stage;
    std::set<std::string> deployments;
    bool primed = false;
  };
  kube::ObjectLister& pods_;
  std::function<void(const std::string&)> prune_;
  mutable std::mutex mu_;
  std::map<std::string, Watcher> watchers_;  // by rollout key
  ReverseIndex by_deployment_;               // "ns/name" -> rollout keys
};

}  // namespace rollgate::rollout
