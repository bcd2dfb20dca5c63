// Maps API server responses to Status values: the HTTP code and the metav1.Status body (reason,
// message, field causes, retryAfterSeconds) plus the Retry-After header. Non-JSON bodies are
// summarised (first line, truncated) so that error pages never flood logs.
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>

#include "controller/common/status.h"

namespace rollgate::kube {

// `what` names the operation for the message ("get deployments.apps app/api").
Status StatusFromResponse(int http_status, const std::string& body,
                          const std::map<std::string, std::string>& headers,
                          const std::string& what);

// The code for a metav1.Status carried by a watch ERROR event.
Status StatusFromStatusObject(const std::string& json_text, const std::string& what);

}  // namespace rollgate::kube
