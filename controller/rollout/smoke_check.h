// Smoke checks: a command run in a new image, as a Job built from a target Deployment's own pod
// template, before the environment's Deployments are patched or once they are healthy (issue 20;
// docs/design.md "Smoke checks"). This file holds the pure parts: which target and container a
// check runs with, the Job's deterministic name, the Job built from the Deployment the API server
// returned, and what a Job and its pod say. The planner decides (SmokeChecks gate); the
// reconciler reads, creates and deletes the Jobs.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/api/types.h"
#include "controller/common/status.h"
#include "controller/kube/kube_client.h"

namespace rollgate::rollout {

// A smoke check as declared: on the environment (own_target empty) or on one of its targets.
struct DeclaredSmokeCheck {
  const api::SmokeCheckSpec* spec = nullptr;
  std::optional<std::size_t> own_target;
};

// Every smoke check of `env`: the environment's, then each target's, in spec order.
std::vector<DeclaredSmokeCheck> SmokeChecksOf(const api::EnvironmentSpec& env);

// The target and container a check runs with.
struct SmokeCheckSite {
  std::size_t target = 0;  // index into env.targets
  std::string container;   // the container of that target's pod template that it replaces
};

// A target's own check: that target, and its container of the check's logical image (the first
// by container name). An environment's check: the first target (in spec order) with a container
// of that image. nullopt: no such target or container.
std::optional<SmokeCheckSite> SiteOf(const api::EnvironmentSpec& env, const DeclaredSmokeCheck& c);

// One smoke check's Job, as the planner decides it.
struct SmokeJob {
  std::string check;
  std::string namespace_;
  std::string job;         // SmokeJobName(...)
  std::string deployment;  // whose pod template the Job is built from
  std::string container;   // the container of that template it runs as
  std::string image;       // the new image (pinned when the rollout pins digests)
  std::vector<std::string> command;
  int timeout_seconds = 300;
  std::string rollout;  // "ns/name"
  std::string rollout_uid;
  std::int64_t revision = 0;
  std::string environment;
};

// A Job to delete: its namespace, name and uid (the delete's precondition).
struct SmokeJobRef {
  std::string namespace_;
  std::string job;
  std::string uid;
};

// The Job's name, the same for the same rollout (by uid), revision, environment, attempt and
// check, so a controller that restarts finds the Job it created instead of starting another:
// "<rollout name>-<check>" cut to 52 characters (no trailing '-' or '.'), "-", then 10 hex
// digits of a SHA-256 of all of them. At most 63 characters: a valid Job name and label value.
std::string SmokeJobName(const std::string& rollout_name, const std::string& rollout_uid,
                         std::int64_t revision, const std::string& environment, int attempt,
                         const std::string& check);

struct SmokeJobOptions {
  // ttlSecondsAfterFinished: the Job controller deletes a finished Job after this. A passed
  // check's Job is deleted by Rollgate at once; a failed one is kept this long for debugging.
  std::chrono::seconds keep_finished{3600};
};

// Labels and annotations Rollgate writes on a smoke-check Job and its pod template.
inline constexpr const char* kSmokeCheckLabel = "rollgate.io/smoke-check";
inline constexpr const char* kSmokeRolloutLabel = "rollgate.io/rollout";
inline constexpr const char* kSmokeRevisionLabel = "rollgate.io/revision";
inline constexpr const char* kSmokeEnvironmentLabel = "rollgate.io/environment";
inline constexpr const char* kSmokeRolloutUidAnnotation = "rollgate.io/rollout-uid";

// The Job (batch/v1) of `job`, built from `deployment` (the Deployment as the API server returned
// it). From the pod template it copies what decides where and as whom the new image runs:
// serviceAccountName, automountServiceAccountToken, nodeSelector, tolerations, affinity,
// imagePullSecrets, the pod securityContext, priorityClassName, runtimeClassName, schedulerName,
// dnsPolicy, dnsConfig, hostAliases, enableServiceLinks, volumes, terminationGracePeriodSeconds;
// and of the chosen container: env, envFrom, resources, securityContext, volumeMounts,
// workingDir, imagePullPolicy. The image is the new one and the command the check's (args
// dropped). Everything else is dropped: the template's labels and annotations (a Service must
// not route to the check, a ReplicaSet must not count it), the other containers, init containers
// (the injected validator too), ports, probes, lifecycle hooks, host namespaces, nodeName.
// The Job: backoffLimit 0, restartPolicy Never, activeDeadlineSeconds = the timeout,
// ttlSecondsAfterFinished, terminationMessagePolicy FallbackToLogsOnError (the kubelet puts the
// last lines of the log in the container's termination message), labels naming the rollout,
// revision, environment and check, annotations rollgate.io/owner ("ns/name") and
// rollgate.io/rollout-uid. Invalid: the template has no such container.
Result<kube::Json> BuildSmokeJob(const kube::Json& deployment, const SmokeJob& job,
                                 const SmokeJobOptions& opts);

// What a smoke check's Job says.
struct SmokeJobObservation {
  enum class State { kAbsent, kRunning, kSucceeded, kFailed, kTimedOut, kForeign };
  State state = State::kAbsent;
  std::string uid;                          // the Job's
  std::optional<api::WallTime> created_at;  // the Job's creationTimestamp
  std::optional<int> exit_code;
  // kFailed, kTimedOut: the Job's condition and the container's last log lines (bounded,
  // sanitised); kForeign: whose Job it is.
  std::string message;
};

// Decodes the Job read by name and its pods (listed by batch.kubernetes.io/job-name; may be
// empty). kForeign: the Job does not carry `expected`'s rollout and uid (someone else's Job of
// the same name: never adopted, never deleted). Complete=True: kSucceeded; Failed=True with
// reason DeadlineExceeded: kTimedOut; other Failed=True: kFailed, with the exit code and
// termination message of the check's container from the newest pod that terminated.
SmokeJobObservation ObserveSmokeJob(const kube::Json& job, const std::vector<kube::Json>& pods,
                                    const SmokeJob& expected);

// At most `max_bytes` of the end of `text`, starting at a line (or character) boundary, valid
// UTF-8, control characters other than newline and tab replaced; "..." first when cut.
std::string LogExcerpt(std::string_view text, std::size_t max_bytes);
inline constexpr std::size_t kMaxSmokeLog = 1024;

}  // namespace rollgate::rollout
