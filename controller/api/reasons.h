// The catalogue of reasons: every reason an environment or a rollout can fail or stop with, the
// word written to status (environments[].reason, the Degraded condition), to the Warning Event
// and to the `reason` label of rollgate_rollout_failures_total, and the pattern its message
// follows. The planner, the metrics' known-reason list, the status recorder and the README's
// troubleshooting table (checked by a test) all draw on this one list.
// Thread-safety: constants and pure functions.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace rollgate::api {

enum class Reason {
  // Pre-flight: nothing of the environment was changed.
  kNamespaceNotPermitted,
  kImageNotAllowed,
  kAnalysisEndpointNotAllowed,
  kDeploymentNotFound,
  kContainerNotFound,
  kWorkerValidationUnavailable,
  kPreviousImageTooLong,
  // The registry pre-flight (spec.imagePolicy): also nothing changed.
  kImageNotFound,
  kImageTooLarge,
  kPlatformMissing,
  kImageManifestInvalid,
  kRegistryUnreachable,
  kRegistryAuthFailed,
  // The environment's remote cluster (environments[].cluster) could not be reached or used for
  // the whole progress deadline: its kubeconfig Secret is missing, unreadable or refused, or its
  // API server did not answer. While it retries, the environment is held (Progressing reason
  // ClusterUnreachable).
  kClusterUnreachable,
  // A smoke check's command failed or timed out in the new image: before the patch, nothing was
  // changed; after health, the environment rolls back like any failure after the patch.
  kSmokeCheckFailed,
  // After the patch: the environment rolls back (automaticRollback) or fails.
  kImagesChangedExternally,
  kProgressDeadlineExceeded,
  kImagePullFailed,
  kContainerCrashing,
  kWorkerValidationFailed,
  kWorkerValidationTimeout,
  kAnalysisFailed,
  kAnalysisInconclusive,
  kUnhealthyDuringBake,
  // The rollback itself did not become healthy.
  kRollbackFailed,
  // The guard every write passes, on a fresh read, also during a rollback: the namespace is
  // gone, another active rollout claims the Deployment, or Rollgate already patched it the
  // bounded number of times in this attempt (with NamespaceNotPermitted, DeploymentNotFound and
  // ContainerNotFound above).
  kNamespaceNotFound,
  kTargetConflict,
  kPatchLimitExceeded,
  // The spec cannot be acted on (no environment is touched).
  kInvalidSpec,
  // A user's abort (not a failure: no alert, not counted in rollgate_rollout_failures_total).
  kAborted,
};

// How a reason is counted.
enum class ReasonKind {
  kFailure,     // an environment failure: counted and alerted on
  kSpec,        // the rollout's spec is invalid: Ready=False, nothing changed
  kUserAction,  // requested by a user
};

struct ReasonInfo {
  Reason reason;
  std::string_view name;  // the word in status, Events and metrics
  ReasonKind kind;
  std::string_view message;  // the pattern of the message (<...> marks what is filled in)
};

// Every reason, in declaration order.
std::span<const ReasonInfo> Reasons();
const ReasonInfo& Describe(Reason r);
std::string ReasonName(Reason r);

}  // namespace rollgate::api
