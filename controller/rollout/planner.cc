#include "controller/rollout/planner.h"

#include <algorithm>

#include "controller/rollout/image_ref.h"

namespace rollgate::rollout {
namespace {

using std::chrono::seconds;

bool InProgress(const std::string& env_phase) {
  return env_phase == phase::kUpdating || env_phase == phase::kVerifying ||
         env_phase == phase::kBaking;
}

bool Terminal(const std::string& rollout_phase) {
  return rollout_phase == phase::kSucceeded || rollout_phase == phase::kFailed ||
         rollout_phase == phase::kRolledBack || rollout_phase == phase::kAborted;
}

std::map<std::string, std::string> DesiredImages(const RolloutSpec& spec, const TargetSpec& t) {
  std::map<std::string, std::string> out;
  for (const auto& [container, logical] : t.containers) {
    auto it = spec.images.find(logical);
    out[container] = it == spec.images.end() ? std::string() : it->second;
  }
  return out;
}

bool ImagesMatch(const DeploymentView& d, const std::map<std::string, std::string>& want) {
  for (const auto& [container, image] : want) {
    auto it = d.container_images.find(container);
    if (it == d.container_images.end() || it->second != image) return false;
  }
  return true;
}

bool RolledOut(const DeploymentView& d) {
  return d.observed_generation >= d.generation && d.updated_replicas == d.spec_replicas &&
         d.replicas == d.spec_replicas && d.available_replicas == d.spec_replicas;
}

std::string Revision(std::int64_t r) { return std::to_string(r); }

// Mutable planning context: the status being built plus what the plan accumulates.
class Planner {
 public:
  Planner(const Observed& obs, const PlannerOptions& opts)
      : obs_(obs), opts_(opts), r_(obs.rollout), st_(obs.rollout.status) {}

  Plan Run();

 private:
  EnvironmentStatus* Current();
  const EnvironmentSpec* CurrentSpec();
  int CurrentIndex() const;
  const DeploymentView* Find(const std::string& ns, const std::string& name) const;

  void Event(const char* type, const std::string& reason, const std::string& message) {
    plan_.events.push_back({type, reason, message});
  }
  void RequeueAfter(seconds s) {
    s = std::max(s, seconds(1));
    if (!plan_.requeue_after || s < *plan_.requeue_after) plan_.requeue_after = s;
  }
  seconds Until(WallTime t) const {
    return std::chrono::duration_cast<seconds>(t - obs_.now) + seconds(1);
  }

  void StartRevision();
  bool HandleAnnotations();
  bool ValidateSpec();
  void Step();
  void StepPending(const EnvironmentSpec& spec, EnvironmentStatus& env);
  void StepUpdating(const EnvironmentSpec& spec, EnvironmentStatus& env);
  void StepVerifying(const EnvironmentSpec& spec, EnvironmentStatus& env);
  void StepBaking(const EnvironmentSpec& spec, EnvironmentStatus& env);
  void StepRollingBack(const EnvironmentSpec& spec, EnvironmentStatus& env);
  // Checks deployments exist, are healthy with the given images; fills target counters.
  // Returns "" when all are rolled out, else what is awaited; sets `failure` on hard failure.
  std::string CheckHealth(const EnvironmentSpec& spec, EnvironmentStatus& env, bool rollback,
                          std::string* failure_reason, std::string* failure);
  void Fail(const EnvironmentSpec& spec, EnvironmentStatus& env, const std::string& reason,
            const std::string& message);
  void Advance(EnvironmentStatus& env);
  void SetConditions();

  const Observed& obs_;
  const PlannerOptions& opts_;
  const Rollout& r_;
  RolloutStatus st_;
  Plan plan_;
  bool aborting_ = false;
};

int Planner::CurrentIndex() const {
  for (size_t i = 0; i < st_.environments.size(); ++i) {
    if (st_.environments[i].name == st_.current_environment) return static_cast<int>(i);
  }
  return -1;
}

EnvironmentStatus* Planner::Current() {
  const int i = CurrentIndex();
  return i < 0 ? nullptr : &st_.environments[static_cast<size_t>(i)];
}

const EnvironmentSpec* Planner::CurrentSpec() {
  for (const auto& e : r_.spec.environments) {
    if (e.name == st_.current_environment) return &e;
  }
  return nullptr;
}

const DeploymentView* Planner::Find(const std::string& ns, const std::string& name) const {
  auto it = obs_.deployments.find(ns + "/" + name);
  return it == obs_.deployments.end() ? nullptr : &it->second;
}

void Planner::StartRevision() {
  const bool first = st_.revision == 0;
  st_.revision += 1;
  st_.spec_hash = obs_.spec_hash;
  st_.environments.clear();
  for (const auto& e : r_.spec.environments) {
    EnvironmentStatus es;
    es.name = e.name;
    st_.environments.push_back(std::move(es));
  }
  st_.current_environment = r_.spec.environments.empty() ? "" : r_.spec.environments[0].name;
  st_.phase = phase::kProgressing;
  st_.message = "revision " + Revision(st_.revision) + " started";
  Event(
      "Normal", first ? "RolloutStarted" : "NewRevision",
      "revision " + Revision(st_.revision) + " started at environment " + st_.current_environment);
}

bool Planner::HandleAnnotations() {
  // Each annotation value acts once: its value is recorded in status.bookkeeping when handled.
  auto fresh = [&](const char* key) -> bool {
    auto it = r_.annotations.find(key);
    if (it == r_.annotations.end() || it->second.empty()) return false;
    auto h = st_.handled_annotations.find(key);
    return h == st_.handled_annotations.end() || h->second != it->second;
  };
  auto handle = [&](const char* key) { st_.handled_annotations[key] = r_.annotations.at(key); };

  if (fresh(kAbortAnnotation)) {
    handle(kAbortAnnotation);
    EnvironmentStatus* env = Current();
    if (Terminal(st_.phase) || env == nullptr) {
      Event("Normal", "AbortIgnored", "abort requested, but the rollout is already " + st_.phase);
    } else if (InProgress(env->phase) || env->phase == phase::kRollingBack) {
      aborting_ = true;
      if (env->phase != phase::kRollingBack) {
        env->phase = phase::kRollingBack;
        env->reason = "Aborted";
        env->message = "aborted by the rollgate.io/abort annotation; restoring previous images";
        env->finished_at = obs_.now;
        st_.phase = phase::kRollingBack;
        st_.message = "aborted in environment " + env->name + "; rolling back";
        Event("Warning", "Aborted", st_.message);
      }
    } else {
      // Nothing of this environment was changed yet.
      env->phase = phase::kPending;  // no longer awaiting approval: a late promote does nothing
      env->reason = "Aborted";
      env->message = "aborted by the rollgate.io/abort annotation before any change";
      st_.phase = phase::kAborted;
      st_.message = "aborted before environment " + env->name + " changed";
      Event("Warning", "Aborted", st_.message);
      return true;
    }
  }
  if (fresh(kRetryAnnotation)) {
    handle(kRetryAnnotation);
    EnvironmentStatus* env = Current();
    if (env != nullptr && (st_.phase == phase::kFailed || st_.phase == phase::kRolledBack ||
                           st_.phase == phase::kAborted)) {
      const int attempts = env->attempts + 1;
      std::vector<TargetStatus> recorded = std::move(env->targets);
      *env = EnvironmentStatus{};
      env->name = st_.current_environment;
      env->attempts = attempts;
      env->targets = std::move(recorded);  // the first attempt's previous images stay
      st_.phase = phase::kProgressing;
      st_.message = "retrying environment " + env->name;
      Event("Normal", "Retry", st_.message + " (attempt " + std::to_string(attempts + 1) + ")");
    } else {
      Event("Normal", "RetryIgnored", "retry requested, but the rollout is " + st_.phase);
    }
  }
  if (fresh(kPromoteAnnotation)) {
    handle(kPromoteAnnotation);
    EnvironmentStatus* env = Current();
    if (env != nullptr && env->phase == phase::kAwaitingApproval && !Terminal(st_.phase)) {
      env->approved_at = obs_.now;
      env->phase = phase::kPending;
      st_.phase = phase::kProgressing;
      Event("Normal", "Promoted", "environment " + env->name + " approved");
    } else {
      Event("Normal", "PromoteIgnored", "promote requested, but no environment awaits approval");
    }
  }
  return false;
}

bool Planner::ValidateSpec() {
  // What the CRD's schema and CEL rules cannot express: image reference syntax.
  for (const auto& [logical, ref] : r_.spec.images) {
    auto parsed = ParseImageRef(ref);
    if (!parsed.ok()) {
      st_.phase = phase::kFailed;
      st_.message = "spec.images." + logical + ": " + parsed.status().message();
      st_.observed_generation = r_.generation;
      SetConditions();
      auto& ready = st_.conditions[0];
      ready.reason = "InvalidSpec";
      ready.message = st_.message;
      for (auto& c : st_.conditions) {
        if (c.type == "Degraded") {
          c.reason = "InvalidSpec";
          c.message = st_.message;
        }
      }
      Event("Warning", "InvalidSpec", st_.message);
      return false;
    }
  }
  return true;
}

void Planner::Fail(const EnvironmentSpec& spec, EnvironmentStatus& env, const std::string& reason,
                   const std::string& message) {
  // A failure is persisted before anything else changes: no roll-forward patch goes with it.
  plan_.patches.clear();
  env.reason = reason;
  env.message = message;
  env.finished_at = obs_.now;
  Event("Warning", reason, "environment " + env.name + ": " + message);
  const bool changed =
      std::any_of(env.targets.begin(), env.targets.end(),
                  [](const TargetStatus& t) { return !t.previous_images.empty(); });
  if (r_.spec.automatic_rollback && changed) {
    env.phase = phase::kRollingBack;
    st_.phase = phase::kRollingBack;
    st_.message = "environment " + env.name + " failed (" + reason + "); rolling back";
    Event("Warning", "RollingBack", "environment " + env.name + ": restoring previous images");
  } else {
    env.phase = phase::kFailed;
    st_.phase = phase::kFailed;
    st_.message = "environment " + env.name + " failed: " + reason + ": " + message;
  }
  (void)spec;
}

void Planner::Advance(EnvironmentStatus& env) {
  env.phase = phase::kSucceeded;
  env.finished_at = obs_.now;
  env.reason = "Succeeded";
  env.message = "every target runs the new images";
  Event("Normal", "EnvironmentSucceeded", "environment " + env.name + " succeeded");
  const int i = CurrentIndex();
  if (i + 1 < static_cast<int>(st_.environments.size())) {
    st_.current_environment = st_.environments[static_cast<size_t>(i) + 1].name;
    st_.message = "environment " + env.name + " succeeded; next: " + st_.current_environment;
    RequeueAfter(seconds(1));
  } else {
    st_.phase = phase::kSucceeded;
    st_.message = "revision " + Revision(st_.revision) + " rolled out to every environment";
    Event("Normal", "RolloutSucceeded", st_.message);
  }
}

void Planner::StepPending(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  if (spec.manual_approval && !env.approved_at) {
    if (env.phase != phase::kAwaitingApproval) {
      env.phase = phase::kAwaitingApproval;
      Event("Normal", "AwaitingApproval",
            "environment " + env.name + " waits for `rollgate promote` (rollgate.io/promote)");
    }
    st_.phase = phase::kAwaitingApproval;
    st_.message = "environment " + env.name + " awaits approval";
    return;
  }
  // Pre-flight: nothing is changed unless every check passes.
  const std::string ns = EnvironmentNamespace(r_, spec);
  if (ns != r_.namespace_) {
    auto it = obs_.namespaces.find(ns);
    const bool allowed = it != obs_.namespaces.end() && [&] {
      auto l = it->second.labels.find(kAllowFromLabel);
      return l != it->second.labels.end() && l->second == r_.namespace_;
    }();
    if (!allowed) {
      Fail(spec, env, "NamespaceNotPermitted",
           "namespace " + ns + " does not opt in to rollouts from " + r_.namespace_ +
               " (label it " + kAllowFromLabel + "=" + r_.namespace_ + ")");
      return;
    }
  }
  for (const auto& [logical, ref] : r_.spec.images) {
    auto parsed = ParseImageRef(ref);
    if (parsed.ok()) {
      Status allowed = CheckAllowedRegistry(*parsed, opts_.allowed_registries, ref);
      if (!allowed.ok()) {
        Fail(spec, env, "ImageNotAllowed", allowed.message());
        return;
      }
    }
  }
  std::vector<TargetStatus> targets;
  for (const auto& t : spec.targets) {
    const DeploymentView* d = Find(ns, t.deployment);
    if (d == nullptr) {
      Fail(spec, env, "DeploymentNotFound", "deployment " + ns + "/" + t.deployment + " not found");
      return;
    }
    if (t.worker_validation && t.worker_validation->cuda_required &&
        opts_.validator_image.empty() &&
        std::any_of(t.containers.begin(), t.containers.end(),
                    [&](const auto& c) { return d->gpu_requests.contains(c.first); })) {
      Fail(spec, env, "WorkerValidationUnavailable",
           "deployment " + ns + "/" + t.deployment +
               " requires CUDA validation, but the controller runs without --validator-image");
      return;
    }
    // A retried environment keeps the images recorded by its first attempt: the failed attempt
    // may have left new images behind (rollback: None), and those are not "previous".
    const TargetStatus* earlier = nullptr;
    for (const auto& old : env.targets) {
      if (old.deployment == t.deployment && old.namespace_ == ns && !old.previous_images.empty()) {
        earlier = &old;
      }
    }
    TargetStatus ts;
    ts.deployment = t.deployment;
    ts.namespace_ = ns;
    for (const auto& ic : ValidationContainers(r_.spec, t, *d, opts_)) {
      if (auto it = d->init_container_images.find(ic.name); it != d->init_container_images.end()) {
        ts.previous_init_containers[ic.name] = it->second;
      }
      if (auto l = d->template_labels.find(kValidationLabel); l != d->template_labels.end()) {
        ts.previous_validation_label = l->second;
      }
    }
    for (const auto& [container, logical] : t.containers) {
      auto it = d->container_images.find(container);
      if (it == d->container_images.end()) {
        std::string msg = "deployment " + ns + "/" + t.deployment;
        msg += " has no container \"";
        msg += container;
        msg += "\"";
        Fail(spec, env, "ContainerNotFound", msg);
        return;
      }
      ts.previous_images[container] = it->second;
    }
    if (earlier != nullptr) {
      ts.previous_images = earlier->previous_images;
      ts.previous_init_containers = earlier->previous_init_containers;
      ts.previous_validation_label = earlier->previous_validation_label;
    }
    targets.push_back(std::move(ts));
  }
  // Record the previous images; the patches follow in the next step, after this is persisted.
  env.targets = std::move(targets);
  env.phase = phase::kUpdating;
  env.started_at = obs_.now;
  env.reason = "";
  env.message = "updating " + std::to_string(spec.targets.size()) + " deployment(s)";
  st_.phase = phase::kProgressing;
  st_.message = "updating environment " + env.name;
  Event("Normal", "EnvironmentStarted",
        "environment " + env.name + ": revision " + Revision(st_.revision) + " starting");
}

void Planner::StepUpdating(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  const std::string ns = EnvironmentNamespace(r_, spec);
  const std::string rev = Revision(st_.revision);
  for (const auto& t : spec.targets) {
    const DeploymentView* d = Find(ns, t.deployment);
    if (d == nullptr) {
      Fail(spec, env, "DeploymentNotFound",
           "deployment " + ns + "/" + t.deployment + " disappeared during the update");
      return;
    }
    auto want = DesiredImages(r_.spec, t);
    auto ann = d->annotations.find(kRevisionAnnotation);
    const bool annotated = ann != d->annotations.end() && ann->second == rev;
    DeploymentPatch patch{ns, t.deployment, want, rev, false, {}, {}, {}, false};
    patch.init_containers = ValidationContainers(r_.spec, t, *d, opts_);
    bool injected = true;
    if (!patch.init_containers.empty()) {
      patch.validation_label = rev;
      auto label = d->template_labels.find(kValidationLabel);
      injected = label != d->template_labels.end() && label->second == rev;
      for (const auto& ic : patch.init_containers) {
        auto it = d->init_container_images.find(ic.name);
        injected = injected && it != d->init_container_images.end() && it->second == ic.image;
      }
    }
    if (!ImagesMatch(*d, want) || !annotated || !injected) {
      plan_.patches.push_back(std::move(patch));
    }
  }
  env.phase = phase::kVerifying;
  env.message = "waiting for the new images to roll out";
  RequeueAfter(seconds(1));
}

std::string Planner::CheckHealth(const EnvironmentSpec& spec, EnvironmentStatus& env, bool rollback,
                                 std::string* failure_reason, std::string* failure) {
  const std::string ns = EnvironmentNamespace(r_, spec);
  std::string waiting;
  for (size_t i = 0; i < spec.targets.size(); ++i) {
    const auto& t = spec.targets[i];
    const DeploymentView* d = Find(ns, t.deployment);
    if (d == nullptr) {
      if (rollback) continue;  // nothing to restore there; keep waiting for the others
      *failure_reason = "DeploymentNotFound";
      *failure = "deployment " + ns + "/" + t.deployment + " not found";
      return "";
    }
    if (i < env.targets.size()) {
      auto& ts = env.targets[i];
      ts.replicas = d->replicas;
      ts.updated_replicas = d->updated_replicas;
      ts.ready_replicas = d->ready_replicas;
      ts.available_replicas = d->available_replicas;
    }
    std::map<std::string, std::string> want;
    if (rollback) {
      if (i < env.targets.size()) want = env.targets[i].previous_images;
    } else {
      want = DesiredImages(r_.spec, t);
    }
    if (!ImagesMatch(*d, want)) {
      if (!rollback) {
        *failure_reason = "ImagesChangedExternally";
        *failure = "deployment " + ns + "/" + t.deployment +
                   " no longer runs the images this rollout set (changed by someone else)";
        return "";
      }
      waiting = "deployment " + ns + "/" + t.deployment + " not yet restored";
      continue;
    }
    // The condition only speaks for the generation the Deployment controller has observed.
    if (d->progress_deadline_exceeded && !rollback && d->observed_generation >= d->generation) {
      *failure_reason = "ProgressDeadlineExceeded";
      *failure = "deployment " + ns + "/" + t.deployment + " reports ProgressDeadlineExceeded (" +
                 std::to_string(d->available_replicas) + "/" + std::to_string(d->spec_replicas) +
                 " available)";
      return "";
    }
    if (!RolledOut(*d) && waiting.empty()) {
      waiting = "deployment " + ns + "/" + t.deployment + ": " +
                std::to_string(d->updated_replicas) + " updated, " +
                std::to_string(d->available_replicas) + " available of " +
                std::to_string(d->spec_replicas);
    }
  }
  return waiting;
}

void Planner::StepVerifying(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  std::string failure_reason;
  std::string failure;
  const WallTime deadline =
      env.started_at.value_or(obs_.now) + seconds(r_.spec.progress_deadline_seconds);
  if (obs_.validation && obs_.validation->required) {
    const auto& v = *obs_.validation;
    env.validation = ValidationStatus{v.gpu_pods, v.passed, v.failed, v.message};
    // A failed validation keeps its pod from ever becoming ready: fail now, not at the deadline.
    if (v.failed > 0) {
      Fail(spec, env, "WorkerValidationFailed", v.message);
      return;
    }
  }
  const std::string waiting = CheckHealth(spec, env, false, &failure_reason, &failure);
  if (!failure.empty()) {
    Fail(spec, env, failure_reason, failure);
    return;
  }
  if (!waiting.empty()) {
    if (obs_.now >= deadline) {
      Fail(spec, env, "ProgressDeadlineExceeded",
           "not rolled out within " + std::to_string(r_.spec.progress_deadline_seconds) +
               "s: " + waiting);
      return;
    }
    env.message = waiting;
    RequeueAfter(std::min(Until(deadline), seconds(30)));
    return;
  }
  // Worker startup validation.
  if (obs_.validation && obs_.validation->required) {
    const auto& v = *obs_.validation;
    if (v.passed < v.gpu_pods || v.gpu_pods == 0) {
      if (obs_.now >= deadline) {
        Fail(spec, env, "WorkerValidationTimeout",
             "GPU workers did not validate within the progress deadline: " + v.message);
        return;
      }
      env.message = "waiting for worker validation: " + v.message;
      RequeueAfter(std::min(Until(deadline), seconds(30)));
      return;
    }
  }
  // Canary analysis.
  if (spec.analysis) {
    const auto& a = *spec.analysis;
    AnalysisStatus as = env.analysis.value_or(AnalysisStatus{});
    if (obs_.analysis_sample) {
      const auto& s = *obs_.analysis_sample;
      as.samples += 1;
      as.last_sample_at = obs_.now;
      as.last_value = s.value;
      as.message = s.message;
      if (s.outcome == AnalysisObservation::Outcome::kPass) as.passed += 1;
      if (s.outcome == AnalysisObservation::Outcome::kFail) as.failed += 1;
      if (s.outcome == AnalysisObservation::Outcome::kInconclusive) as.inconclusive += 1;
      env.analysis = as;
      if (s.outcome == AnalysisObservation::Outcome::kFail) {
        Fail(spec, env, "AnalysisFailed", s.message);
        return;
      }
    }
    if (as.samples < a.samples) {
      env.analysis = as;
      const WallTime next =
          as.last_sample_at ? *as.last_sample_at + seconds(a.interval_seconds) : obs_.now;
      if (obs_.now >= next && !obs_.analysis_sample) {
        plan_.sample_analysis = true;
      } else {
        env.message = "analysis: " + std::to_string(as.samples) + "/" + std::to_string(a.samples) +
                      " samples";
        RequeueAfter(Until(next));
      }
      return;
    }
    if (as.passed < a.samples) {
      Fail(spec, env, "AnalysisInconclusive",
           std::to_string(as.passed) + " of " + std::to_string(a.samples) +
               " samples passed; last: " + as.message);
      return;
    }
  }
  env.verified_at = obs_.now;
  if (spec.bake_seconds > 0) {
    env.phase = phase::kBaking;
    env.message = "baking for " + std::to_string(spec.bake_seconds) + "s";
    RequeueAfter(seconds(spec.bake_seconds));
    return;
  }
  Advance(env);
}

void Planner::StepBaking(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  std::string failure_reason;
  std::string failure;
  const std::string waiting = CheckHealth(spec, env, false, &failure_reason, &failure);
  if (!failure.empty()) {
    Fail(spec, env, failure_reason, failure);
    return;
  }
  if (!waiting.empty()) {
    Fail(spec, env, "UnhealthyDuringBake", waiting);
    return;
  }
  const WallTime end = env.verified_at.value_or(obs_.now) + seconds(spec.bake_seconds);
  if (obs_.now < end) {
    RequeueAfter(Until(end));
    return;
  }
  Advance(env);
}

void Planner::StepRollingBack(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  const std::string ns = EnvironmentNamespace(r_, spec);
  const std::string rev = Revision(st_.revision) + "-rollback";
  for (size_t i = 0; i < env.targets.size() && i < spec.targets.size(); ++i) {
    const auto& ts = env.targets[i];
    if (ts.previous_images.empty()) continue;
    const DeploymentView* d = Find(ns, ts.deployment);
    if (d == nullptr) continue;  // nothing to restore
    DeploymentPatch patch{ns, ts.deployment, ts.previous_images, rev, true, {}, {}, {}, false};
    bool restored = ImagesMatch(*d, ts.previous_images);
    // Restore the pod template exactly: the validation this revision injected goes too, so the
    // Deployment returns to its previous ReplicaSet.
    for (const auto& ic : ValidationContainers(r_.spec, spec.targets[i], *d, opts_)) {
      auto prev = ts.previous_init_containers.find(ic.name);
      auto cur = d->init_container_images.find(ic.name);
      if (prev != ts.previous_init_containers.end()) {
        patch.init_containers.push_back({ic.name, prev->second, {}, "", ""});
        restored = restored && cur != d->init_container_images.end() && cur->second == prev->second;
      } else {
        patch.remove_init_containers.push_back(ic.name);
        restored = restored && cur == d->init_container_images.end();
      }
      auto label = d->template_labels.find(kValidationLabel);
      if (ts.previous_validation_label.empty()) {
        patch.remove_validation_label = true;
        restored = restored && label == d->template_labels.end();
      } else {
        patch.validation_label = ts.previous_validation_label;
        restored = restored && label != d->template_labels.end() &&
                   label->second == ts.previous_validation_label;
      }
    }
    if (!restored) plan_.patches.push_back(std::move(patch));
  }
  if (!plan_.patches.empty()) {
    st_.message =
        "environment " + env.name + " failed (" + env.reason + "); restoring previous images";
    RequeueAfter(seconds(1));
    return;
  }
  std::string failure_reason;
  std::string failure;
  const std::string waiting = CheckHealth(spec, env, true, &failure_reason, &failure);
  const WallTime deadline =
      env.finished_at.value_or(obs_.now) + seconds(r_.spec.progress_deadline_seconds);
  if (!waiting.empty() && failure.empty()) {
    if (obs_.now >= deadline) {
      env.phase = phase::kFailed;
      st_.phase = phase::kFailed;
      st_.message = "rollback of environment " + env.name + " did not become healthy: " + waiting;
      env.message = st_.message;
      Event("Warning", "RollbackFailed", st_.message);
      return;
    }
    st_.message = "environment " + env.name + " rolling back: " + waiting;
    RequeueAfter(std::min(Until(deadline), seconds(30)));
    return;
  }
  env.phase = phase::kRolledBack;
  env.finished_at = obs_.now;
  const bool aborted = env.reason == "Aborted";
  st_.phase = aborted ? phase::kAborted : phase::kRolledBack;
  st_.message = "environment " + env.name + " rolled back to its previous images (" + env.reason +
                ": " + env.message + ")";
  Event("Normal", "RolledBack", "environment " + env.name + " rolled back to its previous images");
}

void Planner::Step() {
  EnvironmentStatus* env = Current();
  const EnvironmentSpec* spec = CurrentSpec();
  if (env == nullptr || spec == nullptr) return;
  if (env->phase == phase::kPending || env->phase == phase::kAwaitingApproval) {
    StepPending(*spec, *env);
  } else if (env->phase == phase::kUpdating) {
    StepUpdating(*spec, *env);
  } else if (env->phase == phase::kVerifying) {
    StepVerifying(*spec, *env);
  } else if (env->phase == phase::kBaking) {
    StepBaking(*spec, *env);
  } else if (env->phase == phase::kRollingBack) {
    StepRollingBack(*spec, *env);
  }
}

void Planner::SetConditions() {
  auto set = [&](const std::string& type, bool value, const std::string& reason,
                 const std::string& message) {
    const std::string status = value ? "True" : "False";
    for (auto& c : st_.conditions) {
      if (c.type != type) continue;
      if (c.status != status) c.last_transition_time = obs_.now;
      c.status = status;
      c.reason = reason;
      c.message = message;
      c.observed_generation = r_.generation;
      return;
    }
    st_.conditions.push_back({type, status, reason, message, r_.generation, obs_.now});
  };
  const std::string& p = st_.phase;
  EnvironmentStatus* env = Current();
  const std::string env_reason = env != nullptr && !env->reason.empty() ? env->reason : p;
  set("Ready", p == phase::kSucceeded, p.empty() ? "Pending" : p, st_.message);
  const bool progressing = p == phase::kProgressing || p == phase::kRollingBack ||
                           p == phase::kAwaitingApproval || p == phase::kPending;
  set("Progressing", progressing, p.empty() ? "Pending" : p, st_.message);
  const bool degraded = p == phase::kFailed || p == phase::kRolledBack || p == phase::kAborted ||
                        p == phase::kRollingBack;
  set("Degraded", degraded, degraded ? env_reason : "AsExpected", degraded ? st_.message : "");
  // Keep a stable order: Ready, Progressing, Degraded.
  std::stable_sort(st_.conditions.begin(), st_.conditions.end(),
                   [](const Condition& a, const Condition& b) {
                     auto rank = [](const std::string& t) {
                       return t == "Ready" ? 0 : t == "Progressing" ? 1 : 2;
                     };
                     return rank(a.type) < rank(b.type);
                   });
}

Plan Planner::Run() {
  if (obs_.spec_hash != st_.spec_hash || st_.revision == 0) {
    if (!ValidateSpec()) {
      st_.spec_hash = "";  // re-validate when the spec changes
      if (st_ == r_.status) {
        plan_.events.clear();  // already reported: no second write, no second warning
      } else {
        plan_.status = st_;
      }
      return std::move(plan_);
    }
    StartRevision();
  }
  const bool finished = HandleAnnotations();
  if (aborting_) {
    // The abort must be persisted (RollingBack) before the restoring patches.
    RequeueAfter(seconds(1));
  } else if (!finished && !Terminal(st_.phase)) {
    if (r_.spec.paused) {
      st_.phase = phase::kPaused;
      st_.message = "paused (spec.paused)";
    } else {
      if (st_.phase == phase::kPaused) {
        const EnvironmentStatus* env = Current();
        st_.phase = env != nullptr && env->phase == phase::kRollingBack ? phase::kRollingBack
                                                                        : phase::kProgressing;
      }
      Step();
    }
  }
  st_.observed_generation = r_.generation;
  SetConditions();
  if (!(st_ == r_.status)) plan_.status = st_;
  return std::move(plan_);
}

}  // namespace

std::vector<InitContainer> ValidationContainers(const RolloutSpec& spec, const TargetSpec& target,
                                                const DeploymentView& d,
                                                const PlannerOptions& opts) {
  std::vector<InitContainer> out;
  if (!target.worker_validation || !target.worker_validation->cuda_required ||
      opts.validator_image.empty()) {
    return out;
  }
  for (const auto& [container, logical] : target.containers) {
    auto gpu = d.gpu_requests.find(container);
    if (gpu == d.gpu_requests.end()) continue;  // not a GPU worker: CPU pods are not validated
    out.push_back({kValidatorContainer, opts.validator_image, {}, opts.gpu_resource, gpu->second});
    if (!target.worker_validation->command.empty()) {
      auto image = spec.images.find(logical);
      out.push_back({kValidatorCommandContainer,
                     image == spec.images.end() ? std::string() : image->second,
                     target.worker_validation->command, opts.gpu_resource, gpu->second});
    }
    break;  // one validation per pod
  }
  return out;
}

std::string EnvironmentNamespace(const Rollout& r, const EnvironmentSpec& env) {
  return env.namespace_.empty() ? r.namespace_ : env.namespace_;
}

std::vector<std::string> TargetKeys(const Rollout& r) {
  std::vector<std::string> out;
  for (const auto& e : r.spec.environments) {
    const std::string ns = EnvironmentNamespace(r, e);
    for (const auto& t : e.targets) out.push_back(ns + "/" + t.deployment);
  }
  return out;
}

Plan PlanRollout(const Observed& obs, const PlannerOptions& opts) {
  return Planner(obs, opts).Run();
}

}  // namespace rollgate::rollout
