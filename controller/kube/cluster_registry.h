// ClusterRegistry: the clients of the remote clusters that environments name
// (environments[].cluster.secretRef): one per kubeconfig Secret "namespace/name" in the hub
// cluster, built from the Secret's key `value` by the strict ParseRemoteKubeconfig, so the
// controller acts there with those credentials only. See docs/design.md "Remote clusters".
//
// - Rotation: the Secret is read again when its client is asked for at least `secret_recheck`
//   after the last read; a new resourceVersion builds a new client (calls in flight finish on the
//   old one). A Secret that is gone, or that the controller may no longer read, drops the client
//   at once: withdrawn credentials are never used from memory.
// - Isolation: every cluster has its own client, so its own rate limiter, and a breaker: after a
//   transport failure (refused, reset, timed out) the cluster's calls fail fast with kUnavailable
//   until its backoff (doubling, `min_backoff` to `max_backoff`) has passed, so one unreachable
//   cluster never holds the reconcile workers that serve the others.
// - Lifecycle: a cluster nobody asked for during `idle` is dropped (Collect(), which Client() also
//   runs once per `idle`).
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "controller/common/clock.h"
#include "controller/common/status.h"
#include "controller/kube/kube_client.h"
#include "controller/kube/kube_config.h"

namespace rollgate::kube {

// The Secret key that holds the kubeconfig (the convention Flux uses for spec.kubeConfig).
inline constexpr char kKubeconfigSecretKey[] = "value";

struct ClusterRegistryOptions {
  std::chrono::nanoseconds secret_recheck = std::chrono::seconds(30);
  std::chrono::nanoseconds idle = std::chrono::minutes(10);
  std::chrono::nanoseconds min_backoff = std::chrono::seconds(1);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(60);
};

// Builds the client of one remote cluster from its parsed kubeconfig (RestClient::FromConfig in
// production, with the controller's QPS/burst: each cluster gets its own limiter).
using ClusterClientFactory =
    std::function<Result<std::unique_ptr<KubeClient>>(const RestConfig& config)>;

class ClusterRegistry {
 public:
  ClusterRegistry(KubeClient& hub, const Clock& clock, ClusterClientFactory factory,
                  ClusterRegistryOptions opts = {});

  // The client of the cluster whose kubeconfig is Secret `name` in namespace `ns` of the hub.
  // Errors, each naming the Secret and never a credential: kNotFound (no such Secret), kForbidden
  // (the controller may not read it), kInvalidArgument (no key `value`, not base64, a kubeconfig
  // the strict parser refuses), and the hub's own failures as they came (retry).
  Result<std::shared_ptr<KubeClient>> Client(const std::string& ns, const std::string& name);

  // Drops the clusters nobody asked for during `idle`; returns how many.
  std::size_t Collect();
  std::size_t Size() const;

 private:
  struct Entry {
    std::string resource_version;  // of the Secret the client was built from
    std::shared_ptr<KubeClient> client;
    Status refused;  // the Secret's content was refused (no client): kept until the next read
    Clock::MonoTime read_at{};
    Clock::MonoTime used_at{};
  };

  Result<std::shared_ptr<KubeClient>> Build(const std::string& key, const Json& secret);
  std::size_t CollectLocked(Clock::MonoTime now);

  KubeClient& hub_;
  const Clock& clock_;
  ClusterClientFactory factory_;
  ClusterRegistryOptions opts_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> clusters_;  // "ns/name" of the Secret
  Clock::MonoTime collected_at_{};
};

// Wraps one cluster's client with the breaker described above; `name` names the cluster in its
// errors ("cluster team-a/prod-eu unreachable: ...").
std::unique_ptr<KubeClient> WithBreaker(std::unique_ptr<KubeClient> inner, std::string name,
                                        const Clock& clock, std::chrono::nanoseconds min_backoff,
                                        std::chrono::nanoseconds max_backoff);

}  // namespace rollgate::kube
