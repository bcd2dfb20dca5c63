// Controller: the work loop. Informer events (ContainerRollouts, Deployments, Namespaces, pods
// labelled for worker validation) become keys in the work queue; workers hand each key to the
// reconcile function and act on DecideRequeue (requeue.h). Deployment, Namespace and pod events
// map back to the rollouts that target them through an index kept from the rollout informer.
// Everything it uses is handed in (the informers by the composition root, wiring.h; tests hand in
// their own); it builds nothing. See docs/design.md "Threading model".
// Thread-safety: Run() once; the informer handlers and workers are internally synchronised.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/kube/informer.h"
#include "controller/kube/work_queue.h"
#include "controller/rollout/reconciler.h"

namespace rollgate::metrics {
class Heartbeat;
class Metrics;
}  // namespace rollgate::metrics

namespace rollgate::manager {

// The caches the controller watches; owned by the caller, run by Controller::Run.
struct Informers {
  kube::Informer& rollouts;
  kube::Informer& deployments;
  kube::Informer& namespaces;
  kube::Informer& pods;  // only pods labelled for worker validation
  // The pods whose health is observed (rollout::PodHealthCache); its keep predicate and handlers
  // are its owner's. Optional.
  kube::Informer* health_pods = nullptr;
};

using ReconcileFn = std::function<rollout::ReconcileResult(const std::string& key)>;

struct ControllerOptions {
  int concurrency = 4;
  // Blocks until this replica may reconcile (leader election); false: stop. Unset: always.
  std::function<bool(const CancelToken&)> wait_for_leadership;
  metrics::Heartbeat* heartbeat = nullptr;  // workers beat it: /healthz detects a wedged loop
  metrics::Metrics* metrics = nullptr;      // reconcile durations and errors; optional
  // The longest a failed key waits before its retry (the per-key backoff doubles from 5 ms up to
  // this). Bounded so that a rollout moves within this long after the API server comes back from
  // an outage: its failures during the outage, and the 429/503s of a server still starting, keep
  // doubling the delay (to 80-160 s after a 20 s outage with client-go's 1000 s cap), and nothing
  // else wakes the key when no object changed meanwhile.
  std::chrono::nanoseconds max_retry_delay = std::chrono::seconds(30);
};

class Controller {
 public:
  Controller(const Clock& clock, Informers informers, ReconcileFn reconcile,
             ControllerOptions opts);

  // Runs the informers and, once they synced and this replica may act, the workers; returns
  // after `stop` fired and every thread it started has ended.
  void Run(const CancelToken& stop);

  bool HasSynced() const;
  std::size_t QueueDepth() const { return queue_.Len(); }
  // Reconciles `key` ("ns/name") soon, e.g. when its analysis sample is done.
  void Enqueue(const std::string& key) { queue_.Add(key); }

 private:
  void IndexRollout(const kube::ObjectPtr& obj, bool deleted);
  bool Targeted(const kube::Json& deployment);
  bool Awaited(const kube::Json& pod);
  void EnqueueTargetsOf(const std::string& deployment_key);
  void EnqueueNamespace(const std::string& ns);
  void Worker();
  void ProcessOne(const std::string& key);

  const Clock& clock_;
  Informers informers_;
  ReconcileFn reconcile_;
  ControllerOptions opts_;
  kube::WorkQueue queue_;

  // What one rollout makes the caches keep: the Deployments it targets or recorded in status,
  // the namespaces of its environments, and the worker-validation label values ("ns/value") it
  // waits for in them.
  struct Interest {
    std::set<std::string> deployments;
    std::set<std::string> namespaces;
    std::set<std::string> pod_labels;
  };

  static Interest InterestOf(const api::Rollout& r);

  std::mutex index_mu_;
  std::map<std::string, std::set<std::string>> by_deployment_;  // "ns/deploy" -> rollout keys
  std::map<std::string, std::set<std::string>> by_namespace_;   // target ns -> rollout keys
  std::map<std::string, std::set<std::string>> by_pod_label_;   // "ns/value" -> rollout keys
  std::map<std::string, Interest> interest_of_;                 // rollout key -> what it indexed
};

}  // namespace rollgate::manager
