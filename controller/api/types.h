// The ContainerRollout resource (rollgate.io/v1alpha1) as C++ values: spec and status, the phases
// as enums (text only in codec.h, so -Wswitch makes every state machine complete), and the views
// of the objects the planner observes (Deployments, namespaces). Plain data; see codec.h for JSON
// and docs/design.md "The resource".
// Thread-safety: value types.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rollgate::api {

using WallTime = std::chrono::system_clock::time_point;

// ---- spec ----

struct WorkerValidationSpec {
  bool cuda_required = true;
  std::vector<std::string> command;  // optional check run in the worker's own new image
};

// When a smoke check runs: before the environment's Deployments are patched (nothing changes
// unless it passes), or once they are healthy (before analysis and bake).
enum class SmokeCheckWhen { kBeforePatch, kAfterHealthy };

// A command run in a new image as a Job built from a target Deployment's own pod template
// (environments[].smokeChecks, environments[].targets[].smokeChecks; docs/design.md "Smoke
// checks").
struct SmokeCheckSpec {
  std::string name;                  // a DNS label, unique within its environment
  std::string image;                 // a logical image of spec.images
  std::vector<std::string> command;  // exec form, replaces the container's command and args
  int timeout_seconds = 300;         // the Job's activeDeadlineSeconds
  SmokeCheckWhen when = SmokeCheckWhen::kBeforePatch;
};

struct TargetSpec {
  std::string deployment;
  std::map<std::string, std::string> containers;  // container name -> logical image name
  std::optional<WorkerValidationSpec> worker_validation;
  std::vector<SmokeCheckSpec> smoke_checks;  // run with this target's pod template
};

struct CheckSpec {
  std::string name;
  std::string query;
  std::optional<double> min;
  std::optional<double> max;
};

struct AnalysisSpec {
  std::string prometheus_address;
  std::vector<CheckSpec> checks;
  int interval_seconds = 30;
  int samples = 4;
};

struct EnvironmentSpec {
  std::string name;
  std::string namespace_;  // empty: the rollout's own namespace (its name, in a remote cluster)
  // cluster.secretRef.name: the Secret of the rollout's namespace whose key `value` holds the
  // kubeconfig of the cluster the targets live in; empty: the controller's own cluster.
  std::string cluster;
  bool manual_approval = false;
  int bake_seconds = 0;
  std::vector<TargetSpec> targets;
  std::optional<AnalysisSpec> analysis;
  // Run with the pod template of the first target that has a container of the check's image.
  std::vector<SmokeCheckSpec> smoke_checks;
};

// spec.imagePolicy: registry-aware promotion (docs/design.md "Registry-aware promotion"). Its
// presence turns on the registry pre-flight: every image is resolved to a digest before an
// environment changes anything.
struct ImagePolicySpec {
  bool pin_digests = true;  // patch "<reference>@<digest recorded at the first environment>"
  // The platforms ("linux/amd64") the pods of a Deployment without a kubernetes.io/arch node
  // selector or required affinity run on; empty: not known (no platform check for those).
  std::vector<std::string> platforms;
  // logical image -> the most compressed bytes its image may have (a quantity: "900Mi").
  std::map<std::string, std::string> max_size;
};

struct RolloutSpec {
  std::map<std::string, std::string> images;  // logical name -> image reference
  std::optional<ImagePolicySpec> image_policy;
  std::vector<EnvironmentSpec> environments;
  int progress_deadline_seconds = 600;
  bool automatic_rollback = true;
  bool paused = false;
};

// ---- status ----

// The phase of a whole rollout (status.phase). kNone: never reconciled (no phase written yet).
enum class RolloutPhase {
  kNone,
  kPending,
  kProgressing,
  kAwaitingApproval,
  kPaused,
  kSucceeded,
  kRollingBack,
  kRolledBack,
  kFailed,
  kAborted,
};

// The phase of one environment (status.environments[].phase).
enum class EnvironmentPhase {
  kPending,
  kAwaitingApproval,
  kUpdating,
  kVerifying,
  kBaking,
  kSucceeded,
  kRollingBack,
  kRolledBack,
  kFailed,
};

// A rollout that has reached one of these phases changes only when its spec (a new revision) or
// a retry annotation moves it on.
constexpr bool IsTerminal(RolloutPhase p) {
  switch (p) {
    case RolloutPhase::kSucceeded:
    case RolloutPhase::kFailed:
    case RolloutPhase::kRolledBack:
    case RolloutPhase::kAborted:
      return true;
    case RolloutPhase::kNone:
    case RolloutPhase::kPending:
    case RolloutPhase::kProgressing:
    case RolloutPhase::kAwaitingApproval:
    case RolloutPhase::kPaused:
    case RolloutPhase::kRollingBack:
      return false;
  }
  return false;
}

// An environment in one of these phases has (or is about to have) the new images applied.
constexpr bool IsInProgress(EnvironmentPhase p) {
  switch (p) {
    case EnvironmentPhase::kUpdating:
    case EnvironmentPhase::kVerifying:
    case EnvironmentPhase::kBaking:
      return true;
    case EnvironmentPhase::kPending:
    case EnvironmentPhase::kAwaitingApproval:
    case EnvironmentPhase::kSucceeded:
    case EnvironmentPhase::kRollingBack:
    case EnvironmentPhase::kRolledBack:
    case EnvironmentPhase::kFailed:
      return false;
  }
  return false;
}

struct TargetStatus {
  std::string deployment;
  std::string namespace_;
  std::map<std::string, std::string> previous_images;  // container -> image before the patch
  // Worker validation bookkeeping, for a rollback that restores the pod template exactly.
  std::map<std::string, std::string> previous_init_containers;  // name -> image
  std::string previous_validation_label;                        // "" when absent
  // Patches Rollgate sent to this Deployment in this attempt (forward and rollback): bounded, so
  // that no one else's writes can make it patch without end.
  int patches = 0;
  int replicas = 0;
  int updated_replicas = 0;
  int ready_replicas = 0;
  int available_replicas = 0;
};

struct ValidationStatus {
  int gpu_pods = 0;
  int passed = 0;
  int failed = 0;
  std::string message;
};

struct AnalysisStatus {
  int samples = 0;
  int passed = 0;
  int failed = 0;
  int inconclusive = 0;
  std::optional<WallTime> last_sample_at;
  std::string last_value;
  std::string message;
};

// status.environments[].smokeChecks[].phase
enum class SmokeCheckPhase { kRunning, kPassed, kFailed, kTimedOut };

struct SmokeCheckStatus {
  std::string name;
  std::string target;  // the Deployment whose pod template the Job was built from
  std::string job;     // the Job's name, in the environment's namespace
  SmokeCheckPhase phase = SmokeCheckPhase::kRunning;
  std::optional<WallTime> started_at;
  std::optional<WallTime> finished_at;
  std::optional<int> exit_code;
  std::string message;  // why it failed, with the last lines of its log (bounded, sanitised)
};

struct EnvironmentStatus {
  std::string name;
  EnvironmentPhase phase = EnvironmentPhase::kPending;
  std::optional<WallTime> started_at;
  std::optional<WallTime> verified_at;
  std::optional<WallTime> finished_at;
  std::optional<WallTime> approved_at;
  std::string reason;
  std::string message;
  int attempts = 0;
  std::vector<TargetStatus> targets;
  std::optional<ValidationStatus> validation;
  std::optional<AnalysisStatus> analysis;
  std::vector<SmokeCheckStatus> smoke_checks;
};

// One platform's image of a resolved image (status.resolvedImages[].platforms[]).
struct ResolvedPlatform {
  std::string platform;   // "linux/amd64"
  std::string digest;     // its image manifest
  std::int64_t size = 0;  // compressed bytes: the sum of its layers
  bool operator==(const ResolvedPlatform&) const = default;
};

// What a logical image resolved to at the revision's first pre-flight (status.resolvedImages[]).
struct ResolvedImage {
  std::string name;        // the logical image
  std::string reference;   // spec.images[name] when it was resolved
  std::string digest;      // of what the reference names (an index or an image manifest)
  std::string media_type;  // of that
  std::int64_t size = 0;   // the largest platform's compressed bytes
  std::vector<ResolvedPlatform> platforms;
  bool operator==(const ResolvedImage&) const = default;
};

// One revision the rollout went through (status.history[], newest last, at most
// kMaxHistory): its images and how it ended. Events expire after an hour; this stays.
struct RevisionRecord {
  std::int64_t revision = 0;
  std::map<std::string, std::string> images;  // spec.images at the revision's start
  std::optional<WallTime> started_at;
  std::optional<WallTime> finished_at;  // when it reached a terminal phase or was superseded
  RolloutPhase phase = RolloutPhase::kProgressing;  // the rollout's phase while it is current
  std::string reason;   // set when it finished: the environment's reason, or Superseded
  std::string message;  // the rollout's message when it finished
};

// How many revisions status.history keeps (the CRD's maxItems); the oldest are dropped.
inline constexpr std::size_t kMaxHistory = 10;

struct Condition {
  std::string type;    // Ready, Progressing, Degraded
  std::string status;  // True, False, Unknown
  std::string reason;
  std::string message;
  std::int64_t observed_generation = 0;
  WallTime last_transition_time{};
};

struct RolloutStatus {
  std::int64_t observed_generation = 0;
  std::int64_t revision = 0;
  RolloutPhase phase = RolloutPhase::kNone;
  std::string current_environment;
  std::string message;
  std::vector<EnvironmentStatus> environments;
  std::vector<Condition> conditions;
  // The images of this revision as the registry resolved them (spec.imagePolicy), by logical
  // name; resolved_summary is their one-line form for `kubectl get -o wide`.
  std::vector<ResolvedImage> resolved_images;
  std::string resolved_summary;
  std::vector<RevisionRecord> history;  // status.history: the last kMaxHistory revisions
  std::string spec_hash;                // bookkeeping.specHash
  std::map<std::string, std::string> handled_annotations;  // bookkeeping.handledAnnotations

  bool operator==(const RolloutStatus&) const;
};

struct Rollout {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::int64_t generation = 0;
  std::string resource_version;
  std::map<std::string, std::string> annotations;
  RolloutSpec spec;
  RolloutStatus status;

  std::string Key() const { return namespace_ + "/" + name; }
};

// ---- observed objects ----

// What a container of the pod template asks of the node: its securityContext (as compact JSON,
// "" when absent) and its resource requests and limits. Read for GPU workers only, whose
// settings the check in their own image (workerValidation.command) inherits.
struct ContainerSettings {
  std::string security_context_json;
  std::map<std::string, std::string> requests;
  std::map<std::string, std::string> limits;
};

struct DeploymentView {
  std::string namespace_;
  std::string name;
  std::int64_t generation = 0;
  std::int64_t observed_generation = 0;
  int spec_replicas = 1;
  int replicas = 0;
  int updated_replicas = 0;
  int ready_replicas = 0;
  int available_replicas = 0;
  bool progress_deadline_exceeded = false;
  std::map<std::string, std::string> container_images;       // spec.template containers
  std::map<std::string, std::string> init_container_images;  // spec.template initContainers
  std::map<std::string, std::string> gpu_requests;  // container -> GPU quantity it requests
  std::map<std::string, ContainerSettings> gpu_container_settings;  // GPU containers only
  std::map<std::string, std::string> template_labels;
  std::map<std::string, std::string> annotations;
  std::map<std::string, std::string> selector;  // spec.selector.matchLabels
  // The architectures the pod template can be scheduled on: its nodeSelector's kubernetes.io/arch
  // and the In values of its required node affinity on that label (every term's); empty: any.
  std::vector<std::string> node_archs;
  std::string node_os;           // its nodeSelector's kubernetes.io/os, "" when absent
  std::string resource_version;  // metadata.resourceVersion

  std::string Key() const { return namespace_ + "/" + name; }
};

struct NamespaceView {
  std::string name;
  std::map<std::string, std::string> labels;
};

// A namespace as the planner, the status and the caches' keys name it: its name in the
// controller's own cluster, "<cluster>:<name>" in a remote one, where <cluster> is the name of the
// environment's kubeconfig Secret (a DNS subdomain: never a ':'). So a remote namespace never
// matches a local one of the same name (nor the rollout's own namespace, which needs no opt-in),
// and every key, message and recorded target says which cluster it is in.
inline std::string ScopedNamespace(const std::string& cluster, const std::string& ns) {
  return cluster.empty() ? ns : cluster + ":" + ns;
}

struct NamespaceScope {
  std::string cluster;  // "" for the controller's own cluster
  std::string name;     // the namespace's name in that cluster
};

inline NamespaceScope SplitScopedNamespace(const std::string& scoped) {
  const auto colon = scoped.find(':');
  if (colon == std::string::npos) return {"", scoped};
  return {scoped.substr(0, colon), scoped.substr(colon + 1)};
}

// The namespace an environment's targets live in (scoped by its cluster, see above).
inline std::string EnvironmentNamespace(const Rollout& r, const EnvironmentSpec& env) {
  return ScopedNamespace(env.cluster, env.namespace_.empty() ? r.namespace_ : env.namespace_);
}

}  // namespace rollgate::api
