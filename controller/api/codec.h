// JSON <-> API types: decodes ContainerRollouts, Deployments and Namespaces as the API server
// returns them and encodes the rollout status. Decoding is tolerant of absent optional fields
// (the API server applies defaults) and reports a wrong shape as kInvalidArgument naming the
// field, never throwing. The phases' text lives here and nowhere else.
// Thread-safety: pure functions.
#pragma once

#include <cpprest/json.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/api/types.h"
#include "controller/common/status.h"

namespace rollgate::api {

using Json = web::json::value;

// The phases as the API writes them ("Progressing"); kNone is "".
std::string PhaseName(RolloutPhase p);
std::string PhaseName(EnvironmentPhase p);
std::string PhaseName(SmokeCheckPhase p);  // status.environments[].smokeChecks[].phase
std::optional<RolloutPhase> ParseRolloutPhase(std::string_view text);
std::optional<EnvironmentPhase> ParseEnvironmentPhase(std::string_view text);
std::optional<SmokeCheckPhase> ParseSmokeCheckPhase(std::string_view text);
// Every phase but kNone, in declaration order (for zero-initialised metric series).
const std::vector<RolloutPhase>& AllRolloutPhases();
const std::vector<EnvironmentPhase>& AllEnvironmentPhases();
const std::vector<SmokeCheckPhase>& AllSmokeCheckPhases();
// smokeChecks[].when as the API writes it ("BeforePatch", "AfterHealthy").
std::string SmokeCheckWhenName(SmokeCheckWhen w);
std::optional<SmokeCheckWhen> ParseSmokeCheckWhen(std::string_view text);

Result<Rollout> DecodeRollout(const Json& obj);
Json EncodeStatus(const RolloutStatus& status);
// status.history as EncodeStatus writes it (a list, oldest first).
Json EncodeHistory(const std::vector<RevisionRecord>& history);
// `gpu_resource` names the extended resource that marks a GPU container (nvidia.com/gpu).
Result<DeploymentView> DecodeDeployment(const Json& obj,
                                        const std::string& gpu_resource = "nvidia.com/gpu");
NamespaceView DecodeNamespace(const Json& obj);

// What the caches keep of an object: the fields the decoders above (and the reconciler's status
// write) read, nothing else, so that a cache's memory does not grow with what tenants put into
// their objects (a Deployment with 200 KiB of annotations costs what a small one does). Applied
// when an object enters an informer's store. Metadata keeps identity, generation,
// resourceVersion and the rollgate.io/ annotations only.
// A Deployment: replicas, selector, the pod template's labels, nodeSelector and required node
// affinity, its containers' names, images, resources and securityContext, its init containers'
// names and images, the status counters and the Progressing condition.
Json TrimDeployment(Json&& obj);
// A ContainerRollout: spec and status whole (both bounded by the CRD), metadata trimmed.
Json TrimRollout(Json&& obj);
// A Namespace: its name and labels.
Json TrimNamespace(Json&& obj);

// A stable hash of spec.images and spec.environments: a new revision starts when it changes.
// The full SHA-256 in hex (64 characters): a shorter one would let a birthday search find two
// specs that count as the same revision.
std::string SpecHash(const Json& rollout_obj);
// Whether a recorded spec hash (status.bookkeeping.specHash) names the observed spec. A recorded
// hash of kLegacySpecHashLength characters (what Rollgate 0.1 wrote) matches its prefix.
inline constexpr std::size_t kLegacySpecHashLength = 16;
bool SameSpecHash(const std::string& recorded, const std::string& observed);

// Status strings are bounded in code, well inside the CRD's maxLength, so that no status write is
// refused (422) for a long message (e.g. a Prometheus error or a validation verdict).
inline constexpr std::size_t kMaxMessage = 4096;
inline constexpr std::size_t kMaxReason = 256;
inline constexpr std::size_t kMaxValue = 64;
inline constexpr std::size_t kMaxHandledValue = 256;
inline constexpr std::size_t kMaxSummary = 1024;  // status.resolvedSummary
// An image a rollback must restore (previousImages, previousInitContainers) is recorded whole or
// not at all: the CRD's maxLength for those values. A longer one fails the environment before
// anything is changed (PreviousImageTooLong).
inline constexpr std::size_t kMaxRecordedImage = 4096;
// `text`, or its first bytes ending in "...(truncated)" within `max` bytes (never splitting a
// UTF-8 character).
std::string Bounded(const std::string& text, std::size_t max);
// What status.bookkeeping.handledAnnotations records for an annotation value: the value, or
// "sha256:<hex>" of a value longer than kMaxHandledValue. Compare annotations through it.
std::string HandledValue(const std::string& annotation_value);

// RFC 3339 in UTC with second precision ("2026-11-28T10:00:00Z"), as metav1.Time.
std::string FormatTime(WallTime t);
std::optional<WallTime> ParseTime(const std::string& s);

}  // namespace rollgate::api
