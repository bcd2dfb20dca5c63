#include "controller/api/codec.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "controller/common/digest.h"
#include "controller/kube/json_fields.h"

namespace rollgate::api {
namespace {

using kube::Field;
using kube::Keep;
using kube::KeepEach;
using kube::Reshape;
using kube::StringField;

std::int64_t Int(const Json& obj, const char* name, std::int64_t def = 0) {
  const Json* v = Field(obj, name);
  return v != nullptr && v->is_integer() ? v->as_number().to_int64() : def;
}

std::map<std::string, std::string> StringMap(const Json& obj, const char* name) {
  std::map<std::string, std::string> out;
  const Json* v = Field(obj, name);
  if (v == nullptr || !v->is_object()) return out;
  for (const auto& [k, val] : v->as_object()) {
    if (val.is_string()) out[k] = val.as_string();
  }
  return out;
}

constexpr const char* kArchLabel = "kubernetes.io/arch";
constexpr const char* kOsLabel = "kubernetes.io/os";

// Of a pod's affinity, what DecodeNodeConstraints reads: the required node affinity's terms, each
// with only its In expressions on the arch label (a term left without any still means "any").
Json TrimAffinity(Json&& affinity) {
  const Json* na = Field(affinity, "nodeAffinity");
  const Json* req =
      na != nullptr ? Field(*na, "requiredDuringSchedulingIgnoredDuringExecution") : nullptr;
  const Json* terms = req != nullptr ? Field(*req, "nodeSelectorTerms") : nullptr;
  if (terms == nullptr || !terms->is_array()) return Json::object();
  Json kept_terms = Json::array();
  std::size_t i = 0;
  for (const auto& term : terms->as_array()) {
    Json exprs = Json::array();
    std::size_t j = 0;
    const Json* from = Field(term, "matchExpressions");
    if (from != nullptr && from->is_array()) {
      for (const auto& e : from->as_array()) {
        if (StringField(e, "key") != kArchLabel || StringField(e, "operator") != "In") continue;
        exprs[j++] = e;
      }
    }
    Json t = Json::object();
    t["matchExpressions"] = exprs;
    kept_terms[i++] = t;
  }
  Json out = Json::object();
  out["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] =
      kept_terms;
  return out;
}

std::vector<std::string> Strings(const Json& obj, const char* name) {
  std::vector<std::string> out;
  const Json* v = Field(obj, name);
  if (v == nullptr || !v->is_array()) return out;
  for (const auto& e : v->as_array()) {
    if (e.is_string()) out.push_back(e.as_string());
  }
  return out;
}

Json FromMap(const std::map<std::string, std::string>& m) {
  Json o = Json::object();
  for (const auto& [k, v] : m) o[k] = Json::string(v);
  return o;
}

void PutTime(Json& o, const char* name, const std::optional<WallTime>& t) {
  if (t) o[name] = Json::string(FormatTime(*t));
}

// Metadata as the caches keep it; of the annotations only Rollgate's own (rollgate.io/...).
Json TrimMetadata(Json&& meta) {
  Json out = Keep(std::move(meta), {"namespace", "name", "uid", "generation", "resourceVersion",
                                    "deletionTimestamp", "annotations"});
  Reshape(out, "annotations", [](Json&& ann) {
    Json kept = Json::object();
    if (!ann.is_object()) return kept;
    for (auto& [k, v] : ann.as_object()) {
      if (k.rfind("rollgate.io/", 0) == 0) kept[k] = std::move(v);
    }
    return kept;
  });
  return out;
}

// The most of a value that a decode error repeats (the errors name fields; they stay short).
constexpr std::size_t kMaxEcho = 64;

Status Bad(const std::string& field, const std::string& what) {
  return Status(StatusCode::kInvalidArgument, field + ": " + what);
}

// Quantities arrive as strings ("500m") or numbers (1).
std::map<std::string, std::string> Quantities(const Json* obj) {
  std::map<std::string, std::string> out;
  if (obj == nullptr || !obj->is_object()) return out;
  for (const auto& [k, v] : obj->as_object()) {
    if (v.is_string()) {
      out[k] = v.as_string();
    } else if (v.is_integer()) {
      out[k] = std::to_string(v.as_number().to_int64());
    } else if (v.is_number()) {
      out[k] = v.serialize();
    }
  }
  return out;
}

ContainerSettings DecodeSettings(const Json& container) {
  ContainerSettings s;
  if (const Json* sc = Field(container, "securityContext"); sc != nullptr && sc->is_object()) {
    s.security_context_json = sc->serialize();
  }
  if (const Json* res = Field(container, "resources"); res != nullptr && res->is_object()) {
    s.requests = Quantities(Field(*res, "requests"));
    s.limits = Quantities(Field(*res, "limits"));
  }
  return s;
}

// The smokeChecks of `parent` (an environment or one of its targets) into `out`; absent: none.
// An unknown `when` is an error rather than a guess: it decides whether anything is patched
// before the check has passed.
Status DecodeSmokeChecks(const Json& parent, const std::string& path,
                         std::vector<SmokeCheckSpec>& out) {
  const Json* checks = Field(parent, "smokeChecks");
  if (checks == nullptr) return Status::Ok();
  if (!checks->is_array()) return Bad(path + ".smokeChecks", "must be a list");
  std::size_t i = 0;
  for (const auto& c : checks->as_array()) {
    const std::string at = path + ".smokeChecks[" + std::to_string(i++) + "]";
    if (!c.is_object()) return Bad(at, "must be an object");
    SmokeCheckSpec sc;
    sc.name = StringField(c, "name");
    sc.image = StringField(c, "image");
    sc.command = Strings(c, "command");
    sc.timeout_seconds = static_cast<int>(Int(c, "timeoutSeconds", sc.timeout_seconds));
    if (const std::string when = StringField(c, "when"); !when.empty()) {
      const auto w = ParseSmokeCheckWhen(when);
      if (!w) return Bad(at + ".when", "unknown value \"" + Bounded(when, kMaxEcho) + "\"");
      sc.when = *w;
    }
    out.push_back(std::move(sc));
  }
  return Status::Ok();
}

Result<RolloutSpec> DecodeSpec(const Json& spec) {
  RolloutSpec out;
  out.images = StringMap(spec, "images");
  out.progress_deadline_seconds =
      static_cast<int>(Int(spec, "progressDeadlineSeconds", out.progress_deadline_seconds));
  out.automatic_rollback = StringField(spec, "rollback") != "None";
  const Json* paused = Field(spec, "paused");
  out.paused = paused != nullptr && paused->is_boolean() && paused->as_bool();
  if (const Json* ip = Field(spec, "imagePolicy"); ip != nullptr) {
    if (!ip->is_object()) return Bad("spec.imagePolicy", "must be an object");
    ImagePolicySpec policy;
    if (const Json* pin = Field(*ip, "pinDigests"); pin != nullptr && pin->is_boolean()) {
      policy.pin_digests = pin->as_bool();
    }
    policy.platforms = Strings(*ip, "platforms");
    policy.max_size = StringMap(*ip, "maxSize");
    out.image_policy = std::move(policy);
  }
  const Json* envs = Field(spec, "environments");
  if (envs == nullptr || !envs->is_array()) return Bad("spec.environments", "must be a list");
  int ei = 0;
  for (const auto& e : envs->as_array()) {
    const std::string path = "spec.environments[" + std::to_string(ei++) + "]";
    if (!e.is_object()) return Bad(path, "must be an object");
    EnvironmentSpec env;
    env.name = StringField(e, "name");
    env.namespace_ = StringField(e, "namespace");
    if (const Json* c = Field(e, "cluster"); c != nullptr) {
      const Json* ref = Field(*c, "secretRef");
      env.cluster = ref != nullptr ? StringField(*ref, "name") : "";
      if (env.cluster.empty() || env.cluster.find(':') != std::string::npos) {
        return Bad(path + ".cluster.secretRef.name", "must name a Secret");
      }
    }
    env.manual_approval = StringField(e, "approval") == "Manual";
    env.bake_seconds = static_cast<int>(Int(e, "bakeSeconds", 0));
    const Json* targets = Field(e, "targets");
    if (targets == nullptr || !targets->is_array()) return Bad(path + ".targets", "must be a list");
    int ti = 0;
    for (const auto& t : targets->as_array()) {
      const std::string target_path = path + ".targets[" + std::to_string(ti++) + "]";
      TargetSpec ts;
      ts.deployment = StringField(t, "deployment");
      ts.containers = StringMap(t, "containers");
      if (const Json* wv = Field(t, "workerValidation"); wv != nullptr && wv->is_object()) {
        WorkerValidationSpec w;
        w.cuda_required = StringField(*wv, "cuda") != "Disabled";
        if (const Json* cmd = Field(*wv, "command"); cmd != nullptr && cmd->is_array()) {
          for (const auto& a : cmd->as_array()) {
            if (a.is_string()) w.command.push_back(a.as_string());
          }
        }
        ts.worker_validation = w;
      }
      if (Status st = DecodeSmokeChecks(t, target_path, ts.smoke_checks); !st.ok()) return st;
      env.targets.push_back(std::move(ts));
    }
    if (Status st = DecodeSmokeChecks(e, path, env.smoke_checks); !st.ok()) return st;
    if (const Json* an = Field(e, "analysis"); an != nullptr && an->is_object()) {
      AnalysisSpec a;
      if (const Json* p = Field(*an, "prometheus"); p != nullptr)
        a.prometheus_address = StringField(*p, "address");
      a.interval_seconds = static_cast<int>(Int(*an, "intervalSeconds", a.interval_seconds));
      a.samples = static_cast<int>(Int(*an, "samples", a.samples));
      if (const Json* checks = Field(*an, "checks"); checks != nullptr && checks->is_array()) {
        for (const auto& c : checks->as_array()) {
          CheckSpec cs;
          cs.name = StringField(c, "name");
          cs.query = StringField(c, "query");
          if (const Json* mn = Field(c, "min"); mn != nullptr && mn->is_number())
            cs.min = mn->as_double();
          if (const Json* mx = Field(c, "max"); mx != nullptr && mx->is_number())
            cs.max = mx->as_double();
          a.checks.push_back(std::move(cs));
        }
      }
      env.analysis = std::move(a);
    }
    out.environments.push_back(std::move(env));
  }
  return out;
}

Result<RolloutStatus> DecodeStatus(const Json& st) {
  RolloutStatus out;
  out.observed_generation = Int(st, "observedGeneration");
  out.revision = Int(st, "revision");
  const std::string rollout_phase = StringField(st, "phase");
  auto rp = ParseRolloutPhase(rollout_phase);
  if (!rp) return Bad("status.phase", "unknown phase \"" + rollout_phase + "\"");
  out.phase = *rp;
  out.current_environment = StringField(st, "currentEnvironment");
  out.message = StringField(st, "message");
  if (const Json* envs = Field(st, "environments"); envs != nullptr && envs->is_array()) {
    for (const auto& e : envs->as_array()) {
      EnvironmentStatus es;
      es.name = StringField(e, "name");
      const std::string env_phase = StringField(e, "phase");
      auto ep = env_phase.empty() ? EnvironmentPhase::kPending : ParseEnvironmentPhase(env_phase);
      if (!ep) {
        return Bad("status.environments[" + es.name + "].phase",
                   "unknown phase \"" + env_phase + "\"");
      }
      es.phase = *ep;
      es.started_at = ParseTime(StringField(e, "startedAt"));
      es.verified_at = ParseTime(StringField(e, "verifiedAt"));
      es.finished_at = ParseTime(StringField(e, "finishedAt"));
      es.approved_at = ParseTime(StringField(e, "approvedAt"));
      es.reason = StringField(e, "reason");
      es.message = StringField(e, "message");
      es.attempts = static_cast<int>(Int(e, "attempts"));
      if (const Json* ts = Field(e, "targets"); ts != nullptr && ts->is_array()) {
        for (const auto& t : ts->as_array()) {
          TargetStatus x;
          x.deployment = StringField(t, "deployment");
          x.namespace_ = ScopedNamespace(StringField(t, "cluster"), StringField(t, "namespace"));
          x.previous_images = StringMap(t, "previousImages");
          x.previous_init_containers = StringMap(t, "previousInitContainers");
          x.previous_validation_label = StringField(t, "previousValidationLabel");
          x.patches = static_cast<int>(Int(t, "patches"));
          x.replicas = static_cast<int>(Int(t, "replicas"));
          x.updated_replicas = static_cast<int>(Int(t, "updatedReplicas"));
          x.ready_replicas = static_cast<int>(Int(t, "readyReplicas"));
          x.available_replicas = static_cast<int>(Int(t, "availableReplicas"));
          es.targets.push_back(std::move(x));
        }
      }
      if (const Json* v = Field(e, "validation"); v != nullptr && v->is_object()) {
        ValidationStatus vs;
        vs.gpu_pods = static_cast<int>(Int(*v, "gpuPods"));
        vs.passed = static_cast<int>(Int(*v, "passed"));
        vs.failed = static_cast<int>(Int(*v, "failed"));
        vs.message = StringField(*v, "message");
        es.validation = vs;
      }
      if (const Json* a = Field(e, "analysis"); a != nullptr && a->is_object()) {
        AnalysisStatus as;
        as.samples = static_cast<int>(Int(*a, "samples"));
        as.passed = static_cast<int>(Int(*a, "passed"));
        as.failed = static_cast<int>(Int(*a, "failed"));
        as.inconclusive = static_cast<int>(Int(*a, "inconclusive"));
        as.last_sample_at = ParseTime(StringField(*a, "lastSampleAt"));
        as.last_value = StringField(*a, "lastValue");
        as.message = StringField(*a, "message");
        es.analysis = as;
      }
      if (const Json* scs = Field(e, "smokeChecks"); scs != nullptr && scs->is_array()) {
        std::size_t ci = 0;
        for (const auto& c : scs->as_array()) {
          const std::string at = "status.environments[" + Bounded(es.name, kMaxEcho) +
                                 "].smokeChecks[" + std::to_string(ci++) + "]";
          SmokeCheckStatus sc;
          sc.name = StringField(c, "name");
          sc.target = StringField(c, "target");
          sc.job = StringField(c, "job");
          const std::string check_phase = StringField(c, "phase");
          auto cp =
              check_phase.empty() ? SmokeCheckPhase::kRunning : ParseSmokeCheckPhase(check_phase);
          if (!cp) {
            return Bad(at + ".phase", "unknown phase \"" + Bounded(check_phase, kMaxEcho) + "\"");
          }
          sc.phase = *cp;
          sc.started_at = ParseTime(StringField(c, "startedAt"));
          sc.finished_at = ParseTime(StringField(c, "finishedAt"));
          if (const Json* x = Field(c, "exitCode"); x != nullptr && x->is_integer()) {
            sc.exit_code = static_cast<int>(x->as_number().to_int64());
          }
          sc.message = StringField(c, "message");
          es.smoke_checks.push_back(std::move(sc));
        }
      }
      out.environments.push_back(std::move(es));
    }
  }
  if (const Json* cs = Field(st, "conditions"); cs != nullptr && cs->is_array()) {
    for (const auto& c : cs->as_array()) {
      Condition cond;
      cond.type = StringField(c, "type");
      cond.status = StringField(c, "status");
      cond.reason = StringField(c, "reason");
      cond.message = StringField(c, "message");
      cond.observed_generation = Int(c, "observedGeneration");
      cond.last_transition_time =
          ParseTime(StringField(c, "lastTransitionTime")).value_or(WallTime{});
      out.conditions.push_back(std::move(cond));
    }
  }
  if (const Json* ris = Field(st, "resolvedImages"); ris != nullptr && ris->is_array()) {
    for (const auto& ri : ris->as_array()) {
      ResolvedImage r;
      r.name = StringField(ri, "name");
      r.reference = StringField(ri, "reference");
      r.digest = StringField(ri, "digest");
      r.media_type = StringField(ri, "mediaType");
      r.size = Int(ri, "size");
      if (const Json* ps = Field(ri, "platforms"); ps != nullptr && ps->is_array()) {
        for (const auto& p : ps->as_array()) {
          r.platforms.push_back(
              {StringField(p, "platform"), StringField(p, "digest"), Int(p, "size")});
        }
      }
      out.resolved_images.push_back(std::move(r));
    }
  }
  out.resolved_summary = StringField(st, "resolvedSummary");
  if (const Json* hs = Field(st, "history"); hs != nullptr && hs->is_array()) {
    std::size_t hi = 0;
    for (const auto& h : hs->as_array()) {
      const std::string at = "status.history[" + std::to_string(hi++) + "]";
      RevisionRecord rec;
      rec.revision = Int(h, "revision");
      rec.images = StringMap(h, "images");
      rec.started_at = ParseTime(StringField(h, "startedAt"));
      rec.finished_at = ParseTime(StringField(h, "finishedAt"));
      const std::string phase = StringField(h, "phase");
      auto p = ParseRolloutPhase(phase);
      if (!p) return Bad(at + ".phase", "unknown phase \"" + Bounded(phase, kMaxEcho) + "\"");
      rec.phase = *p;
      rec.reason = StringField(h, "reason");
      rec.message = StringField(h, "message");
      out.history.push_back(std::move(rec));
    }
  }
  if (const Json* b = Field(st, "bookkeeping"); b != nullptr && b->is_object()) {
    out.spec_hash = StringField(*b, "specHash");
    out.handled_annotations = StringMap(*b, "handledAnnotations");
  }
  return out;
}

}  // namespace

std::string PhaseName(RolloutPhase p) {
  switch (p) {
    case RolloutPhase::kNone:
      return "";
    case RolloutPhase::kPending:
      return "Pending";
    case RolloutPhase::kProgressing:
      return "Progressing";
    case RolloutPhase::kAwaitingApproval:
      return "AwaitingApproval";
    case RolloutPhase::kPaused:
      return "Paused";
    case RolloutPhase::kSucceeded:
      return "Succeeded";
    case RolloutPhase::kRollingBack:
      return "RollingBack";
    case RolloutPhase::kRolledBack:
      return "RolledBack";
    case RolloutPhase::kFailed:
      return "Failed";
    case RolloutPhase::kAborted:
      return "Aborted";
  }
  return "";
}

std::string PhaseName(EnvironmentPhase p) {
  switch (p) {
    case EnvironmentPhase::kPending:
      return "Pending";
    case EnvironmentPhase::kAwaitingApproval:
      return "AwaitingApproval";
    case EnvironmentPhase::kUpdating:
      return "Updating";
    case EnvironmentPhase::kVerifying:
      return "Verifying";
    case EnvironmentPhase::kBaking:
      return "Baking";
    case EnvironmentPhase::kSucceeded:
      return "Succeeded";
    case EnvironmentPhase::kRollingBack:
      return "RollingBack";
    case EnvironmentPhase::kRolledBack:
      return "RolledBack";
    case EnvironmentPhase::kFailed:
      return "Failed";
  }
  return "";
}

std::string PhaseName(SmokeCheckPhase p) {
  switch (p) {
    case SmokeCheckPhase::kRunning:
      return "Running";
    case SmokeCheckPhase::kPassed:
      return "Passed";
    case SmokeCheckPhase::kFailed:
      return "Failed";
    case SmokeCheckPhase::kTimedOut:
      return "TimedOut";
  }
  return "";
}

std::string SmokeCheckWhenName(SmokeCheckWhen w) {
  switch (w) {
    case SmokeCheckWhen::kBeforePatch:
      return "BeforePatch";
    case SmokeCheckWhen::kAfterHealthy:
      return "AfterHealthy";
  }
  return "";
}

const std::vector<RolloutPhase>& AllRolloutPhases() {
  static const std::vector<RolloutPhase> kAll = {
      RolloutPhase::kPending,    RolloutPhase::kProgressing, RolloutPhase::kAwaitingApproval,
      RolloutPhase::kPaused,     RolloutPhase::kSucceeded,   RolloutPhase::kRollingBack,
      RolloutPhase::kRolledBack, RolloutPhase::kFailed,      RolloutPhase::kAborted};
  return kAll;
}

const std::vector<EnvironmentPhase>& AllEnvironmentPhases() {
  static const std::vector<EnvironmentPhase> kAll = {
      EnvironmentPhase::kPending,          EnvironmentPhase::kUpdating,
      EnvironmentPhase::kVerifying,        EnvironmentPhase::kBaking,
      EnvironmentPhase::kAwaitingApproval, EnvironmentPhase::kSucceeded,
      EnvironmentPhase::kFailed,           EnvironmentPhase::kRollingBack,
      EnvironmentPhase::kRolledBack};
  return kAll;
}

const std::vector<SmokeCheckPhase>& AllSmokeCheckPhases() {
  static const std::vector<SmokeCheckPhase> kAll = {
      SmokeCheckPhase::kRunning, SmokeCheckPhase::kPassed, SmokeCheckPhase::kFailed,
      SmokeCheckPhase::kTimedOut};
  return kAll;
}

std::optional<RolloutPhase> ParseRolloutPhase(std::string_view text) {
  if (text.empty()) return RolloutPhase::kNone;
  for (RolloutPhase p : AllRolloutPhases()) {
    if (PhaseName(p) == text) return p;
  }
  return std::nullopt;
}

std::optional<EnvironmentPhase> ParseEnvironmentPhase(std::string_view text) {
  for (EnvironmentPhase p : AllEnvironmentPhases()) {
    if (PhaseName(p) == text) return p;
  }
  return std::nullopt;
}

std::optional<SmokeCheckPhase> ParseSmokeCheckPhase(std::string_view text) {
  for (SmokeCheckPhase p : AllSmokeCheckPhases()) {
    if (PhaseName(p) == text) return p;
  }
  return std::nullopt;
}

std::optional<SmokeCheckWhen> ParseSmokeCheckWhen(std::string_view text) {
  for (SmokeCheckWhen w : {SmokeCheckWhen::kBeforePatch, SmokeCheckWhen::kAfterHealthy}) {
    if (SmokeCheckWhenName(w) == text) return w;
  }
  return std::nullopt;
}

bool RolloutStatus::operator==(const RolloutStatus& o) const {
  return EncodeStatus(*this).serialize() == EncodeStatus(o).serialize();
}

std::string FormatTime(WallTime t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::optional<WallTime> ParseTime(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::tm tm{};
  int n = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6) {
    return std::nullopt;
  }
  // Only years a system_clock time point can hold (roughly 1678-2262 in nanoseconds); Go's zero
  // time (year 1) and other far dates are "no time", not an overflow.
  if (tm.tm_year < 1970 || tm.tm_year > 2200) return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(secs);
}

Result<Rollout> DecodeRollout(const Json& obj) {
  Rollout r;
  const Json* meta = Field(obj, "metadata");
  if (meta == nullptr || !meta->is_object()) return Bad("metadata", "missing");
  r.namespace_ = StringField(*meta, "namespace");
  r.name = StringField(*meta, "name");
  r.uid = StringField(*meta, "uid");
  r.generation = Int(*meta, "generation");
  r.resource_version = StringField(*meta, "resourceVersion");
  r.annotations = StringMap(*meta, "annotations");
  const Json* spec = Field(obj, "spec");
  if (spec == nullptr || !spec->is_object()) return Bad("spec", "missing");
  auto decoded = DecodeSpec(*spec);
  if (!decoded.ok()) return decoded.status();
  r.spec = std::move(decoded).value();
  if (const Json* st = Field(obj, "status"); st != nullptr && st->is_object()) {
    auto status = DecodeStatus(*st);
    if (!status.ok()) return status.status();
    r.status = std::move(status).value();
  }
  return r;
}

std::string Bounded(const std::string& text, std::size_t max) {
  static constexpr std::string_view kMark = "...(truncated)";
  if (text.size() <= max) return text;
  std::size_t cut = max > kMark.size() ? max - kMark.size() : 0;
  // Never split a UTF-8 sequence: back up to the start of the character at `cut`.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) --cut;
  return text.substr(0, cut) + std::string(kMark.substr(0, max - cut));
}

std::string HandledValue(const std::string& annotation_value) {
  if (annotation_value.size() <= kMaxHandledValue) return annotation_value;
  return "sha256:" + Sha256Hex(annotation_value);
}

Json EncodeHistory(const std::vector<RevisionRecord>& history) {
  Json out = Json::array();
  std::size_t i = 0;
  for (const auto& h : history) {
    Json jh = Json::object(/*keep_order=*/true);  // read as written: `rollgate history -o json`
    jh["revision"] = Json::number(h.revision);
    if (h.phase != RolloutPhase::kNone) jh["phase"] = Json::string(PhaseName(h.phase));
    PutTime(jh, "startedAt", h.started_at);
    PutTime(jh, "finishedAt", h.finished_at);
    if (!h.reason.empty()) jh["reason"] = Json::string(Bounded(h.reason, kMaxReason));
    if (!h.message.empty()) jh["message"] = Json::string(Bounded(h.message, kMaxMessage));
    jh["images"] = FromMap(h.images);
    out[i++] = jh;
  }
  return out;
}

Json EncodeStatus(const RolloutStatus& s) {
  Json o = Json::object();
  o["observedGeneration"] = Json::number(s.observed_generation);
  o["revision"] = Json::number(s.revision);
  if (s.phase != RolloutPhase::kNone) o["phase"] = Json::string(PhaseName(s.phase));
  if (!s.current_environment.empty()) o["currentEnvironment"] = Json::string(s.current_environment);
  if (!s.message.empty()) o["message"] = Json::string(Bounded(s.message, kMaxMessage));
  Json envs = Json::array();
  size_t i = 0;
  for (const auto& e : s.environments) {
    Json je = Json::object();
    je["name"] = Json::string(e.name);
    je["phase"] = Json::string(PhaseName(e.phase));
    PutTime(je, "startedAt", e.started_at);
    PutTime(je, "verifiedAt", e.verified_at);
    PutTime(je, "finishedAt", e.finished_at);
    PutTime(je, "approvedAt", e.approved_at);
    if (!e.reason.empty()) je["reason"] = Json::string(Bounded(e.reason, kMaxReason));
    if (!e.message.empty()) je["message"] = Json::string(Bounded(e.message, kMaxMessage));
    if (e.attempts > 0) je["attempts"] = Json::number(e.attempts);
    if (!e.targets.empty()) {
      Json ts = Json::array();
      size_t j = 0;
      for (const auto& t : e.targets) {
        Json jt = Json::object();
        jt["deployment"] = Json::string(t.deployment);
        const NamespaceScope scope = SplitScopedNamespace(t.namespace_);
        if (!scope.cluster.empty()) jt["cluster"] = Json::string(scope.cluster);
        jt["namespace"] = Json::string(scope.name);
        jt["previousImages"] = FromMap(t.previous_images);
        if (!t.previous_init_containers.empty()) {
          jt["previousInitContainers"] = FromMap(t.previous_init_containers);
        }
        if (!t.previous_validation_label.empty()) {
          jt["previousValidationLabel"] = Json::string(t.previous_validation_label);
        }
        if (t.patches > 0) jt["patches"] = Json::number(t.patches);
        jt["replicas"] = Json::number(t.replicas);
        jt["updatedReplicas"] = Json::number(t.updated_replicas);
        jt["readyReplicas"] = Json::number(t.ready_replicas);
        jt["availableReplicas"] = Json::number(t.available_replicas);
        ts[j++] = jt;
      }
      je["targets"] = ts;
    }
    if (e.validation) {
      Json v = Json::object();
      v["gpuPods"] = Json::number(e.validation->gpu_pods);
      v["passed"] = Json::number(e.validation->passed);
      v["failed"] = Json::number(e.validation->failed);
      if (!e.validation->message.empty())
        v["message"] = Json::string(Bounded(e.validation->message, kMaxMessage));
      je["validation"] = v;
    }
    if (e.analysis) {
      Json a = Json::object();
      a["samples"] = Json::number(e.analysis->samples);
      a["passed"] = Json::number(e.analysis->passed);
      a["failed"] = Json::number(e.analysis->failed);
      a["inconclusive"] = Json::number(e.analysis->inconclusive);
      PutTime(a, "lastSampleAt", e.analysis->last_sample_at);
      if (!e.analysis->last_value.empty())
        a["lastValue"] = Json::string(Bounded(e.analysis->last_value, kMaxValue));
      if (!e.analysis->message.empty())
        a["message"] = Json::string(Bounded(e.analysis->message, kMaxMessage));
      je["analysis"] = a;
    }
    // Absent when there are none, so a status without smoke checks encodes as it always did.
    if (!e.smoke_checks.empty()) {
      Json scs = Json::array();
      size_t m = 0;
      for (const auto& c : e.smoke_checks) {
        Json jc = Json::object();
        jc["name"] = Json::string(c.name);
        jc["target"] = Json::string(c.target);
        jc["job"] = Json::string(c.job);
        jc["phase"] = Json::string(PhaseName(c.phase));
        PutTime(jc, "startedAt", c.started_at);
        PutTime(jc, "finishedAt", c.finished_at);
        if (c.exit_code) jc["exitCode"] = Json::number(*c.exit_code);
        if (!c.message.empty()) jc["message"] = Json::string(Bounded(c.message, kMaxMessage));
        scs[m++] = jc;
      }
      je["smokeChecks"] = scs;
    }
    envs[i++] = je;
  }
  o["environments"] = envs;
  Json conds = Json::array();
  size_t k = 0;
  for (const auto& c : s.conditions) {
    Json jc = Json::object();
    jc["type"] = Json::string(c.type);
    jc["status"] = Json::string(c.status);
    jc["reason"] = Json::string(c.reason);
    jc["message"] = Json::string(Bounded(c.message, kMaxMessage));
    jc["observedGeneration"] = Json::number(c.observed_generation);
    jc["lastTransitionTime"] = Json::string(FormatTime(c.last_transition_time));
    conds[k++] = jc;
  }
  o["conditions"] = conds;
  if (!s.resolved_images.empty()) {
    Json ris = Json::array();
    size_t n = 0;
    for (const auto& r : s.resolved_images) {
      Json ri = Json::object();
      ri["name"] = Json::string(r.name);
      ri["reference"] = Json::string(r.reference);
      ri["digest"] = Json::string(r.digest);
      ri["mediaType"] = Json::string(r.media_type);
      ri["size"] = Json::number(r.size);
      Json ps = Json::array();
      size_t m = 0;
      for (const auto& p : r.platforms) {
        Json jp = Json::object();
        jp["platform"] = Json::string(p.platform);
        jp["digest"] = Json::string(p.digest);
        jp["size"] = Json::number(p.size);
        ps[m++] = jp;
      }
      ri["platforms"] = ps;
      ris[n++] = ri;
    }
    o["resolvedImages"] = ris;
  }
  if (!s.resolved_summary.empty()) {
    o["resolvedSummary"] = Json::string(Bounded(s.resolved_summary, kMaxSummary));
  }
  // Absent when empty, so a status written before the history existed encodes as it did.
  if (!s.history.empty()) o["history"] = EncodeHistory(s.history);
  Json b = Json::object();
  if (!s.spec_hash.empty()) b["specHash"] = Json::string(s.spec_hash);
  if (!s.handled_annotations.empty()) b["handledAnnotations"] = FromMap(s.handled_annotations);
  o["bookkeeping"] = b;
  return o;
}

namespace {

// The pod template's kubernetes.io/arch and kubernetes.io/os constraints: the nodeSelector, and
// the In values of the required node affinity's terms on the arch label (terms are ORed: the
// union of theirs; a term without an arch expression allows any, and then so does the whole).
void DecodeNodeConstraints(const Json& pspec, DeploymentView& d) {
  std::vector<std::string> archs;
  const auto selector = StringMap(pspec, "nodeSelector");
  if (auto it = selector.find(kArchLabel); it != selector.end()) archs.push_back(it->second);
  if (auto it = selector.find(kOsLabel); it != selector.end()) d.node_os = it->second;
  const Json* aff = Field(pspec, "affinity");
  const Json* na = aff != nullptr ? Field(*aff, "nodeAffinity") : nullptr;
  const Json* req =
      na != nullptr ? Field(*na, "requiredDuringSchedulingIgnoredDuringExecution") : nullptr;
  const Json* terms = req != nullptr ? Field(*req, "nodeSelectorTerms") : nullptr;
  std::vector<std::string> from_terms;
  bool any = terms == nullptr || !terms->is_array() || terms->as_array().size() == 0;
  if (!any) {
    for (const auto& term : terms->as_array()) {
      bool constrained = false;
      const Json* exprs = Field(term, "matchExpressions");
      if (exprs != nullptr && exprs->is_array()) {
        for (const auto& e : exprs->as_array()) {
          if (StringField(e, "key") != kArchLabel || StringField(e, "operator") != "In") continue;
          constrained = true;
          for (const auto& v : Strings(e, "values")) from_terms.push_back(v);
        }
      }
      if (!constrained) any = true;
    }
  }
  if (!any) {
    if (archs.empty()) {
      archs = from_terms;
    } else {  // both: the selector's arch, if the affinity allows it (else nothing schedules)
      std::erase_if(archs, [&](const std::string& a) {
        return std::find(from_terms.begin(), from_terms.end(), a) == from_terms.end();
      });
      if (archs.empty()) archs.push_back(selector.at(kArchLabel));
    }
  }
  std::sort(archs.begin(), archs.end());
  archs.erase(std::unique(archs.begin(), archs.end()), archs.end());
  d.node_archs = std::move(archs);
}

}  // namespace

Result<DeploymentView> DecodeDeployment(const Json& obj, const std::string& gpu_resource) {
  DeploymentView d;
  const Json* meta = Field(obj, "metadata");
  if (meta == nullptr) return Bad("metadata", "missing");
  d.namespace_ = StringField(*meta, "namespace");
  d.name = StringField(*meta, "name");
  d.generation = Int(*meta, "generation");
  d.annotations = StringMap(*meta, "annotations");
  const Json* spec = Field(obj, "spec");
  if (spec == nullptr) return Bad("spec", "missing");
  d.spec_replicas = static_cast<int>(Int(*spec, "replicas", 1));
  if (const Json* sel = Field(*spec, "selector"); sel != nullptr) {
    d.selector = StringMap(*sel, "matchLabels");
  }
  d.resource_version = StringField(*meta, "resourceVersion");
  const Json* tmpl = Field(*spec, "template");
  const Json* pspec = tmpl != nullptr ? Field(*tmpl, "spec") : nullptr;
  const Json* containers = pspec != nullptr ? Field(*pspec, "containers") : nullptr;
  if (containers != nullptr && containers->is_array()) {
    for (const auto& c : containers->as_array()) {
      const std::string name = StringField(c, "name");
      d.container_images[name] = StringField(c, "image");
      const Json* res = Field(c, "resources");
      for (const char* kind : {"limits", "requests"}) {
        const Json* q = res != nullptr ? Field(*res, kind) : nullptr;
        if (q == nullptr || !q->is_object() || !q->has_field(gpu_resource)) continue;
        const Json& v = q->at(gpu_resource);
        // Quantities arrive as strings ("1") or numbers.
        const std::string amount = v.is_string()    ? v.as_string()
                                   : v.is_integer() ? std::to_string(v.as_integer())
                                                    : std::string();
        if (!amount.empty() && amount != "0") d.gpu_requests[name] = amount;
      }
      if (d.gpu_requests.contains(name)) d.gpu_container_settings[name] = DecodeSettings(c);
    }
  }
  if (pspec != nullptr) DecodeNodeConstraints(*pspec, d);
  const Json* inits = pspec != nullptr ? Field(*pspec, "initContainers") : nullptr;
  if (inits != nullptr && inits->is_array()) {
    for (const auto& c : inits->as_array()) {
      d.init_container_images[StringField(c, "name")] = StringField(c, "image");
    }
  }
  if (tmpl != nullptr) {
    if (const Json* tm = Field(*tmpl, "metadata"); tm != nullptr) {
      d.template_labels = StringMap(*tm, "labels");
    }
  }
  if (const Json* st = Field(obj, "status"); st != nullptr) {
    d.observed_generation = Int(*st, "observedGeneration");
    d.replicas = static_cast<int>(Int(*st, "replicas"));
    d.updated_replicas = static_cast<int>(Int(*st, "updatedReplicas"));
    d.ready_replicas = static_cast<int>(Int(*st, "readyReplicas"));
    d.available_replicas = static_cast<int>(Int(*st, "availableReplicas"));
    if (const Json* cs = Field(*st, "conditions"); cs != nullptr && cs->is_array()) {
      for (const auto& c : cs->as_array()) {
        if (StringField(c, "type") == "Progressing" && StringField(c, "status") == "False" &&
            StringField(c, "reason") == "ProgressDeadlineExceeded") {
          d.progress_deadline_exceeded = true;
        }
      }
    }
  }
  return d;
}

NamespaceView DecodeNamespace(const Json& obj) {
  NamespaceView n;
  if (const Json* meta = Field(obj, "metadata"); meta != nullptr) {
    n.name = StringField(*meta, "name");
    n.labels = StringMap(*meta, "labels");
  }
  return n;
}

Json TrimDeployment(Json&& obj) {
  if (!obj.is_object()) return std::move(obj);
  Json out = Keep(std::move(obj), {"apiVersion", "kind", "metadata", "spec", "status"});
  Reshape(out, "metadata", TrimMetadata);
  Reshape(out, "spec", [](Json&& spec) {
    Json s = Keep(std::move(spec), {"replicas", "selector", "template"});
    Reshape(s, "selector", [](Json&& sel) { return Keep(std::move(sel), {"matchLabels"}); });
    Reshape(s, "template", [](Json&& tmpl) {
      Json t = Keep(std::move(tmpl), {"metadata", "spec"});
      Reshape(t, "metadata", [](Json&& m) { return Keep(std::move(m), {"labels"}); });
      Reshape(t, "spec", [](Json&& ps) {
        Json p = Keep(std::move(ps), {"containers", "initContainers", "nodeSelector", "affinity"});
        Reshape(p, "nodeSelector", [](Json&& sel) {
          return Keep(std::move(sel), {kArchLabel, kOsLabel});
        });
        Reshape(p, "affinity", TrimAffinity);
        Reshape(p, "containers", [](Json&& cs) {
          Json kept = KeepEach(std::move(cs), {"name", "image", "resources", "securityContext"});
          for (auto& c : kept.as_array()) {
            Reshape(c, "resources", [](Json&& r) {
              return Keep(std::move(r), {"requests", "limits"});
            });
          }
          return kept;
        });
        Reshape(p, "initContainers", [](Json&& cs) {
          return KeepEach(std::move(cs), {"name", "image"});
        });
        return p;
      });
      return t;
    });
    return s;
  });
  Reshape(out, "status", [](Json&& st) {
    Json s = Keep(std::move(st), {"observedGeneration", "replicas", "updatedReplicas",
                                  "readyReplicas", "availableReplicas", "conditions"});
    Reshape(s, "conditions", [](Json&& cs) {
      Json kept = Json::array();
      if (!cs.is_array()) return kept;
      std::size_t i = 0;
      for (auto& c : cs.as_array()) {
        if (StringField(c, "type") != "Progressing") continue;
        kept[i++] = Keep(std::move(c), {"type", "status", "reason"});
      }
      return kept;
    });
    return s;
  });
  return out;
}

Json TrimRollout(Json&& obj) {
  if (!obj.is_object()) return std::move(obj);
  Json out = Keep(std::move(obj), {"apiVersion", "kind", "metadata", "spec", "status"});
  Reshape(out, "metadata", TrimMetadata);
  return out;
}

Json TrimNamespace(Json&& obj) {
  if (!obj.is_object()) return std::move(obj);
  Json out = Keep(std::move(obj), {"apiVersion", "kind", "metadata"});
  Reshape(out, "metadata", [](Json&& m) {
    return Keep(std::move(m), {"name", "uid", "resourceVersion", "labels"});
  });
  return out;
}

bool SameSpecHash(const std::string& recorded, const std::string& observed) {
  if (recorded == observed) return true;
  // Rollgate 0.1 recorded the first 8 bytes only: accept that prefix, so that an upgrade does not
  // restart every rollout. The next status write records the full hash.
  return recorded.size() == kLegacySpecHashLength && observed.size() > recorded.size() &&
         observed.compare(0, recorded.size(), recorded) == 0;
}

std::string SpecHash(const Json& rollout_obj) {
  std::string canonical;
  if (const Json* spec = Field(rollout_obj, "spec"); spec != nullptr) {
    if (const Json* images = Field(*spec, "images"); images != nullptr)
      canonical += images->serialize();
    canonical += "|";
    if (const Json* envs = Field(*spec, "environments"); envs != nullptr)
      canonical += envs->serialize();
  }
  return Sha256Hex(canonical);
}

}  // namespace rollgate::api
