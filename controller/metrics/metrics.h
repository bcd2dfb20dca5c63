// Metrics: the controller's Prometheus metric families (prefix rollgate_), kept in a
// prometheus::Registry that this object owns or is given (no globals). Components get a Metrics&
// (or one of the hooks it offers) through their options and report what happened; the registry is
// exposed by MetricsServer (metrics_server.h). RecordStatus (status_recorder.h) turns a reconcile's
// status change into the per-rollout calls below.
//
// Label sets are bounded by construction: namespace, rollout, environment, cluster (a remote
// environment's kubeconfig Secret, one series per such environment), reason, phase, result,
// verb, code, resource and version only. Reasons, phases and verbs are passed through
// SanitizeLabelValue, so a free-form string (an error message, an image reference) can never
// become a label value. Series that are known up front start at 0 so that increase() sees the
// first event: at construction reconcile errors and each result of the controller-wide image
// resolution and smoke check counters, and per rollout environment the rollback counter, the
// validation counters (passed, failed) and the failure counter of every known reason when the
// rollout is first observed. RolloutDeleted removes every series of a rollout. Per environment
// that is 9 phase + one failure series per KnownFailureReasons() entry + 3 counter series (+ 15
// histogram series once an environment succeeded); per rollout 9 phase + 1 info series. Those
// per-rollout series are kept as plain values (a phase, an array of counts), not as
// prometheus-cpp metrics, and rendered by WriteText: about 0.5 KiB per rollout instead of about
// 60 KiB. The controller-wide families (API requests, registries, smoke checks) carry no
// rollout label, so their series do not grow with the number of rollouts.
//
// Thread-safety: every method is safe to call from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace prometheus {
class Collectable;
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace rollgate::metrics {

// Rollout phases (status.phase) and environment phases (status.environments[].phase), in the
// order their series are exported. They are the phases of api/types.h, as api/codec.h writes them.
const std::vector<std::string>& RolloutPhases();
const std::vector<std::string>& EnvironmentPhases();
// The environment failure reasons the planner reports (CamelCase, as in status and events).
const std::vector<std::string>& KnownFailureReasons();

// A bounded label value for a reason/phase/verb-like string: kept when it is 1-64 characters of
// [A-Za-z0-9_.-], else "Other" ("" stays ""). Never lets an error message become a label value.
std::string SanitizeLabelValue(const std::string& value);

struct MetricsOptions {
  std::string version = ROLLGATE_VERSION;  // rollgate_build_info{version}
  // Failure reasons whose rollgate_rollout_failures_total series start at 0 for every environment
  // of a rollout when it is first observed. Other reasons are created on first use.
  std::vector<std::string> init_failure_reasons = KnownFailureReasons();
  // Initial value of rollgate_leader. True while there is no leader election (the only instance
  // always leads); with leader election, start false and call SetLeader on every change.
  bool initially_leader = true;
};

class Metrics {
 public:
  // Uses `registry`, or a new one when null.
  explicit Metrics(std::shared_ptr<prometheus::Registry> registry = nullptr,
                   MetricsOptions opts = {});
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The registry of the controller-wide families. The per-rollout families are not in it (see
  // below): WriteText is the exposition of everything.
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }
  // Writes every family of this instance in the text exposition format: the per-rollout families
  // a few rollouts at a time, then the registry's one family at a time. A scrape never holds a
  // snapshot of everything (the whole registry's snapshot was the controller's largest peak
  // allocation, 8 MiB at 100 rollouts; README, Performance).
  void WriteText(std::ostream& out) const;
  // The same text in pieces, for a scrape that never holds it whole (at 1,000 rollouts of three
  // environments it is 19 MB): each call returns the next piece (a few rollouts of one per-rollout
  // family, or one registry family), nullopt after the last. The Metrics must outlive it; one
  // caller at a time.
  std::function<std::optional<std::string>()> TextPieces() const;
  // TextPieces as the MetricsServer's exposition (a new one per scrape); the Metrics must outlive
  // the server.
  std::function<std::function<std::optional<std::string>()>()> Exposition() const {
    return [this] { return TextPieces(); };
  }

  // ---- per rollout (called with the status the reconciler wrote) ----

  // Sets rollgate_rollout_phase (one-hot over RolloutPhases(); "" counts as Pending),
  // rollgate_rollout_info (value = revision) and rollgate_environment_phase for each
  // (environment, phase) pair (one-hot). Environments no longer listed lose all their series.
  // The first observation of an environment creates its zero-valued counters.
  void ObserveRollout(const std::string& ns, const std::string& name, std::int64_t revision,
                      const std::string& phase,
                      const std::vector<std::pair<std::string, std::string>>& environments);
  // rollgate_environment_cluster{namespace, rollout, environment, cluster} = 1 for each
  // environment in a remote cluster (environments[].cluster: the name of its kubeconfig Secret),
  // to join onto the per-environment series; none for environments in the controller's own
  // cluster. `remote`: environment -> cluster; environments not in it lose their series.
  void ObserveEnvironmentClusters(const std::string& ns, const std::string& name,
                                  const std::map<std::string, std::string>& remote);
  // Removes every series labelled with this rollout.
  void RolloutDeleted(const std::string& ns, const std::string& name);

  void CountFailure(const std::string& ns, const std::string& name, const std::string& environment,
                    const std::string& reason);
  void CountRollback(const std::string& ns, const std::string& name,
                     const std::string& environment);
  // Time from an environment's start to its success.
  void ObserveEnvironmentDuration(const std::string& ns, const std::string& name,
                                  const std::string& environment, double seconds);
  void CountValidation(const std::string& ns, const std::string& name,
                       const std::string& environment, bool passed, std::uint64_t n = 1);

  // ---- controller loop ----

  void ObserveReconcile(double seconds, bool error);
  void SetQueueDepth(std::size_t depth);
  std::size_t queue_depth() const;
  // Creation or eligibility of an environment -> the first Deployment patch.
  void ObserveReactionLatency(double seconds);
  void SetLeader(bool leader);

  // ---- API server access ----

  // Signature of kube::RestClientOptions::observe; code 0 (transport failure) is "<error>".
  void ObserveKubeRequest(const std::string& verb, int code, std::chrono::nanoseconds latency);
  void CountWatchRestart(const std::string& resource);

  // ---- registries (spec.imagePolicy) ----
  // One image looked up: rollgate_image_resolutions_total{result} (image_resolver.h
  // LookupResult; each result's series starts at 0) and, when it resolved,
  // rollgate_image_resolve_seconds.
  void ObserveImageResolution(const std::string& result, double seconds);

  // ---- smoke checks (environments[].smokeChecks) ----
  // One smoke check finished: rollgate_smoke_checks_total{result} (passed, failed, timed_out;
  // each series starts at 0) and rollgate_smoke_check_seconds, its start to its result (every
  // result). Controller-wide, not per rollout: RecordStatus (status_recorder.h) reports each
  // result once.
  void ObserveSmokeCheck(const std::string& result, double seconds);

 private:
  // The per-rollout series are plain values here, not prometheus-cpp metrics: a prometheus-cpp
  // series costs its own label map (about 600 bytes), and a rollout of three environments has
  // about 130 of them (one-hot phases, a zero-valued failure counter per known reason), which was
  // half of the controller's memory per rollout (README, Performance). WriteText renders them
  // in the same text format, a few rollouts at a time.
  struct DurationHistogram {
    std::vector<std::uint64_t> buckets;  // per EnvironmentDurationBuckets() bound, not cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct EnvironmentSeries {
    std::string phase;                             // sanitized; "Pending" when the status has none
    std::vector<double> failures;                  // per failure_reasons_ entry
    std::map<std::string, double> other_failures;  // reasons outside failure_reasons_
    double rollbacks = 0;
    double validations_passed = 0;
    double validations_failed = 0;
    std::unique_ptr<DurationHistogram> duration;  // from the environment's first success
  };
  struct RolloutSeries {
    std::string phase;  // sanitized; "Pending" when the status has none
    double revision = 0;
    std::map<std::string, EnvironmentSeries> environments;
    std::map<std::string, std::string> clusters;  // environment -> cluster (Secret name)
  };
  using RolloutKey = std::pair<std::string, std::string>;  // namespace, name
  // One per-rollout family: its name, help, type, and how one rollout's series are rendered.
  struct RolloutFamily;

  RolloutSeries& RolloutLocked(const std::string& ns, const std::string& name);
  EnvironmentSeries& EnvironmentLocked(RolloutSeries& r, const std::string& environment);
  static std::span<const RolloutFamily> RolloutFamilies();
  // Where a scrape is: the per-rollout family it writes (then the registry's) and the last rollout
  // written of it.
  struct TextCursor {
    std::size_t family = 0;
    std::optional<RolloutKey> after;
    bool header_written = false;  // of the current per-rollout family
    std::size_t registry = 0;     // the next of families_, once the per-rollout ones are done
  };
  std::optional<std::string> NextPiece(TextCursor& c) const;

  std::shared_ptr<prometheus::Registry> registry_;
  MetricsOptions opts_;
  std::vector<std::string>
      failure_reasons_;  // opts_.init_failure_reasons sanitized, sorted, unique
  std::vector<const prometheus::Collectable*> families_;  // the registry's families, for WriteText

  prometheus::Family<prometheus::Histogram>& reconcile_duration_;
  prometheus::Family<prometheus::Counter>& reconcile_errors_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Histogram>& reaction_latency_;
  prometheus::Family<prometheus::Counter>& kube_requests_;
  prometheus::Family<prometheus::Histogram>& kube_request_duration_;
  prometheus::Family<prometheus::Counter>& watch_restarts_;
  prometheus::Family<prometheus::Counter>& image_resolutions_;
  prometheus::Family<prometheus::Histogram>& image_resolve_duration_;
  prometheus::Family<prometheus::Counter>& smoke_checks_;
  prometheus::Family<prometheus::Histogram>& smoke_check_duration_;
  prometheus::Family<prometheus::Gauge>& leader_;
  prometheus::Family<prometheus::Gauge>& build_info_;

  prometheus::Histogram& reconcile_duration_all_;
  prometheus::Counter& reconcile_errors_all_;
  prometheus::Gauge& queue_depth_all_;
  prometheus::Histogram& reaction_latency_all_;
  prometheus::Histogram& image_resolve_duration_all_;
  prometheus::Histogram& smoke_check_duration_all_;
  prometheus::Gauge& leader_all_;

  // Guards rollouts_.
  mutable std::mutex mu_;
  std::map<RolloutKey, RolloutSeries> rollouts_;
};

// Histogram buckets, exposed for tests and dashboards.
const std::vector<double>& EnvironmentDurationBuckets();
const std::vector<double>& LatencyBuckets();
const std::vector<double>& SmokeCheckDurationBuckets();
// The results of rollgate_smoke_checks_total, each of whose series starts at 0.
const std::vector<std::string>& SmokeCheckResults();

}  // namespace rollgate::metrics
