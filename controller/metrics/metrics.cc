#include "controller/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <ostream>

#include "controller/api/codec.h"
#include "controller/api/reasons.h"

namespace rollgate::metrics {
namespace {

using prometheus::Labels;

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

const std::vector<std::string>& RolloutPhases() {
  static const std::vector<std::string> kPhases = [] {
    std::vector<std::string> out;
    for (api::RolloutPhase p : api::AllRolloutPhases()) out.push_back(api::PhaseName(p));
    return out;
  }();
  return kPhases;
}

const std::vector<std::string>& EnvironmentPhases() {
  static const std::vector<std::string> kPhases = [] {
    std::vector<std::string> out;
    for (api::EnvironmentPhase p : api::AllEnvironmentPhases()) out.push_back(api::PhaseName(p));
    return out;
  }();
  return kPhases;
}

// Every failure reason of the catalogue (api/reasons.h), sorted.
const std::vector<std::string>& KnownFailureReasons() {
  static const std::vector<std::string> kReasons = [] {
    std::vector<std::string> out;
    for (const api::ReasonInfo& r : api::Reasons()) {
      if (r.kind == api::ReasonKind::kFailure) out.emplace_back(r.name);
    }
    std::sort(out.begin(), out.end());
    return out;
  }();
  return kReasons;
}

std::string SanitizeLabelValue(const std::string& value) {
  if (value.empty()) return value;
  if (value.size() > 64) return "Other";
  for (char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return "Other";
  }
  return value;
}

const std::vector<double>& EnvironmentDurationBuckets() {
  // Seconds to hours: a quick dev rollout to a long bake in production.
  static const std::vector<double> kBuckets = {10,  30,   60,   120,  300,   600,
                                               900, 1800, 3600, 7200, 14400, 28800};
  return kBuckets;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
  return kBuckets;
}

const std::vector<double>& SmokeCheckDurationBuckets() {
  // A quick command to a long suite; timeoutSeconds defaults to 300.
  static const std::vector<double> kBuckets = {1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
  return kBuckets;
}

const std::vector<std::string>& SmokeCheckResults() {
  static const std::vector<std::string> kResults = {"passed", "failed", "timed_out"};
  return kResults;
}

Metrics::Metrics(std::shared_ptr<prometheus::Registry> registry, MetricsOptions opts)
    : registry_(registry ? std::move(registry) : std::make_shared<prometheus::Registry>()),
      opts_(std::move(opts)),
      rollout_phase_(prometheus::BuildGauge()
                         .Name("rollgate_rollout_phase")
                         .Help("1 for the phase a ContainerRollout is in, 0 for the other phases")
                         .Register(*registry_)),
      rollout_info_(prometheus::BuildGauge()
                        .Name("rollgate_rollout_info")
                        .Help("Revision (status.revision) of each ContainerRollout")
                        .Register(*registry_)),
      environment_phase_(
          prometheus::BuildGauge()
              .Name("rollgate_environment_phase")
              .Help("1 for the phase an environment of a ContainerRollout is in, 0 for the others")
              .Register(*registry_)),
      environment_cluster_(prometheus::BuildGauge()
                               .Name("rollgate_environment_cluster")
                               .Help("1 for each environment of a ContainerRollout in a remote "
                                     "cluster, labelled with the cluster (its kubeconfig Secret)")
                               .Register(*registry_)),
      failures_(prometheus::BuildCounter()
                    .Name("rollgate_rollout_failures_total")
                    .Help("Environments of a ContainerRollout that failed, by reason")
                    .Register(*registry_)),
      rollbacks_(
          prometheus::BuildCounter()
              .Name("rollgate_rollbacks_total")
              .Help("Automatic rollbacks of an environment to its previous images after a failure")
              .Register(*registry_)),
      environment_duration_(prometheus::BuildHistogram()
                                .Name("rollgate_environment_duration_seconds")
                                .Help("Time from the start of an environment to its success")
                                .Register(*registry_)),
      validations_(prometheus::BuildCounter()
                       .Name("rollgate_worker_validations_total")
                       .Help("Worker startup validations (CUDA on GPU nodes) by result")
                       .Register(*registry_)),
      reconcile_duration_(prometheus::BuildHistogram()
                              .Name("rollgate_reconcile_duration_seconds")
                              .Help("Time taken by one reconcile of a ContainerRollout key")
                              .Register(*registry_)),
      reconcile_errors_(prometheus::BuildCounter()
                            .Name("rollgate_reconcile_errors_total")
                            .Help("Reconciles that returned an error")
                            .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("rollgate_workqueue_depth")
                       .Help("Keys waiting in the work queue (not counting delayed ones)")
                       .Register(*registry_)),
      reaction_latency_(
          prometheus::BuildHistogram()
              .Name("rollgate_reaction_latency_seconds")
              .Help("Time from a rollout's creation or an environment becoming eligible to the "
                    "first Deployment patch")
              .Register(*registry_)),
      kube_requests_(prometheus::BuildCounter()
                         .Name("rollgate_kube_requests_total")
                         .Help("Requests to the Kubernetes API server by verb and HTTP code")
                         .Register(*registry_)),
      kube_request_duration_(prometheus::BuildHistogram()
                                 .Name("rollgate_kube_request_duration_seconds")
                                 .Help("Latency of requests to the Kubernetes API server by verb")
                                 .Register(*registry_)),
      watch_restarts_(prometheus::BuildCounter()
                          .Name("rollgate_watch_restarts_total")
                          .Help("Watches restarted (dropped, expired or re-listed) by resource")
                          .Register(*registry_)),
      image_resolutions_(
          prometheus::BuildCounter()
              .Name("rollgate_image_resolutions_total")
              .Help("Images looked up in their registries by the pre-flight of spec.imagePolicy, "
                    "by result (resolved, not_found, auth_failed, unreachable, invalid)")
              .Register(*registry_)),
      image_resolve_duration_(
          prometheus::BuildHistogram()
              .Name("rollgate_image_resolve_seconds")
              .Help("Time the pre-flight of spec.imagePolicy took to resolve one image (successful "
                    "lookups)")
              .Register(*registry_)),
      smoke_checks_(prometheus::BuildCounter()
                        .Name("rollgate_smoke_checks_total")
                        .Help("Smoke checks (a command run in the new image as a Job) that "
                              "finished, by result (passed, failed, timed_out)")
                        .Register(*registry_)),
      smoke_check_duration_(
          prometheus::BuildHistogram()
              .Name("rollgate_smoke_check_seconds")
              .Help("Time from a smoke check's start to its result (every result)")
              .Register(*registry_)),
      leader_(prometheus::BuildGauge()
                  .Name("rollgate_leader")
                  .Help("1 while this instance holds the leader lease")
                  .Register(*registry_)),
      build_info_(prometheus::BuildGauge()
                      .Name("rollgate_build_info")
                      .Help("Always 1; the version label names the build")
                      .Register(*registry_)),
      reconcile_duration_all_(reconcile_duration_.Add({}, LatencyBuckets())),
      reconcile_errors_all_(reconcile_errors_.Add({})),
      queue_depth_all_(queue_depth_.Add({})),
      reaction_latency_all_(reaction_latency_.Add({}, LatencyBuckets())),
      image_resolve_duration_all_(image_resolve_duration_.Add({}, LatencyBuckets())),
      smoke_check_duration_all_(smoke_check_duration_.Add({}, SmokeCheckDurationBuckets())),
      leader_all_(leader_.Add({})) {
  for (const char* result : {"resolved", "not_found", "auth_failed", "unreachable", "invalid"}) {
    image_resolutions_.Add({{"result", result}});
  }
  for (const std::string& result : SmokeCheckResults()) smoke_checks_.Add({{"result", result}});
  build_info_.Add({{"version", opts_.version}}).Set(1);
  leader_all_.Set(opts_.initially_leader ? 1 : 0);
  families_ = {&rollout_phase_,
               &rollout_info_,
               &environment_phase_,
               &environment_cluster_,
               &failures_,
               &rollbacks_,
               &environment_duration_,
               &validations_,
               &reconcile_duration_,
               &reconcile_errors_,
               &queue_depth_,
               &reaction_latency_,
               &kube_requests_,
               &kube_request_duration_,
               &watch_restarts_,
               &image_resolutions_,
               &image_resolve_duration_,
               &smoke_checks_,
               &smoke_check_duration_,
               &leader_,
               &build_info_};
}

void Metrics::WriteText(std::ostream& out) const {
  const prometheus::TextSerializer text;
  for (const prometheus::Collectable* f : families_) text.Serialize(out, f->Collect());
}

Metrics::~Metrics() = default;

Metrics::RolloutSeries& Metrics::RolloutLocked(const std::string& ns, const std::string& name) {
  auto [it, inserted] = rollouts_.try_emplace({ns, name});
  RolloutSeries& r = it->second;
  if (inserted) {
    const Labels base = {{"namespace", ns}, {"rollout", name}};
    for (const auto& p : RolloutPhases()) {
      Labels l = base;
      l["phase"] = p;
      r.phase[p] = &rollout_phase_.Add(l);
    }
    r.info = &rollout_info_.Add(base);
  }
  return r;
}

Metrics::EnvironmentSeries& Metrics::EnvironmentLocked(RolloutSeries& r, const std::string& ns,
                                                       const std::string& name,
                                                       const std::string& environment) {
  auto [it, inserted] = r.environments.try_emplace(environment);
  EnvironmentSeries& e = it->second;
  if (inserted) {
    const Labels base = {{"namespace", ns}, {"rollout", name}, {"environment", environment}};
    for (const auto& p : EnvironmentPhases()) {
      Labels l = base;
      l["phase"] = p;
      e.phase[p] = &environment_phase_.Add(l);
    }
    for (const auto& reason : opts_.init_failure_reasons) {
      const std::string v = SanitizeLabelValue(reason);
      if (v.empty() || e.failures.contains(v)) continue;
      Labels l = base;
      l["reason"] = v;
      e.failures[v] = &failures_.Add(l);
    }
    e.rollbacks = &rollbacks_.Add(base);
    Labels passed = base;
    passed["result"] = "passed";
    e.validations_passed = &validations_.Add(passed);
    Labels failed = base;
    failed["result"] = "failed";
    e.validations_failed = &validations_.Add(failed);
  }
  return e;
}

void Metrics::RemoveEnvironmentLocked(EnvironmentSeries& e) {
  for (auto& [p, g] : e.phase) environment_phase_.Remove(g);
  for (auto& [reason, c] : e.failures) failures_.Remove(c);
  rollbacks_.Remove(e.rollbacks);
  validations_.Remove(e.validations_passed);
  validations_.Remove(e.validations_failed);
  if (e.duration != nullptr) environment_duration_.Remove(e.duration);
  e = EnvironmentSeries{};
}

void Metrics::ObserveRollout(const std::string& ns, const std::string& name, std::int64_t revision,
                             const std::string& phase,
                             const std::vector<std::pair<std::string, std::string>>& environments) {
  std::lock_guard<std::mutex> lock(mu_);
  RolloutSeries& r = RolloutLocked(ns, name);
  r.info->Set(static_cast<double>(revision));

  // One-hot phase; a phase outside the known set gets a series of its own while it lasts.
  const std::string current = phase.empty() ? "Pending" : SanitizeLabelValue(phase);
  if (!r.phase.contains(current)) {
    r.phase[current] =
        &rollout_phase_.Add({{"namespace", ns}, {"rollout", name}, {"phase", current}});
  }
  for (auto it = r.phase.begin(); it != r.phase.end();) {
    if (it->first != current && !Contains(RolloutPhases(), it->first)) {
      rollout_phase_.Remove(it->second);
      it = r.phase.erase(it);
      continue;
    }
    it->second->Set(it->first == current ? 1 : 0);
    ++it;
  }

  // Environments: drop those no longer listed, then set each listed one.
  for (auto it = r.environments.begin(); it != r.environments.end();) {
    const bool listed = std::any_of(environments.begin(), environments.end(),
                                    [&](const auto& e) { return e.first == it->first; });
    if (!listed) {
      RemoveEnvironmentLocked(it->second);
      it = r.environments.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [env_name, env_phase] : environments) {
    EnvironmentSeries& e = EnvironmentLocked(r, ns, name, env_name);
    const std::string cur = env_phase.empty() ? "Pending" : SanitizeLabelValue(env_phase);
    if (!e.phase.contains(cur)) {
      e.phase[cur] = &environment_phase_.Add(
          {{"namespace", ns}, {"rollout", name}, {"environment", env_name}, {"phase", cur}});
    }
    for (auto it = e.phase.begin(); it != e.phase.end();) {
      if (it->first != cur && !Contains(EnvironmentPhases(), it->first)) {
        environment_phase_.Remove(it->second);
        it = e.phase.erase(it);
        continue;
      }
      it->second->Set(it->first == cur ? 1 : 0);
      ++it;
    }
  }
}

void Metrics::ObserveEnvironmentClusters(const std::string& ns, const std::string& name,
                                         const std::map<std::string, std::string>& remote) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = rollouts_.find({ns, name});
  if (found == rollouts_.end() && remote.empty()) return;  // nothing to add, nothing to remove
  RolloutSeries& r = RolloutLocked(ns, name);
  for (auto it = r.clusters.begin(); it != r.clusters.end();) {
    auto want = remote.find(it->first);
    if (want == remote.end() || want->second != it->second.first) {
      environment_cluster_.Remove(it->second.second);
      it = r.clusters.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [environment, cluster] : remote) {
    if (r.clusters.contains(environment)) continue;
    prometheus::Gauge& g = environment_cluster_.Add({{"namespace", ns},
                                                     {"rollout", name},
                                                     {"environment", environment},
                                                     {"cluster", SanitizeLabelValue(cluster)}});
    g.Set(1);
    r.clusters[environment] = {cluster, &g};
  }
}

void Metrics::RolloutDeleted(const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rollouts_.find({ns, name});
  if (it == rollouts_.end()) return;
  RolloutSeries& r = it->second;
  for (auto& [env, c] : r.clusters) environment_cluster_.Remove(c.second);
  for (auto& [p, g] : r.phase) rollout_phase_.Remove(g);
  rollout_info_.Remove(r.info);
  for (auto& [env, e] : r.environments) RemoveEnvironmentLocked(e);
  rollouts_.erase(it);
}

void Metrics::CountFailure(const std::string& ns, const std::string& name,
                           const std::string& environment, const std::string& reason) {
  std::string v = SanitizeLabelValue(reason);
  if (v.empty()) v = "Unknown";
  std::lock_guard<std::mutex> lock(mu_);
  EnvironmentSeries& e = EnvironmentLocked(RolloutLocked(ns, name), ns, name, environment);
  auto it = e.failures.find(v);
  if (it == e.failures.end()) {
    it = e.failures
             .emplace(v, &failures_.Add({{"namespace", ns},
                                         {"rollout", name},
                                         {"environment", environment},
                                         {"reason", v}}))
             .first;
  }
  it->second->Increment();
}

void Metrics::CountRollback(const std::string& ns, const std::string& name,
                            const std::string& environment) {
  std::lock_guard<std::mutex> lock(mu_);
  EnvironmentLocked(RolloutLocked(ns, name), ns, name, environment).rollbacks->Increment();
}

void Metrics::ObserveEnvironmentDuration(const std::string& ns, const std::string& name,
                                         const std::string& environment, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  EnvironmentSeries& e = EnvironmentLocked(RolloutLocked(ns, name), ns, name, environment);
  if (e.duration == nullptr) {
    e.duration = &environment_duration_.Add(
        {{"namespace", ns}, {"rollout", name}, {"environment", environment}},
        EnvironmentDurationBuckets());
  }
  e.duration->Observe(seconds);
}

void Metrics::CountValidation(const std::string& ns, const std::string& name,
                              const std::string& environment, bool passed, std::uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  EnvironmentSeries& e = EnvironmentLocked(RolloutLocked(ns, name), ns, name, environment);
  (passed ? e.validations_passed : e.validations_failed)->Increment(static_cast<double>(n));
}

void Metrics::ObserveReconcile(double seconds, bool error) {
  reconcile_duration_all_.Observe(seconds);
  if (error) reconcile_errors_all_.Increment();
}

void Metrics::SetQueueDepth(std::size_t depth) { queue_depth_all_.Set(static_cast<double>(depth)); }

std::size_t Metrics::queue_depth() const {
  return static_cast<std::size_t>(queue_depth_all_.Value());
}

void Metrics::ObserveReactionLatency(double seconds) { reaction_latency_all_.Observe(seconds); }

void Metrics::SetLeader(bool leader) { leader_all_.Set(leader ? 1 : 0); }

void Metrics::ObserveKubeRequest(const std::string& verb, int code,
                                 std::chrono::nanoseconds latency) {
  std::string v = SanitizeLabelValue(verb);
  if (v.empty()) v = "unknown";
  const std::string c = code > 0 && code < 1000 ? std::to_string(code) : "<error>";
  kube_requests_.Add({{"verb", v}, {"code", c}}).Increment();
  kube_request_duration_.Add({{"verb", v}}, LatencyBuckets())
      .Observe(std::chrono::duration<double>(latency).count());
}

void Metrics::ObserveImageResolution(const std::string& result, double seconds) {
  std::string v = SanitizeLabelValue(result);
  if (v.empty()) v = "unknown";
  image_resolutions_.Add({{"result", v}}).Increment();
  // The time a pre-flight spends per image; failures are counted above, and a refused
  // connection's few milliseconds would only pull the quantiles down.
  if (v == "resolved") image_resolve_duration_all_.Observe(seconds);
}

void Metrics::ObserveSmokeCheck(const std::string& result, double seconds) {
  std::string v = SanitizeLabelValue(result);
  if (v.empty()) v = "unknown";
  smoke_checks_.Add({{"result", v}}).Increment();
  smoke_check_duration_all_.Observe(seconds > 0 ? seconds : 0);
}

void Metrics::CountWatchRestart(const std::string& resource) {
  std::string v = SanitizeLabelValue(resource);
  if (v.empty()) v = "unknown";
  watch_restarts_.Add({{"resource", v}}).Increment();
}

}  // namespace rollgate::metrics
