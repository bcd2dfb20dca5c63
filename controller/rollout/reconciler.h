// Reconciler: executes what the planner decides for one ContainerRollout key, in four steps:
//   Observe  the rollout, its target Deployments and namespaces (and the pods for worker
//            validation) from the informer caches, overlaid with the objects its own writes
//            returned, and a live GET where the caches miss what the current environment needs;
//   Plan     the pure planner, with an analysis sample taken at most once when it asks for one;
//   Execute  the Deployment patches, then the status write (optimistic concurrency on the
//            observed resourceVersion), then the Events;
//   Record   reaction latency and metrics, through a ReconcileRecorder.
// Objects returned by its own writes are kept as an overlay until the caches catch up, so a
// reconcile that runs before the watch delivers its own change never patches twice or plans from
// a stale status. See docs/design.md "Write order and crash safety".
// Thread-safety: Reconcile() may run concurrently for different keys (the work queue never hands
// one key to two workers); the overlay is internally locked.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "controller/common/clock.h"
#include "controller/common/status.h"
#include "controller/kube/cluster_registry.h"
#include "controller/kube/event_recorder.h"
#include "controller/kube/informer.h"
#include "controller/kube/kube_client.h"
#include "controller/kube/remote_watches.h"
#include "controller/rollout/analysis.h"
#include "controller/rollout/analysis_runner.h"
#include "controller/rollout/image_resolver.h"
#include "controller/rollout/planner.h"
#include "controller/rollout/pod_health_cache.h"
#include "controller/rollout/smoke_check.h"
#include "controller/validation/observer.h"

namespace rollgate::rollout {

// What the reconciler reports as it goes; the metrics implement it (metrics/status_recorder.h).
// Thread-safety: called from every reconcile worker.
class ReconcileRecorder {
 public:
  virtual ~ReconcileRecorder() = default;
  // A status was written: `before` is the status the plan started from. Also called with
  // before == &after when nothing was written, to keep gauges current (e.g. after a restart).
  virtual void StatusWritten(const api::Rollout& r, const api::RolloutStatus* before,
                             const api::RolloutStatus& after) = 0;
  virtual void RolloutDeleted(const std::string& ns, const std::string& name) = 0;
  // From an environment becoming eligible (entering Updating) to its first patch.
  virtual void ReactionLatency(std::chrono::duration<double> latency) = 0;
};

struct ReconcilerOptions {
  PlannerOptions planner;
  bool dry_run = false;                   // plan and report, change nothing
  ReconcileRecorder* recorder = nullptr;  // optional
  // A status change that only mirrors progress (replica counters, validated pods, the messages
  // describing them) is written at most once per this interval per rollout; phase changes and
  // everything else at once (with the latest progress). Zero writes every change at once.
  std::chrono::nanoseconds progress_interval = std::chrono::seconds(5);
  // The pod-health gate lists the current environment's pods while it verifies without rolling
  // out. A list that found no trouble is trusted for this long by the reconciles that follow (one
  // per Deployment status change otherwise listed again each time), with a reconcile when it
  // ends; a list that found a trouble is never reused, so a failure is decided on a fresh list.
  // Zero lists on every such reconcile. Each further trouble-free list of the same revision and
  // environment doubles the trust, up to pod_health_max_interval: an environment that has verified
  // cleanly for a while lists less often (a wave of 1,000 slow environments listed every 5 s kept
  // the reconcile workers and the API server busy with lists). A trouble or another revision or
  // environment starts again from pod_health_interval.
  std::chrono::nanoseconds pod_health_interval = std::chrono::seconds(5);
  std::chrono::nanoseconds pod_health_max_interval = std::chrono::seconds(30);
  // The watched pods of the targets whose pod health is observed (pod_health_cache.h); nullptr:
  // every look lists them (with the trust above). With it, an environment of this cluster lists
  // its targets' pods once per revision and environment and reads the cache from then on, with a
  // reconcile at least every pod_health_max_interval besides the one each pod change brings.
  // A remote cluster's pods are always listed.
  PodHealthCache* pod_cache = nullptr;
  // Looks images up in their registries for the pre-flight of spec.imagePolicy; nullptr: no
  // registry is reachable (such a rollout waits on RegistryUnreachable, then fails).
  ImageResolver* images = nullptr;
  // The smoke-check Jobs' settings (their time to live once finished).
  SmokeJobOptions smoke{};
  // The clients of remote clusters (environments[].cluster); nullptr: none can be reached (such an
  // environment waits on ClusterUnreachable, then fails).
  kube::ClusterRegistry* clusters = nullptr;
  // Watches of the remote clusters' Deployments (a change there reconciles the rollouts that
  // asked); nullptr: none (remote environments are polled every remote_poll).
  kube::RemoteWatches* remote_watches = nullptr;
  // How often a rollout whose current environment is in a remote cluster is looked at again while
  // it progresses: remote_poll while no watch of its namespace has listed; remote_resync once one
  // has (Deployment changes come from the watch; pods, e.g. a crash loop or a failed validation,
  // are read on these reconciles).
  std::chrono::nanoseconds remote_poll = std::chrono::seconds(3);
  std::chrono::nanoseconds remote_resync = std::chrono::seconds(10);
};

struct ReconcileResult {
  Status status;  // non-OK: retry with backoff when retryable, else give up on this event
  std::optional<std::chrono::nanoseconds> requeue_after;
};

class Reconciler {
 public:
  Reconciler(kube::KubeClient& client, const Clock& clock, const kube::ObjectLister& rollouts,
             kube::ObjectLister& deployments, const kube::ObjectLister& namespaces,
             AnalysisRunner* analysis, validation::ValidationObserver* validation,
             kube::EventRecorder& events, ReconcilerOptions opts);

  ReconcileResult Reconcile(const std::string& key);

  // Counters for tests and metrics.
  std::uint64_t patches() const { return patches_; }
  std::uint64_t status_writes() const { return status_writes_; }

 private:
  // The observed world of one rollout and what its current environment is.
  struct Observation {
    kube::ObjectPtr object;  // the rollout as read (cache or own write)
    Observed observed;
    const api::EnvironmentSpec* current = nullptr;  // status.currentEnvironment, if any
    // The pod templates (spec.template) of the Deployments read fresh for this plan, "ns/name":
    // what a smoke-check Job is built from.
    std::map<std::string, kube::Json> fresh_templates;
    // The remote Deployments read for this plan, by scoped key: what remote worker validation
    // is judged on (there is no cache of a remote cluster).
    std::map<std::string, kube::Json> remote_deployments;
    bool remote_watched = false;  // a watch of the environment's remote namespace has listed
  };

  // Where a namespace of the plan lives (api::ScopedNamespace): the client of its cluster (the
  // controller's own, or the registry's for a remote one, held for the call) and its name there.
  struct Scope {
    std::shared_ptr<kube::KubeClient> remote;
    kube::KubeClient* client = nullptr;
    std::string cluster;  // "" for the controller's own cluster
    std::string ns;
  };
  Result<Scope> ScopeOf(const std::string& rollout_ns, const std::string& scoped_ns);
  // A remote cluster's failure (other than NotFound) is recorded for the planner (it holds the
  // environment: ClusterUnreachable) and is not an error of the reconcile; a local one is.
  static Status Unusable(const Scope& scope, const Status& st, Observed& obs);
  void ObserveRemoteValidation(Observation& o);

  Result<Observation> Observe(const std::string& key, const kube::ObjectPtr& obj);
  Status ObserveLive(const api::EnvironmentSpec& env, Observation& o);
  Plan MakePlan(Observation& o);
  // Lists the pods (Observed::pods), into the pod cache with a lease of it; false when a list
  // failed (what was listed is kept).
  bool ObservePods(Observation& o, const PodHealthCache::Lease* lease);
  // ObservePods through the pod cache (opts_.pod_cache), for an environment of this cluster.
  void ObserveCachedPods(Observation& o, const std::string& stage);
  // How much longer the last trouble-free pod list of this rollout's revision and environment is
  // trusted (the trust RecordPodList gave it); nullopt: list now.
  std::optional<std::chrono::nanoseconds> HealthyPodsTrusted(const std::string& key,
                                                             const std::string& stage);
  // Records a pod list of the stage: a clean one is trusted (longer each time in a row), one with
  // a trouble forgets the trust.
  void RecordPodList(const std::string& key, const std::string& stage, bool clean);
  // Asks the resolver for the lookups the plan wants; false while they are not in yet.
  bool ObserveImages(Observation& o, const Plan& plan);
  // An unusable scope (ScopeOf failed) of namespace `scoped_ns`, as Unusable judges it.
  static Status ScopeUnusable(const std::string& scoped_ns, const Status& st, Observed& obs);
  Result<Plan> PlanOnFreshTargets(Observation& o);
  Status ReadNamespace(const std::string& ns, Observed& obs);
  static Status ApplyNamespaceRead(const std::string& ns, const Scope& scope,
                                   const Result<kube::Json>& n, Observed& obs);
  // The GETs of one round of the write guard (defined in reconciler.cc): issued together, on the
  // calling thread's ScopeOf and Mark, then applied one target at a time, in order.
  struct FreshGet;
  struct TargetRead;
  std::vector<TargetRead> IssueTargetReads(
      const std::set<std::pair<std::string, std::string>>& stale, const Observed& obs,
      const std::set<std::string>& namespaces_read);
  Status ApplyTargetRead(TargetRead& read, Observation& o, std::set<std::string>& namespaces_read);
  Status ReadClaimOwner(const std::string& owner, Observed& obs);
  // Reads the Jobs of the smoke checks the plan asked for into Observed::smoke_jobs.
  void ObserveSmokeJobs(Observation& o, const Plan& plan);
  Status CreateSmokeJobs(const Observation& o, const Plan& plan);
  void DeleteSmokeJobs(const std::string& key, const Plan& plan);
  void ForgetStale(const std::string& key);
  // *deleted: the rollout was gone when its status was written (not an error).
  Status Execute(const std::string& key, const Observation& o, const Plan& plan,
                 Clock::MonoTime started, bool* deleted,
                 std::optional<std::chrono::nanoseconds>* deferred);
  std::optional<std::chrono::nanoseconds> ProgressWriteDelay(const std::string& key,
                                                             const api::RolloutStatus& before,
                                                             const Plan& plan);
  Status ExecutePatches(const std::string& key, const Observed& obs, const Plan& plan);
  ReconcileResult ReconcilePass(const std::string& key, Clock::MonoTime started, bool* again);
  Status StatusWriteRefused(const std::string& key, const Observation& o, const Status& refused);
  Status ExecuteStatus(const std::string& key, const Observation& o, const Plan& plan,
                       Clock::MonoTime started);
  void RecordDeleted(const std::string& key);
  void RecordUnchanged(const Observed& obs, const Plan& plan);

  kube::ObjectPtr Fresher(const std::string& kind, const std::string& key,
                          const kube::ObjectPtr& cached);
  void Remember(const std::string& kind, const std::string& key, kube::Json obj);
  Status ApplyPatch(const std::string& rollout_ns, const DeploymentPatch& p);

  kube::KubeClient& client_;
  const Clock& clock_;
  const kube::ObjectLister& rollouts_;
  kube::ObjectLister& deployments_;  // a cache of the targeted ones: live reads fill it
  const kube::ObjectLister& namespaces_;
  AnalysisRunner* analysis_;
  validation::ValidationObserver* validation_;
  kube::EventRecorder& events_;
  ReconcilerOptions opts_;

  std::mutex mu_;
  std::map<std::string, kube::ObjectPtr> written_;  // "kind:ns/name" -> object from our write
  // When each rollout's current environment became eligible (entered Updating), for the
  // reaction-latency measurement: "ns/name" -> (revision/environment, time).
  std::map<std::string, std::pair<std::string, Clock::MonoTime>> eligible_;
  std::map<std::string, Clock::MonoTime> last_status_write_;  // by rollout key
  // The last trouble-free pod list of each rollout and how long it is trusted.
  struct HealthyPods {
    std::string stage;  // "revision/environment"
    Clock::MonoTime at;
    std::chrono::nanoseconds trust;
  };
  std::map<std::string, HealthyPods> healthy_pods_;  // by rollout key
  std::atomic<std::uint64_t> patches_{0};
  std::atomic<std::uint64_t> status_writes_{0};
};

// The strategic-merge patch that sets container images and the revision annotation.
std::string BuildImagePatch(const DeploymentPatch& p);

}  // namespace rollgate::rollout
