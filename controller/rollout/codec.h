// JSON <-> rollout types: decodes ContainerRollouts, Deployments and Namespaces as the API server
// returns them and encodes the rollout status. Decoding is tolerant of absent optional fields
// (the API server applies defaults) and reports a wrong shape as kInvalidArgument naming the
// field, never throwing.
// Thread-safety: pure functions.
#pragma once

#include <cpprest/json.h>

#include <string>

#include "controller/common/status.h"
#include "controller/rollout/types.h"

namespace rollgate::rollout {

using Json = web::json::value;

Result<Rollout> DecodeRollout(const Json& obj);
Json EncodeStatus(const RolloutStatus& status);
// `gpu_resource` names the extended resource that marks a GPU container (nvidia.com/gpu).
Result<DeploymentView> DecodeDeployment(const Json& obj,
                                        const std::string& gpu_resource = "nvidia.com/gpu");
NamespaceView DecodeNamespace(const Json& obj);

// A stable hash of spec.images and spec.environments: a new revision starts when it changes.
std::string SpecHash(const Json& rollout_obj);

// RFC 3339 in UTC with second precision ("2026-11-28T10:00:00Z"), as metav1.Time.
std::string FormatTime(WallTime t);
std::optional<WallTime> ParseTime(const std::string& s);

}  // namespace rollgate::rollout
