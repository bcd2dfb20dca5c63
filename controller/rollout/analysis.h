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
// Only http:// Prometheus addresses are supported. kube::TransportOptions trusts no CA unless
// one is given (the system store is never consulted), so an https:// address would need a CA in
// the rollout's configuration; until that exists every check against one is kInconclusive.
//
// Thread-safety: the structs are values; the free functions are pure and reentrant.
// PrometheusClient implementations are safe for concurrent Sample() calls.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
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

// Runs every check of an analysis sample against one Prometheus server.
class PrometheusClient {
 public:
  virtual ~PrometheusClient() = default;
  // `address` is the server's base URL, "http://127.0.0.1:9090" (a path prefix such as
  // "http://host:9090/prometheus" is kept). Every check is queried, each bounded by the client's
  // timeout; failures are inconclusive check results, never errors or exceptions.
  virtual SampleResult Sample(const std::string& address, const std::vector<Check>& checks) = 0;
};

using TransportFactory =
    std::function<Result<std::unique_ptr<kube::HttpTransport>>(const kube::TransportOptions& opts)>;

struct PrometheusClientOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // per query
  std::string user_agent = "rollgate";
  // Creates the transport of one address (once; transports are cached per address).
  // kube::NewCpprestTransport when empty.
  TransportFactory new_transport;
};

std::unique_ptr<PrometheusClient> NewPrometheusClient(PrometheusClientOptions opts);

// The production client: cpprest transports, `timeout` per query.
std::unique_ptr<PrometheusClient> NewPrometheusClient(std::chrono::milliseconds timeout);

}  // namespace rollgate::rollout
