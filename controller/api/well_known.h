// The annotations and labels that make up Rollgate's contract with users and with the objects it
// changes: the commands a user writes on a ContainerRollout (promote, abort, retry), the opt-in
// label a target namespace carries, and what Rollgate writes on Deployments and pod templates.
// Thread-safety: constants.
#pragma once

namespace rollgate::api {

// On a ContainerRollout, written by `rollgate promote|abort|retry` (each new value acts once).
inline constexpr const char* kPromoteAnnotation = "rollgate.io/promote";
inline constexpr const char* kAbortAnnotation = "rollgate.io/abort";
inline constexpr const char* kRetryAnnotation = "rollgate.io/retry";

// On a target namespace: the namespace of the rollouts allowed to change its Deployments.
inline constexpr const char* kAllowFromLabel = "rollgate.io/allow-rollouts-from";

// On a target Deployment: the revision whose images it runs ("<n>" or "<n>-rollback").
inline constexpr const char* kRevisionAnnotation = "rollgate.io/revision";

// On a target Deployment: the ContainerRollout ("<namespace>/<name>") that claims it, written in
// the same patch as the images. A claim by a rollout that no longer exists or has finished does
// not hold; any other rollout targeting the Deployment fails TargetConflict.
inline constexpr const char* kOwnerAnnotation = "rollgate.io/owner";

// Worker startup validation: the injected init containers, and the pod label (value: the
// revision) that narrows the controller's pod watch to the pods it waits for.
inline constexpr const char* kValidatorContainer = "rollgate-validate";
inline constexpr const char* kValidatorCommandContainer = "rollgate-validate-command";
inline constexpr const char* kValidationLabel = "rollgate.io/validation";

}  // namespace rollgate::api
