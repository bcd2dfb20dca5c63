// Canary analysis: Prometheus instant queries checked against optional bounds (docs/design.md,
// "Canary analysis": analysis runs after worker validation and before bake).
//
// Split as everywhere else: EvaluateQueryResponse() and AggregateChecks() are pure (one
// /api/v1/query response body in, one verdict out) and decide everything; PrometheusClient is
// the thin I/O part that sends `GET /api/v1/query?query=...` through kube::HttpTransport.
//
// An empty result, several series, NaN, a Prometheus error, an unreadable response and an
// unreachable Prometheus are all kInconclusive, never kPass: the planner counts inconclusive
// samples against `samples` and fails the environment when none passes.
//
// The address comes from a tenant's rollout, so it is never trusted: only the endpoints the
// operator lists (--analysis-endpoints-file, AnalysisEndpoint) are queried, with the CA and
// credentials the operator configured for them; redirects are not followed, a response body is
// read up to a cap (1 MiB) and a sample has a total deadline. What reaches status is bounded
// and printable (SanitizeForStatus). Credentials are read from files at each sample (rotated
// Secrets take effect) and never appear in a message.
//
// Thread-safety: the structs are values; the free functions are pure and reentrant.
// PrometheusClient implementations are safe for concurrent Sample() calls.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/common/status.h"
#include "controller/kube/http_transport.h"

namespace rollgate::rollout {

// One analysis query. A check passes when the query yields exactly one number that is not NaN
// and satisfies min <= value <= max for the bounds that are set (bounds are inclusive). A check
// without bounds passes whenever the query yields a number.
struct Check {
  std::string name;   // used in messages; the query when empty
  std::string query;  // PromQL, evaluated as an instant query at the time of the request
  std::optional<double> min;
  std::optional<double> max;
};

enum class SampleOutcome { kPass, kFail, kInconclusive };

// "Pass", "Fail", "Inconclusive".
const char* SampleOutcomeName(SampleOutcome outcome);

struct CheckResult {
  std::string name;
  SampleOutcome outcome = SampleOutcome::kInconclusive;
  std::optional<double> value;  // the number the query returned, when it returned one
  // Human-readable, prefixed with the name: "error-rate = 0.05 > max 0.01",
  // "error-rate: query returned no data", "error-rate: value is NaN",
  // "error-rate: prometheus unreachable: ...".
  std::string message;
};

struct SampleResult {
  // kFail if any check failed, else kInconclusive if any check was inconclusive, else kPass
  // (so an empty list of checks passes: the planner runs analysis only when queries are set).
  SampleOutcome outcome = SampleOutcome::kInconclusive;
  std::vector<CheckResult> checks;

  // "Fail: error-rate = 0.05 > max 0.01; latency-p99 = 0.2 (max 0.5)".
  std::string Summary() const;
};

// Pure. Combines per-check results into a sample (see SampleResult::outcome).
SampleResult AggregateChecks(std::vector<CheckResult> checks);

// Pure. Evaluates one Prometheus /api/v1/query response (`http_status` and `body`) for `check`.
// resultType "vector" must hold exactly one series (none: "query returned no data"; several:
// "query returned N series; aggregate it to one"); "scalar" is used as is; "matrix" and
// "string" are inconclusive. Sample values are strings: "NaN" is inconclusive, "+Inf"/"-Inf"
// compare like any number. `"status":"error"` is inconclusive with Prometheus' errorType and
// error text; other non-2xx answers and bodies that are not the documented JSON are inconclusive.
CheckResult EvaluateQueryResponse(const Check& check, int http_status, const std::string& body);

// Pure. The request path of an instant query: "/api/v1/query?query=<percent-encoded PromQL>".
std::string QueryPath(const std::string& query);

// Pure. Makes text from a remote server fit for status, Events and logs: printable ASCII only
// (anything else becomes '?', line breaks and tabs a space), at most `max` characters ("..."
// marks a cut).
std::string SanitizeForStatus(std::string_view text, std::size_t max);

// Pure. An address as it may be shown in status, Events and logs: what follows a '?' or '#' and
// any user info ("user:password@") are replaced by "<redacted>", then SanitizeForStatus(256).
std::string RedactedAddress(std::string_view address);

// One analysis endpoint the operator allows. Files are paths inside the controller's container
// (mounted from a ConfigMap or Secret), read at each sample.
struct AnalysisEndpoint {
  // "https://prometheus.monitoring.svc:9090", optionally with a path prefix
  // ("http://gateway:8080/prometheus"). A rollout's address must be this URL or under its path.
  std::string url;
  std::string ca_file;            // PEM CA bundle; required for https (no system store)
  std::string bearer_token_file;  // "Authorization: Bearer <token>"
  std::string username_file;      // basic auth: both or neither of the two
  std::string password_file;
};

// Pure. Parses the endpoints file, JSON (YAML's JSON subset):
//   {"endpoints": [{"url": "https://prom:9090", "caFile": "/etc/rollgate/prom/ca.crt",
//                   "bearerTokenFile": "...", "basicAuth": {"usernameFile": "...",
//                   "passwordFile": "..."}}]}
// Errors name the entry and field: a URL that is not http(s)://host[:port][/path] (no user info,
// query or fragment), https without caFile, http with credentials, both a bearer token and basic
// auth, half a basic auth, an unknown field.
Result<std::vector<AnalysisEndpoint>> ParseAnalysisEndpoints(const std::string& text);

// Pure. Whether a rollout's prometheus `address` may be queried through the endpoint
// `endpoint_url`: same scheme, host (case-insensitive) and port (default ports made explicit),
// and the address's path is the endpoint's path or below it ("/prom" allows "/prom" and
// "/prom/x", not "/prometheus"). An address with user info, a query, a fragment, "..", a
// percent sign or a backslash is never allowed. Trailing slashes do not matter.
bool AnalysisEndpointAllows(const std::string& endpoint_url, const std::string& address);

// Runs every check of an analysis sample against one Prometheus server.
class PrometheusClient {
 public:
  virtual ~PrometheusClient() = default;
  // `address` is the server's base URL, "http://127.0.0.1:9090" (a path prefix such as
  // "http://host:9090/prometheus" is kept). Every check is queried, each bounded by the client's
  // timeout and all of them by its sample deadline; failures are inconclusive check results,
  // never errors or exceptions. An address no configured endpoint allows is inconclusive and
  // never requested.
  virtual SampleResult Sample(const std::string& address, const std::vector<Check>& checks) = 0;
};

using TransportFactory =
    std::function<Result<std::unique_ptr<kube::HttpTransport>>(const kube::TransportOptions& opts)>;

// The cap on a Prometheus response body.
inline constexpr std::size_t kMaxPrometheusResponseBytes = std::size_t{1} << 20;

struct PrometheusClientOptions {
  std::vector<AnalysisEndpoint> endpoints;  // the only servers queried; empty: none
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};          // per query
  std::chrono::milliseconds sample_deadline{std::chrono::seconds(30)};  // all checks together
  std::size_t max_response_bytes = kMaxPrometheusResponseBytes;
  std::string user_agent = "rollgate";
  // Creates the transport of one endpoint (once; transports are cached per endpoint).
  // kube::NewCpprestTransport when empty.
  TransportFactory new_transport;
};

std::unique_ptr<PrometheusClient> NewPrometheusClient(PrometheusClientOptions opts);

}  // namespace rollgate::rollout
