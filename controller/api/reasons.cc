#include "controller/api/reasons.h"

#include <array>

namespace rollgate::api {
namespace {

constexpr std::array kReasons = {
    ReasonInfo{Reason::kNamespaceNotPermitted, "NamespaceNotPermitted", ReasonKind::kFailure,
               "namespace <ns> does not opt in to rollouts from <rollout ns> (label it "
               "rollgate.io/allow-rollouts-from=<rollout ns>)"},
    ReasonInfo{Reason::kImageNotAllowed, "ImageNotAllowed", ReasonKind::kFailure,
               "image \"<ref>\" is from registry \"<host>\", which is not in --allowed-registries "
               "(<list>)"},
    ReasonInfo{Reason::kAnalysisEndpointNotAllowed, "AnalysisEndpointNotAllowed",
               ReasonKind::kFailure,
               "prometheus address \"<address>\" is not an endpoint the operator allows "
               "(--analysis-endpoints-file: <list>)"},
    ReasonInfo{Reason::kDeploymentNotFound, "DeploymentNotFound", ReasonKind::kFailure,
               "deployment <ns>/<name> not found"},
    ReasonInfo{Reason::kContainerNotFound, "ContainerNotFound", ReasonKind::kFailure,
               "deployment <ns>/<name> has no container \"<container>\""},
    ReasonInfo{Reason::kWorkerValidationUnavailable, "WorkerValidationUnavailable",
               ReasonKind::kFailure,
               "deployment <ns>/<name> requires CUDA validation, but the controller runs without "
               "--validator-image"},
    ReasonInfo{Reason::kPreviousImageTooLong, "PreviousImageTooLong", ReasonKind::kFailure,
               "deployment <ns>/<name>: container \"<container>\" runs an image reference of <n> "
               "bytes; status records at most 4096, so a rollback could not restore it"},
    ReasonInfo{Reason::kImageNotFound, "ImageNotFound", ReasonKind::kFailure,
               "image <logical> (\"<ref>\"): the registry has no such manifest (HTTP 404: "
               "<registry's error>)"},
    ReasonInfo{Reason::kImageTooLarge, "ImageTooLarge", ReasonKind::kFailure,
               "image <logical> (\"<ref>\", <digest>) is <size> compressed for <platform>, over "
               "its spec.imagePolicy.maxSize <max>"},
    ReasonInfo{Reason::kPlatformMissing, "PlatformMissing", ReasonKind::kFailure,
               "image <logical> (\"<ref>\", <digest>) offers <platforms>, not <platform>, which "
               "deployment <ns>/<name> runs on (<where that comes from>)"},
    ReasonInfo{Reason::kImageManifestInvalid, "ImageManifestInvalid", ReasonKind::kFailure,
               "image <logical> (\"<ref>\"): <what the registry answered that the distribution "
               "API does not allow>"},
    ReasonInfo{Reason::kRegistryUnreachable, "RegistryUnreachable", ReasonKind::kFailure,
               "image <logical> (\"<ref>\"): registry <host> did not answer within <n>s of "
               "retries: <last error>"},
    ReasonInfo{Reason::kRegistryAuthFailed, "RegistryAuthFailed", ReasonKind::kFailure,
               "image <logical> (\"<ref>\"): registry <host> refused the credentials within "
               "<n>s of retries: <registry's error>"},
    ReasonInfo{Reason::kClusterUnreachable, "ClusterUnreachable", ReasonKind::kFailure,
               "cluster <secret> (environment <env>): <what failed: the kubeconfig Secret, or the "
               "remote API server's error> (retried for <n>s, the progress deadline)"},
    ReasonInfo{Reason::kSmokeCheckFailed, "SmokeCheckFailed", ReasonKind::kFailure,
               "smoke check <check> (job <ns>/<job>, image \"<image>\") <failed with exit code "
               "<n> | timed out after <n>s | ...>: <the Job's condition>; last log lines: <log>"},
    ReasonInfo{Reason::kImagesChangedExternally, "ImagesChangedExternally", ReasonKind::kFailure,
               "deployment <ns>/<name> no longer runs the images this rollout set (changed by "
               "someone else)"},
    ReasonInfo{Reason::kProgressDeadlineExceeded, "ProgressDeadlineExceeded", ReasonKind::kFailure,
               "not rolled out within <n>s: <what is awaited> | deployment <ns>/<name> reports "
               "ProgressDeadlineExceeded (<a>/<n> available)"},
    ReasonInfo{Reason::kImagePullFailed, "ImagePullFailed", ReasonKind::kFailure,
               "deployment <ns>/<name>: pod <pod> on node <node> cannot pull image \"<image>\" "
               "(container <c>) for <s>s: <kubelet reason>: <kubelet message>"},
    ReasonInfo{Reason::kContainerCrashing, "ContainerCrashing", ReasonKind::kFailure,
               "deployment <ns>/<name>: container <c> (image \"<image>\") of pod <pod> on node "
               "<node> restarted <n> times (<kubelet reason>); last exit <code> (<reason>): "
               "<termination message>"},
    ReasonInfo{Reason::kWorkerValidationFailed, "WorkerValidationFailed", ReasonKind::kFailure,
               "<the failing pod's rollgate-validate verdict>"},
    ReasonInfo{Reason::kWorkerValidationTimeout, "WorkerValidationTimeout", ReasonKind::kFailure,
               "GPU workers did not validate within the progress deadline: <pending>"},
    ReasonInfo{Reason::kAnalysisFailed, "AnalysisFailed", ReasonKind::kFailure,
               "Fail: <check message>; <check message> ..."},
    ReasonInfo{Reason::kAnalysisInconclusive, "AnalysisInconclusive", ReasonKind::kFailure,
               "<passed> of <samples> samples passed; last: <summary>"},
    ReasonInfo{Reason::kUnhealthyDuringBake, "UnhealthyDuringBake", ReasonKind::kFailure,
               "deployment <ns>/<name>: <u> updated, <a> available of <n>"},
    ReasonInfo{Reason::kRollbackFailed, "RollbackFailed", ReasonKind::kFailure,
               "rollback of environment <env> did not become healthy: <what is awaited>"},
    ReasonInfo{Reason::kNamespaceNotFound, "NamespaceNotFound", ReasonKind::kFailure,
               "namespace <ns> does not exist"},
    ReasonInfo{Reason::kTargetConflict, "TargetConflict", ReasonKind::kFailure,
               "deployment <ns>/<name> is claimed by rollout <ns>/<other> (rollgate.io/owner), "
               "which is <phase>"},
    ReasonInfo{Reason::kPatchLimitExceeded, "PatchLimitExceeded", ReasonKind::kFailure,
               "deployment <ns>/<name> was already patched <n> times in this attempt; refusing "
               "another patch (someone else keeps changing it)"},
    ReasonInfo{Reason::kInvalidSpec, "InvalidSpec", ReasonKind::kSpec,
               "spec.images.<logical>: <what is wrong with the reference>"},
    ReasonInfo{Reason::kAborted, "Aborted", ReasonKind::kUserAction,
               "aborted by the rollgate.io/abort annotation ..."},
};

// The array follows the enum's order, so Describe() is an index.
constexpr bool InEnumOrder() {
  for (std::size_t i = 0; i < kReasons.size(); ++i) {
    if (static_cast<std::size_t>(kReasons[i].reason) != i) return false;
  }
  return true;
}
static_assert(InEnumOrder(), "kReasons must list every Reason in declaration order");
static_assert(kReasons.size() == static_cast<std::size_t>(Reason::kAborted) + 1,
              "every Reason needs an entry in kReasons");

}  // namespace

std::span<const ReasonInfo> Reasons() { return kReasons; }

const ReasonInfo& Describe(Reason r) { return kReasons.at(static_cast<std::size_t>(r)); }

std::string ReasonName(Reason r) { return std::string(Describe(r).name); }

}  // namespace rollgate::api
