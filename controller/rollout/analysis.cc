// Canary analysis: pure evaluation of Prometheus instant-query responses, and the HTTP client
// that fetches them (see analysis.h).
// Thread-safety: the evaluation functions are pure; HttpPrometheusClient guards its transport
// cache with a mutex and shares transports (which are safe for concurrent requests).
#include "controller/rollout/analysis.h"

#include <cpprest/json.h>

#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <string_view>
#include <system_error>
#include <utility>

#include "controller/kube/resource.h"

namespace rollgate::rollout {
namespace {

using Json = web::json::value;

constexpr size_t kSnippetChars = 200;

std::string DisplayName(const Check& check) {
  return check.name.empty() ? check.query : check.name;
}

CheckResult Inconclusive(const Check& check, const std::string& why) {
  const std::string name = DisplayName(check);
  return CheckResult{name, SampleOutcome::kInconclusive, std::nullopt, name + ": " + why};
}

CheckResult Malformed(const Check& check, const std::string& why) {
  return Inconclusive(check, "malformed prometheus response: " + why);
}

// The start of a response body on one line, for messages.
std::string Snippet(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, kSnippetChars)) {
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  if (body.size() > kSnippetChars) out += "...";
  return out;
}

// Prometheus' spelling of special values; otherwise the shortest text that reads back exactly.
std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "?";
  return std::string(buf, end);
}

// Parses a sample value as Prometheus writes it ("0.25", "1e-05", "NaN", "+Inf", "-Inf").
std::optional<double> ParseNumber(std::string_view s) {
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

const Json* Field(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.has_field(key)) return nullptr;
  return &obj.at(key);
}

std::string StringField(const Json& obj, const char* key) {
  const Json* f = Field(obj, key);
  return f != nullptr && f->is_string() ? f->as_string() : std::string();
}

// Checks one number against the bounds.
CheckResult Compare(const Check& check, double v) {
  const std::string name = DisplayName(check);
  if (std::isnan(v)) return Inconclusive(check, "value is NaN");
  CheckResult r{name, SampleOutcome::kFail, v, {}};
  const std::string shown = name + " = " + FormatNumber(v);
  if (check.min && v < *check.min) {
    r.message = shown + " < min " + FormatNumber(*check.min);
    return r;
  }
  if (check.max && v > *check.max) {
    r.message = shown + " > max " + FormatNumber(*check.max);
    return r;
  }
  r.outcome = SampleOutcome::kPass;
  std::string bounds;
  if (check.min) bounds = "min " + FormatNumber(*check.min);
  if (check.max) bounds += (bounds.empty() ? "" : ", ") + ("max " + FormatNumber(*check.max));
  r.message = shown + " (" + (bounds.empty() ? std::string("no bounds") : bounds) + ")";
  return r;
}

// A sample is `[<unix time>, "<value>"]`.
CheckResult EvaluateSample(const Check& check, const Json& sample) {
  if (!sample.is_array() || sample.size() != 2) {
    return Malformed(check, "sample is not [time, \"value\"]");
  }
  const Json& raw = sample.at(1);
  std::optional<double> v;
  if (raw.is_string()) {
    v = ParseNumber(raw.as_string());
  } else if (raw.is_number()) {
    v = raw.as_double();  // not what Prometheus sends, but unambiguous
  }
  if (!v) return Malformed(check, "sample value " + Snippet(raw.serialize()) + " is not a number");
  return Compare(check, *v);
}

CheckResult Evaluate(const Check& check, int http_status, const std::string& body) {
  Json doc;
  bool parsed = true;
  try {
    doc = Json::parse(body);
  } catch (const std::exception&) {
    parsed = false;
  }
  const bool ok_http = http_status >= 200 && http_status <= 299;
  const std::string status = parsed ? StringField(doc, "status") : std::string();

  if (status == "error") {
    // Prometheus' documented error envelope (400 bad_data, 422 execution, 503 timeout, ...).
    std::string msg = "prometheus error";
    const std::string type = StringField(doc, "errorType");
    if (!type.empty()) msg += " " + type;
    if (!ok_http) msg += " (HTTP " + std::to_string(http_status) + ")";
    const std::string text = StringField(doc, "error");
    msg += ": " + (text.empty() ? std::string("no error text") : text);
    return Inconclusive(check, msg);
  }
  if (!ok_http) {
    std::string msg = "prometheus answered HTTP " + std::to_string(http_status);
    if (!body.empty()) msg += ": " + Snippet(body);
    return Inconclusive(check, msg);
  }
  if (!parsed) return Malformed(check, "not JSON: " + Snippet(body));
  if (status != "success") {
    return Malformed(
        check, status.empty() ? std::string("no \"status\"") : "unknown status \"" + status + "\"");
  }
  const Json* data = Field(doc, "data");
  if (data == nullptr || !data->is_object()) return Malformed(check, "no \"data\" object");
  const std::string type = StringField(*data, "resultType");
  const Json* result = Field(*data, "result");
  if (result == nullptr) return Malformed(check, "no \"data.result\"");

  if (type == "vector") {
    if (!result->is_array()) return Malformed(check, "vector result is not an array");
    const size_t n = result->size();
    if (n == 0) return Inconclusive(check, "query returned no data");
    if (n > 1) {
      return Inconclusive(check,
                          "query returned " + std::to_string(n) + " series; aggregate it to one");
    }
    const Json& series = result->at(0);
    if (const Json* value = Field(series, "value")) return EvaluateSample(check, *value);
    if (Field(series, "histogram") != nullptr) {
      return Inconclusive(check,
                          "query returned a native histogram; reduce it to a number "
                          "(e.g. histogram_quantile)");
    }
    return Malformed(check, "series has no \"value\"");
  }
  if (type == "scalar") return EvaluateSample(check, *result);
  if (type == "matrix") {
    return Inconclusive(check, "query returned a range vector; use an instant vector");
  }
  if (type == "string") return Inconclusive(check, "query returned a string, not a number");
  return Malformed(check, type.empty() ? std::string("no \"data.resultType\"")
                                       : "unknown resultType \"" + type + "\"");
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

class HttpPrometheusClient final : public PrometheusClient {
 public:
  explicit HttpPrometheusClient(PrometheusClientOptions opts) : opts_(std::move(opts)) {
    if (!opts_.new_transport) opts_.new_transport = kube::NewCpprestTransport;
  }

  SampleResult Sample(const std::string& address, const std::vector<Check>& checks) override {
    // "http://host:9090/" and "http://host:9090" are one server (and share a transport).
    std::string base = address;
    const size_t authority = base.find("://");
    const size_t keep = authority == std::string::npos ? 0 : authority + 3;
    while (base.size() > keep && base.back() == '/') base.pop_back();
    auto transport = TransportFor(base);
    std::vector<CheckResult> out;
    out.reserve(checks.size());
    for (const Check& check : checks) {
      if (!transport.ok()) {
        out.push_back(Inconclusive(check, transport.status().message()));
        continue;
      }
      out.push_back(Query(**transport, check));
    }
    return AggregateChecks(std::move(out));
  }

 private:
  Result<std::shared_ptr<kube::HttpTransport>> TransportFor(const std::string& base) {
    if (StartsWith(base, "https://")) {
      return Status(StatusCode::kInvalidArgument,
                    "https Prometheus addresses need a CA; not supported yet");
    }
    if (!StartsWith(base, "http://")) {
      return Status(StatusCode::kInvalidArgument,
                    "prometheus address \"" + base + "\" must start with http://");
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = transports_.find(base);
    if (it != transports_.end()) return it->second;
    kube::TransportOptions t;
    t.server = base;
    t.user_agent = opts_.user_agent;
    Result<std::unique_ptr<kube::HttpTransport>> created =
        Status(StatusCode::kUnknown, "transport factory failed");
    try {
      created = opts_.new_transport(t);
    } catch (const std::exception& e) {
      created = Status(StatusCode::kInternal, e.what());
    }
    if (!created.ok()) {
      return Status(StatusCode::kInvalidArgument,
                    "invalid prometheus address: " + created.status().message());
    }
    std::shared_ptr<kube::HttpTransport> shared = std::move(created).value();
    transports_.emplace(base, shared);
    return shared;
  }

  CheckResult Query(kube::HttpTransport& transport, const Check& check) const {
    kube::HttpRequest req;
    req.method = "GET";
    req.path = QueryPath(check.query);
    req.headers.emplace_back("Accept", "application/json");
    req.timeout = opts_.timeout;
    try {
      Result<kube::HttpResponse> resp = transport.Send(req, nullptr);
      if (!resp.ok())
        return Inconclusive(check, "prometheus unreachable: " + resp.status().message());
      return EvaluateQueryResponse(check, resp->status, resp->body);
    } catch (const std::exception& e) {
      return Inconclusive(check, "prometheus unreachable: " + std::string(e.what()));
    }
  }

  PrometheusClientOptions opts_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<kube::HttpTransport>> transports_;  // by base address
};

}  // namespace

const char* SampleOutcomeName(SampleOutcome outcome) {
  switch (outcome) {
    case SampleOutcome::kPass:
      return "Pass";
    case SampleOutcome::kFail:
      return "Fail";
    case SampleOutcome::kInconclusive:
      return "Inconclusive";
  }
  return "Inconclusive";
}

std::string SampleResult::Summary() const {
  std::string out = SampleOutcomeName(outcome);
  out += ": ";
  if (checks.empty()) return out + "no checks";
  for (size_t i = 0; i < checks.size(); ++i) {
    if (i > 0) out += "; ";
    out += checks[i].message;
  }
  return out;
}

SampleResult AggregateChecks(std::vector<CheckResult> checks) {
  SampleResult r;
  r.outcome = SampleOutcome::kPass;
  for (const CheckResult& c : checks) {
    if (c.outcome == SampleOutcome::kFail) {
      r.outcome = SampleOutcome::kFail;
    } else if (c.outcome == SampleOutcome::kInconclusive && r.outcome == SampleOutcome::kPass) {
      r.outcome = SampleOutcome::kInconclusive;
    }
  }
  r.checks = std::move(checks);
  return r;
}

CheckResult EvaluateQueryResponse(const Check& check, int http_status, const std::string& body) {
  try {
    return Evaluate(check, http_status, body);
  } catch (const std::exception& e) {
    // cpprest's accessors throw on type mismatches the checks above did not foresee.
    return Malformed(check, e.what());
  }
}

std::string QueryPath(const std::string& query) {
  return "/api/v1/query?query=" + kube::QueryEscape(query);
}

std::unique_ptr<PrometheusClient> NewPrometheusClient(PrometheusClientOptions opts) {
  return std::make_unique<HttpPrometheusClient>(std::move(opts));
}

std::unique_ptr<PrometheusClient> NewPrometheusClient(std::chrono::milliseconds timeout) {
  PrometheusClientOptions opts;
  opts.timeout = timeout;
  return NewPrometheusClient(std::move(opts));
}

}  // namespace rollgate::rollout
