// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: a candidate
// acquires the Lease when it is absent, released, or not renewed by its holder for the lease
// duration (measured on the candidate's own monotonic clock from when it last saw the Lease
// change, so clock skew between replicas does not matter); the leader renews every retry period
// and gives up leadership when it could not renew within the renew deadline, which is shorter
// than the lease duration, so it stops acting before anyone else may start. A watchdog enforces
// that deadline while a renewal is still waiting on a request: a frozen connection cannot keep an
// old leader acting (on_stopped_leading runs on the watchdog's thread then). On shutdown the
// leader releases the Lease so that a successor takes over at once. Writes use the observed
// resourceVersion: two candidates can never both win the same round.
// Thread-safety: Run() on one thread; IsLeader() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/common/status.h"
#include "controller/kube/kube_client.h"

namespace rollgate::kube {

struct LeaderElectionOptions {
  std::string namespace_;
  std::string name;      // Lease name (--leader-election-id)
  std::string identity;  // this replica (hostname_random)
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

// lease > renew > 1.2 x retry, all positive; names non-empty.
Status ValidateLeaderElectionOptions(const LeaderElectionOptions& o);

class LeaderElector {
 public:
  struct Callbacks {
    std::function<void()> on_started_leading;
    std::function<void()> on_stopped_leading;     // leadership lost (not called on release)
    std::function<void(bool)> on_leader_changed;  // for the rollgate_leader gauge
  };
  LeaderElector(KubeClient& client, const Clock& clock, LeaderElectionOptions opts, Callbacks cb);

  // Campaigns until leader, then renews until `stop` fires (releasing the Lease) or no renewal
  // succeeded for the renew deadline (on_stopped_leading runs at that deadline, even while a
  // renewal request still hangs; Run returns once that request ends).
  void Run(const CancelToken& stop);

  bool IsLeader() const { return leader_.load(); }

  // One acquire-or-renew attempt (exposed for tests). True when this replica holds the Lease.
  bool TryAcquireOrRenew();
  // Releases the Lease if held (exposed for tests).
  void Release();

 private:
  Json BuildLease(const Json* existing, bool transition) const;
  // Leader -> not leader, once: the gauge, the log line, on_stopped_leading.
  void LoseLeadership(const char* why);

  KubeClient& client_;
  const Clock& clock_;
  LeaderElectionOptions opts_;
  Callbacks cb_;
  std::atomic<bool> leader_{false};
  // What this replica last saw of the Lease, and when (monotonic).
  std::string observed_holder_;
  std::string observed_renew_time_;
  std::string observed_resource_version_;
  Clock::MonoTime observed_at_{};
  int observed_duration_s_ = 0;
};

}  // namespace rollgate::kube
