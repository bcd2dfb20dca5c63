// Controller: wires the informers (ContainerRollouts, Deployments, Namespaces) to the work queue
// and runs the workers that call the Reconciler. Deployment and Namespace events map back to the
// rollouts that target them through an index maintained from the rollout informer. The loop owns
// the retry policy: a retryable error requeues with per-key backoff, a terminal one is dropped
// (the status says why), an explicit requeue-after schedules the next look.
// Thread-safety: Run() once; the informer handlers and workers are internally synchronised.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/kube/event_recorder.h"
#include "controller/kube/informer.h"
#include "controller/kube/kube_client.h"
#include "controller/kube/work_queue.h"
#include "controller/rollout/reconciler.h"

namespace rollgate::metrics {
class Heartbeat;
}  // namespace rollgate::metrics

namespace rollgate::rollout {

struct ControllerOptions {
  std::string watch_namespace;  // "" = all namespaces
  int concurrency = 4;
  ReconcilerOptions reconciler;
  std::function<std::unique_ptr<PrometheusClient>()> prometheus_factory;
  // Blocks until this replica may reconcile (leader election); false: stop. Unset: always.
  std::function<bool(const CancelToken&)> wait_for_leadership;
  metrics::Heartbeat* heartbeat = nullptr;  // workers beat it: /healthz detects a wedged loop
  std::function<void(const std::string& resource)> on_watch_restart;  // metrics hook
};

class Controller {
 public:
  Controller(kube::KubeClient& client, const Clock& clock, kube::EventRecorder& events,
             ControllerOptions opts);
  ~Controller();

  // Runs until `stop` fires; returns after every thread has ended.
  void Run(const CancelToken& stop);

  bool HasSynced() const;
  std::size_t QueueDepth() const { return queue_.Len(); }
  const Reconciler& reconciler() const { return *reconciler_; }

 private:
  void IndexRollout(const kube::ObjectPtr& obj, bool deleted);
  void EnqueueTargetsOf(const std::string& deployment_key);
  void EnqueueNamespace(const std::string& ns);
  void Worker();

  kube::KubeClient& client_;
  const Clock& clock_;
  ControllerOptions opts_;
  std::unique_ptr<kube::Informer> rollouts_;
  std::unique_ptr<kube::Informer> deployments_;
  std::unique_ptr<kube::Informer> namespaces_;
  std::unique_ptr<kube::Informer> pods_;  // only pods labelled for worker validation
  std::unique_ptr<ValidationObserver> validation_;
  std::unique_ptr<PrometheusClient> prometheus_;
  std::unique_ptr<Reconciler> reconciler_;
  kube::WorkQueue queue_;

  std::mutex index_mu_;
  std::map<std::string, std::set<std::string>> by_deployment_;  // "ns/deploy" -> rollout keys
  std::map<std::string, std::set<std::string>> by_namespace_;   // target ns -> rollout keys
  std::map<std::string, std::vector<std::string>> targets_of_;  // rollout key -> its index keys
};

}  // namespace rollgate::rollout
