#include "controller/rollout/reconciler.h"

#include <algorithm>
#include <charconv>

#include "controller/common/log.h"
#include "controller/metrics/metrics.h"
#include "controller/metrics/status_recorder.h"
#include "controller/rollout/codec.h"

namespace rollgate::rollout {
namespace {

std::optional<unsigned long long> NumericVersion(const kube::Json& obj) {
  const std::string rv = kube::MetaString(obj, "resourceVersion");
  unsigned long long v = 0;
  auto [p, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), v);
  if (ec != std::errc() || p != rv.data() + rv.size()) return std::nullopt;
  return v;
}

AnalysisObservation ToObservation(const SampleResult& s) {
  AnalysisObservation o;
  switch (s.outcome) {
    case SampleOutcome::kPass:
      o.outcome = AnalysisObservation::Outcome::kPass;
      break;
    case SampleOutcome::kFail:
      o.outcome = AnalysisObservation::Outcome::kFail;
      break;
    case SampleOutcome::kInconclusive:
      o.outcome = AnalysisObservation::Outcome::kInconclusive;
      break;
  }
  for (const auto& c : s.checks) {
    if (c.value) {
      o.value = std::to_string(*c.value);
      if (c.outcome != SampleOutcome::kPass) break;
    }
  }
  o.message = s.Summary();
  return o;
}

}  // namespace

std::string BuildImagePatch(const DeploymentPatch& p) {
  kube::Json containers = kube::Json::array();
  size_t i = 0;
  for (const auto& [name, image] : p.images) {
    kube::Json c = kube::Json::object();
    c["name"] = kube::Json::string(name);
    c["image"] = kube::Json::string(image);
    containers[i++] = c;
  }
  kube::Json patch = kube::Json::object();
  patch["metadata"]["annotations"][kRevisionAnnotation] = kube::Json::string(p.revision);
  patch["spec"]["template"]["spec"]["containers"] = containers;
  if (!p.init_containers.empty() || !p.remove_init_containers.empty()) {
    // Strategic merge: init containers merge by name, so re-applying is idempotent.
    kube::Json inits = kube::Json::array();
    size_t j = 0;
    for (const auto& name : p.remove_init_containers) {
      kube::Json c = kube::Json::object();
      c["name"] = kube::Json::string(name);
      c["$patch"] = kube::Json::string("delete");
      inits[j++] = c;
    }
    for (const auto& ic : p.init_containers) {
      kube::Json c = kube::Json::object();
      c["name"] = kube::Json::string(ic.name);
      c["image"] = kube::Json::string(ic.image);
      if (!ic.command.empty()) {
        kube::Json cmd = kube::Json::array();
        size_t k = 0;
        for (const auto& a : ic.command) cmd[k++] = kube::Json::string(a);
        c["command"] = cmd;
      }
      if (!ic.gpu_resource.empty()) {  // injection (a restore only sets the image back)
        c["resources"]["requests"][ic.gpu_resource] = kube::Json::string(ic.gpu_amount);
        c["resources"]["limits"][ic.gpu_resource] = kube::Json::string(ic.gpu_amount);
        c["terminationMessagePath"] = kube::Json::string("/dev/termination-log");
        c["terminationMessagePolicy"] = kube::Json::string("FallbackToLogsOnError");
      }
      inits[j++] = c;
    }
    patch["spec"]["template"]["spec"]["initContainers"] = inits;
  }
  if (p.remove_validation_label) {
    patch["spec"]["template"]["metadata"]["labels"][kValidationLabel] = kube::Json::null();
  } else if (!p.validation_label.empty()) {
    patch["spec"]["template"]["metadata"]["labels"][kValidationLabel] =
        kube::Json::string(p.validation_label);
  }
  return patch.serialize();
}

Reconciler::Reconciler(kube::KubeClient& client, const Clock& clock,
                       const kube::ObjectLister& rollouts, const kube::ObjectLister& deployments,
                       const kube::ObjectLister& namespaces, PrometheusClient* prometheus,
                       ValidationObserver* validation, kube::EventRecorder& events,
                       ReconcilerOptions opts)
    : client_(client),
      clock_(clock),
      rollouts_(rollouts),
      deployments_(deployments),
      namespaces_(namespaces),
      prometheus_(prometheus),
      validation_(validation),
      events_(events),
      opts_(std::move(opts)) {}

kube::ObjectPtr Reconciler::Fresher(const std::string& kind, const std::string& key,
                                    const kube::ObjectPtr& cached) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = written_.find(kind + ":" + key);
  if (it == written_.end()) return cached;
  if (cached) {
    auto c = NumericVersion(*cached);
    auto w = NumericVersion(*it->second);
    if (!c || !w || *c >= *w) {  // the cache caught up (or versions are not comparable)
      written_.erase(it);
      return cached;
    }
  }
  return it->second;
}

void Reconciler::Remember(const std::string& kind, const std::string& key, kube::Json obj) {
  std::lock_guard<std::mutex> lock(mu_);
  written_[kind + ":" + key] = std::make_shared<const kube::Json>(std::move(obj));
}

Status Reconciler::ApplyPatch(const DeploymentPatch& p) {
  const std::string body = BuildImagePatch(p);
  if (opts_.dry_run) {
    log::Info("reconciler", "dry run: would patch deployment",
              {{"deployment", p.namespace_ + "/" + p.name}, {"patch", body}});
    return Status::Ok();
  }
  auto res = client_.Patch(kube::resources::Deployments(), p.namespace_, p.name,
                           kube::PatchType::kStrategicMerge, body, {});
  if (!res.ok()) return res.status();
  patches_.fetch_add(1);
  log::Info("reconciler", p.rollback ? "restored previous images" : "patched deployment images",
            {{"deployment", p.namespace_ + "/" + p.name}, {"revision", p.revision}});
  Remember("deployment", p.namespace_ + "/" + p.name, std::move(res).value());
  return Status::Ok();
}

ReconcileResult Reconciler::Reconcile(const std::string& key) {
  const auto started = clock_.Now();
  kube::ObjectPtr obj = Fresher("rollout", key, rollouts_.Get(key));
  if (!obj) {  // deleted: nothing to do but forget its series
    {
      std::lock_guard<std::mutex> lock(mu_);
      eligible_.erase(key);
    }
    if (opts_.metrics != nullptr) {
      const auto slash = key.find('/');
      opts_.metrics->RolloutDeleted(key.substr(0, slash), key.substr(slash + 1));
    }
    return {};
  }
  auto decoded = DecodeRollout(*obj);
  if (!decoded.ok()) {
    log::Error("reconciler", "cannot decode ContainerRollout",
               {{"rollout", key}, {"error", decoded.status().message()}});
    return {Status(StatusCode::kInvalidArgument, decoded.status().message()), std::nullopt};
  }
  Observed obs;
  obs.rollout = std::move(decoded).value();
  obs.spec_hash = SpecHash(*obj);
  obs.now = clock_.WallNow();
  for (const auto& e : obs.rollout.spec.environments) {
    const std::string ns = EnvironmentNamespace(obs.rollout, e);
    if (auto n = namespaces_.Get(ns)) obs.namespaces[ns] = DecodeNamespace(*n);
    for (const auto& t : e.targets) {
      const std::string dkey = ns + "/" + t.deployment;
      if (auto d = Fresher("deployment", dkey, deployments_.Get(dkey))) {
        auto dv = DecodeDeployment(*d, opts_.planner.gpu_resource);
        if (dv.ok()) obs.deployments[dkey] = std::move(dv).value();
      }
    }
  }
  const EnvironmentSpec* current = nullptr;
  for (const auto& e : obs.rollout.spec.environments) {
    if (e.name == obs.rollout.status.current_environment) current = &e;
  }
  // The caches may lag behind objects created a moment ago (a Deployment applied together with
  // its rollout): before the planner may conclude "not found" for the environment at hand, ask
  // the API server. Only misses cost a request.
  const EnvironmentSpec* at_hand =
      current != nullptr
          ? current
          : (obs.rollout.spec.environments.empty() ? nullptr : &obs.rollout.spec.environments[0]);
  if (at_hand != nullptr) {
    const std::string ns = EnvironmentNamespace(obs.rollout, *at_hand);
    if (ns != obs.rollout.namespace_ && !obs.namespaces.contains(ns)) {  // own: always allowed
      auto n = client_.Get(kube::resources::Namespaces(), "", ns);
      if (n.ok()) {
        obs.namespaces[ns] = DecodeNamespace(*n);
      } else if (n.status().code() != StatusCode::kNotFound) {
        return {n.status(), std::nullopt};
      }
    }
    for (const auto& t : at_hand->targets) {
      const std::string dkey = ns + "/" + t.deployment;
      if (obs.deployments.contains(dkey)) continue;
      auto d = client_.Get(kube::resources::Deployments(), ns, t.deployment);
      if (d.ok()) {
        auto dv = DecodeDeployment(*d, opts_.planner.gpu_resource);
        if (dv.ok()) obs.deployments[dkey] = std::move(dv).value();
      } else if (d.status().code() != StatusCode::kNotFound) {
        return {d.status(), std::nullopt};  // retried with backoff: never a false "not found"
      }
    }
  }
  if (current != nullptr && validation_ != nullptr) {
    obs.validation = validation_->Observe(obs.rollout, *current);
  }

  Plan plan = PlanRollout(obs, opts_.planner);
  if (plan.sample_analysis && current != nullptr && current->analysis) {
    std::vector<Check> checks;
    for (const auto& c : current->analysis->checks)
      checks.push_back({c.name, c.query, c.min, c.max});
    SampleResult sample;
    if (prometheus_ != nullptr) {
      sample = prometheus_->Sample(current->analysis->prometheus_address, checks);
    } else {
      sample.outcome = SampleOutcome::kInconclusive;
    }
    obs.analysis_sample = ToObservation(sample);
    plan = PlanRollout(obs, opts_.planner);
  }

  const std::string stage =
      std::to_string(obs.rollout.status.revision) + "/" + obs.rollout.status.current_environment;
  bool observed_reaction = false;
  for (const auto& p : plan.patches) {
    if (!p.rollback && opts_.metrics != nullptr && !observed_reaction && !opts_.dry_run) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = eligible_.find(key);
      if (it != eligible_.end() && it->second.first == stage) {
        opts_.metrics->ObserveReactionLatency(
            std::chrono::duration<double>(clock_.Now() - it->second.second).count());
        eligible_.erase(it);
        observed_reaction = true;
      }
    }
    if (Status st = ApplyPatch(p); !st.ok()) {
      return {Status(st.code(), "patch " + p.namespace_ + "/" + p.name + ": " + st.message()),
              std::nullopt};
    }
  }
  if (plan.status) {
    if (opts_.dry_run) {
      log::Info(
          "reconciler", "dry run: would write status",
          {{"rollout", key}, {"phase", plan.status->phase}, {"message", plan.status->message}});
    } else {
      kube::Json updated = *obj;
      updated["status"] = EncodeStatus(*plan.status);
      auto res = client_.UpdateStatus(kube::resources::ContainerRollouts(), obs.rollout.namespace_,
                                      updated);
      if (!res.ok()) return {res.status(), std::nullopt};
      status_writes_.fetch_add(1);
      // An environment entering Updating is eligible from this reconcile's start; its first
      // patch (next reconcile) closes the reaction-latency measurement.
      for (const auto& e : plan.status->environments) {
        if (e.name != plan.status->current_environment || e.phase != phase::kUpdating) continue;
        const bool was_updating =
            std::any_of(obs.rollout.status.environments.begin(),
                        obs.rollout.status.environments.end(), [&](const EnvironmentStatus& o) {
                          return o.name == e.name && o.phase == phase::kUpdating &&
                                 obs.rollout.status.revision == plan.status->revision;
                        });
        if (!was_updating) {
          std::lock_guard<std::mutex> lock(mu_);
          eligible_[key] = {std::to_string(plan.status->revision) + "/" + e.name, started};
        }
      }
      // Counted only after a successful write, so a retried reconcile never counts twice.
      if (opts_.metrics != nullptr) {
        metrics::RecordStatus(*opts_.metrics, obs.rollout.namespace_, obs.rollout.name,
                              &obs.rollout.status, *plan.status);
      }
      Remember("rollout", key, std::move(res).value());
      const kube::ObjectReference ref{"rollgate.io/v1alpha1", "ContainerRollout",
                                      obs.rollout.namespace_, obs.rollout.name,
                                      obs.rollout.uid,        ""};
      for (const auto& ev : plan.events) events_.Record(ref, ev.type, ev.reason, ev.message);
      if (plan.status->phase != obs.rollout.status.phase) {
        log::Info("reconciler", "rollout phase changed",
                  {{"rollout", key},
                   {"from", obs.rollout.status.phase.empty() ? "(new)" : obs.rollout.status.phase},
                   {"to", plan.status->phase},
                   {"environment", plan.status->current_environment},
                   {"message", plan.status->message}});
      }
    }
  }
  if (opts_.metrics != nullptr && (!plan.status || opts_.dry_run)) {
    // Nothing written: keep the gauges current (e.g. after a restart).
    metrics::RecordStatus(*opts_.metrics, obs.rollout.namespace_, obs.rollout.name,
                          &obs.rollout.status, obs.rollout.status);
  }
  ReconcileResult out;
  if (plan.requeue_after) out.requeue_after = *plan.requeue_after;
  return out;
}

}  // namespace rollgate::rollout
