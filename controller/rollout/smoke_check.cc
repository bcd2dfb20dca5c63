#include "controller/rollout/smoke_check.h"

#include <algorithm>
#include <array>
#include <utility>

#include "controller/api/codec.h"
#include "controller/api/well_known.h"
#include "controller/common/digest.h"
#include "controller/common/json_escape.h"
#include "controller/kube/json_fields.h"

namespace rollgate::rollout {
namespace {

using kube::Field;
using kube::Json;
using kube::StringField;

// What the Job's pod takes of the Deployment's pod template: where and as whom it runs.
constexpr std::array<const char*, 16> kPodFields = {"serviceAccountName",
                                                    "automountServiceAccountToken",
                                                    "nodeSelector",
                                                    "tolerations",
                                                    "affinity",
                                                    "imagePullSecrets",
                                                    "securityContext",
                                                    "priorityClassName",
                                                    "runtimeClassName",
                                                    "schedulerName",
                                                    "dnsPolicy",
                                                    "dnsConfig",
                                                    "hostAliases",
                                                    "enableServiceLinks",
                                                    "volumes",
                                                    "terminationGracePeriodSeconds"};
// What the check's container takes of the template's container.
constexpr std::array<const char*, 7> kContainerFields = {
    "env",          "envFrom",    "resources",      "securityContext",
    "volumeMounts", "workingDir", "imagePullPolicy"};

constexpr std::size_t kMaxName = 63;     // a DNS label, a label value
constexpr std::size_t kNamePrefix = 52;  // kMaxName - "-" - kHashDigits
constexpr std::size_t kHashDigits = 10;
constexpr std::size_t kMaxCondition = 600;  // the Job condition's part of a message
constexpr std::size_t kMaxMessage = 2048;   // a whole observation message
constexpr std::string_view kEllipsis = "...";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// `s` cut to `n` bytes, without trailing '-' and '.' (a name and a label value end with an
// alphanumeric character).
std::string CutName(std::string_view s, std::size_t n) {
  std::string out(s.substr(0, n));
  while (!out.empty() && (out.back() == '-' || out.back() == '.')) out.pop_back();
  return out;
}

// `value` as a label value: itself when it fits, otherwise 52 characters of it, "-" and 10 hex
// digits of its SHA-256 (still one value per value).
std::string LabelValue(const std::string& value) {
  if (value.size() <= kMaxName) return value;
  return CutName(value, kNamePrefix) + "-" + Sha256Hex(value).substr(0, kHashDigits);
}

// The name part of "namespace/name".
std::string NameOf(const std::string& key) {
  const std::size_t slash = key.rfind('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U; }

// `text` as valid UTF-8 (invalid bytes replaced), CRLF as LF, control characters other than
// newline and tab (C0, DEL, C1) replaced.
std::string Clean(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = json::Utf8SequenceLength(text, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    const auto b = static_cast<unsigned char>(text[i]);
    if (n == 1 && b == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      ++i;  // the '\n' follows
      continue;
    }
    const bool c0 = n == 1 && ((b < 0x20 && b != '\n' && b != '\t') || b == 0x7F);
    const bool c1 = n == 2 && b == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0;
    if (c0 || c1) {
      out += kReplacement;
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

// A Job condition's words, cleaned and bounded.
std::string ConditionText(const std::string& reason, const std::string& message,
                          const char* fallback) {
  std::string out = reason;
  if (!message.empty()) {
    if (!out.empty()) out += ": ";
    out += message;
  }
  if (out.empty()) out = fallback;
  return json::SanitizeUtf8(Clean(out), kMaxCondition + kEllipsis.size());
}

// What the pods say of the check's container.
struct ContainerEnd {
  bool terminated = false;
  std::optional<int> exit_code;
  std::string reason;   // terminated: "Error", "OOMKilled", "StartError"; else waiting's
  std::string message;  // the termination message (the log's last lines) or waiting's
};

// The check's container in `pod`: its termination (state, else lastState), else why it waits.
std::optional<ContainerEnd> ContainerEndOf(const Json& pod, const std::string& container) {
  const Json* status = Field(pod, "status");
  const Json* statuses = status != nullptr ? Field(*status, "containerStatuses") : nullptr;
  if (statuses == nullptr || !statuses->is_array()) return std::nullopt;
  for (const auto& cs : statuses->as_array()) {
    if (StringField(cs, "name") != container) continue;
    ContainerEnd end;
    for (const char* which : {"state", "lastState"}) {
      const Json* state = Field(cs, which);
      const Json* term = state != nullptr ? Field(*state, "terminated") : nullptr;
      if (term == nullptr) continue;
      end.terminated = true;
      const Json* code = Field(*term, "exitCode");
      if (code != nullptr && code->is_integer()) end.exit_code = code->as_integer();
      end.reason = StringField(*term, "reason");
      end.message = StringField(*term, "message");
      return end;
    }
    const Json* state = Field(cs, "state");
    const Json* waiting = state != nullptr ? Field(*state, "waiting") : nullptr;
    if (waiting != nullptr) {
      end.reason = StringField(*waiting, "reason");
      end.message = StringField(*waiting, "message");
    }
    return end;
  }
  return std::nullopt;
}

// The newest pod's word on the check's container, preferring a pod where it terminated.
std::optional<ContainerEnd> NewestEnd(const std::vector<Json>& pods, const std::string& container) {
  std::optional<ContainerEnd> best;
  std::optional<api::WallTime> best_time;
  for (const Json& pod : pods) {
    std::optional<ContainerEnd> end = ContainerEndOf(pod, container);
    if (!end) continue;
    const std::optional<api::WallTime> created =
        api::ParseTime(kube::MetaString(pod, "creationTimestamp"));
    const bool better = !best || (end->terminated && !best->terminated) ||
                        (end->terminated == best->terminated &&
                         (!best_time || (created && *created >= *best_time)));
    if (better) {
      best = std::move(end);
      best_time = created;
    }
  }
  return best;
}

// The condition `type` of the Job's status.conditions when its status is "True".
const Json* TrueCondition(const Json& job, std::string_view type) {
  const Json* status = Field(job, "status");
  const Json* conditions = status != nullptr ? Field(*status, "conditions") : nullptr;
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const auto& c : conditions->as_array()) {
    if (StringField(c, "type") == type && StringField(c, "status") == "True") return &c;
  }
  return nullptr;
}

Json StringArray(const std::vector<std::string>& items) {
  Json out = Json::array();
  std::size_t i = 0;
  for (const auto& s : items) out[i++] = Json::string(s);
  return out;
}

}  // namespace

std::vector<DeclaredSmokeCheck> SmokeChecksOf(const api::EnvironmentSpec& env) {
  std::vector<DeclaredSmokeCheck> out;
  for (const auto& c : env.smoke_checks) out.push_back({&c, std::nullopt});
  for (std::size_t t = 0; t < env.targets.size(); ++t) {
    for (const auto& c : env.targets[t].smoke_checks) out.push_back({&c, t});
  }
  return out;
}

std::optional<SmokeCheckSite> SiteOf(const api::EnvironmentSpec& env, const DeclaredSmokeCheck& c) {
  if (c.spec == nullptr) return std::nullopt;
  auto container_of = [&c](const api::TargetSpec& target) -> std::optional<std::string> {
    for (const auto& entry : target.containers) {  // by container name
      if (entry.second == c.spec->image) return entry.first;
    }
    return std::nullopt;
  };
  if (c.own_target) {
    if (*c.own_target >= env.targets.size()) return std::nullopt;
    std::optional<std::string> container = container_of(env.targets[*c.own_target]);
    if (!container) return std::nullopt;
    return SmokeCheckSite{*c.own_target, std::move(*container)};
  }
  for (std::size_t t = 0; t < env.targets.size(); ++t) {
    if (std::optional<std::string> container = container_of(env.targets[t])) {
      return SmokeCheckSite{t, std::move(*container)};
    }
  }
  return std::nullopt;
}

std::string SmokeJobName(const std::string& rollout_name, const std::string& rollout_uid,
                         std::int64_t revision, const std::string& environment, int attempt,
                         const std::string& check) {
  // Each part with its length first: no two different tuples join to the same bytes.
  std::string canonical;
  auto add = [&canonical](const std::string& part) {
    canonical += std::to_string(part.size());
    canonical += ':';
    canonical += part;
    canonical += '\n';
  };
  add(rollout_uid);
  add(std::to_string(revision));
  add(environment);
  add(std::to_string(attempt));
  add(check);
  add(rollout_name);
  const std::string hash = Sha256Hex(canonical).substr(0, kHashDigits);
  const std::string prefix = CutName(rollout_name + "-" + check, kNamePrefix);
  return prefix.empty() ? hash : prefix + "-" + hash;
}

Result<kube::Json> BuildSmokeJob(const kube::Json& deployment, const SmokeJob& job,
                                 const SmokeJobOptions& opts) {
  const std::string where = "deployment " + job.namespace_ + "/" + job.deployment;
  const Json* spec = Field(deployment, "spec");
  const Json* tmpl = spec != nullptr ? Field(*spec, "template") : nullptr;
  const Json* pod = tmpl != nullptr ? Field(*tmpl, "spec") : nullptr;
  if (pod == nullptr || !pod->is_object()) {
    return Status(StatusCode::kInvalidArgument,
                  where + " has no pod template (spec.template.spec) to build smoke check " +
                      job.check + " from");
  }
  const Json* containers = Field(*pod, "containers");
  const Json* source = nullptr;
  if (containers != nullptr && containers->is_array()) {
    for (const auto& c : containers->as_array()) {
      if (StringField(c, "name") == job.container) {
        source = &c;
        break;
      }
    }
  }
  if (source == nullptr) {
    return Status(StatusCode::kInvalidArgument, where + " has no container \"" + job.container +
                                                    "\" in its pod template (smoke check " +
                                                    job.check + ")");
  }

  Json labels = Json::object();
  labels[kSmokeCheckLabel] = Json::string(LabelValue(job.check));
  labels[kSmokeRolloutLabel] = Json::string(LabelValue(NameOf(job.rollout)));
  labels[kSmokeRevisionLabel] = Json::string(std::to_string(job.revision));
  labels[kSmokeEnvironmentLabel] = Json::string(LabelValue(job.environment));

  Json container = Json::object();
  container["name"] = Json::string(job.container);
  container["image"] = Json::string(job.image);
  container["command"] = StringArray(job.command);
  for (const char* f : kContainerFields) {
    if (const Json* v = Field(*source, f)) container[f] = *v;
  }
  // Claims name the template's resourceClaims, which the Job's pod does not have: the API server
  // would refuse the Job.
  if (container.has_field("resources") && container.at("resources").is_object() &&
      container.at("resources").has_field("claims")) {
    container["resources"].erase("claims");
  }
  container["terminationMessagePolicy"] = Json::string("FallbackToLogsOnError");

  Json pod_spec = Json::object();
  for (const char* f : kPodFields) {
    if (const Json* v = Field(*pod, f)) pod_spec[f] = *v;
  }
  pod_spec["restartPolicy"] = Json::string("Never");
  pod_spec["containers"] = Json::array();
  pod_spec["containers"][0] = std::move(container);

  Json out = Json::object();
  out["apiVersion"] = Json::string("batch/v1");
  out["kind"] = Json::string("Job");
  out["metadata"]["name"] = Json::string(job.job);
  out["metadata"]["namespace"] = Json::string(job.namespace_);
  out["metadata"]["labels"] = labels;
  out["metadata"]["annotations"][api::kOwnerAnnotation] = Json::string(job.rollout);
  out["metadata"]["annotations"][kSmokeRolloutUidAnnotation] = Json::string(job.rollout_uid);
  out["spec"]["backoffLimit"] = Json::number(0);
  out["spec"]["activeDeadlineSeconds"] = Json::number(std::max(1, job.timeout_seconds));
  out["spec"]["ttlSecondsAfterFinished"] =
      Json::number(std::max<std::int64_t>(0, opts.keep_finished.count()));
  out["spec"]["template"]["metadata"]["labels"] = std::move(labels);
  out["spec"]["template"]["spec"] = std::move(pod_spec);
  return out;
}

SmokeJobObservation ObserveSmokeJob(const kube::Json& job, const std::vector<kube::Json>& pods,
                                    const SmokeJob& expected) {
  using State = SmokeJobObservation::State;
  SmokeJobObservation out;
  if (!job.is_object()) return out;
  out.uid = kube::MetaString(job, "uid");
  out.created_at = api::ParseTime(kube::MetaString(job, "creationTimestamp"));
  const Json* meta = Field(job, "metadata");
  const Json* annotations = meta != nullptr ? Field(*meta, "annotations") : nullptr;
  const std::string owner =
      annotations != nullptr ? StringField(*annotations, api::kOwnerAnnotation) : "";
  const std::string uid =
      annotations != nullptr ? StringField(*annotations, kSmokeRolloutUidAnnotation) : "";
  if (owner != expected.rollout || uid != expected.rollout_uid) {
    out.state = State::kForeign;
    std::string m;
    if (owner.empty()) {
      m = "not created by Rollgate: no " + std::string(api::kOwnerAnnotation) + " annotation";
    } else if (owner != expected.rollout) {
      m = "it belongs to rollout " + owner;
    } else {
      m = "it belongs to an earlier rollout of the same name, " + owner + " (uid " +
          (uid.empty() ? "none" : uid) + "), not this one (uid " + expected.rollout_uid + ")";
    }
    out.message = json::SanitizeUtf8(Clean(m), kMaxCondition + kEllipsis.size());
    return out;
  }

  if (TrueCondition(job, "Complete") != nullptr) {
    out.state = State::kSucceeded;
    return out;
  }
  const Json* failed = TrueCondition(job, "Failed");
  if (failed == nullptr) {
    out.state = State::kRunning;
    return out;
  }
  const std::string reason = StringField(*failed, "reason");
  out.state = reason == "DeadlineExceeded" ? State::kTimedOut : State::kFailed;
  std::string m = ConditionText(reason, StringField(*failed, "message"), "the Job failed");
  if (std::optional<ContainerEnd> end = NewestEnd(pods, expected.container)) {
    out.exit_code = end->exit_code;
    if (!end->terminated && !end->reason.empty()) {  // never ran: why it waited
      m += "; container " + expected.container + " was waiting: ";
      m += ConditionText(end->reason, end->message, "");
    } else {
      if (!end->reason.empty() && end->reason != "Error" && end->reason != "Completed") {
        m += "; container " + expected.container + ": " + end->reason;  // OOMKilled, StartError
      }
      if (!end->message.empty()) {
        m += "; last log lines:\n";
        m += LogExcerpt(end->message, kMaxSmokeLog);
      }
    }
  }
  out.message = json::SanitizeUtf8(m, kMaxMessage);
  return out;
}

std::string LogExcerpt(std::string_view text, std::size_t max_bytes) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  // Only the end matters: a raw tail of twice the budget cleans to more than the budget (a
  // CRLF, the only shrinking, halves at most).
  bool cut = false;
  if (const std::size_t window = 2 * max_bytes + 8; text.size() > window) {
    text.remove_prefix(text.size() - window);
    cut = true;
    for (int i = 0; i < 3 && !text.empty() && IsContinuation(text.front()); ++i) {
      text.remove_prefix(1);  // the rest of a character cut in two
    }
  }
  std::string clean = Clean(text);
  if (!cut && clean.size() <= max_bytes) return clean;
  if (max_bytes <= kEllipsis.size()) return std::string(kEllipsis.substr(0, max_bytes));
  const std::size_t budget = max_bytes - kEllipsis.size();
  std::size_t start = clean.size() > budget ? clean.size() - budget : 0;
  while (start < clean.size() && IsContinuation(clean[start])) ++start;
  // Start at a line when a line starts in the first half of what fits; otherwise at a character
  // (one long line: its end is worth more than a few bytes of the next).
  const bool at_line = start == 0 ? !cut : clean[start - 1] == '\n';
  if (!at_line) {
    const std::size_t nl = clean.find('\n', start);
    if (nl != std::string::npos && nl + 1 < clean.size() && nl - start <= budget / 2) {
      start = nl + 1;
    }
  }
  std::string out(kEllipsis);
  out.append(clean, start, std::string::npos);
  return out;
}

}  // namespace rollgate::rollout
