#include "controller/rollout/planner.h"

#include <algorithm>
#include <set>

#include "controller/api/codec.h"
#include "controller/api/reasons.h"
#include "controller/api/well_known.h"
#include "controller/rollout/analysis.h"
#include "controller/rollout/image_ref.h"
#include "controller/rollout/oci_manifest.h"

namespace rollgate::rollout {
namespace {

using api::DeploymentView;
using api::EnvironmentPhase;
using api::EnvironmentSpec;
using api::EnvironmentStatus;
using api::Reason;
using api::RolloutPhase;
using api::TargetSpec;
using api::TargetStatus;
using api::WallTime;
using std::chrono::seconds;

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

// The containers a target's write names.
std::vector<std::string> ContainerNames(const TargetSpec& t) {
  std::vector<std::string> out;
  for (const auto& [container, logical] : t.containers) out.push_back(container);
  return out;
}
std::vector<std::string> ContainerNames(const TargetStatus& ts) {
  std::vector<std::string> out;
  for (const auto& [container, image] : ts.previous_images) out.push_back(container);
  return out;
}

std::string PatchLimitMessage(const std::string& ns, const std::string& name, int patches) {
  return "deployment " + ns + "/" + name + " was already patched " + std::to_string(patches) +
         " times in this attempt; refusing another patch (someone else keeps changing it)";
}

std::string Revision(std::int64_t r) { return std::to_string(r); }

std::string DeploymentName(const std::string& ns, const std::string& name) {
  return "deployment " + ns + "/" + name;
}

// The recorded platform image a node of `want` pulls (containerd's matching: SelectPlatform);
// nullptr when the image offers none.
const api::ResolvedPlatform* SelectResolved(const api::ResolvedImage& image, const Platform& want) {
  Manifest index;
  index.kind = Manifest::Kind::kIndex;
  std::vector<const api::ResolvedPlatform*> entries;
  for (const auto& p : image.platforms) {
    auto parsed = ParsePlatform(p.platform);
    if (!parsed.ok()) continue;
    index.manifests.push_back(Descriptor{"", p.digest, p.size, *parsed});
    entries.push_back(&p);
  }
  const Descriptor* d = SelectPlatform(index, want);
  return d == nullptr ? nullptr : entries[static_cast<size_t>(d - index.manifests.data())];
}

// "image <logical> ("<reference>")", as registry pre-flight messages name an image.
std::string ImageWords(const std::string& logical, const std::string& reference) {
  std::string out = "image ";
  out += logical;
  out += " (\"";
  out += reference;
  out += "\")";
  return out;
}

// status.resolvedSummary: "backend@sha256:0123456789ab 12.3 MiB, worker@...".
// `reference` (spec.images[logical]) with the digest `resolved` recorded for it, when the record
// was made from this very reference (a reference with a digest stays as written); else as is.
std::string PinnedFrom(const std::string& logical, const std::string& reference,
                       const std::vector<api::ResolvedImage>& resolved) {
  for (const auto& image : resolved) {
    if (image.name == logical && image.reference == reference) {
      return PinnedReference(reference, image.digest);
    }
  }
  return reference;
}

std::string ResolvedSummary(const std::vector<api::ResolvedImage>& images) {
  std::string out;
  for (const auto& image : images) {
    if (!out.empty()) out += ", ";
    out += image.name;
    out += "@";
    out += image.digest.substr(0, std::string_view("sha256:").size() + 12);
    out += " ";
    out += HumanBytes(image.size);
  }
  return out;
}

// What one gate of an environment step decided: go on, wait (what for, and when to look again),
// or fail the environment (with a reason from the catalogue).
class GateResult {
 public:
  enum class Verdict { kPass, kWait, kFail };

  static GateResult Pass() { return GateResult(Verdict::kPass); }
  // `message` (when set) becomes the environment's message while it waits.
  static GateResult Wait(std::optional<std::string> message, std::optional<seconds> after) {
    GateResult g(Verdict::kWait);
    g.message_ = std::move(message);
    g.requeue_after_ = after;
    return g;
  }
  static GateResult Fail(Reason reason, std::string message) {
    GateResult g(Verdict::kFail);
    g.reason_ = reason;
    g.message_ = std::move(message);
    return g;
  }

  Verdict verdict() const { return verdict_; }
  bool passed() const { return verdict_ == Verdict::kPass; }
  const std::optional<std::string>& message() const { return message_; }
  std::optional<seconds> requeue_after() const { return requeue_after_; }
  Reason reason() const { return reason_; }

 private:
  explicit GateResult(Verdict v) : verdict_(v) {}

  Verdict verdict_;
  std::optional<std::string> message_;
  std::optional<seconds> requeue_after_;
  Reason reason_ = Reason::kInvalidSpec;
};

// The planning context: the status being built plus what the plan accumulates.
class Planner {
 public:
  Planner(const Observed& obs, const PlannerOptions& opts)
      : obs_(obs), opts_(opts), r_(obs.rollout), st_(obs.rollout.status) {
    if (PinsDigests(r_)) pinned_ = PinnedImages(r_);
  }

  Plan Run();

 private:
  // ---- the rollout as a whole ----
  void StartRevision();
  bool HandleAnnotations();  // true: the rollout finished (aborted before any change)
  void HandleAbort();
  bool HandleAbortBeforeChange(EnvironmentStatus& env);
  void HandleRetry();
  void HandlePromote();
  bool ValidateSpec();
  // The first thing in the spec the controller cannot act on ("spec.images.x", what is wrong).
  std::optional<std::pair<std::string, std::string>> SpecProblem() const;
  void Step();
  void SetConditions();
  void RecordHistory();  // status.history's record of the current revision

  // ---- one environment: the steps, one per phase ----
  void StepPending(const EnvironmentSpec& spec, EnvironmentStatus& env);
  void StepUpdating(const EnvironmentSpec& spec, EnvironmentStatus& env);
  void StepVerifying(const EnvironmentSpec& spec, EnvironmentStatus& env);
  void StepBaking(const EnvironmentSpec& spec, EnvironmentStatus& env);
  void StepRollingBack(const EnvironmentSpec& spec, EnvironmentStatus& env);

  // ---- the gates ----
  GateResult Approval(const EnvironmentSpec& spec, const EnvironmentStatus& env) const;
  GateResult PreFlight(const EnvironmentSpec& spec) const;
  GateResult RegistryPreFlight(const EnvironmentSpec& spec, EnvironmentStatus& env);
  GateResult RegistryRetry(EnvironmentStatus& env, Reason reason, const std::string& message);
  bool ClusterHeld(const EnvironmentSpec& spec, EnvironmentStatus& env);
  GateResult ImageFits(const EnvironmentSpec& spec, const std::string& logical,
                       const api::ResolvedImage& image) const;
  GateResult RecordableImages(const std::string& ns, const TargetSpec& t,
                              const DeploymentView& d) const;
  GateResult TargetsPresent(const EnvironmentSpec& spec) const;
  GateResult NamespaceGuard(const std::string& ns) const;
  GateResult TargetGuard(const std::string& ns, const std::string& deployment,
                         const std::vector<std::string>& containers) const;
  GateResult ValidationVerdicts() const;
  GateResult PodHealth(const EnvironmentSpec& spec, const EnvironmentStatus& env);
  GateResult Health(const EnvironmentSpec& spec, WallTime deadline) const;
  GateResult HealthDuringBake(const EnvironmentSpec& spec) const;
  GateResult WorkerValidation(WallTime deadline) const;
  GateResult Analysis(const EnvironmentSpec& spec, EnvironmentStatus& env);
  GateResult SmokeChecks(const EnvironmentSpec& spec, EnvironmentStatus& env,
                         api::SmokeCheckWhen when);
  GateResult SmokeCheckVerdict(const SmokeJob& job, const SmokeJobObservation& seen,
                               api::SmokeCheckStatus& record, bool* running);
  GateResult Bake(const EnvironmentSpec& spec, const EnvironmentStatus& env) const;
  GateResult RollbackHealth(const EnvironmentSpec& spec, const EnvironmentStatus& env) const;

  // ---- transitions and helpers ----
  bool Passed(const GateResult& g, EnvironmentStatus& env);  // applies a wait or a failure
  void AwaitApproval(EnvironmentStatus& env);
  void EnterUpdating(const EnvironmentSpec& spec, EnvironmentStatus& env);
  std::vector<TargetStatus> RecordPreviousImages(const EnvironmentSpec& spec,
                                                 const EnvironmentStatus& env) const;
  void FailRollback(EnvironmentStatus& env, const GateResult& refusal,
                    const std::string& deployment);
  std::optional<DeploymentPatch> UpdatePatch(const std::string& ns, const TargetSpec& t,
                                             const DeploymentView& d) const;
  std::optional<DeploymentPatch> RestorePatch(const std::string& ns, const TargetSpec& t,
                                              const TargetStatus& ts,
                                              const DeploymentView& d) const;
  void MirrorCounters(const EnvironmentSpec& spec, EnvironmentStatus& env) const;
  // The first target that is not yet rolled out, in words; empty when every one is.
  std::string Awaited(const EnvironmentSpec& spec) const;
  void Fail(EnvironmentStatus& env, Reason reason, const std::string& message);
  void Advance(EnvironmentStatus& env);

  EnvironmentStatus* Current();
  const EnvironmentSpec* CurrentSpec() const;
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
  WallTime ProgressDeadline(std::optional<WallTime> from) const {
    return from.value_or(obs_.now) + seconds(r_.spec.progress_deadline_seconds);
  }

  // The images the Deployments are patched with: spec.images, or pinned (PinnedImages).
  const std::map<std::string, std::string>& Patched() const {
    return pinned_ ? *pinned_ : r_.spec.images;
  }
  // The reference of logical image `logical` as this plan's status pins it (the registry
  // pre-flight may have recorded its digest in this very plan); "" when spec.images lacks it.
  std::string ImageNow(const std::string& logical) const;

  const Observed& obs_;
  const PlannerOptions& opts_;
  const api::Rollout& r_;
  std::optional<std::map<std::string, std::string>> pinned_;
  api::RolloutStatus st_;
  Plan plan_;
  bool aborting_ = false;
  bool retried_ = false;     // a retry was handled in this plan
  std::string held_reason_;  // why the current environment waits, for the Progressing condition
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

const EnvironmentSpec* Planner::CurrentSpec() const {
  for (const auto& e : r_.spec.environments) {
    if (e.name == st_.current_environment) return &e;
  }
  return nullptr;
}

const DeploymentView* Planner::Find(const std::string& ns, const std::string& name) const {
  auto it = obs_.deployments.find(ns + "/" + name);
  return it == obs_.deployments.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------------------------------------
// The rollout as a whole

void Planner::StartRevision() {
  const bool first = st_.revision == 0;
  // A revision still running when the next one starts ends here: superseded.
  if (!st_.history.empty() && st_.history.back().revision == st_.revision &&
      !st_.history.back().finished_at) {
    api::RevisionRecord& old = st_.history.back();
    old.finished_at = obs_.now;
    old.reason = "Superseded";
    old.message = "revision " + Revision(st_.revision + 1) + " started";
  }
  st_.revision += 1;
  st_.spec_hash = obs_.spec_hash;
  st_.environments.clear();
  st_.resolved_images.clear();  // each revision resolves its images afresh
  st_.resolved_summary.clear();
  for (const auto& e : r_.spec.environments) {
    EnvironmentStatus es;
    es.name = e.name;
    st_.environments.push_back(std::move(es));
  }
  st_.current_environment = r_.spec.environments.empty() ? "" : r_.spec.environments[0].name;
  st_.phase = RolloutPhase::kProgressing;
  st_.message = "revision " + Revision(st_.revision) + " started";
  api::RevisionRecord record;
  record.revision = st_.revision;
  record.images = r_.spec.images;
  record.started_at = obs_.now;
  record.phase = RolloutPhase::kProgressing;
  st_.history.push_back(std::move(record));
  if (st_.history.size() > api::kMaxHistory) {
    st_.history.erase(st_.history.begin(),
                      st_.history.end() - static_cast<std::ptrdiff_t>(api::kMaxHistory));
  }
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
    return h == st_.handled_annotations.end() || h->second != api::HandledValue(it->second);
  };
  auto handle = [&](const char* key) {
    st_.handled_annotations[key] = api::HandledValue(r_.annotations.at(key));
  };

  if (fresh(api::kAbortAnnotation)) {
    handle(api::kAbortAnnotation);
    EnvironmentStatus* env = Current();
    if (api::IsTerminal(st_.phase) || env == nullptr) {
      Event("Normal", "AbortIgnored",
            "abort requested, but the rollout is already " + api::PhaseName(st_.phase));
    } else if (api::IsInProgress(env->phase) || env->phase == EnvironmentPhase::kRollingBack) {
      HandleAbort();
    } else if (HandleAbortBeforeChange(*env)) {
      return true;
    }
  }
  if (fresh(api::kRetryAnnotation)) {
    handle(api::kRetryAnnotation);
    HandleRetry();
  }
  if (fresh(api::kPromoteAnnotation)) {
    handle(api::kPromoteAnnotation);
    HandlePromote();
  }
  return false;
}

// An abort while the environment has (or may have) new images: restore the previous ones.
void Planner::HandleAbort() {
  EnvironmentStatus& env = *Current();
  aborting_ = true;
  if (env.phase == EnvironmentPhase::kRollingBack) return;
  env.phase = EnvironmentPhase::kRollingBack;
  env.reason = api::ReasonName(Reason::kAborted);
  env.message = "aborted by the rollgate.io/abort annotation; restoring previous images";
  env.finished_at = obs_.now;
  st_.phase = RolloutPhase::kRollingBack;
  st_.message = "aborted in environment " + env.name + "; rolling back";
  Event("Warning", "Aborted", st_.message);
}

// An abort before the environment changed anything: the rollout ends Aborted at once.
bool Planner::HandleAbortBeforeChange(EnvironmentStatus& env) {
  env.phase =
      EnvironmentPhase::kPending;  // no longer awaiting approval: a late promote does nothing
  env.reason = api::ReasonName(Reason::kAborted);
  env.message = "aborted by the rollgate.io/abort annotation before any change";
  st_.phase = RolloutPhase::kAborted;
  st_.message = "aborted before environment " + env.name + " changed";
  Event("Warning", "Aborted", st_.message);
  return true;
}

void Planner::HandleRetry() {
  EnvironmentStatus* env = Current();
  if (env == nullptr ||
      (st_.phase != RolloutPhase::kFailed && st_.phase != RolloutPhase::kRolledBack &&
       st_.phase != RolloutPhase::kAborted)) {
    Event("Normal", "RetryIgnored",
          "retry requested, but the rollout is " + api::PhaseName(st_.phase));
    return;
  }
  const int attempts = env->attempts + 1;
  std::vector<TargetStatus> recorded = std::move(env->targets);
  *env = EnvironmentStatus{};
  env->name = st_.current_environment;
  env->attempts = attempts;
  env->targets = std::move(recorded);          // the first attempt's previous images stay
  for (auto& t : env->targets) t.patches = 0;  // the patch bound is per attempt
  st_.phase = RolloutPhase::kProgressing;
  st_.message = "retrying environment " + env->name;
  retried_ = true;
  // status.attempts counts retries; the Event says the same number.
  Event("Normal", "Retry", st_.message + " (retry " + std::to_string(attempts) + ")");
}

void Planner::HandlePromote() {
  EnvironmentStatus* env = Current();
  if (env == nullptr || env->phase != EnvironmentPhase::kAwaitingApproval ||
      api::IsTerminal(st_.phase)) {
    Event("Normal", "PromoteIgnored", "promote requested, but no environment awaits approval");
    return;
  }
  env->approved_at = obs_.now;
  env->phase = EnvironmentPhase::kPending;
  st_.phase = RolloutPhase::kProgressing;
  Event("Normal", "Promoted", "environment " + env->name + " approved");
}

std::optional<std::pair<std::string, std::string>> Planner::SpecProblem() const {
  // What the CRD's schema and CEL rules cannot express: image reference syntax.
  // A reference without a tag or digest would run whatever ":latest" is at pull time on each
  // node: refused, as the CRD documents.
  for (const auto& [logical, ref] : r_.spec.images) {
    auto parsed = ParseImageRef(ref);
    if (!parsed.ok()) return std::pair("spec.images." + logical, parsed.status().message());
    if (parsed->tag.empty() && parsed->digest.empty()) {
      return std::pair("spec.images." + logical,
                       "image \"" + ref +
                           "\" has neither a tag nor a digest; name the version (an implicit "
                           ":latest is refused)");
    }
  }
  for (size_t ei = 0; ei < r_.spec.environments.size(); ++ei) {
    const EnvironmentSpec& env = r_.spec.environments[ei];
    std::set<std::string> names;
    for (const DeclaredSmokeCheck& c : SmokeChecksOf(env)) {
      const std::string field =
          "spec.environments[" + std::to_string(ei) + "]" +
          (c.own_target ? ".targets[" + std::to_string(*c.own_target) + "]" : std::string()) +
          ".smokeChecks." + c.spec->name;
      if (!names.insert(c.spec->name).second) {
        return std::pair(field, "another smoke check of environment " + env.name +
                                    " has this name (names are unique per environment)");
      }
      if (!r_.spec.images.contains(c.spec->image)) {
        return std::pair(field, "image \"" + c.spec->image + "\" names no image of spec.images");
      }
      if (c.spec->command.empty()) return std::pair(field, "has no command");
      if (!SiteOf(env, c)) {
        return std::pair(field, c.own_target
                                    ? "its target has no container of image " + c.spec->image
                                    : "no target of environment " + env.name +
                                          " has a container of image " + c.spec->image);
      }
    }
  }
  if (!r_.spec.image_policy) return std::nullopt;
  const api::ImagePolicySpec& policy = *r_.spec.image_policy;
  for (const auto& [logical, quantity] : policy.max_size) {
    const std::string field = "spec.imagePolicy.maxSize." + logical;
    if (!r_.spec.images.contains(logical)) {
      return std::pair(field, "names no image of spec.images");
    }
    auto bytes = ParseByteQuantity(quantity);
    if (!bytes.ok()) return std::pair(field, bytes.status().message());
  }
  for (const auto& p : policy.platforms) {
    auto parsed = ParsePlatform(p);
    if (!parsed.ok()) return std::pair("spec.imagePolicy.platforms", parsed.status().message());
  }
  return std::nullopt;
}

bool Planner::ValidateSpec() {
  auto problem = SpecProblem();
  if (!problem) return true;
  const std::string reason = api::ReasonName(Reason::kInvalidSpec);
  st_.phase = RolloutPhase::kFailed;
  st_.message = problem->first;
  st_.message += ": ";
  st_.message += problem->second;
  st_.observed_generation = r_.generation;
  SetConditions();
  auto& ready = st_.conditions[0];
  ready.reason = reason;
  ready.message = st_.message;
  for (auto& c : st_.conditions) {
    if (c.type == "Degraded") {
      c.reason = reason;
      c.message = st_.message;
    }
  }
  Event("Warning", reason, st_.message);
  return false;
}

void Planner::Step() {
  EnvironmentStatus* env = Current();
  const EnvironmentSpec* spec = CurrentSpec();
  if (env == nullptr || spec == nullptr) return;
  const bool acting =
      env->phase == EnvironmentPhase::kUpdating || env->phase == EnvironmentPhase::kVerifying ||
      env->phase == EnvironmentPhase::kBaking || env->phase == EnvironmentPhase::kRollingBack;
  if (acting && ClusterHeld(*spec, *env)) return;
  switch (env->phase) {
    case EnvironmentPhase::kPending:
    case EnvironmentPhase::kAwaitingApproval:
      StepPending(*spec, *env);
      return;
    case EnvironmentPhase::kUpdating:
      StepUpdating(*spec, *env);
      return;
    case EnvironmentPhase::kVerifying:
      StepVerifying(*spec, *env);
      return;
    case EnvironmentPhase::kBaking:
      StepBaking(*spec, *env);
      return;
    case EnvironmentPhase::kRollingBack:
      StepRollingBack(*spec, *env);
      return;
    case EnvironmentPhase::kSucceeded:
    case EnvironmentPhase::kRolledBack:
    case EnvironmentPhase::kFailed:
      return;  // settled: the rollout phase says what happens next
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
  const RolloutPhase p = st_.phase;
  const std::string phase_word = p == RolloutPhase::kNone ? "Pending" : api::PhaseName(p);
  EnvironmentStatus* env = Current();
  const std::string env_reason = env != nullptr && !env->reason.empty() ? env->reason : phase_word;
  set("Ready", p == RolloutPhase::kSucceeded, phase_word, st_.message);
  const bool progressing = p == RolloutPhase::kProgressing || p == RolloutPhase::kRollingBack ||
                           p == RolloutPhase::kAwaitingApproval || p == RolloutPhase::kPending;
  set("Progressing", progressing, held_reason_.empty() ? phase_word : held_reason_, st_.message);
  const bool degraded = p == RolloutPhase::kFailed || p == RolloutPhase::kRolledBack ||
                        p == RolloutPhase::kAborted || p == RolloutPhase::kRollingBack;
  set("Degraded", degraded, degraded ? env_reason : "AsExpected", degraded ? st_.message : "");
  // Keep a stable order: Ready, Progressing, Degraded.
  std::stable_sort(st_.conditions.begin(), st_.conditions.end(),
                   [](const api::Condition& a, const api::Condition& b) {
                     auto rank = [](const std::string& t) {
                       return t == "Ready" ? 0 : t == "Progressing" ? 1 : 2;
                     };
                     return rank(a.type) < rank(b.type);
                   });
}

// ---------------------------------------------------------------------------------------------
// One environment: the steps

// Pending: approval, then pre-flight (nothing is changed unless every check passes), then the
// previous images are recorded; the patches follow in the next step, after this is persisted.
void Planner::StepPending(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  if (!Approval(spec, env).passed()) {
    AwaitApproval(env);
    return;
  }
  if (ClusterHeld(spec, env)) return;
  if (!Passed(PreFlight(spec), env)) return;
  if (!Passed(RegistryPreFlight(spec, env), env)) return;
  if (!Passed(SmokeChecks(spec, env, api::SmokeCheckWhen::kBeforePatch), env)) return;
  EnterUpdating(spec, env);
}

// Updating: the previous images are in status; patch what differs, then verify.
// Every write passes the guard again, on the fresh read the reconciler makes before it patches.
void Planner::StepUpdating(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  if (!Passed(TargetsPresent(spec), env)) return;
  const std::string ns = api::EnvironmentNamespace(r_, spec);
  if (!Passed(NamespaceGuard(ns), env)) return;
  for (const auto& t : spec.targets) {
    if (!Passed(TargetGuard(ns, t.deployment, ContainerNames(t)), env)) return;
  }
  for (size_t i = 0; i < spec.targets.size(); ++i) {
    const TargetSpec& t = spec.targets[i];
    auto patch = UpdatePatch(ns, t, *Find(ns, t.deployment));
    if (!patch) continue;
    if (i < env.targets.size()) {
      TargetStatus& ts = env.targets[i];
      if (ts.patches >= kMaxPatchesPerAttempt) {
        Fail(env, Reason::kPatchLimitExceeded, PatchLimitMessage(ns, t.deployment, ts.patches));
        return;
      }
      ts.patches += 1;
    }
    plan_.patches.push_back(std::move(*patch));
  }
  env.phase = EnvironmentPhase::kVerifying;
  env.message = "waiting for the new images to roll out";
  RequeueAfter(seconds(1));
}

// Verifying: a failed worker validation fails at once; then health, worker validation and
// analysis must pass, in that order, before the environment bakes or succeeds.
void Planner::StepVerifying(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  const WallTime deadline = ProgressDeadline(env.started_at);
  if (obs_.validation && obs_.validation->required) {
    const auto& v = *obs_.validation;
    env.validation = api::ValidationStatus{v.gpu_pods, v.passed, v.failed, v.message};
  }
  if (!Passed(ValidationVerdicts(), env)) return;
  MirrorCounters(spec, env);
  if (!Passed(PodHealth(spec, env), env)) return;
  if (!Passed(Health(spec, deadline), env)) return;
  if (!Passed(WorkerValidation(deadline), env)) return;
  if (!Passed(SmokeChecks(spec, env, api::SmokeCheckWhen::kAfterHealthy), env)) return;
  if (!Passed(Analysis(spec, env), env)) return;
  env.verified_at = obs_.now;
  if (spec.bake_seconds > 0) {
    env.phase = EnvironmentPhase::kBaking;
    env.message = "baking for " + std::to_string(spec.bake_seconds) + "s";
    RequeueAfter(seconds(spec.bake_seconds));
    return;
  }
  Advance(env);
}

// Baking: the targets must stay healthy until the bake time has passed.
void Planner::StepBaking(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  MirrorCounters(spec, env);
  if (!Passed(HealthDuringBake(spec), env)) return;
  if (!Passed(Bake(spec, env), env)) return;
  Advance(env);
}

// RollingBack: restore what differs from the recorded previous state, then wait for health.
// The rollback restores the namespace and Deployment recorded in status (never ones taken from
// the spec), and each restore passes the write guard on a fresh read: a namespace that withdrew
// its consent, a renamed container or another rollout's claim ends the rollback Failed with that
// reason, without a write, while the other targets are still restored.
void Planner::StepRollingBack(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  const std::string spec_ns = api::EnvironmentNamespace(r_, spec);
  std::optional<std::pair<GateResult, std::string>> refused;
  for (auto& ts : env.targets) {
    if (ts.previous_images.empty()) continue;
    const std::string ns = ts.namespace_.empty() ? spec_ns : ts.namespace_;
    const DeploymentView* d = Find(ns, ts.deployment);
    if (d == nullptr) continue;  // nothing to restore
    TargetSpec t;  // the spec's target of that Deployment: which validation was injected
    t.deployment = ts.deployment;
    for (const auto& st : spec.targets) {
      if (st.deployment == ts.deployment && ns == spec_ns) t = st;
    }
    auto patch = RestorePatch(ns, t, ts, *d);
    if (!patch) continue;
    GateResult g = NamespaceGuard(ns);
    if (g.passed()) g = TargetGuard(ns, ts.deployment, ContainerNames(ts));
    if (g.passed() && ts.patches >= kMaxPatchesPerAttempt) {
      g = GateResult::Fail(Reason::kPatchLimitExceeded,
                           PatchLimitMessage(ns, ts.deployment, ts.patches));
    }
    if (!g.passed()) {
      if (!refused) refused.emplace(g, ns + "/" + ts.deployment);
      continue;
    }
    ts.patches += 1;
    plan_.patches.push_back(std::move(*patch));
  }
  if (refused) {
    FailRollback(env, refused->first, refused->second);
    return;
  }
  if (!plan_.patches.empty()) {
    st_.message =
        "environment " + env.name + " failed (" + env.reason + "); restoring previous images";
    RequeueAfter(seconds(1));
    return;
  }
  MirrorCounters(spec, env);
  const GateResult health = RollbackHealth(spec, env);
  if (health.verdict() == GateResult::Verdict::kFail) {
    env.phase = EnvironmentPhase::kFailed;
    st_.phase = RolloutPhase::kFailed;
    st_.message = *health.message();
    env.message = st_.message;
    Event("Warning", "RollbackFailed", st_.message);
    return;
  }
  if (!health.passed()) {
    st_.message = "environment " + env.name + " rolling back: " + health.message().value_or("");
    RequeueAfter(health.requeue_after().value_or(seconds(1)));
    return;
  }
  env.phase = EnvironmentPhase::kRolledBack;
  env.finished_at = obs_.now;
  const bool aborted = env.reason == api::ReasonName(Reason::kAborted);
  st_.phase = aborted ? RolloutPhase::kAborted : RolloutPhase::kRolledBack;
  st_.message = "environment " + env.name + " rolled back to its previous images (" + env.reason +
                ": " + env.message + ")";
  Event("Normal", "RolledBack", "environment " + env.name + " rolled back to its previous images");
}

// A restore the write guard refused: the rollout ends Failed with the guard's reason; the
// previous images stay recorded in status, and the original failure stays in the message.
void Planner::FailRollback(EnvironmentStatus& env, const GateResult& refusal,
                           const std::string& deployment) {
  const std::string word = api::ReasonName(refusal.reason());
  const std::string earlier = env.reason.empty() ? "" : " (it had failed: " + env.reason + ")";
  env.phase = EnvironmentPhase::kFailed;
  env.reason = word;
  env.message = "rollback of " + deployment + " refused: " + refusal.message().value_or("") +
                earlier + "; its previous images stay recorded in status";
  env.finished_at = obs_.now;
  st_.phase = RolloutPhase::kFailed;
  st_.message = "environment " + env.name + " failed: " + word + ": " + env.message;
  Event("Warning", word, "environment " + env.name + ": " + env.message);
  Event("Warning", "RollbackFailed", st_.message);
}

// ---------------------------------------------------------------------------------------------
// The gates

GateResult Planner::Approval(const EnvironmentSpec& spec, const EnvironmentStatus& env) const {
  if (spec.manual_approval && !env.approved_at) {
    return GateResult::Wait("environment " + env.name + " awaits approval", std::nullopt);
  }
  return GateResult::Pass();
}

GateResult Planner::PreFlight(const EnvironmentSpec& spec) const {
  const std::string ns = api::EnvironmentNamespace(r_, spec);
  if (GateResult g = NamespaceGuard(ns); !g.passed()) return g;
  for (const auto& [logical, ref] : r_.spec.images) {
    auto parsed = ParseImageRef(ref);
    if (!parsed.ok()) continue;  // ValidateSpec reported it
    if (Status allowed = CheckAllowedRegistry(*parsed, opts_.allowed_registries, ref);
        !allowed.ok()) {
      return GateResult::Fail(Reason::kImageNotAllowed, allowed.message());
    }
  }
  if (spec.analysis) {
    // The address is the tenant's; only an endpoint the operator listed is ever queried.
    const std::string& address = spec.analysis->prometheus_address;
    const auto& allowed = opts_.analysis_endpoints;
    if (std::none_of(allowed.begin(), allowed.end(),
                     [&](const std::string& e) { return AnalysisEndpointAllows(e, address); })) {
      std::string list;
      for (const auto& e : allowed) list += (list.empty() ? "" : ", ") + e;
      return GateResult::Fail(
          Reason::kAnalysisEndpointNotAllowed,
          "prometheus address \"" + RedactedAddress(address) +
              "\" is not an endpoint the operator allows (--analysis-endpoints-file: " +
              (list.empty() ? std::string("none") : SanitizeForStatus(list, 512)) + ")");
    }
  }
  for (const auto& t : spec.targets) {
    if (GateResult g = TargetGuard(ns, t.deployment, ContainerNames(t)); !g.passed()) return g;
    const DeploymentView* d = Find(ns, t.deployment);
    if (GateResult g = RecordableImages(ns, t, *d); !g.passed()) return g;
    if (t.worker_validation && t.worker_validation->cuda_required &&
        opts_.validator_image.empty() &&
        std::any_of(t.containers.begin(), t.containers.end(),
                    [&](const auto& c) { return d->gpu_requests.contains(c.first); })) {
      return GateResult::Fail(Reason::kWorkerValidationUnavailable,
                              DeploymentName(ns, t.deployment) +
                                  " requires CUDA validation, but the controller runs without "
                                  "--validator-image");
    }
  }
  return GateResult::Pass();
}

// The registry pre-flight (spec.imagePolicy): every image of spec.images looked up in its
// registry (the reconciler does it when the plan asks, then plans again). The revision's first
// environment records what each resolved to (status.resolvedImages); a later one compares: a tag
// that moved is reported (TagMoved) and, with pinDigests, the recorded digest is what it gets.
// Then each image a target of this environment uses must offer the platforms its pods run on and
// fit its maxSize. A registry that cannot be reached or refuses the credentials is retried until
// the progress deadline, counted from the first attempt that failed.
GateResult Planner::RegistryPreFlight(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  if (!r_.spec.image_policy) return GateResult::Pass();
  if (!obs_.images) {
    plan_.resolve_images = true;
    return GateResult::Wait(std::nullopt, std::nullopt);
  }
  const bool pin = r_.spec.image_policy->pin_digests;
  for (const auto& [logical, ref] : r_.spec.images) {
    auto it = obs_.images->find(logical);
    if (it == obs_.images->end()) {
      return RegistryRetry(env, Reason::kRegistryUnreachable,
                           ImageWords(logical, ref) + ": not looked up yet");
    }
    const Status& st = it->second.status;
    if (st.ok()) continue;
    std::string what = ImageWords(logical, ref);
    what += ": ";
    what += st.message();
    switch (st.code()) {
      case StatusCode::kNotFound:
        return GateResult::Fail(Reason::kImageNotFound, what);
      case StatusCode::kMalformed:
      case StatusCode::kInvalidArgument:
        return GateResult::Fail(Reason::kImageManifestInvalid, what);
      case StatusCode::kUnauthorized:
      case StatusCode::kForbidden:
        return RegistryRetry(env, Reason::kRegistryAuthFailed, what);
      default:
        return RegistryRetry(env, Reason::kRegistryUnreachable, what);
    }
  }
  std::vector<api::ResolvedImage> record;
  for (const auto& [logical, ref] : r_.spec.images) {
    const api::ResolvedImage& fresh = obs_.images->at(logical).image;
    const std::string& name = logical;  // a structured binding cannot be captured (C++20)
    auto old = std::find_if(st_.resolved_images.begin(), st_.resolved_images.end(),
                            [&](const api::ResolvedImage& r) { return r.name == name; });
    if (old == st_.resolved_images.end() || old->reference != ref) {
      record.push_back(fresh);
      continue;
    }
    if (old->digest != fresh.digest) {
      std::string moved = "image ";
      moved += logical;
      moved += ": \"";
      moved += ref;
      moved += "\" now names ";
      moved += fresh.digest;
      moved += ", not the ";
      moved += old->digest;
      moved += " it named when this revision started; environment ";
      moved += env.name;
      moved += pin ? " gets the recorded " : " gets ";
      moved += pin ? old->digest : fresh.digest;
      moved += pin ? " (spec.imagePolicy.pinDigests)" : " (spec.imagePolicy.pinDigests is off)";
      Event("Warning", "TagMoved", moved);
    }
    record.push_back(pin ? *old : fresh);
  }
  for (const auto& image : record) {
    if (GateResult g = ImageFits(spec, image.name, image); !g.passed()) return g;
  }
  if (record != st_.resolved_images) {
    const bool first = st_.resolved_images.empty();
    st_.resolved_images = std::move(record);
    st_.resolved_summary = ResolvedSummary(st_.resolved_images);
    if (first) {
      Event("Normal", "ImagesResolved",
            "revision " + Revision(st_.revision) + ": " + st_.resolved_summary +
                (pin ? "; every environment gets these digests" : ""));
    }
  }
  return GateResult::Pass();
}

// A registry that did not answer or refused: waits and asks again (backing off from 2 s to 30 s
// as the wait grows), until the progress deadline counted from the first such answer.
GateResult Planner::RegistryRetry(EnvironmentStatus& env, Reason reason,
                                  const std::string& message) {
  if (!env.started_at) env.started_at = obs_.now;
  const WallTime deadline = ProgressDeadline(env.started_at);
  const auto waited = std::chrono::duration_cast<seconds>(obs_.now - *env.started_at);
  if (obs_.now >= deadline) {
    return GateResult::Fail(reason, message + " (retried for " + std::to_string(waited.count()) +
                                        "s, the progress deadline)");
  }
  const seconds backoff = std::clamp(waited / 2, seconds(2), seconds(30));
  return GateResult::Wait("waiting for the registry (" + api::ReasonName(reason) + "): " + message,
                          std::min(backoff, Until(deadline)));
}

// An environment in a remote cluster that the reconciler could not use for this plan waits, with
// a backoff, and fails ClusterUnreachable at its progress deadline. A rollback does not give up:
// it waits for the cluster for as long as it takes, since failing it would leave the new images.
bool Planner::ClusterHeld(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  if (spec.cluster.empty()) return false;
  auto it = obs_.unreachable_clusters.find(spec.cluster);
  if (it == obs_.unreachable_clusters.end()) return false;
  const std::string what =
      "cluster " + spec.cluster + " (environment " + env.name + "): " + it->second;
  if (!env.started_at) env.started_at = obs_.now;
  const WallTime deadline = ProgressDeadline(env.started_at);
  const auto waited = std::chrono::duration_cast<seconds>(obs_.now - *env.started_at);
  const bool rolling_back = env.phase == EnvironmentPhase::kRollingBack;
  if (!rolling_back && obs_.now >= deadline) {
    Fail(env, Reason::kClusterUnreachable,
         what + " (retried for " + std::to_string(waited.count()) + "s, the progress deadline)");
    return true;
  }
  env.message = "waiting for the cluster (ClusterUnreachable): " + what;
  held_reason_ = api::ReasonName(Reason::kClusterUnreachable);
  const seconds backoff = std::clamp(waited / 2, seconds(2), seconds(30));
  RequeueAfter(rolling_back ? backoff : std::min(backoff, Until(deadline)));
  return true;
}

// Each image a target of the environment uses offers the platforms its pods run on (the
// Deployment's kubernetes.io/arch constraint, else spec.imagePolicy.platforms) and is within its
// maxSize on each of them (on every platform it offers when those are not known).
GateResult Planner::ImageFits(const EnvironmentSpec& spec, const std::string& logical,
                              const api::ResolvedImage& image) const {
  const api::ImagePolicySpec& policy = *r_.spec.image_policy;
  const std::string ns = api::EnvironmentNamespace(r_, spec);
  const std::string name =
      "image " + logical + " (\"" + image.reference + "\", " + image.digest + ")";
  std::optional<std::int64_t> max;
  std::string max_text;
  if (auto it = policy.max_size.find(logical); it != policy.max_size.end()) {
    auto bytes = ParseByteQuantity(it->second);
    if (bytes.ok()) max = *bytes;  // SpecProblem refused the spec otherwise
    max_text = it->second;
  }
  std::string offered;
  for (const auto& p : image.platforms) offered += (offered.empty() ? "" : ", ") + p.platform;
  auto too_large = [&](const api::ResolvedPlatform& p) {
    return GateResult::Fail(Reason::kImageTooLarge,
                            name + " is " + HumanBytes(p.size) + " compressed for " + p.platform +
                                ", over its spec.imagePolicy.maxSize " + max_text);
  };
  for (const auto& t : spec.targets) {
    if (std::none_of(t.containers.begin(), t.containers.end(),
                     [&](const auto& c) { return c.second == logical; })) {
      continue;
    }
    const DeploymentView* d = Find(ns, t.deployment);
    std::vector<std::pair<Platform, std::string>> runs_on;  // platform, where that comes from
    if (d != nullptr && !d->node_archs.empty()) {
      for (const auto& arch : d->node_archs) {
        runs_on.emplace_back(Platform{d->node_os.empty() ? "linux" : d->node_os, arch, ""},
                             "its pod template's kubernetes.io/arch constraint");
      }
    } else {
      for (const auto& text : policy.platforms) {
        if (auto p = ParsePlatform(text); p.ok())
          runs_on.emplace_back(*p, "spec.imagePolicy.platforms");
      }
    }
    for (const auto& [want, source] : runs_on) {
      const api::ResolvedPlatform* p = SelectResolved(image, want);
      if (p == nullptr) {
        std::string missing = name;
        missing += " offers ";
        missing += offered.empty() ? std::string("no platform") : offered;
        missing += ", not ";
        missing += want.ToString();
        missing += ", which ";
        missing += DeploymentName(ns, t.deployment);
        missing += " runs on (";
        missing += source;
        missing += ")";
        return GateResult::Fail(Reason::kPlatformMissing, missing);
      }
      if (max && p->size > *max) return too_large(*p);
    }
    if (runs_on.empty() && max) {
      for (const auto& p : image.platforms) {
        if (p.size > *max) return too_large(p);
      }
    }
  }
  return GateResult::Pass();
}

// What a rollback would restore fits in status (api::kMaxRecordedImage, the CRD's bound): an image
// is recorded whole or the environment does not start, so no patch is ever sent that status
// could not undo.
GateResult Planner::RecordableImages(const std::string& ns, const TargetSpec& t,
                                     const DeploymentView& d) const {
  std::vector<std::pair<std::string, std::string>> recorded;  // container, image
  for (const auto& [container, logical] : t.containers) {
    if (auto it = d.container_images.find(container); it != d.container_images.end()) {
      recorded.emplace_back(container, it->second);
    }
  }
  for (const auto& ic : validation::ValidationContainers(Patched(), t, d, opts_.injection())) {
    if (auto it = d.init_container_images.find(ic.name); it != d.init_container_images.end()) {
      recorded.emplace_back(ic.name, it->second);
    }
  }
  for (const auto& [container, image] : recorded) {
    if (image.size() <= api::kMaxRecordedImage) continue;
    return GateResult::Fail(Reason::kPreviousImageTooLong,
                            DeploymentName(ns, t.deployment) + ": container \"" + container +
                                "\" runs an image reference of " + std::to_string(image.size()) +
                                " bytes; status records at most " +
                                std::to_string(api::kMaxRecordedImage) +
                                ", so a rollback could not restore it");
  }
  return GateResult::Pass();
}

// The namespace a write goes to exists and opts in to rollouts from this rollout's namespace
// (its own namespace always does). Judged on a fresh read: see Reconciler "the write guard".
GateResult Planner::NamespaceGuard(const std::string& ns) const {
  if (ns == r_.namespace_) return GateResult::Pass();
  auto it = obs_.namespaces.find(ns);
  if (it == obs_.namespaces.end()) {
    return GateResult::Fail(Reason::kNamespaceNotFound, "namespace " + ns + " does not exist");
  }
  auto l = it->second.labels.find(api::kAllowFromLabel);
  if (l == it->second.labels.end() || l->second != r_.namespace_) {
    return GateResult::Fail(Reason::kNamespaceNotPermitted,
                            "namespace " + ns + " does not opt in to rollouts from " +
                                r_.namespace_ + " (label it " + api::kAllowFromLabel + "=" +
                                r_.namespace_ + ")");
  }
  return GateResult::Pass();
}

// The Deployment a write goes to exists, has every container the write names, and is not
// claimed by another rollout that is still active (rollgate.io/owner).
GateResult Planner::TargetGuard(const std::string& ns, const std::string& deployment,
                                const std::vector<std::string>& containers) const {
  const DeploymentView* d = Find(ns, deployment);
  if (d == nullptr) {
    return GateResult::Fail(Reason::kDeploymentNotFound,
                            DeploymentName(ns, deployment) + " not found");
  }
  for (const auto& container : containers) {
    if (!d->container_images.contains(container)) {
      return GateResult::Fail(
          Reason::kContainerNotFound,
          DeploymentName(ns, deployment) + " has no container \"" + container + "\"");
    }
  }
  auto claim = d->annotations.find(api::kOwnerAnnotation);
  if (claim != d->annotations.end() && !claim->second.empty() && claim->second != r_.Key()) {
    auto owner = obs_.claim_owners.find(claim->second);
    if (owner != obs_.claim_owners.end() && !api::IsTerminal(owner->second)) {
      const std::string phase = api::PhaseName(owner->second);
      return GateResult::Fail(
          Reason::kTargetConflict,
          DeploymentName(ns, deployment) + " is claimed by rollout " + claim->second + " (" +
              api::kOwnerAnnotation + "), which is " +
              (phase.empty() ? "not readable by this controller or not yet started" : phase));
    }
  }
  return GateResult::Pass();
}

GateResult Planner::TargetsPresent(const EnvironmentSpec& spec) const {
  const std::string ns = api::EnvironmentNamespace(r_, spec);
  for (const auto& t : spec.targets) {
    if (Find(ns, t.deployment) == nullptr) {
      return GateResult::Fail(Reason::kDeploymentNotFound,
                              DeploymentName(ns, t.deployment) + " disappeared during the update");
    }
  }
  return GateResult::Pass();
}

// A failed validation keeps its pod from ever becoming ready: fail now, not at the deadline.
GateResult Planner::ValidationVerdicts() const {
  if (obs_.validation && obs_.validation->required && obs_.validation->failed > 0) {
    return GateResult::Fail(Reason::kWorkerValidationFailed, obs_.validation->message);
  }
  return GateResult::Pass();
}

// What the kubelet says of the new pods, while a target has not rolled out: an image that cannot
// be pulled (for PodHealthOptions::image_pull_failure since the pod's creation, or at once when no
// retry can help) or a container that restarted PodHealthOptions::crash_restarts times fails the
// environment now instead of at the progress deadline. Pods are listed only once the environment
// has verified for check_after without rolling out; a trouble below its threshold brings the next
// look forward to when it would cross it.
GateResult Planner::PodHealth(const EnvironmentSpec& spec, const EnvironmentStatus& env) {
  const PodHealthOptions& o = opts_.pod_health;
  if (!env.started_at || obs_.now < *env.started_at + o.check_after) return GateResult::Pass();
  if (Awaited(spec).empty()) return GateResult::Pass();
  if (!obs_.pods) {
    plan_.observe_pods = true;  // the reconciler lists them and plans again
    return GateResult::Pass();
  }
  for (const PodTrouble& t : obs_.pods->troubles) {
    const std::string where = "deployment " + t.deployment + ": ";
    const std::string pod =
        "pod " + t.pod + (t.node.empty() ? std::string() : " on node " + t.node);
    switch (t.kind) {
      case PodTrouble::Kind::kImagePull: {
        const WallTime since = t.since == WallTime{} ? *env.started_at : t.since;
        const auto failing = std::chrono::duration_cast<seconds>(obs_.now - since);
        if (t.permanent || failing >= o.image_pull_failure) {
          std::string msg = where;
          msg += pod;
          msg += " cannot pull image \"" + t.image + "\" (container " + t.container + ")";
          msg += " for " + std::to_string(failing.count()) + "s: " + t.reason;
          if (!t.message.empty()) msg += ": " + t.message;
          return GateResult::Fail(Reason::kImagePullFailed, msg);
        }
        RequeueAfter(o.image_pull_failure - failing);
        break;
      }
      case PodTrouble::Kind::kCrash: {
        if (t.restarts >= o.crash_restarts) {
          std::string msg = where;
          msg += "container " + t.container;
          msg += " (image \"" + t.image + "\") of ";
          msg += pod;
          msg += " restarted " + std::to_string(t.restarts) + " times";
          if (!t.reason.empty()) msg += " (" + t.reason + ")";
          if (!t.message.empty()) msg += "; " + t.message;
          return GateResult::Fail(Reason::kContainerCrashing, msg);
        }
        RequeueAfter(seconds(10));
        break;
      }
    }
  }
  return GateResult::Pass();
}

GateResult Planner::Health(const EnvironmentSpec& spec, WallTime deadline) const {
  const std::string ns = api::EnvironmentNamespace(r_, spec);
  for (const auto& t : spec.targets) {
    const DeploymentView* d = Find(ns, t.deployment);
    if (d == nullptr) {
      return GateResult::Fail(Reason::kDeploymentNotFound,
                              DeploymentName(ns, t.deployment) + " not found");
    }
    for (const auto& [container, logical] : t.containers) {
      if (!d->container_images.contains(container)) {
        return GateResult::Fail(Reason::kContainerNotFound,
                                DeploymentName(ns, t.deployment) + " no longer has container \"" +
                                    container + "\" (renamed or removed by someone else)");
      }
    }
    if (!ImagesMatch(*d, DesiredImages(Patched(), t))) {
      return GateResult::Fail(
          Reason::kImagesChangedExternally,
          DeploymentName(ns, t.deployment) +
              " no longer runs the images this rollout set (changed by someone else)");
    }
    // The condition only speaks for the generation the Deployment controller has observed.
    if (d->progress_deadline_exceeded && d->observed_generation >= d->generation) {
      return GateResult::Fail(Reason::kProgressDeadlineExceeded,
                              DeploymentName(ns, t.deployment) +
                                  " reports ProgressDeadlineExceeded (" +
                                  std::to_string(d->available_replicas) + "/" +
                                  std::to_string(d->spec_replicas) + " available)");
    }
  }
  const std::string awaited = Awaited(spec);
  if (awaited.empty()) return GateResult::Pass();
  if (obs_.now >= deadline) {
    return GateResult::Fail(Reason::kProgressDeadlineExceeded,
                            "not rolled out within " +
                                std::to_string(r_.spec.progress_deadline_seconds) +
                                "s: " + awaited);
  }
  return GateResult::Wait(awaited, std::min(Until(deadline), seconds(30)));
}

GateResult Planner::HealthDuringBake(const EnvironmentSpec& spec) const {
  // While baking, anything still awaited means the targets stopped being healthy.
  GateResult g = Health(spec, WallTime::max());
  if (g.verdict() != GateResult::Verdict::kWait) return g;
  return GateResult::Fail(Reason::kUnhealthyDuringBake, g.message().value_or(""));
}

GateResult Planner::WorkerValidation(WallTime deadline) const {
  if (!obs_.validation || !obs_.validation->required) return GateResult::Pass();
  const auto& v = *obs_.validation;
  if (v.passed >= v.gpu_pods && v.gpu_pods > 0) return GateResult::Pass();
  if (obs_.now >= deadline) {
    return GateResult::Fail(
        Reason::kWorkerValidationTimeout,
        "GPU workers did not validate within the progress deadline: " + v.message);
  }
  return GateResult::Wait("waiting for worker validation: " + v.message,
                          std::min(Until(deadline), seconds(30)));
}

// Canary analysis: counts the sample taken for this plan (if any), asks for the next one when it
// is due, and decides once every sample is in. An inconclusive sample never passes.
GateResult Planner::Analysis(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  if (!spec.analysis) return GateResult::Pass();
  const auto& a = *spec.analysis;
  api::AnalysisStatus as = env.analysis.value_or(api::AnalysisStatus{});
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
      return GateResult::Fail(Reason::kAnalysisFailed, s.message);
    }
  }
  if (as.samples < a.samples) {
    env.analysis = as;
    const WallTime next =
        as.last_sample_at ? *as.last_sample_at + seconds(a.interval_seconds) : obs_.now;
    if (obs_.now >= next && !obs_.analysis_sample) {
      plan_.sample_analysis = true;  // the reconciler samples, then plans again
      return GateResult::Wait(std::nullopt, std::nullopt);
    }
    return GateResult::Wait(
        "analysis: " + std::to_string(as.samples) + "/" + std::to_string(a.samples) + " samples",
        Until(next));
  }
  if (as.passed < a.samples) {
    return GateResult::Fail(Reason::kAnalysisInconclusive,
                            std::to_string(as.passed) + " of " + std::to_string(a.samples) +
                                " samples passed; last: " + as.message);
  }
  return GateResult::Pass();
}

// The smoke checks of `when` (docs/design.md "Smoke checks"). Each runs as a Job that the
// reconciler builds from its target's pod template; the plan first asks for the Jobs
// (Plan::smoke_observe), then decides on what they say: an absent Job is created (the namespace's
// opt-in and the Deployment checked again, here on the fresh read the reconciler makes before any
// create), a running one is waited for, a passed one is recorded and deleted, a failed or timed
// out one fails the environment (a before-patch check: nothing was patched). Every check of the
// step runs at once; the step passes when all have passed.
GateResult Planner::SmokeChecks(const EnvironmentSpec& spec, EnvironmentStatus& env,
                                api::SmokeCheckWhen when) {
  const std::string ns = api::EnvironmentNamespace(r_, spec);
  std::vector<SmokeJob> due;
  for (const DeclaredSmokeCheck& c : SmokeChecksOf(spec)) {
    if (c.spec->when != when) continue;
    const std::string& check = c.spec->name;
    auto rec = std::find_if(env.smoke_checks.begin(), env.smoke_checks.end(),
                            [&](const api::SmokeCheckStatus& s) { return s.name == check; });
    if (rec != env.smoke_checks.end() && rec->phase == api::SmokeCheckPhase::kPassed) continue;
    if (rec != env.smoke_checks.end() && rec->phase != api::SmokeCheckPhase::kRunning) {
      return GateResult::Fail(Reason::kSmokeCheckFailed, rec->message);
    }
    auto site = SiteOf(spec, c);
    const std::string image = ImageNow(c.spec->image);
    if (!site || image.empty()) {  // SpecProblem refuses such a spec; never reached
      return GateResult::Fail(Reason::kSmokeCheckFailed,
                              "smoke check " + check + ": no target of environment " + env.name +
                                  " has a container of image " + c.spec->image);
    }
    SmokeJob j;
    j.check = check;
    j.namespace_ = ns;
    j.job = SmokeJobName(r_.name, r_.uid, st_.revision, env.name, env.attempts, check);
    j.deployment = spec.targets[site->target].deployment;
    j.container = site->container;
    j.image = image;
    j.command = c.spec->command;
    j.timeout_seconds = c.spec->timeout_seconds;
    j.rollout = r_.Key();
    j.rollout_uid = r_.uid;
    j.revision = st_.revision;
    j.environment = env.name;
    due.push_back(std::move(j));
  }
  if (due.empty()) return GateResult::Pass();
  if (!obs_.smoke_jobs) {
    plan_.smoke_observe = std::move(due);
    return GateResult::Wait(std::nullopt, std::nullopt);
  }
  std::string running;
  for (const SmokeJob& j : due) {
    auto rec = std::find_if(env.smoke_checks.begin(), env.smoke_checks.end(),
                            [&](const api::SmokeCheckStatus& s) { return s.name == j.check; });
    if (rec == env.smoke_checks.end()) {
      api::SmokeCheckStatus fresh;
      fresh.name = j.check;
      env.smoke_checks.push_back(std::move(fresh));
      rec = std::prev(env.smoke_checks.end());
    }
    rec->target = j.deployment;
    rec->job = j.job;
    auto seen = obs_.smoke_jobs->find(j.check);
    bool waits = false;
    if (seen == obs_.smoke_jobs->end()) {
      waits = true;  // its Job could not be read: look again
    } else if (GateResult g = SmokeCheckVerdict(j, seen->second, *rec, &waits); !g.passed()) {
      return g;
    }
    if (waits) {
      running += running.empty() ? "" : ", ";
      running += j.check;
      running += " (job " + ns + "/" + j.job + ")";
    }
  }
  if (running.empty()) return GateResult::Pass();
  const char* words =
      when == api::SmokeCheckWhen::kBeforePatch ? "before any change" : "after health";
  return GateResult::Wait("smoke checks running " + std::string(words) + ": " + running,
                          seconds(2));
}

// One smoke check's Job: what it means for the check's record, and for the environment.
GateResult Planner::SmokeCheckVerdict(const SmokeJob& j, const SmokeJobObservation& seen,
                                      api::SmokeCheckStatus& record, bool* running) {
  using State = SmokeJobObservation::State;
  const std::string what = "smoke check " + j.check + " (job " + j.namespace_ + "/" + j.job +
                           ", image \"" + j.image + "\")";
  auto finish = [&](api::SmokeCheckPhase phase, std::string message) {
    record.phase = phase;
    record.finished_at = obs_.now;
    if (!record.started_at) record.started_at = obs_.now;
    record.exit_code = seen.exit_code;
    record.message = std::move(message);
  };
  switch (seen.state) {
    case State::kAbsent: {
      if (GateResult g = NamespaceGuard(j.namespace_); !g.passed()) return g;
      if (GateResult g = TargetGuard(j.namespace_, j.deployment, {j.container}); !g.passed()) {
        return g;
      }
      record.phase = api::SmokeCheckPhase::kRunning;
      record.started_at = obs_.now;
      record.finished_at.reset();
      record.exit_code.reset();
      record.message.clear();
      plan_.smoke_create.push_back(j);
      *running = true;
      return GateResult::Pass();
    }
    case State::kRunning: {
      // Adopted after a restart before its record was written: it started when it was created.
      if (!record.started_at) record.started_at = seen.created_at.value_or(obs_.now);
      // The Job's activeDeadlineSeconds ends it; this bound holds when the Job controller does
      // not (stopped, or the Job's deadline was edited).
      constexpr seconds kGrace{60};
      if (obs_.now >= *record.started_at + seconds(j.timeout_seconds) + kGrace) {
        std::string m = what + " timed out: not finished " +
                        std::to_string(j.timeout_seconds + kGrace.count()) +
                        "s after it started (its Job has activeDeadlineSeconds " +
                        std::to_string(j.timeout_seconds) + ")";
        finish(api::SmokeCheckPhase::kTimedOut, m);
        return GateResult::Fail(Reason::kSmokeCheckFailed, m);
      }
      record.phase = api::SmokeCheckPhase::kRunning;
      *running = true;
      return GateResult::Pass();
    }
    case State::kSucceeded:
      finish(api::SmokeCheckPhase::kPassed, "");
      record.exit_code = 0;
      plan_.smoke_delete.push_back({j.namespace_, j.job, seen.uid});
      return GateResult::Pass();
    case State::kTimedOut: {
      std::string m = what + " timed out after " + std::to_string(j.timeout_seconds) + "s: ";
      m += seen.message;
      finish(api::SmokeCheckPhase::kTimedOut, m);
      return GateResult::Fail(Reason::kSmokeCheckFailed, m);
    }
    case State::kFailed: {
      std::string m = what + " failed";
      if (seen.exit_code) m += " with exit code " + std::to_string(*seen.exit_code);
      m += ": ";
      m += seen.message;
      finish(api::SmokeCheckPhase::kFailed, m);
      return GateResult::Fail(Reason::kSmokeCheckFailed, m);
    }
    case State::kForeign: {
      std::string m = what + ": a Job of that name exists and was not created by this rollout (" +
                      seen.message + "); it is neither adopted nor deleted";
      finish(api::SmokeCheckPhase::kFailed, m);
      record.exit_code.reset();
      return GateResult::Fail(Reason::kSmokeCheckFailed, m);
    }
  }
  return GateResult::Pass();
}

std::string Planner::ImageNow(const std::string& logical) const {
  auto it = r_.spec.images.find(logical);
  if (it == r_.spec.images.end()) return "";
  if (!r_.spec.image_policy || !r_.spec.image_policy->pin_digests) return it->second;
  return PinnedFrom(logical, it->second, st_.resolved_images);
}

GateResult Planner::Bake(const EnvironmentSpec& spec, const EnvironmentStatus& env) const {
  const WallTime end = env.verified_at.value_or(obs_.now) + seconds(spec.bake_seconds);
  if (obs_.now < end) return GateResult::Wait(std::nullopt, Until(end));
  return GateResult::Pass();
}

// After the restore patches: every target with recorded images runs them and is rolled out.
// Fails when that has not happened within the progress deadline counted from the failure.
GateResult Planner::RollbackHealth(const EnvironmentSpec& spec,
                                   const EnvironmentStatus& env) const {
  const std::string spec_ns = api::EnvironmentNamespace(r_, spec);
  std::string waiting;
  for (const auto& ts : env.targets) {
    const std::string ns = ts.namespace_.empty() ? spec_ns : ts.namespace_;
    const DeploymentView* d = Find(ns, ts.deployment);
    if (d == nullptr) continue;  // nothing to restore there; keep waiting for the others
    if (!ImagesMatch(*d, ts.previous_images)) {
      waiting = DeploymentName(ns, ts.deployment) + " not yet restored";
      continue;
    }
    if (!RolledOut(*d) && waiting.empty()) {
      waiting = DeploymentName(ns, ts.deployment) + ": " + std::to_string(d->updated_replicas) +
                " updated, " + std::to_string(d->available_replicas) + " available of " +
                std::to_string(d->spec_replicas);
    }
  }
  if (waiting.empty()) return GateResult::Pass();
  const WallTime deadline = ProgressDeadline(env.finished_at);
  if (obs_.now >= deadline) {
    return GateResult::Fail(Reason::kRollbackFailed, "rollback of environment " + env.name +
                                                         " did not become healthy: " + waiting);
  }
  return GateResult::Wait(waiting, std::min(Until(deadline), seconds(30)));
}

// ---------------------------------------------------------------------------------------------
// Transitions and helpers

bool Planner::Passed(const GateResult& g, EnvironmentStatus& env) {
  switch (g.verdict()) {
    case GateResult::Verdict::kPass:
      return true;
    case GateResult::Verdict::kWait:
      if (g.message()) env.message = *g.message();
      if (g.requeue_after()) RequeueAfter(*g.requeue_after());
      return false;
    case GateResult::Verdict::kFail:
      Fail(env, g.reason(), g.message().value_or(""));
      return false;
  }
  return false;
}

void Planner::AwaitApproval(EnvironmentStatus& env) {
  if (env.phase != EnvironmentPhase::kAwaitingApproval) {
    env.phase = EnvironmentPhase::kAwaitingApproval;
    Event("Normal", "AwaitingApproval",
          "environment " + env.name + " waits for `rollgate promote` (rollgate.io/promote)");
  }
  st_.phase = RolloutPhase::kAwaitingApproval;
  st_.message = "environment " + env.name + " awaits approval";
}

void Planner::EnterUpdating(const EnvironmentSpec& spec, EnvironmentStatus& env) {
  env.targets = RecordPreviousImages(spec, env);
  env.phase = EnvironmentPhase::kUpdating;
  env.started_at = obs_.now;
  env.reason = "";
  env.message = "updating " + std::to_string(spec.targets.size()) + " deployment(s)";
  st_.phase = RolloutPhase::kProgressing;
  st_.message = "updating environment " + env.name;
  Event("Normal", "EnvironmentStarted",
        "environment " + env.name + ": revision " + Revision(st_.revision) + " starting");
}

// What each target runs now (after PreFlight passed: every Deployment and container exists). A
// retried environment keeps the images recorded by its first attempt: the failed attempt may have
// left new images behind (rollback: None), and those are not "previous".
std::vector<TargetStatus> Planner::RecordPreviousImages(const EnvironmentSpec& spec,
                                                        const EnvironmentStatus& env) const {
  const std::string ns = api::EnvironmentNamespace(r_, spec);
  std::vector<TargetStatus> targets;
  for (const auto& t : spec.targets) {
    const DeploymentView& d = *Find(ns, t.deployment);
    TargetStatus ts;
    ts.deployment = t.deployment;
    ts.namespace_ = ns;
    const TargetStatus* earlier = nullptr;
    for (const auto& old : env.targets) {
      if (old.deployment == t.deployment && old.namespace_ == ns && !old.previous_images.empty()) {
        earlier = &old;
      }
    }
    if (earlier != nullptr) {
      ts.previous_images = earlier->previous_images;
      ts.previous_init_containers = earlier->previous_init_containers;
      ts.previous_validation_label = earlier->previous_validation_label;
      targets.push_back(std::move(ts));
      continue;
    }
    for (const auto& ic : validation::ValidationContainers(Patched(), t, d, opts_.injection())) {
      if (auto it = d.init_container_images.find(ic.name); it != d.init_container_images.end()) {
        ts.previous_init_containers[ic.name] = it->second;
      }
      if (auto l = d.template_labels.find(api::kValidationLabel); l != d.template_labels.end()) {
        ts.previous_validation_label = l->second;
      }
    }
    for (const auto& [container, logical] : t.containers) {
      ts.previous_images[container] = d.container_images.at(container);
    }
    targets.push_back(std::move(ts));
  }
  return targets;
}

// The roll-forward patch of one target, or nothing when it already runs this revision.
std::optional<DeploymentPatch> Planner::UpdatePatch(const std::string& ns, const TargetSpec& t,
                                                    const DeploymentView& d) const {
  const std::string rev = Revision(st_.revision);
  auto want = DesiredImages(Patched(), t);
  auto ann = d.annotations.find(api::kRevisionAnnotation);
  const bool annotated = ann != d.annotations.end() && ann->second == rev;
  DeploymentPatch patch{ns,    t.deployment,       want,    rev, false, {}, {}, {},
                        false, d.resource_version, r_.Key()};
  patch.init_containers = validation::ValidationContainers(Patched(), t, d, opts_.injection());
  bool injected = true;
  if (!patch.init_containers.empty()) {
    patch.validation_label = rev;
    auto label = d.template_labels.find(api::kValidationLabel);
    injected = label != d.template_labels.end() && label->second == rev;
    for (const auto& ic : patch.init_containers) {
      auto it = d.init_container_images.find(ic.name);
      injected = injected && it != d.init_container_images.end() && it->second == ic.image;
    }
  }
  if (ImagesMatch(d, want) && annotated && injected) return std::nullopt;
  return patch;
}

// The restore patch of one target, or nothing when it already runs what was recorded. The pod
// template is restored exactly: the validation this revision injected goes too, so the Deployment
// returns to its previous ReplicaSet.
std::optional<DeploymentPatch> Planner::RestorePatch(const std::string& ns, const TargetSpec& t,
                                                     const TargetStatus& ts,
                                                     const DeploymentView& d) const {
  const std::string rev = Revision(st_.revision) + "-rollback";
  DeploymentPatch patch{ns, ts.deployment, ts.previous_images, rev,     true, {}, {},
                        {}, false,         d.resource_version, r_.Key()};
  bool restored = ImagesMatch(d, ts.previous_images);
  for (const auto& ic : validation::ValidationContainers(Patched(), t, d, opts_.injection())) {
    auto prev = ts.previous_init_containers.find(ic.name);
    auto cur = d.init_container_images.find(ic.name);
    if (prev != ts.previous_init_containers.end()) {
      validation::InitContainer restore;  // the image back, nothing else
      restore.name = ic.name;
      restore.image = prev->second;
      patch.init_containers.push_back(std::move(restore));
      restored = restored && cur != d.init_container_images.end() && cur->second == prev->second;
    } else {
      patch.remove_init_containers.push_back(ic.name);
      restored = restored && cur == d.init_container_images.end();
    }
    auto label = d.template_labels.find(api::kValidationLabel);
    if (ts.previous_validation_label.empty()) {
      patch.remove_validation_label = true;
      restored = restored && label == d.template_labels.end();
    } else {
      patch.validation_label = ts.previous_validation_label;
      restored = restored && label != d.template_labels.end() &&
                 label->second == ts.previous_validation_label;
    }
  }
  if (restored) return std::nullopt;
  return patch;
}

// The targets' replica counts in status mirror what the Deployments report.
void Planner::MirrorCounters(const EnvironmentSpec& spec, EnvironmentStatus& env) const {
  const std::string ns = api::EnvironmentNamespace(r_, spec);
  for (size_t i = 0; i < spec.targets.size() && i < env.targets.size(); ++i) {
    const DeploymentView* d = Find(ns, spec.targets[i].deployment);
    if (d == nullptr) continue;
    auto& ts = env.targets[i];
    ts.replicas = d->replicas;
    ts.updated_replicas = d->updated_replicas;
    ts.ready_replicas = d->ready_replicas;
    ts.available_replicas = d->available_replicas;
  }
}

std::string Planner::Awaited(const EnvironmentSpec& spec) const {
  const std::string ns = api::EnvironmentNamespace(r_, spec);
  for (const auto& t : spec.targets) {
    const DeploymentView* d = Find(ns, t.deployment);
    if (d != nullptr && !RolledOut(*d)) {
      return DeploymentName(ns, t.deployment) + ": " + std::to_string(d->updated_replicas) +
             " updated, " + std::to_string(d->available_replicas) + " available of " +
             std::to_string(d->spec_replicas);
    }
  }
  return "";
}

void Planner::Fail(EnvironmentStatus& env, Reason reason, const std::string& message) {
  // A failure is persisted before anything else changes: no roll-forward patch goes with it.
  const std::string word = api::ReasonName(reason);
  plan_.patches.clear();
  env.reason = word;
  env.message = message;
  env.finished_at = obs_.now;
  Event("Warning", word, "environment " + env.name + ": " + message);
  const bool changed =
      std::any_of(env.targets.begin(), env.targets.end(),
                  [](const TargetStatus& t) { return !t.previous_images.empty(); });
  if (r_.spec.automatic_rollback && changed) {
    env.phase = EnvironmentPhase::kRollingBack;
    st_.phase = RolloutPhase::kRollingBack;
    st_.message = "environment " + env.name + " failed (" + word + "); rolling back";
    Event("Warning", "RollingBack", "environment " + env.name + ": restoring previous images");
  } else {
    env.phase = EnvironmentPhase::kFailed;
    st_.phase = RolloutPhase::kFailed;
    st_.message = "environment " + env.name + " failed: " + word + ": " + message;
  }
}

void Planner::Advance(EnvironmentStatus& env) {
  env.phase = EnvironmentPhase::kSucceeded;
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
    st_.phase = RolloutPhase::kSucceeded;
    st_.message = "revision " + Revision(st_.revision) + " rolled out to every environment";
    Event("Normal", "RolloutSucceeded", st_.message);
  }
}

Plan Planner::Run() {
  if (st_.revision != 0 && st_.spec_hash != obs_.spec_hash &&
      api::SameSpecHash(st_.spec_hash, obs_.spec_hash)) {
    st_.spec_hash = obs_.spec_hash;  // a hash recorded by Rollgate 0.1: same revision, full hash
  }
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
  } else if (!finished && !api::IsTerminal(st_.phase)) {
    if (r_.spec.paused) {
      st_.phase = RolloutPhase::kPaused;
      st_.message = "paused (spec.paused)";
    } else {
      if (st_.phase == RolloutPhase::kPaused) {
        const EnvironmentStatus* env = Current();
        st_.phase = env != nullptr && env->phase == EnvironmentPhase::kRollingBack
                        ? RolloutPhase::kRollingBack
                        : RolloutPhase::kProgressing;
      }
      Step();
    }
  }
  st_.observed_generation = r_.generation;
  SetConditions();
  RecordHistory();
  if (!(st_ == r_.status)) plan_.status = st_;
  return std::move(plan_);
}

// The one place the current revision's history record follows the rollout: its phase while it
// runs; at a terminal phase, when it finished, the reason and the message (once: a terminal
// rollout planned again keeps them); a retry that moves it on again reopens it. A status written
// before the history existed has no record of its revision, and gets none.
void Planner::RecordHistory() {
  auto it = std::find_if(st_.history.rbegin(), st_.history.rend(),
                         [&](const api::RevisionRecord& h) { return h.revision == st_.revision; });
  if (it == st_.history.rend()) return;
  api::RevisionRecord& rec = *it;
  if (!api::IsTerminal(st_.phase)) {
    rec.phase = st_.phase;
    rec.finished_at.reset();
    rec.reason.clear();
    rec.message.clear();
    return;
  }
  if (rec.finished_at && rec.phase == st_.phase && !retried_) return;
  const EnvironmentStatus* env = Current();
  rec.phase = st_.phase;
  rec.finished_at = obs_.now;
  rec.reason = env != nullptr && !env->reason.empty() ? env->reason : api::PhaseName(st_.phase);
  rec.message = st_.message;
}

}  // namespace

std::map<std::string, std::string> DesiredImages(const std::map<std::string, std::string>& images,
                                                 const api::TargetSpec& t) {
  std::map<std::string, std::string> out;
  for (const auto& [container, logical] : t.containers) {
    auto it = images.find(logical);
    out[container] = it == images.end() ? std::string() : it->second;
  }
  return out;
}

bool PinsDigests(const api::Rollout& r) {
  return r.spec.image_policy && r.spec.image_policy->pin_digests &&
         !r.status.resolved_images.empty();
}

std::string PinnedReference(const std::string& reference, const std::string& digest) {
  if (reference.find('@') != std::string::npos || digest.empty()) return reference;
  return reference + "@" + digest;
}

std::map<std::string, std::string> PinnedImages(const api::Rollout& r) {
  std::map<std::string, std::string> images = r.spec.images;
  if (!PinsDigests(r)) return images;
  for (auto& [logical, reference] : images) {
    reference = PinnedFrom(logical, reference, r.status.resolved_images);
  }
  return images;
}

Plan PlanRollout(const Observed& obs, const PlannerOptions& opts) {
  return Planner(obs, opts).Run();
}

}  // namespace rollgate::rollout
