#include "controller/validation/pod_validation.h"

#include "controller/api/codec.h"
#include "controller/api/well_known.h"
#include "controller/common/json_escape.h"
#include "controller/kube/json_fields.h"

namespace rollgate::validation {
namespace {

using kube::Field;
using kube::StringField;

// A terminated state with a non-zero exit code, as "exited N (Reason): message".
bool FailedTermination(const kube::Json* state, std::string* out) {
  const kube::Json* term = state != nullptr ? Field(*state, "terminated") : nullptr;
  if (term == nullptr) return false;
  const kube::Json* code = Field(*term, "exitCode");
  const int exit_code = code != nullptr && code->is_integer() ? code->as_integer() : -1;
  if (exit_code == 0) return false;
  // At most 600 bytes and "...", cut on a character boundary, invalid UTF-8 replaced: the
  // verdict goes to status and Events as it is.
  const std::string msg = json::SanitizeUtf8(StringField(*term, "message"), 603);
  *out = "exited " + std::to_string(exit_code);
  if (const std::string reason = StringField(*term, "reason"); !reason.empty())
    *out += " (" + reason + ")";
  if (!msg.empty()) *out += ": " + msg;
  return true;
}

bool Succeeded(const kube::Json* state) {
  const kube::Json* term = state != nullptr ? Field(*state, "terminated") : nullptr;
  if (term == nullptr) return false;
  const kube::Json* code = Field(*term, "exitCode");
  return code != nullptr && code->is_integer() && code->as_integer() == 0;
}

}  // namespace

Verdict PodVerdict(const kube::Json& pod, const std::vector<std::string>& init_containers) {
  Verdict v;
  const kube::Json* status = Field(pod, "status");
  const kube::Json* statuses =
      status != nullptr ? Field(*status, "initContainerStatuses") : nullptr;
  int passed = 0;
  for (const auto& name : init_containers) {
    const kube::Json* cs = nullptr;
    if (statuses != nullptr && statuses->is_array()) {
      for (const auto& s : statuses->as_array()) {
        if (StringField(s, "name") == name) cs = &s;
      }
    }
    if (cs == nullptr) continue;
    std::string detail;
    // A failed attempt counts even while the kubelet restarts the container.
    if (FailedTermination(Field(*cs, "state"), &detail) ||
        FailedTermination(Field(*cs, "lastState"), &detail)) {
      v.state = Verdict::State::kFailed;
      std::string node;
      if (const kube::Json* spec = Field(pod, "spec"); spec != nullptr)
        node = StringField(*spec, "nodeName");
      v.message = "pod " + kube::MetaString(pod, "name");
      if (!node.empty()) v.message += " on node " + node;
      v.message += ": ";
      v.message += name;
      v.message += " ";
      v.message += detail;
      return v;
    }
    if (Succeeded(Field(*cs, "state"))) ++passed;
  }
  if (passed == static_cast<int>(init_containers.size())) v.state = Verdict::State::kPassed;
  return v;
}

kube::Json TrimPod(kube::Json&& pod) {
  using kube::Json;
  if (!pod.is_object()) return std::move(pod);
  Json out = kube::Keep(std::move(pod), {"apiVersion", "kind", "metadata", "spec", "status"});
  kube::Reshape(out, "metadata", [](Json&& m) {
    return kube::Keep(std::move(m), {"namespace", "name", "uid", "resourceVersion", "labels",
                                     "deletionTimestamp"});
  });
  kube::Reshape(out, "spec", [](Json&& s) { return kube::Keep(std::move(s), {"nodeName"}); });
  kube::Reshape(out, "status", [](Json&& st) {
    Json s = kube::Keep(std::move(st), {"initContainerStatuses"});
    kube::Reshape(s, "initContainerStatuses", [](Json&& list) {
      Json kept = kube::KeepEach(std::move(list), {"name", "state", "lastState"});
      for (auto& cs : kept.as_array()) {
        for (const char* which : {"state", "lastState"}) {
          kube::Reshape(cs, which, [](Json&& state) {
            Json t = kube::Keep(std::move(state), {"terminated"});
            kube::Reshape(t, "terminated", [](Json&& term) {
              return kube::Keep(std::move(term), {"exitCode", "reason", "message"});
            });
            return t;
          });
        }
      }
      return kept;
    });
    return s;
  });
  return out;
}

PodValidationObserver::PodValidationObserver(const kube::ObjectLister& pods,
                                             const kube::ObjectLister& deployments,
                                             InjectionOptions opts)
    : pods_(pods), deployments_(deployments), opts_(std::move(opts)) {}

std::optional<ValidationObservation> PodValidationObserver::Observe(
    const api::Rollout& r, const api::EnvironmentSpec& env) {
  ValidationObservation obs;
  const std::string ns = api::EnvironmentNamespace(r, env);
  const std::string rev = std::to_string(r.status.revision);
  int pending = 0;
  for (const auto& t : env.targets) {
    auto dobj = deployments_.Get(ns + "/" + t.deployment);
    if (!dobj) continue;
    auto d = api::DecodeDeployment(*dobj, opts_.gpu_resource);
    if (!d.ok()) continue;
    auto inits = ValidationContainers(r.spec.images, t, *d, opts_);
    if (inits.empty()) continue;
    obs.required = true;
    std::vector<std::string> names;
    names.reserve(inits.size());
    for (const auto& ic : inits) names.push_back(ic.name);
    for (const auto& pod : pods_.ListNamespace(ns)) {
      const kube::Json* meta = Field(*pod, "metadata");
      if (meta == nullptr || Field(*meta, "deletionTimestamp") != nullptr) continue;
      const kube::Json* labels = Field(*meta, "labels");
      if (labels == nullptr || StringField(*labels, api::kValidationLabel) != rev) continue;
      bool selected = true;
      for (const auto& [k, v] : d->selector)
        selected = selected && StringField(*labels, k.c_str()) == v;
      if (!selected) continue;
      ++obs.gpu_pods;
      Verdict verdict = PodVerdict(*pod, names);
      if (verdict.state == Verdict::State::kPassed) ++obs.passed;
      if (verdict.state == Verdict::State::kPending) ++pending;
      if (verdict.state == Verdict::State::kFailed) {
        if (obs.failed == 0) obs.message = verdict.message;
        ++obs.failed;
      }
    }
  }
  if (!obs.required) return std::nullopt;
  if (obs.failed == 0) {
    obs.message = std::to_string(obs.passed) + " of " + std::to_string(obs.gpu_pods) +
                  " GPU pods validated" +
                  (pending > 0 ? ", " + std::to_string(pending) + " pending" : "");
  }
  return obs;
}

}  // namespace rollgate::validation
