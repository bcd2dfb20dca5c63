// The planner: every rollout decision, as a pure function of the observed ContainerRollout, the
// Deployments and namespaces it targets, the worker-validation and analysis observations, and the
// clock. It returns the actions to take and the new status; the reconciler only executes them.
//
// Each environment moves Pending -> Updating -> Verifying -> (Baking) -> Succeeded, and each step
// is a sequence of named gates (approval, pre-flight, update, health, worker validation,
// analysis, bake), each of which passes, waits (what for, and when to look again) or fails (a
// reason from api/reasons.h, and why). See docs/design.md "Planner states and gates".
//
// Crash safety comes from the order the plan imposes and the reconciler keeps:
//  - entering an environment writes the previous images into status BEFORE any patch;
//  - roll-forward patches are executed before the status write that leaves Updating, and a patch
//    is only planned when a Deployment differs from the desired images or revision annotation, so
//    a restart after the patch never patches again;
//  - a rollback is first recorded in status (RollingBack), then the recorded images are restored.
// See docs/design.md "Write order and crash safety".
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controller/api/types.h"
#include "controller/common/status.h"
#include "controller/rollout/pod_health.h"
#include "controller/rollout/smoke_check.h"
#include "controller/validation/injection.h"
#include "controller/validation/observer.h"

namespace rollgate::rollout {

// One analysis sample taken for the current environment just before planning.
struct AnalysisObservation {
  enum class Outcome { kPass, kFail, kInconclusive };
  Outcome outcome = Outcome::kInconclusive;
  std::string value;    // last value as Prometheus rendered it
  std::string message;  // human summary of every check
};

// What the registry said of one logical image at an environment's pre-flight
// (spec.imagePolicy): when `status` is OK, what it resolved to; else why not (codes as
// RegistryClient::Resolve documents them).
struct ImageLookup {
  Status status;
  api::ResolvedImage image;
};

struct Observed {
  api::Rollout rollout;
  std::string spec_hash;
  std::map<std::string, api::DeploymentView> deployments;  // "ns/name"; absent: not found
  std::map<std::string, api::NamespaceView> namespaces;    // absent: not found
  // The other rollouts named by rollgate.io/owner claims on the observed Deployments, "ns/name"
  // -> their phase; absent: the rollout does not exist (its claim does not hold).
  std::map<std::string, api::RolloutPhase> claim_owners;
  std::optional<validation::ValidationObservation> validation;  // for the current environment
  std::optional<AnalysisObservation> analysis_sample;
  // The current environment's new pods, listed when the plan asked (Plan::observe_pods).
  std::optional<PodHealthObservation> pods;
  // Every image of spec.images looked up in its registry, by logical name, when the plan asked
  // (Plan::resolve_images).
  std::optional<std::map<std::string, ImageLookup>> images;
  // The Jobs of the smoke checks the plan asked for (Plan::smoke_observe), by check name; a check
  // whose Job could not be read is absent (the plan waits and looks again).
  std::optional<std::map<std::string, SmokeJobObservation>> smoke_jobs;
  // The remote clusters (environments[].cluster) the reconciler could not use for this plan, with
  // what failed (the kubeconfig Secret, or the remote API server's error): their environment is
  // held, and fails ClusterUnreachable at its progress deadline.
  std::map<std::string, std::string> unreachable_clusters;
  api::WallTime now;
};

struct PlannerOptions {
  std::vector<std::string> allowed_registries;  // empty: any registry
  // The analysis endpoints the operator allows (--analysis-endpoints-file): a rollout's
  // prometheus address must be one of them or under one's path (AnalysisEndpointAllows), else
  // the environment fails AnalysisEndpointNotAllowed in pre-flight. Empty: none is allowed.
  std::vector<std::string> analysis_endpoints;
  std::string validator_image;                  // image of rollgate-validate (--validator-image)
  std::string gpu_resource = "nvidia.com/gpu";  // --gpu-resource
  // --validator-requests / --validator-limits (defaults: InjectionOptions')
  std::map<std::string, std::string> validator_requests =
      validation::InjectionOptions{}.validator_requests;
  std::map<std::string, std::string> validator_limits =
      validation::InjectionOptions{}.validator_limits;

  // When a new pod's image pull or crashes fail an environment (--image-pull-failure-seconds,
  // --crash-restarts).
  PodHealthOptions pod_health{};

  validation::InjectionOptions injection() const {
    return {validator_image, gpu_resource, validator_requests, validator_limits};
  }
};

// How many patches one Deployment may receive from one attempt of one revision: the roll-forward
// patch, the rollback's, and one more (a rollback repeated once after someone else's change).
inline constexpr int kMaxPatchesPerAttempt = 3;

struct DeploymentPatch {
  std::string namespace_;
  std::string name;
  std::map<std::string, std::string> images;  // container -> image
  std::string revision;                       // value of rollgate.io/revision
  bool rollback = false;
  // Worker validation: init containers to inject and the pod label value (the revision).
  std::vector<validation::InitContainer> init_containers;
  std::string validation_label;
  // Rollback of worker validation: init containers to remove, and the label to remove.
  std::vector<std::string> remove_init_containers;
  bool remove_validation_label = false;
  // The precondition and the claim, from the fresh read the plan was made on: the patch applies
  // only to that version of the Deployment (metadata.resourceVersion; "" for none), and it writes
  // the claim (rollgate.io/owner = the rollout's "ns/name").
  std::string resource_version{};
  std::string owner{};
};

struct EventRecord {
  std::string type;  // Normal | Warning
  std::string reason;
  std::string message;
};

struct Plan {
  std::vector<DeploymentPatch> patches;  // executed first (never together with a rollback start)
  std::optional<api::RolloutStatus> status;  // written next, when it differs from the observed one
  std::vector<EventRecord> events;           // emitted after the status write succeeded
  bool sample_analysis = false;              // take an analysis sample, then plan again
  bool observe_pods = false;  // list the current environment's pods (Observed::pods), plan again
  bool resolve_images =
      false;  // look every image up in its registry (Observed::images), plan again
  // Smoke checks: read these Jobs (Observed::smoke_jobs) and plan again; create these (after
  // the patches, before the status write, each from a fresh read of its namespace and
  // Deployment); delete these (passed: after the status write that records it).
  std::vector<SmokeJob> smoke_observe;
  std::vector<SmokeJob> smoke_create;
  std::vector<SmokeJobRef> smoke_delete;
  std::optional<std::chrono::seconds> requeue_after;
};

Plan PlanRollout(const Observed& obs, const PlannerOptions& opts);

// container -> image that target `t` must run with `images` (logical -> reference; "" for a
// logical image it lacks). Pass the pinned references (PinnedImages) where they apply.
std::map<std::string, std::string> DesiredImages(const std::map<std::string, std::string>& images,
                                                 const api::TargetSpec& t);

// Whether the environments get pinned references: spec.imagePolicy.pinDigests and a
// status.resolvedImages record.
bool PinsDigests(const api::Rollout& r);
// spec.images as the environments are patched with them: with PinsDigests,
// "<reference>@<digest>" for every image status.resolvedImages recorded from the reference
// spec.images names now (a reference with a digest stays as written). Only the images map is
// copied, never the whole spec (this runs on every plan of a pinned rollout).
std::map<std::string, std::string> PinnedImages(const api::Rollout& r);
// "<reference>@<digest>", or `reference` when it has a digest already.
std::string PinnedReference(const std::string& reference, const std::string& digest);

}  // namespace rollgate::rollout
