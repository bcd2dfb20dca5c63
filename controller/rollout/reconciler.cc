#include "controller/rollout/reconciler.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <future>
#include <optional>
#include <set>
#include <system_error>
#include <vector>

#include "controller/api/codec.h"
#include "controller/api/well_known.h"
#include "controller/common/log.h"
#include "controller/kube/json_fields.h"
#include "controller/kube/vector_lister.h"
#include "controller/validation/pod_validation.h"

namespace rollgate::rollout {
namespace {

// An ObjectLister that fills itself on its first read, through `load` (which may leave it empty
// and report a failure its own way): a read that nobody asks for is never made.
class ListOnFirstUse final : public kube::ObjectLister {
 public:
  explicit ListOnFirstUse(std::function<void(kube::VectorLister&)> load) : load_(std::move(load)) {}
  kube::ObjectPtr Get(const std::string& key) const override { return Loaded().Get(key); }
  std::vector<kube::ObjectPtr> ListNamespace(const std::string& ns) const override {
    return Loaded().ListNamespace(ns);
  }

 private:
  const kube::VectorLister& Loaded() const {
    if (load_) {
      load_(objects_);
      load_ = nullptr;
    }
    return objects_;
  }
  mutable std::function<void(kube::VectorLister&)> load_;
  mutable kube::VectorLister objects_;
};

// How long until `since` + `interval`; nullopt once that has passed.
std::optional<std::chrono::nanoseconds> Remaining(Clock::MonoTime since,
                                                  std::chrono::nanoseconds interval,
                                                  Clock::MonoTime now) {
  const auto due = since + interval;
  if (now >= due) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(due - now);
}

std::optional<unsigned long long> NumericVersion(const kube::Json& obj) {
  const std::string rv = kube::MetaString(obj, "resourceVersion");
  unsigned long long v = 0;
  auto [p, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), v);
  if (ec != std::errc() || p != rv.data() + rv.size()) return std::nullopt;
  return v;
}

// The phase a ContainerRollout object records (kNone when it has none or an unknown one).
api::RolloutPhase PhaseOf(const kube::Json& obj) {
  const kube::Json* status = kube::Field(obj, "status");
  const std::string text = status != nullptr ? kube::StringField(*status, "phase") : "";
  return api::ParseRolloutPhase(text).value_or(api::RolloutPhase::kNone);
}

// The rollout that claims a Deployment, when that is not `self` ("" otherwise).
std::string OtherClaim(const api::DeploymentView& d, const std::string& self) {
  auto it = d.annotations.find(api::kOwnerAnnotation);
  if (it == d.annotations.end() || it->second == self) return "";
  return it->second;
}

// What a plan writes to or commits to: the Deployments it patches (or builds a smoke-check Job
// from), those of an environment it
// moves into Updating (pre-flight passed: the next reconcile patches them), and those of an
// environment it fails or rolls back (a verdict that undoes a rollout is confirmed on a fresh read,
// never taken from a cache that may have stalled).
std::set<std::pair<std::string, std::string>> WriteTargets(const api::RolloutStatus& before,
                                                           const Plan& plan) {
  using api::EnvironmentPhase;
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& p : plan.patches) out.insert({p.namespace_, p.name});
  for (const auto& j : plan.smoke_create) out.insert({j.namespace_, j.deployment});
  if (!plan.status) return out;
  for (const auto& e : plan.status->environments) {
    if (e.name != plan.status->current_environment) continue;
    std::optional<EnvironmentPhase> was;
    if (before.revision == plan.status->revision) {
      for (const auto& b : before.environments) {
        if (b.name == e.name) was = b.phase;
      }
    }
    const bool entering = e.phase == EnvironmentPhase::kUpdating && was != e.phase;
    const bool undoing =
        (e.phase == EnvironmentPhase::kRollingBack || e.phase == EnvironmentPhase::kFailed) &&
        was && api::IsInProgress(*was);
    if (!entering && !undoing) continue;
    for (const auto& t : e.targets) out.insert({t.namespace_, t.deployment});
  }
  return out;
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

// What an analysis sample is for: the spec, revision, environment, attempt (when the
// environment started) and sample number. A result is used only for the sample it was taken for.
std::string SampleId(const Observed& obs) {
  const api::RolloutStatus& st = obs.rollout.status;
  std::string id = obs.spec_hash + "/" + std::to_string(st.revision) + "/" + st.current_environment;
  for (const auto& e : st.environments) {
    if (e.name != st.current_environment) continue;
    id += "/" + (e.started_at ? api::FormatTime(*e.started_at) : std::string("-"));
    id += "/" + std::to_string(e.analysis ? e.analysis->samples : 0);
  }
  return id;
}

// The current environment of `after` when `after` enters Updating for it (it was not Updating in
// `before`, or `before` was another revision); nullptr otherwise.
const api::EnvironmentStatus* EntersUpdating(const api::Rollout& before,
                                             const api::RolloutStatus& after) {
  for (const auto& e : after.environments) {
    if (e.name != after.current_environment || e.phase != api::EnvironmentPhase::kUpdating) {
      continue;
    }
    const bool was_updating = std::any_of(
        before.status.environments.begin(), before.status.environments.end(),
        [&](const api::EnvironmentStatus& prev) {
          return prev.name == e.name && prev.phase == api::EnvironmentPhase::kUpdating &&
                 before.status.revision == after.revision;
        });
    if (!was_updating) return &e;
  }
  return nullptr;
}

// `s` without what only mirrors progress: the targets' replica counters, the validated pod
// counts, and the messages (which describe that progress). Two statuses equal on this differ in
// progress only.
api::RolloutStatus WithoutProgress(api::RolloutStatus s) {
  s.message.clear();
  for (auto& c : s.conditions) c.message.clear();
  for (auto& e : s.environments) {
    e.message.clear();
    for (auto& t : e.targets) {
      t.replicas = t.updated_replicas = t.ready_replicas = t.available_replicas = 0;
    }
    if (e.validation) {
      e.validation->gpu_pods = e.validation->passed = 0;
      e.validation->message.clear();
    }
  }
  return s;
}

// What the Events about a rollout refer to.
kube::ObjectReference EventSubject(const api::Rollout& r) {
  return {"rollgate.io/v1alpha1", "ContainerRollout", r.namespace_, r.name, r.uid, ""};
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
  patch["metadata"]["annotations"][api::kRevisionAnnotation] = kube::Json::string(p.revision);
  if (!p.owner.empty()) {
    patch["metadata"]["annotations"][api::kOwnerAnnotation] = kube::Json::string(p.owner);
  }
  // A precondition: the API server refuses the patch (409 Conflict) unless the Deployment is
  // still the version the plan was made on.
  if (!p.resource_version.empty()) {
    patch["metadata"]["resourceVersion"] = kube::Json::string(p.resource_version);
  }
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
        for (const auto& [name, q] : ic.requests) {
          c["resources"]["requests"][name] = kube::Json::string(q);
        }
        for (const auto& [name, q] : ic.limits)
          c["resources"]["limits"][name] = kube::Json::string(q);
        c["resources"]["requests"][ic.gpu_resource] = kube::Json::string(ic.gpu_amount);
        c["resources"]["limits"][ic.gpu_resource] = kube::Json::string(ic.gpu_amount);
        if (!ic.security_context_json.empty()) {
          c["securityContext"] = kube::Json::parse(ic.security_context_json);
        }
        c["terminationMessagePath"] = kube::Json::string("/dev/termination-log");
        c["terminationMessagePolicy"] = kube::Json::string("FallbackToLogsOnError");
      }
      inits[j++] = c;
    }
    patch["spec"]["template"]["spec"]["initContainers"] = inits;
  }
  if (p.remove_validation_label) {
    patch["spec"]["template"]["metadata"]["labels"][api::kValidationLabel] = kube::Json::null();
  } else if (!p.validation_label.empty()) {
    patch["spec"]["template"]["metadata"]["labels"][api::kValidationLabel] =
        kube::Json::string(p.validation_label);
  }
  return patch.serialize();
}

Reconciler::Reconciler(kube::KubeClient& client, const Clock& clock,
                       const kube::ObjectLister& rollouts, kube::ObjectLister& deployments,
                       const kube::ObjectLister& namespaces, AnalysisRunner* analysis,
                       validation::ValidationObserver* validation, kube::EventRecorder& events,
                       ReconcilerOptions opts)
    : client_(client),
      clock_(clock),
      rollouts_(rollouts),
      deployments_(deployments),
      namespaces_(namespaces),
      analysis_(analysis),
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

Result<Reconciler::Scope> Reconciler::ScopeOf(const std::string& rollout_ns,
                                              const std::string& scoped_ns) {
  api::NamespaceScope where = api::SplitScopedNamespace(scoped_ns);
  Scope scope;
  scope.cluster = std::move(where.cluster);
  scope.ns = std::move(where.name);
  if (scope.cluster.empty()) {
    scope.client = &client_;
    return scope;
  }
  if (opts_.clusters == nullptr) {
    return Status(StatusCode::kUnavailable, "this controller reaches no remote cluster");
  }
  auto remote = opts_.clusters->Client(rollout_ns, scope.cluster);
  if (!remote.ok()) return remote.status();
  scope.remote = std::move(remote).value();
  scope.client = scope.remote.get();
  return scope;
}

Status Reconciler::Unusable(const Scope& scope, const Status& st, Observed& obs) {
  if (scope.cluster.empty() || st.ok()) return st;
  obs.unreachable_clusters.emplace(scope.cluster, st.message());
  return Status::Ok();
}

Status Reconciler::ApplyPatch(const std::string& rollout_ns, const DeploymentPatch& p) {
  const std::string body = BuildImagePatch(p);
  if (opts_.dry_run) {
    log::Info("reconciler", "dry run: would patch deployment",
              {{"deployment", p.namespace_ + "/" + p.name}, {"patch", body}});
    return Status::Ok();
  }
  auto scope = ScopeOf(rollout_ns, p.namespace_);
  if (!scope.ok()) return scope.status();
  auto res = scope->client->Patch(kube::resources::Deployments(), scope->ns, p.name,
                                  kube::PatchType::kStrategicMerge, body, {});
  if (!res.ok()) return res.status();
  patches_.fetch_add(1);
  log::Info("reconciler", p.rollback ? "restored previous images" : "patched deployment images",
            {{"deployment", p.namespace_ + "/" + p.name}, {"revision", p.revision}});
  if (scope->cluster.empty()) {  // a remote Deployment is read live, never from the overlay
    Remember("deployment", p.namespace_ + "/" + p.name,
             api::TrimDeployment(std::move(res).value()));
  }
  return Status::Ok();
}

// One reconcile per environment transition: when a pass has just written a status that the next
// step follows from at once -- entering Updating (the previous images, write-ahead: the patch is
// next), or an environment's success that makes the next one current -- another pass runs on the
// object that write returned (the overlay) instead of after a watch round trip. At most three
// passes: success of environment N, Updating of N+1, its patch. The writes are the same, in the
// same order, as with one reconcile per step, so crash safety is unchanged: a crash between two
// passes leaves a status the next reconcile continues from.
ReconcileResult Reconciler::Reconcile(const std::string& key) {
  const auto started = clock_.Now();
  bool again = false;
  ReconcileResult out = ReconcilePass(key, started, &again);
  for (int pass = 1; pass < 3 && again && out.status.ok(); ++pass) {
    out = ReconcilePass(key, started, &again);
  }
  return out;
}

ReconcileResult Reconciler::ReconcilePass(const std::string& key, Clock::MonoTime started,
                                          bool* again) {
  *again = false;
  kube::ObjectPtr obj = Fresher("rollout", key, rollouts_.Get(key));
  if (!obj) {  // deleted: nothing to do but forget its series
    RecordDeleted(key);
    return {};
  }
  auto observation = Observe(key, obj);
  if (!observation.ok()) return {observation.status(), std::nullopt};
  Observation& o = *observation;
  auto planned = PlanOnFreshTargets(o);
  if (!planned.ok()) return {planned.status(), std::nullopt};
  const Plan& plan = *planned;
  bool deleted = false;
  std::optional<std::chrono::nanoseconds> deferred;
  if (Status st = Execute(key, o, plan, started, &deleted, &deferred); !st.ok()) {
    if (st.code() == StatusCode::kConflict) ForgetStale(key);
    return {st, std::nullopt};
  }
  if (deleted) return {};
  if (plan.status && !opts_.dry_run && plan.patches.empty()) {
    const api::RolloutStatus& before = o.observed.rollout.status;
    const api::RolloutStatus& after = *plan.status;
    const bool next_environment = after.phase == api::RolloutPhase::kProgressing &&
                                  after.revision == before.revision &&
                                  !before.current_environment.empty() &&
                                  after.current_environment != before.current_environment;
    *again = next_environment || EntersUpdating(o.observed.rollout, after) != nullptr;
  }
  RecordUnchanged(o.observed, plan);
  ReconcileResult out;
  if (plan.requeue_after) out.requeue_after = *plan.requeue_after;
  // A remote cluster's pods are not watched, nor its Deployments before their watch has listed:
  // look again while the environment there moves.
  const api::RolloutPhase phase =
      plan.status ? plan.status->phase : o.observed.rollout.status.phase;
  if (o.current != nullptr && !o.current->cluster.empty() &&
      (phase == api::RolloutPhase::kProgressing || phase == api::RolloutPhase::kRollingBack)) {
    const auto every = o.remote_watched ? opts_.remote_resync : opts_.remote_poll;
    out.requeue_after = std::min(out.requeue_after.value_or(every), every);
  }
  if (deferred) out.requeue_after = std::min(out.requeue_after.value_or(*deferred), *deferred);
  return out;
}

// ---- Observe ----

Result<Reconciler::Observation> Reconciler::Observe(const std::string& key,
                                                    const kube::ObjectPtr& obj) {
  auto decoded = api::DecodeRollout(*obj);
  if (!decoded.ok()) {
    log::Error("reconciler", "cannot decode ContainerRollout",
               {{"rollout", key}, {"error", decoded.status().message()}});
    return Status(StatusCode::kInvalidArgument, decoded.status().message());
  }
  Observation o;
  o.object = obj;
  Observed& obs = o.observed;
  obs.rollout = std::move(decoded).value();
  obs.spec_hash = api::SpecHash(*obj);
  obs.now = clock_.WallNow();
  for (const auto& e : obs.rollout.spec.environments) {
    if (!e.cluster.empty()) continue;  // remote: read live (ObserveLive), for the one at hand
    const std::string ns = api::EnvironmentNamespace(obs.rollout, e);
    if (auto n = namespaces_.Get(ns)) obs.namespaces[ns] = api::DecodeNamespace(*n);
    for (const auto& t : e.targets) {
      const std::string dkey = ns + "/" + t.deployment;
      if (auto d = Fresher("deployment", dkey, deployments_.Get(dkey))) {
        auto dv = api::DecodeDeployment(*d, opts_.planner.gpu_resource);
        if (dv.ok()) obs.deployments[dkey] = std::move(dv).value();
      }
    }
  }
  const std::string self = obs.rollout.Key();
  for (const auto& [dkey, d] : obs.deployments) {
    const std::string owner = OtherClaim(d, self);
    if (owner.empty()) continue;
    if (auto r = rollouts_.Get(owner)) obs.claim_owners[owner] = PhaseOf(*r);
  }
  for (const auto& e : obs.rollout.spec.environments) {
    if (e.name == obs.rollout.status.current_environment) o.current = &e;
  }
  const api::EnvironmentSpec* at_hand =
      o.current != nullptr
          ? o.current
          : (obs.rollout.spec.environments.empty() ? nullptr : &obs.rollout.spec.environments[0]);
  if (at_hand != nullptr) {
    if (Status st = ObserveLive(*at_hand, o); !st.ok()) return st;
  }
  if (o.current != nullptr && !o.current->cluster.empty()) {
    ObserveRemoteValidation(o);
  } else if (o.current != nullptr && validation_ != nullptr) {
    obs.validation = validation_->Observe(obs.rollout, *o.current);
  }
  return o;
}

// Worker validation in a remote cluster: the same verdicts as from the caches (the same
// PodValidationObserver), on the Deployments read live for this plan and the pods listed live
// with the validation label of this revision.
void Reconciler::ObserveRemoteValidation(Observation& o) {
  Observed& obs = o.observed;
  if (obs.unreachable_clusters.contains(o.current->cluster) || o.remote_deployments.empty()) return;
  const std::string scoped = api::EnvironmentNamespace(obs.rollout, *o.current);
  auto scope = ScopeOf(obs.rollout.namespace_, scoped);
  if (!scope.ok()) {
    (void)Unusable(Scope{nullptr, nullptr, o.current->cluster, ""}, scope.status(), obs);
    return;
  }
  kube::VectorLister deployments;
  for (const auto& [dkey, d] : o.remote_deployments) deployments.Put(dkey, d);
  // The validation pods are listed only when the observer asks for them, i.e. when a target of
  // the environment is validated: an environment without worker validation costs no LIST.
  Status listed = Status::Ok();
  ListOnFirstUse pod_lister([&](kube::VectorLister& into) {
    kube::ListOptions opts;
    opts.label_selector =
        std::string(api::kValidationLabel) + "=" + std::to_string(obs.rollout.status.revision);
    auto pods = scope->client->List(kube::resources::Pods(), scope->ns, opts);
    if (!pods.ok()) {
      listed = pods.status();
      return;
    }
    for (auto& pod : pods->items) {
      const std::string key = scoped + "/" + kube::MetaString(pod, "name");
      into.Put(key, std::move(pod));
    }
  });
  validation::PodValidationObserver observer(pod_lister, deployments, opts_.planner.injection());
  auto validation = observer.Observe(obs.rollout, *o.current);
  if (!listed.ok()) {  // nothing is judged on a failed read
    (void)Unusable(*scope, listed, obs);
    return;
  }
  obs.validation = std::move(validation);
}

// The caches may lag behind objects created a moment ago (a Deployment applied together with its
// rollout): before the planner may conclude "not found" for the environment at hand, ask the API
// server. Only misses cost a request; an error other than NotFound is retried with backoff, never
// taken for a "not found".
// A remote environment's namespace and Deployments are always read here (there is no cache of a
// remote cluster); a failure to reach or use its cluster holds the environment (Unusable).
Status Reconciler::ObserveLive(const api::EnvironmentSpec& env, Observation& o) {
  Observed& obs = o.observed;
  const std::string ns = api::EnvironmentNamespace(obs.rollout, env);
  auto scope = ScopeOf(obs.rollout.namespace_, ns);
  if (!scope.ok()) return Unusable(Scope{nullptr, nullptr, env.cluster, ""}, scope.status(), obs);
  if (ns != obs.rollout.namespace_ && !obs.namespaces.contains(ns)) {  // own: always allowed
    if (Status st = ReadNamespace(ns, obs); !st.ok()) return st;
    if (obs.unreachable_clusters.contains(env.cluster)) return Status::Ok();
  }
  const bool remote = !scope->cluster.empty();
  if (remote && opts_.remote_watches != nullptr) {
    o.remote_watched = opts_.remote_watches->Want(obs.rollout.namespace_ + "/" + scope->cluster,
                                                  scope->remote, scope->ns, obs.rollout.Key());
  }
  for (const auto& t : env.targets) {
    const std::string dkey = ns + "/" + t.deployment;
    if (obs.deployments.contains(dkey)) continue;
    const std::uint64_t mark = remote ? 0 : deployments_.Mark();
    auto d = scope->client->Get(kube::resources::Deployments(), scope->ns, t.deployment);
    if (d.ok()) {
      if (remote) {
        o.remote_deployments[dkey] = *d;
      } else {
        deployments_.Offer(*d, mark);  // the next reconcile finds it cached
      }
      auto dv = api::DecodeDeployment(*d, opts_.planner.gpu_resource);
      if (dv.ok()) obs.deployments[dkey] = std::move(dv).value();
    } else if (d.status().code() != StatusCode::kNotFound) {
      return Unusable(*scope, d.status(), obs);
    }
  }
  return Status::Ok();
}

// ---- Plan ----

// One GET of the write guard: where it goes (ScopeOf, taken on the reconciling thread: it may
// read a kubeconfig Secret) and, when that is usable, its answer to come.
struct Reconciler::FreshGet {
  Result<Scope> scope = Status(StatusCode::kUnknown, "not issued");
  std::future<Result<kube::Json>> result;  // valid() when scope is ok

  bool Issuable() const { return scope.ok(); }
  // Sends the GET through the scope's client: on a thread of its own (std::launch::async), or
  // (std::launch::deferred) on the thread that takes the result, when it is the round's only one
  // or no thread can be started. The copy of the scope holds a remote cluster's client for the
  // call.
  void Issue(std::launch how, kube::ResourceType rt, std::string ns, std::string name) {
    auto get = [s = *scope, rt = std::move(rt), ns = std::move(ns), name = std::move(name)] {
      return s.client->Get(rt, ns, name);
    };
    try {
      result = std::async(how, get);
    } catch (const std::system_error&) {  // out of threads: read it when its result is taken
      result = std::async(std::launch::deferred, std::move(get));
    }
  }
};

// One write target's reads in a round: its namespace (when it is the first target of a namespace
// other than the rollout's own not read yet for this plan), then its Deployment.
struct Reconciler::TargetRead {
  std::string ns;
  std::string name;
  std::optional<FreshGet> namespace_get;
  FreshGet deployment_get;
  std::uint64_t mark = 0;  // deployments_.Mark() before the Deployment's GET (local ones)
};

// The write guard. A plan made from the caches may patch only what was read fresh: before any
// patch, the namespace, the Deployment and the rollout claiming it (if another) of every patch
// are read from the API server, and the plan is made again on those reads. The planner's guards
// (namespace opt-in, Deployment and containers present, no other active claim, the patch bound)
// then decide on the state at this moment, never on an earlier reconcile's, and each patch
// carries the resourceVersion it was planned on, so a change in between fails it with Conflict
// (retried with backoff, from a fresh read) instead of patching a Deployment nobody checked.
// The reads of a round do not depend on one another, so they are issued together, each GET on a
// thread of its own (a GET costs tens of milliseconds on a loaded API server, and entering an
// environment reads its targets twice: before the status write and before the patch; reading
// them one after another would delay its first patch by the sum, issue 14). Only the claiming
// rollout, known from its Deployment's read, is read after it. The results are applied on this
// thread, in the order and with the outcome of reading them one at a time: namespace before
// Deployment, targets in order, the first error (in that order) returned and nothing after it.
Result<Plan> Reconciler::PlanOnFreshTargets(Observation& o) {
  std::set<std::pair<std::string, std::string>> fresh;
  std::set<std::string> fresh_namespaces;  // read once per plan, however many targets share one
  Plan plan = MakePlan(o);
  for (int round = 0;; ++round) {
    std::set<std::pair<std::string, std::string>> stale;
    for (const auto& target : WriteTargets(o.observed.rollout.status, plan)) {
      if (!fresh.contains(target)) stale.insert(target);
    }
    if (stale.empty()) return plan;
    if (round == 3) {  // each round reads more targets; the spec names finitely many
      return Status(StatusCode::kUnavailable, "the plan kept changing under fresh reads");
    }
    // An early return waits for the GETs still in flight (their futures' destructors).
    std::vector<TargetRead> reads = IssueTargetReads(stale, o.observed, fresh_namespaces);
    for (TargetRead& read : reads) {
      if (Status st = ApplyTargetRead(read, o, fresh_namespaces); !st.ok()) return st;
      fresh.insert({read.ns, read.name});
    }
    plan = MakePlan(o);
  }
}

Status Reconciler::ScopeUnusable(const std::string& scoped_ns, const Status& st, Observed& obs) {
  return Unusable(Scope{nullptr, nullptr, api::SplitScopedNamespace(scoped_ns).cluster, ""}, st,
                  obs);
}

// Namespace `ns` from the API server into obs.namespaces; NotFound is an answer (absent), any
// other error is returned, never taken for absence.
Status Reconciler::ReadNamespace(const std::string& ns, Observed& obs) {
  auto scope = ScopeOf(obs.rollout.namespace_, ns);
  if (!scope.ok()) return ScopeUnusable(ns, scope.status(), obs);
  return ApplyNamespaceRead(ns, *scope,
                            scope->client->Get(kube::resources::Namespaces(), "", scope->ns), obs);
}

// `n`: namespace `ns` as read through `scope`.
Status Reconciler::ApplyNamespaceRead(const std::string& ns, const Scope& scope,
                                      const Result<kube::Json>& n, Observed& obs) {
  if (n.ok()) {
    obs.namespaces[ns] = api::DecodeNamespace(*n);
  } else if (n.status().code() == StatusCode::kNotFound) {
    obs.namespaces.erase(ns);
  } else {
    obs.namespaces.erase(ns);  // never judged on an earlier read
    return Unusable(scope, n.status(), obs);
  }
  return Status::Ok();
}

std::vector<Reconciler::TargetRead> Reconciler::IssueTargetReads(
    const std::set<std::pair<std::string, std::string>>& stale, const Observed& obs,
    const std::set<std::string>& namespaces_read) {
  std::vector<TargetRead> reads;
  reads.reserve(stale.size());
  std::set<std::string> namespaces = namespaces_read;
  int gets = 0;
  for (const auto& [ns, name] : stale) {
    TargetRead& read = reads.emplace_back();
    read.ns = ns;
    read.name = name;
    if (ns != obs.rollout.namespace_ && namespaces.insert(ns).second) {
      read.namespace_get.emplace();
      read.namespace_get->scope = ScopeOf(obs.rollout.namespace_, ns);
      gets += read.namespace_get->Issuable() ? 1 : 0;
    }
    read.deployment_get.scope = ScopeOf(obs.rollout.namespace_, ns);
    gets += read.deployment_get.Issuable() ? 1 : 0;
  }
  const std::launch how = gets > 1 ? std::launch::async : std::launch::deferred;
  for (TargetRead& read : reads) {
    if (read.namespace_get && read.namespace_get->Issuable()) {
      FreshGet& get = *read.namespace_get;
      get.Issue(how, kube::resources::Namespaces(), "", get.scope->ns);
    }
    FreshGet& get = read.deployment_get;
    if (!get.Issuable()) continue;
    // Taken before the GET is sent, so that the answer may be offered to the cache (a remote
    // Deployment has none).
    if (get.scope->cluster.empty()) read.mark = deployments_.Mark();
    get.Issue(how, kube::resources::Deployments(), get.scope->ns, read.name);
  }
  return reads;
}

// One write target read from the API server (IssueTargetReads): its namespace, the Deployment, and
// the rollout that claims it when that is another one. NotFound is an answer; any other error is
// retried.
Status Reconciler::ApplyTargetRead(TargetRead& read, Observation& o,
                                   std::set<std::string>& namespaces_read) {
  Observed& obs = o.observed;
  if (read.namespace_get) {
    FreshGet& get = *read.namespace_get;
    Status st = get.Issuable() ? ApplyNamespaceRead(read.ns, *get.scope, get.result.get(), obs)
                               : ScopeUnusable(read.ns, get.scope.status(), obs);
    if (!st.ok()) return st;
    namespaces_read.insert(read.ns);
  }
  const std::string dkey = read.ns + "/" + read.name;
  FreshGet& get = read.deployment_get;
  if (!get.Issuable()) {
    obs.deployments.erase(dkey);  // not read fresh: the planner holds its environment
    return ScopeUnusable(read.ns, get.scope.status(), obs);
  }
  const Scope& scope = *get.scope;
  Result<kube::Json> d = get.result.get();
  if (!d.ok()) {
    obs.deployments.erase(dkey);
    if (d.status().code() != StatusCode::kNotFound) return Unusable(scope, d.status(), obs);
    return Status::Ok();
  }
  if (!scope.cluster.empty()) {
    o.remote_deployments[dkey] = *d;
  } else {
    deployments_.Offer(*d, read.mark);
  }
  auto dv = api::DecodeDeployment(*d, opts_.planner.gpu_resource);
  if (!dv.ok()) return Status(StatusCode::kInvalidArgument, dv.status().message());
  o.fresh_templates[dkey] = std::move(d).value();
  const std::string owner = OtherClaim(*dv, obs.rollout.Key());
  obs.deployments[dkey] = std::move(dv).value();
  if (owner.empty()) return Status::Ok();
  return ReadClaimOwner(owner, obs);
}

// The rollout `owner` ("ns/name") that claims a target, into obs.claim_owners.
Status Reconciler::ReadClaimOwner(const std::string& owner, Observed& obs) {
  const auto slash = owner.find('/');
  if (slash == std::string::npos) {  // not a claim Rollgate wrote: it holds nothing
    obs.claim_owners.erase(owner);
    return Status::Ok();
  }
  auto r = client_.Get(kube::resources::ContainerRollouts(), owner.substr(0, slash),
                       owner.substr(slash + 1));
  if (r.ok()) {
    obs.claim_owners[owner] = PhaseOf(*r);
  } else if (r.status().code() == StatusCode::kNotFound) {
    obs.claim_owners.erase(owner);
  } else if (r.status().code() == StatusCode::kForbidden) {
    // A namespace-scoped controller cannot read another namespace's rollout: the claim holds.
    obs.claim_owners[owner] = api::RolloutPhase::kNone;
  } else {
    return r.status();
  }
  return Status::Ok();
}

// Plans; when the plan asks for an analysis sample, asks the analysis runner for it. A sample is
// never taken here (it may wait on a slow server up to its deadline): the runner takes it on its
// own threads, and until it is in, the plan is the one without it, looked at again shortly (the
// runner also reconciles the rollout when the sample is done). Once in, it is planned with.
Plan Reconciler::MakePlan(Observation& o) {
  Plan plan = PlanRollout(o.observed, opts_.planner);
  if (plan.resolve_images && !o.observed.images) {
    if (!ObserveImages(o, plan)) {
      constexpr std::chrono::seconds kPoll{2};
      plan.requeue_after = plan.requeue_after ? std::min(*plan.requeue_after, kPoll) : kPoll;
      return plan;
    }
    plan = PlanRollout(o.observed, opts_.planner);
  }
  if (!plan.smoke_observe.empty() && !o.observed.smoke_jobs) {
    ObserveSmokeJobs(o, plan);
    plan = PlanRollout(o.observed, opts_.planner);
  }
  if (plan.observe_pods && o.current != nullptr && !o.observed.pods) {
    const std::string key = o.observed.rollout.Key();
    const std::string stage =
        std::to_string(o.observed.rollout.status.revision) + "/" + o.current->name;
    const bool local =
        api::SplitScopedNamespace(api::EnvironmentNamespace(o.observed.rollout, *o.current))
            .cluster.empty();
    if (opts_.pod_cache != nullptr && local) {
      ObserveCachedPods(o, stage);
      plan = PlanRollout(o.observed, opts_.planner);
      // Each change of a watched pod reconciles the rollout; this is the net under a lost one.
      const auto again = std::chrono::ceil<std::chrono::seconds>(opts_.pod_health_max_interval);
      plan.requeue_after = plan.requeue_after ? std::min(*plan.requeue_after, again) : again;
    } else if (auto trusted = HealthyPodsTrusted(key, stage); trusted) {
      o.observed.pods = PodHealthObservation{};  // as the last list found them: no trouble
      plan = PlanRollout(o.observed, opts_.planner);
      const auto again = std::chrono::ceil<std::chrono::seconds>(*trusted);
      plan.requeue_after = plan.requeue_after ? std::min(*plan.requeue_after, again) : again;
    } else {
      const bool listed = ObservePods(o, nullptr);
      if (listed) RecordPodList(key, stage, o.observed.pods->troubles.empty());
      plan = PlanRollout(o.observed, opts_.planner);
    }
  } else if (!plan.observe_pods && opts_.pod_cache != nullptr) {
    opts_.pod_cache->Release(o.observed.rollout.Key());  // its pods leave the cache
  }
  if (!plan.sample_analysis || o.current == nullptr || !o.current->analysis) return plan;
  SampleResult sample;
  if (analysis_ != nullptr) {
    std::vector<Check> checks;
    for (const auto& c : o.current->analysis->checks)
      checks.push_back({c.name, c.query, c.min, c.max});
    std::optional<SampleResult> done =
        analysis_->Poll(o.observed.rollout.Key(), SampleId(o.observed),
                        o.current->analysis->prometheus_address, checks);
    if (!done) {
      constexpr std::chrono::seconds kPoll{2};
      plan.requeue_after = plan.requeue_after ? std::min(*plan.requeue_after, kPoll) : kPoll;
      return plan;
    }
    sample = std::move(*done);
  } else {
    sample.outcome = SampleOutcome::kInconclusive;
  }
  o.observed.analysis_sample = ToObservation(sample);
  return PlanRollout(o.observed, opts_.planner);
}

// The registry lookups of the current environment's pre-flight, from the resolver's workers
// (never on this thread: a registry that does not answer holds a lookup up to its deadline). The
// id names the pre-flight (revision, environment, attempt), so a lookup is never used for
// another; each pre-flight the planner repeats (a registry retry) looks up afresh. The id comes
// from the status the plan is about to write: the first plan of a revision starts it, and an id
// from the observed status (the previous revision) would not match the next reconcile's.
bool Reconciler::ObserveImages(Observation& o, const Plan& plan) {
  const api::Rollout& r = o.observed.rollout;
  const api::RolloutStatus& st = plan.status ? *plan.status : r.status;
  if (opts_.images == nullptr) {
    std::map<std::string, ImageLookup> none;
    for (const auto& [logical, ref] : r.spec.images) {
      none[logical].status =
          Status(StatusCode::kUnavailable, "the controller has no registry client configured");
    }
    o.observed.images = std::move(none);
    return true;
  }
  std::string id =
      o.observed.spec_hash + "/" + std::to_string(st.revision) + "/" + st.current_environment;
  for (const auto& e : st.environments) {
    if (e.name == st.current_environment) id += "/" + std::to_string(e.attempts);
  }
  auto done = opts_.images->Poll(r.Key(), id, r.spec.images);
  if (!done) return false;
  o.observed.images = std::move(*done);
  return true;
}

std::optional<std::chrono::nanoseconds> Reconciler::HealthyPodsTrusted(const std::string& key,
                                                                       const std::string& stage) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = healthy_pods_.find(key);
  if (it == healthy_pods_.end() || it->second.stage != stage) return std::nullopt;
  return Remaining(it->second.at, it->second.trust, clock_.Now());
}

void Reconciler::RecordPodList(const std::string& key, const std::string& stage, bool clean) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = healthy_pods_.find(key);
  if (!clean) {
    if (it != healthy_pods_.end()) healthy_pods_.erase(it);
    return;
  }
  std::chrono::nanoseconds trust = opts_.pod_health_interval;
  if (it != healthy_pods_.end() && it->second.stage == stage) {
    trust = std::max(trust, std::min(it->second.trust * 2, opts_.pod_health_max_interval));
  }
  healthy_pods_[key] = {stage, clock_.Now(), trust};
}

// The current environment's pods, for the planner's pod-health gate: one list per target that
// has not rolled out, by its Deployment's selector, from the API server's watch cache
// (resourceVersion "0": the kubelet's reports need not be quorum-fresh to say a pull or a start
// failed). With a lease of the pod cache, the list is not older than the cache and each pod is
// offered to it; otherwise nothing of them is kept. A failed list is logged and planned without:
// the progress deadline still applies, and the next reconcile lists again.
bool Reconciler::ObservePods(Observation& o, const PodHealthCache::Lease* lease) {
  bool listed = true;
  PodHealthObservation seen;
  const std::string ns = api::EnvironmentNamespace(o.observed.rollout, *o.current);
  const std::map<std::string, std::string> patched = PinnedImages(o.observed.rollout);
  for (const auto& t : o.current->targets) {
    const std::string dkey = ns + "/" + t.deployment;
    auto d = o.observed.deployments.find(dkey);
    if (d == o.observed.deployments.end()) continue;
    const std::string selector = SelectorString(d->second.selector);
    if (selector.empty()) continue;
    kube::ListOptions opts;
    opts.label_selector = selector;
    opts.resource_version = lease != nullptr ? lease->resource_version : "0";
    auto scope = ScopeOf(o.observed.rollout.namespace_, ns);
    auto pods = scope.ok() ? scope->client->List(kube::resources::Pods(), scope->ns, opts)
                           : Result<kube::ObjectList>(scope.status());
    if (!pods.ok()) {
      log::Warn("reconciler", "cannot list the pods of a target; pod health not observed",
                {{"rollout", o.observed.rollout.Key()},
                 {"deployment", dkey},
                 {"error", pods.status().message()}});
      listed = false;
      continue;
    }
    const auto images = DesiredImages(patched, t);
    for (const auto& pod : pods->items) {
      for (auto& trouble : PodTroubles(pod, dkey, images))
        seen.troubles.push_back(std::move(trouble));
      if (lease != nullptr) opts_.pod_cache->Offer(pod, lease->mark);
    }
  }
  o.observed.pods = std::move(seen);
  return listed;
}

// The current environment's pods from the pod cache: the first look at a revision and environment
// (and set of targets) registers them with the cache and lists them into it (ObservePods); the
// looks after read the cache, which the watch keeps current. A list that failed leaves the lease
// unprimed: the next look lists again.
void Reconciler::ObserveCachedPods(Observation& o, const std::string& stage) {
  const std::string ns = api::EnvironmentNamespace(o.observed.rollout, *o.current);
  std::set<std::string> watched;
  for (const auto& t : o.current->targets) {
    const std::string dkey = ns + "/" + t.deployment;
    auto d = o.observed.deployments.find(dkey);
    if (d != o.observed.deployments.end() && !SelectorString(d->second.selector).empty()) {
      watched.insert(dkey);
    }
  }
  const std::string key = o.observed.rollout.Key();
  const PodHealthCache::Lease lease = opts_.pod_cache->Watch(key, stage, watched);
  if (!lease.primed) {
    if (ObservePods(o, &lease)) opts_.pod_cache->Primed(key, stage);
    return;
  }
  PodHealthObservation seen;
  const std::map<std::string, std::string> patched = PinnedImages(o.observed.rollout);
  for (const auto& t : o.current->targets) {
    const std::string dkey = ns + "/" + t.deployment;
    if (!watched.contains(dkey)) continue;
    const auto images = DesiredImages(patched, t);
    for (const auto& pod : opts_.pod_cache->PodsOf(dkey)) {
      for (auto& trouble : PodTroubles(*pod, dkey, images))
        seen.troubles.push_back(std::move(trouble));
    }
  }
  o.observed.pods = std::move(seen);
}

// The Jobs of the smoke checks at hand, read live by name (no cache: a rollout has a few, read
// only while they run); a finished one that failed also has its pods listed, for the check
// container's exit code and the last lines of its log (its termination message). A Job that
// cannot be read is left out: the plan waits and the next reconcile reads again.
void Reconciler::ObserveSmokeJobs(Observation& o, const Plan& plan) {
  std::map<std::string, SmokeJobObservation> seen;
  for (const SmokeJob& j : plan.smoke_observe) {
    auto scope = ScopeOf(o.observed.rollout.namespace_, j.namespace_);
    if (!scope.ok()) {
      log::Warn("reconciler", "cannot read a smoke check's Job",
                {{"rollout", o.observed.rollout.Key()},
                 {"job", j.namespace_ + "/" + j.job},
                 {"error", scope.status().message()}});
      continue;
    }
    auto job = scope->client->Get(kube::resources::Jobs(), scope->ns, j.job);
    if (!job.ok() && job.status().code() == StatusCode::kNotFound) {
      seen[j.check] = SmokeJobObservation{};  // absent
      continue;
    }
    if (!job.ok()) {
      log::Warn("reconciler", "cannot read a smoke check's Job",
                {{"rollout", o.observed.rollout.Key()},
                 {"job", j.namespace_ + "/" + j.job},
                 {"error", job.status().message()}});
      continue;
    }
    SmokeJobObservation first = ObserveSmokeJob(*job, {}, j);
    if (first.state != SmokeJobObservation::State::kFailed &&
        first.state != SmokeJobObservation::State::kTimedOut) {
      seen[j.check] = std::move(first);
      continue;
    }
    kube::ListOptions opts;
    opts.label_selector = "batch.kubernetes.io/job-name=" + j.job;
    auto pods = scope->client->List(kube::resources::Pods(), scope->ns, opts);
    std::vector<kube::Json> items;
    if (pods.ok()) {
      items = std::move(pods->items);
    } else {
      log::Warn("reconciler", "cannot list a smoke check's pods; its exit code is not known",
                {{"job", j.namespace_ + "/" + j.job}, {"error", pods.status().message()}});
    }
    seen[j.check] = ObserveSmokeJob(*job, items, j);
  }
  o.observed.smoke_jobs = std::move(seen);
}

// The smoke-check Jobs the plan creates, each built from the Deployment read fresh for this plan
// (the write guard: the planner decided on that read, with the namespace's opt-in read with it).
// A Job of that name that exists already is not an error: the next reconcile reads it (its own
// from before a restart is adopted; another's fails the check, never adopted).
Status Reconciler::CreateSmokeJobs(const Observation& o, const Plan& plan) {
  for (const SmokeJob& j : plan.smoke_create) {
    auto fresh = o.fresh_templates.find(j.namespace_ + "/" + j.deployment);
    if (fresh == o.fresh_templates.end()) {
      return Status(StatusCode::kUnavailable, "smoke check " + j.check + ": deployment " +
                                                  j.namespace_ + "/" + j.deployment +
                                                  " was not read fresh before its Job");
    }
    auto scope = ScopeOf(o.observed.rollout.namespace_, j.namespace_);
    if (!scope.ok()) return scope.status();
    SmokeJob there = j;  // the Job names its namespace as the cluster knows it
    there.namespace_ = scope->ns;
    auto body = BuildSmokeJob(fresh->second, there, opts_.smoke);
    if (!body.ok()) return body.status();
    if (opts_.dry_run) {
      log::Info("reconciler", "dry run: would create a smoke-check job",
                {{"job", j.namespace_ + "/" + j.job}, {"check", j.check}});
      continue;
    }
    auto res = scope->client->Create(kube::resources::Jobs(), scope->ns, *body);
    if (!res.ok() && res.status().code() != StatusCode::kAlreadyExists) {
      return Status(res.status().code(), "create smoke-check job " + j.namespace_ + "/" + j.job +
                                             ": " + res.status().message());
    }
    log::Info("reconciler",
              res.ok() ? "created a smoke-check job" : "smoke-check job exists already",
              {{"rollout", j.rollout},
               {"job", j.namespace_ + "/" + j.job},
               {"check", j.check},
               {"image", j.image}});
  }
  return Status::Ok();
}

// The Jobs of passed checks, once their result is in status. The uid precondition deletes only the
// Job that was read; its pods go with it (Background). A failure is logged only: the Job's
// ttlSecondsAfterFinished removes it anyway.
void Reconciler::DeleteSmokeJobs(const std::string& key, const Plan& plan) {
  for (const SmokeJobRef& j : plan.smoke_delete) {
    if (opts_.dry_run) continue;
    kube::DeleteOptions del;
    del.propagation_policy = "Background";
    del.precondition_uid = j.uid;
    auto scope = ScopeOf(key.substr(0, key.find('/')), j.namespace_);
    Status st = scope.ok() ? scope->client->Delete(kube::resources::Jobs(), scope->ns, j.job, del)
                           : scope.status();
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      log::Warn("reconciler", "cannot delete a passed smoke check's job; its TTL removes it",
                {{"rollout", key}, {"job", j.namespace_ + "/" + j.job}, {"error", st.message()}});
    }
  }
}

// ---- Execute ----

Status Reconciler::Execute(const std::string& key, const Observation& o, const Plan& plan,
                           Clock::MonoTime started, bool* deleted,
                           std::optional<std::chrono::nanoseconds>* deferred) {
  if (Status st = ExecutePatches(key, o.observed, plan); !st.ok()) return st;
  if (Status st = CreateSmokeJobs(o, plan); !st.ok()) return st;
  if (!plan.status) return Status::Ok();
  if (auto wait = ProgressWriteDelay(key, o.observed.rollout.status, plan); wait) {
    *deferred = wait;  // written on the reconcile this requeue brings, or with the next change
    return Status::Ok();
  }
  if (opts_.dry_run) {
    log::Info("reconciler", "dry run: would write status",
              {{"rollout", key},
               {"phase", api::PhaseName(plan.status->phase)},
               {"message", plan.status->message}});
    return Status::Ok();
  }
  Status st = ExecuteStatus(key, o, plan, started);
  if (st.ok()) DeleteSmokeJobs(key, plan);
  if (st.code() == StatusCode::kNotFound) *deleted = true;
  return st.code() == StatusCode::kNotFound ? Status::Ok() : st;
}

// How long a status write that only mirrors progress waits: until progress_interval after this
// rollout's last status write. nullopt: write now (a phase or any other change, patches sent,
// the interval passed).
std::optional<std::chrono::nanoseconds> Reconciler::ProgressWriteDelay(
    const std::string& key, const api::RolloutStatus& before, const Plan& plan) {
  if (opts_.progress_interval <= std::chrono::nanoseconds::zero() || !plan.patches.empty() ||
      !plan.smoke_create.empty() || !plan.smoke_delete.empty() ||
      !(WithoutProgress(before) == WithoutProgress(*plan.status))) {
    return std::nullopt;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_status_write_.find(key);
  if (it == last_status_write_.end()) return std::nullopt;
  return Remaining(it->second, opts_.progress_interval, clock_.Now());
}

// The patches, in plan order. The first roll-forward patch of an environment closes its
// reaction-latency measurement.
Status Reconciler::ExecutePatches(const std::string& key, const Observed& obs, const Plan& plan) {
  const std::string stage =
      std::to_string(obs.rollout.status.revision) + "/" + obs.rollout.status.current_environment;
  bool observed_reaction = false;
  for (const auto& p : plan.patches) {
    if (!p.rollback && opts_.recorder != nullptr && !observed_reaction && !opts_.dry_run) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = eligible_.find(key);
      if (it != eligible_.end() && it->second.first == stage) {
        opts_.recorder->ReactionLatency(clock_.Now() - it->second.second);
        eligible_.erase(it);
        observed_reaction = true;
      }
    }
    if (Status st = ApplyPatch(obs.rollout.namespace_, p); !st.ok()) {
      return Status(st.code(), "patch " + p.namespace_ + "/" + p.name + ": " + st.message());
    }
  }
  return Status::Ok();
}

// The status write, then what depends on its success: the reaction-latency start, the metrics,
// the overlay, the Events and the phase-change log line.
Status Reconciler::ExecuteStatus(const std::string& key, const Observation& o, const Plan& plan,
                                 Clock::MonoTime started) {
  const api::Rollout& before = o.observed.rollout;
  const api::RolloutStatus& after = *plan.status;
  kube::Json updated = *o.object;
  updated["status"] = api::EncodeStatus(after);
  auto res = client_.UpdateStatus(kube::resources::ContainerRollouts(), before.namespace_, updated);
  if (!res.ok() && res.status().code() == StatusCode::kNotFound) {
    // Deleted while this reconcile ran (e.g. during a rollback): nothing is left to record.
    log::Info("reconciler", "rollout deleted during the reconcile; its status is not written",
              {{"rollout", key}, {"phase", api::PhaseName(after.phase)}});
    RecordDeleted(key);
    return Status(StatusCode::kNotFound, "deleted");
  }
  if (!res.ok() && !res.status().IsRetryable()) return StatusWriteRefused(key, o, res.status());
  if (!res.ok()) return res.status();
  status_writes_.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_status_write_[key] = clock_.Now();
  }
  // An environment entering Updating is eligible from this reconcile's start; its first patch
  // (the pass that follows) closes the reaction-latency measurement.
  if (const api::EnvironmentStatus* e = EntersUpdating(before, after); e != nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    eligible_[key] = {std::to_string(after.revision) + "/" + e->name, started};
  }
  // Recorded only after a successful write, so a retried reconcile never counts twice.
  if (opts_.recorder != nullptr) opts_.recorder->StatusWritten(before, &before.status, after);
  Remember("rollout", key, api::TrimRollout(std::move(res).value()));
  const kube::ObjectReference ref = EventSubject(before);
  for (const auto& ev : plan.events) events_.Record(ref, ev.type, ev.reason, ev.message);
  if (after.phase != before.status.phase) {
    const std::string from = api::PhaseName(before.status.phase);
    log::Info("reconciler", "rollout phase changed",
              {{"rollout", key},
               {"from", from.empty() ? "(new)" : from},
               {"to", api::PhaseName(after.phase)},
               {"environment", after.current_environment},
               {"message", after.message}});
  }
  return Status::Ok();
}

// The API server refused the status write for good (422 Invalid: a CRD bound or validation rule,
// e.g. after a CRD upgrade; 400; 403). Patches this reconcile sent stay covered: the previous
// images were written by an earlier, accepted status before any patch, and that status is what
// stays. The refusal is made visible (the accepted status with this message, a Warning Event, an
// error line) and the key is retried with per-key backoff, never dropped: dropping it would wedge
// the rollout with no rollback.
Status Reconciler::StatusWriteRefused(const std::string& key, const Observation& o,
                                      const Status& refused) {
  const api::Rollout& before = o.observed.rollout;
  const std::string why =
      api::Bounded(std::string("the API server refused the status update (") +
                       StatusCodeName(refused.code()) + "): " + refused.message(),
                   api::kMaxMessage);
  log::Error("reconciler", "status update refused; the last accepted status is kept",
             {{"rollout", key}, {"error", why}});
  if (refused.code() == StatusCode::kInvalid) {
    api::RolloutStatus kept = before.status;
    kept.message = why;
    kube::Json updated = *o.object;
    updated["status"] = api::EncodeStatus(kept);
    auto res =
        client_.UpdateStatus(kube::resources::ContainerRollouts(), before.namespace_, updated);
    if (res.ok()) Remember("rollout", key, api::TrimRollout(std::move(res).value()));
  }
  const kube::ObjectReference ref = EventSubject(before);
  events_.Record(ref, "Warning", "StatusUpdateRefused", why);
  return Status(StatusCode::kUnavailable, why);
}

// A Conflict: something changed what this reconcile read. The rollout is read again from the API
// server, so the retry (with backoff) plans from the current object, not a lagging cache.
void Reconciler::ForgetStale(const std::string& key) {
  const auto slash = key.find('/');
  if (slash == std::string::npos) return;
  auto r = client_.Get(kube::resources::ContainerRollouts(), key.substr(0, slash),
                       key.substr(slash + 1));
  if (r.ok()) Remember("rollout", key, api::TrimRollout(std::move(r).value()));
}

// ---- Record ----

void Reconciler::RecordDeleted(const std::string& key) {
  if (analysis_ != nullptr) analysis_->Forget(key);
  if (opts_.images != nullptr) opts_.images->Forget(key);
  {
    std::lock_guard<std::mutex> lock(mu_);
    eligible_.erase(key);
    last_status_write_.erase(key);
    healthy_pods_.erase(key);
  }
  if (opts_.pod_cache != nullptr) opts_.pod_cache->Release(key);
  if (opts_.recorder != nullptr) {
    const auto slash = key.find('/');
    opts_.recorder->RolloutDeleted(key.substr(0, slash), key.substr(slash + 1));
  }
}

// Nothing written: keep the gauges current (e.g. after a restart).
void Reconciler::RecordUnchanged(const Observed& obs, const Plan& plan) {
  if (opts_.recorder == nullptr || (plan.status && !opts_.dry_run)) return;
  opts_.recorder->StatusWritten(obs.rollout, &obs.rollout.status, obs.rollout.status);
}

}  // namespace rollgate::rollout
