// RemoteWatches: the watches of a remote cluster's Deployments (environments[].cluster), one per
// (cluster, namespace), kept while rollouts ask for them. A change to a Deployment there
// reconciles every rollout that asked for that watch within `idle`, so a remote environment moves
// on a watch event as a local one does, instead of on the next poll.
//
// - Started by the first Want() for a (cluster, namespace); stopped by Collect() (which Want()
//   also runs once per `idle`) when nobody asked for it during `idle`, or restarted when Want()
//   hands in another client for the cluster (its kubeconfig Secret rotated).
// - Each watch is an Informer (list, then watch with bookmarks, resume, re-list on 410, backoff)
//   on its own thread, through the cluster's own client (its limiter and breaker). It stores only
//   each Deployment's identity (namespace, name, resourceVersion): memory does not grow with what
//   tenants put into their Deployments.
// Thread-safety: every method may be called from any thread; `changed` runs on a watch's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/kube/informer.h"
#include "controller/kube/kube_client.h"

namespace rollgate::kube {

class RemoteWatches {
 public:
  using Changed = std::function<void(const std::string& rollout_key)>;

  RemoteWatches(const Clock& clock, Changed changed,
                std::chrono::nanoseconds idle = std::chrono::minutes(2));
  ~RemoteWatches();  // stops every watch
  RemoteWatches(const RemoteWatches&) = delete;
  RemoteWatches& operator=(const RemoteWatches&) = delete;

  // Keeps (or starts) the watch of Deployments in namespace `ns` of cluster `cluster` (the key of
  // its kubeconfig Secret, "ns/name") for rollout `rollout_key`. True when that watch has listed
  // (changes there will reconcile the rollout); false while it starts or re-lists.
  bool Want(const std::string& cluster, const std::shared_ptr<KubeClient>& client,
            const std::string& ns, const std::string& rollout_key);

  // Stops the watches nobody asked for during `idle`; returns how many.
  std::size_t Collect();
  std::size_t Size() const;

 private:
  struct Watch {
    std::shared_ptr<KubeClient> client;
    std::unique_ptr<Informer> informer;
    std::unique_ptr<CancelToken> cancel;
    std::thread thread;
    std::map<std::string, Clock::MonoTime> rollouts;  // who asked, when last
    Clock::MonoTime used_at{};
  };
  using Key = std::pair<std::string, std::string>;  // (cluster, namespace)

  std::unique_ptr<Watch> Start(const Key& key, const std::shared_ptr<KubeClient>& client);
  // Takes out of watches_ (under mu_) what Collect must stop; stopped outside the lock.
  std::vector<std::unique_ptr<Watch>> TakeIdleLocked(Clock::MonoTime now);
  static void Stop(Watch& w);
  void Notify(const Key& key);

  const Clock& clock_;
  Changed changed_;
  const std::chrono::nanoseconds idle_;
  mutable std::mutex mu_;
  std::map<Key, std::unique_ptr<Watch>> watches_;
  Clock::MonoTime collected_at_{};
};

}  // namespace rollgate::kube
