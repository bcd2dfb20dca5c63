#include "controller/metrics/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <ostream>

#include "controller/api/codec.h"
#include "controller/api/reasons.h"

namespace rollgate::metrics {
namespace {

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
  for (const std::string& reason : opts_.init_failure_reasons) {
    std::string v = SanitizeLabelValue(reason);
    if (!v.empty()) failure_reasons_.push_back(std::move(v));
  }
  std::sort(failure_reasons_.begin(), failure_reasons_.end());
  failure_reasons_.erase(std::unique(failure_reasons_.begin(), failure_reasons_.end()),
                         failure_reasons_.end());
  for (const char* result : {"resolved", "not_found", "auth_failed", "unreachable", "invalid"}) {
    image_resolutions_.Add({{"result", result}});
  }
  for (const std::string& result : SmokeCheckResults()) smoke_checks_.Add({{"result", result}});
  build_info_.Add({{"version", opts_.version}}).Set(1);
  leader_all_.Set(opts_.initially_leader ? 1 : 0);
  families_ = {&reconcile_duration_, &reconcile_errors_,     &queue_depth_,
               &reaction_latency_,   &kube_requests_,        &kube_request_duration_,
               &watch_restarts_,     &image_resolutions_,    &image_resolve_duration_,
               &smoke_checks_,       &smoke_check_duration_, &leader_,
               &build_info_};
}

Metrics::~Metrics() = default;

// ---- the per-rollout families ----

namespace {

using prometheus::ClientMetric;
using prometheus::MetricType;

// Rollouts rendered per chunk of a per-rollout family: a chunk's snapshot is about 130 samples
// per rollout of three environments, ~0.4 KiB each, so a scrape holds about 1 MiB at a time.
constexpr std::size_t kRolloutsPerChunk = 16;

// A sample with these labels (sorted by name, as prometheus-cpp exposes them).
ClientMetric Sample(std::vector<ClientMetric::Label> labels, MetricType type, double value) {
  ClientMetric m;
  std::sort(labels.begin(), labels.end());
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return m;
}

// The one-hot set of a phase: 1 for `current`, 0 for each other known phase; a current phase
// outside the known set gets a series of its own; "" (never observed) is 0 everywhere.
void OneHot(const std::vector<ClientMetric::Label>& base, const std::vector<std::string>& known,
            const std::string& current, std::vector<ClientMetric>& out) {
  auto add = [&](const std::string& phase, double value) {
    auto labels = base;
    labels.push_back({"phase", phase});
    out.push_back(Sample(std::move(labels), MetricType::Gauge, value));
  };
  for (const std::string& p : known) add(p, p == current ? 1 : 0);
  if (!current.empty() && !Contains(known, current)) add(current, 1);
}

// Removes the leading # HELP / # TYPE lines of `text` (one serialized family).
void StripHeader(std::string& text) {
  std::size_t at = 0;
  while (at < text.size() && text[at] == '#') {
    const auto nl = text.find('\n', at);
    at = nl == std::string::npos ? text.size() : nl + 1;
  }
  text.erase(0, at);
}

}  // namespace

struct Metrics::RolloutFamily {
  const char* name;
  const char* help;
  MetricType type;
  // Appends the samples of one rollout (namespace, name) to `out`; called under mu_.
  void (*render)(const Metrics& m, const RolloutKey& key, const RolloutSeries& r,
                 std::vector<ClientMetric>& out);
};

namespace {

using Label = ClientMetric::Label;

std::vector<Label> RolloutLabels(const std::pair<std::string, std::string>& key) {
  return {{"namespace", key.first}, {"rollout", key.second}};
}

std::vector<Label> EnvironmentLabels(const std::pair<std::string, std::string>& key,
                                     const std::string& environment) {
  return {{"environment", environment}, {"namespace", key.first}, {"rollout", key.second}};
}

std::vector<Label> With(std::vector<Label> labels, const char* name, const std::string& value) {
  labels.push_back({name, value});
  return labels;
}

}  // namespace

// The per-rollout families, in the order they are written (before the registry's).
std::span<const Metrics::RolloutFamily> Metrics::RolloutFamilies() {
  static constexpr std::array<RolloutFamily, 8> kFamilies = {{
      {"rollgate_rollout_phase", "1 for the phase a ContainerRollout is in, 0 for the other phases",
       MetricType::Gauge,
       [](const Metrics&, const RolloutKey& key, const RolloutSeries& r,
          std::vector<ClientMetric>& samples) {
         OneHot(RolloutLabels(key), RolloutPhases(), r.phase, samples);
       }},
      {"rollgate_rollout_info", "Revision (status.revision) of each ContainerRollout",
       MetricType::Gauge,
       [](const Metrics&, const RolloutKey& key, const RolloutSeries& r,
          std::vector<ClientMetric>& samples) {
         samples.push_back(Sample(RolloutLabels(key), MetricType::Gauge, r.revision));
       }},
      {"rollgate_environment_phase",
       "1 for the phase an environment of a ContainerRollout is in, 0 for the others",
       MetricType::Gauge,
       [](const Metrics&, const RolloutKey& key, const RolloutSeries& r,
          std::vector<ClientMetric>& samples) {
         for (const auto& [env, e] : r.environments) {
           OneHot(EnvironmentLabels(key, env), EnvironmentPhases(), e.phase, samples);
         }
       }},
      {"rollgate_environment_cluster",
       "1 for each environment of a ContainerRollout in a remote cluster, labelled with the "
       "cluster (its kubeconfig Secret)",
       MetricType::Gauge,
       [](const Metrics&, const RolloutKey& key, const RolloutSeries& r,
          std::vector<ClientMetric>& samples) {
         for (const auto& [env, cluster] : r.clusters) {
           samples.push_back(
               Sample(With(EnvironmentLabels(key, env), "cluster", SanitizeLabelValue(cluster)),
                      MetricType::Gauge, 1));
         }
       }},
      {"rollgate_rollout_failures_total",
       "Environments of a ContainerRollout that failed, by reason", MetricType::Counter,
       [](const Metrics& m, const RolloutKey& key, const RolloutSeries& r,
          std::vector<ClientMetric>& samples) {
         for (const auto& [env, e] : r.environments) {
           const auto base = EnvironmentLabels(key, env);
           for (std::size_t i = 0; i < m.failure_reasons_.size(); ++i) {
             samples.push_back(Sample(With(base, "reason", m.failure_reasons_[i]),
                                      MetricType::Counter, e.failures[i]));
           }
           for (const auto& [reason, n] : e.other_failures) {
             samples.push_back(Sample(With(base, "reason", reason), MetricType::Counter, n));
           }
         }
       }},
      {"rollgate_rollbacks_total",
       "Automatic rollbacks of an environment to its previous images after a failure",
       MetricType::Counter,
       [](const Metrics&, const RolloutKey& key, const RolloutSeries& r,
          std::vector<ClientMetric>& samples) {
         for (const auto& [env, e] : r.environments) {
           samples.push_back(Sample(EnvironmentLabels(key, env), MetricType::Counter, e.rollbacks));
         }
       }},
      {"rollgate_environment_duration_seconds",
       "Time from the start of an environment to its success", MetricType::Histogram,
       [](const Metrics&, const RolloutKey& key, const RolloutSeries& r,
          std::vector<ClientMetric>& samples) {
         const auto& bounds = EnvironmentDurationBuckets();
         for (const auto& [env, e] : r.environments) {
           if (!e.duration) continue;
           ClientMetric m = Sample(EnvironmentLabels(key, env), MetricType::Histogram, 0);
           m.histogram.sample_count = e.duration->count;
           m.histogram.sample_sum = e.duration->sum;
           std::uint64_t cumulative = 0;
           for (std::size_t i = 0; i < bounds.size(); ++i) {
             cumulative += e.duration->buckets[i];
             m.histogram.bucket.push_back({cumulative, bounds[i]});
           }
           m.histogram.bucket.push_back(
               {e.duration->count, std::numeric_limits<double>::infinity()});
           samples.push_back(std::move(m));
         }
       }},
      {"rollgate_worker_validations_total",
       "Worker startup validations (CUDA on GPU nodes) by result", MetricType::Counter,
       [](const Metrics&, const RolloutKey& key, const RolloutSeries& r,
          std::vector<ClientMetric>& samples) {
         for (const auto& [env, e] : r.environments) {
           const auto base = EnvironmentLabels(key, env);
           samples.push_back(
               Sample(With(base, "result", "passed"), MetricType::Counter, e.validations_passed));
           samples.push_back(
               Sample(With(base, "result", "failed"), MetricType::Counter, e.validations_failed));
         }
       }},
  }};
  return kFamilies;
}

std::function<std::optional<std::string>()> Metrics::TextPieces() const {
  return [this, cursor = TextCursor{}]() mutable { return NextPiece(cursor); };
}

void Metrics::WriteText(std::ostream& out) const {
  TextCursor cursor;
  while (const auto piece = NextPiece(cursor)) out << *piece;
}

// The per-rollout families kRolloutsPerChunk rollouts at a time: each chunk is rendered under the
// lock (from the rollout after the previous chunk's last, so a rollout added or deleted between
// chunks is simply in or out), serialized without it; a family's header comes with its first
// sample, and a family without samples is left out. Then the registry's families, one at a time.
std::optional<std::string> Metrics::NextPiece(TextCursor& c) const {
  const prometheus::TextSerializer text;
  const auto families = RolloutFamilies();
  while (c.family < families.size()) {
    const RolloutFamily& f = families[c.family];
    prometheus::MetricFamily chunk{f.name, f.help, f.type, {}};
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = c.after ? rollouts_.upper_bound(*c.after) : rollouts_.begin();
      for (std::size_t n = 0; it != rollouts_.end() && n < kRolloutsPerChunk; ++it, ++n) {
        f.render(*this, it->first, it->second, chunk.metric);
        c.after = it->first;
      }
      last = it == rollouts_.end();
    }
    const bool header_written = c.header_written;
    c.header_written = header_written || !chunk.metric.empty();
    if (last) {
      ++c.family;
      c.after.reset();
      c.header_written = false;
    }
    if (chunk.metric.empty()) continue;
    std::string piece = text.Serialize({chunk});
    if (header_written) StripHeader(piece);
    return piece;
  }
  if (c.registry < families_.size()) return text.Serialize(families_[c.registry++]->Collect());
  return std::nullopt;
}

Metrics::RolloutSeries& Metrics::RolloutLocked(const std::string& ns, const std::string& name) {
  return rollouts_[{ns, name}];
}

Metrics::EnvironmentSeries& Metrics::EnvironmentLocked(RolloutSeries& r,
                                                       const std::string& environment) {
  auto [it, inserted] = r.environments.try_emplace(environment);
  if (inserted) it->second.failures.assign(failure_reasons_.size(), 0);
  return it->second;
}

void Metrics::ObserveRollout(const std::string& ns, const std::string& name, std::int64_t revision,
                             const std::string& phase,
                             const std::vector<std::pair<std::string, std::string>>& environments) {
  std::lock_guard<std::mutex> lock(mu_);
  RolloutSeries& r = RolloutLocked(ns, name);
  r.revision = static_cast<double>(revision);
  r.phase = phase.empty() ? "Pending" : SanitizeLabelValue(phase);
  // Environments: drop those no longer listed, then set each listed one.
  std::erase_if(r.environments, [&](const auto& entry) {
    return std::none_of(environments.begin(), environments.end(),
                        [&](const auto& e) { return e.first == entry.first; });
  });
  for (const auto& [env_name, env_phase] : environments) {
    EnvironmentLocked(r, env_name).phase =
        env_phase.empty() ? "Pending" : SanitizeLabelValue(env_phase);
  }
}

void Metrics::ObserveEnvironmentClusters(const std::string& ns, const std::string& name,
                                         const std::map<std::string, std::string>& remote) {
  std::lock_guard<std::mutex> lock(mu_);
  if (remote.empty() && !rollouts_.contains({ns, name})) return;  // nothing to add or remove
  RolloutLocked(ns, name).clusters = remote;
}

void Metrics::RolloutDeleted(const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  rollouts_.erase({ns, name});
}

void Metrics::CountFailure(const std::string& ns, const std::string& name,
                           const std::string& environment, const std::string& reason) {
  std::string v = SanitizeLabelValue(reason);
  if (v.empty()) v = "Unknown";
  std::lock_guard<std::mutex> lock(mu_);
  EnvironmentSeries& e = EnvironmentLocked(RolloutLocked(ns, name), environment);
  auto known = std::lower_bound(failure_reasons_.begin(), failure_reasons_.end(), v);
  if (known != failure_reasons_.end() && *known == v) {
    e.failures[static_cast<std::size_t>(known - failure_reasons_.begin())] += 1;
  } else {
    e.other_failures[v] += 1;
  }
}

void Metrics::CountRollback(const std::string& ns, const std::string& name,
                            const std::string& environment) {
  std::lock_guard<std::mutex> lock(mu_);
  EnvironmentLocked(RolloutLocked(ns, name), environment).rollbacks += 1;
}

void Metrics::ObserveEnvironmentDuration(const std::string& ns, const std::string& name,
                                         const std::string& environment, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  EnvironmentSeries& e = EnvironmentLocked(RolloutLocked(ns, name), environment);
  const auto& bounds = EnvironmentDurationBuckets();
  if (!e.duration) {
    e.duration = std::make_unique<DurationHistogram>();
    e.duration->buckets.assign(bounds.size(), 0);
  }
  // The first bucket whose bound is at least the value (bounds are inclusive); above them all,
  // only +Inf (the count) holds it.
  const auto bucket = std::lower_bound(bounds.begin(), bounds.end(), seconds);
  if (bucket != bounds.end())
    ++e.duration->buckets[static_cast<std::size_t>(bucket - bounds.begin())];
  ++e.duration->count;
  e.duration->sum += seconds;
}

void Metrics::CountValidation(const std::string& ns, const std::string& name,
                              const std::string& environment, bool passed, std::uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  EnvironmentSeries& e = EnvironmentLocked(RolloutLocked(ns, name), environment);
  (passed ? e.validations_passed : e.validations_failed) += static_cast<double>(n);
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
