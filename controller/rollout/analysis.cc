// Canary analysis: pure evaluation of Prometheus instant-query responses, and the HTTP client
// that fetches them (see analysis.h).
// Thread-safety: the evaluation functions are pure; HttpPrometheusClient guards its transport
// cache with a mutex and shares transports (which are safe for concurrent requests).
#include "controller/rollout/analysis.h"

#include <cpprest/asyncrt_utils.h>
#include <cpprest/json.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include "controller/kube/resource.h"
#include "controller/rollout/url.h"

namespace rollgate::rollout {
namespace {

using Json = web::json::value;

constexpr size_t kSnippetChars = 120;  // of a response body in a message
constexpr size_t kErrorChars = 240;    // of Prometheus' error text in a message

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

// The start of a response body on one line, printable, for messages.
std::string Snippet(std::string_view body) { return SanitizeForStatus(body, kSnippetChars); }

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
    const std::string type = SanitizeForStatus(StringField(doc, "errorType"), 40);
    if (!type.empty()) msg += " " + type;
    if (!ok_http) msg += " (HTTP " + std::to_string(http_status) + ")";
    const std::string text = SanitizeForStatus(StringField(doc, "error"), kErrorChars);
    msg += ": " + (text.empty() ? std::string("no error text") : text);
    return Inconclusive(check, msg);
  }
  if (!ok_http) {
    std::string msg = "prometheus answered HTTP " + std::to_string(http_status);
    if (http_status >= 300 && http_status <= 399) msg += " (redirects are not followed)";
    if (!body.empty()) msg += ": " + Snippet(body);
    return Inconclusive(check, msg);
  }
  if (!parsed) return Malformed(check, "not JSON: " + Snippet(body));
  if (status != "success") {
    return Malformed(check, status.empty()
                                ? std::string("no \"status\"")
                                : "unknown status \"" + SanitizeForStatus(status, 40) + "\"");
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
  return Malformed(check, type.empty()
                              ? std::string("no \"data.resultType\"")
                              : "unknown resultType \"" + SanitizeForStatus(type, 40) + "\"");
}

bool Allows(const Url& endpoint, const Url& address) {
  if (endpoint.scheme != address.scheme || endpoint.host != address.host ||
      endpoint.port != address.port) {
    return false;
  }
  if (address.path == endpoint.path) return true;
  return address.path.size() > endpoint.path.size() &&
         address.path.compare(0, endpoint.path.size(), endpoint.path) == 0 &&
         address.path[endpoint.path.size()] == '/';
}

// The content of a file the operator mounted; trailing whitespace (a newline) removed.
Result<std::string> ReadSmallFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(StatusCode::kInvalidArgument, std::string("cannot read ") + what + " " + path);
  }
  std::string out;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > (size_t{1} << 20)) {
      return Status(StatusCode::kInvalidArgument, std::string(what) + " " + path + " is too large");
    }
  }
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back())) != 0) out.pop_back();
  return out;
}

class HttpPrometheusClient final : public PrometheusClient {
 public:
  explicit HttpPrometheusClient(PrometheusClientOptions opts) : opts_(std::move(opts)) {
    if (!opts_.new_transport) opts_.new_transport = kube::NewCpprestTransport;
    for (const auto& e : opts_.endpoints) {
      auto u = ParseUrl(e.url);
      if (u.ok()) endpoints_.emplace_back(e, *u);  // ParseAnalysisEndpoints checked them
    }
  }

  SampleResult Sample(const std::string& address, const std::vector<Check>& checks) override {
    const auto deadline = std::chrono::steady_clock::now() + opts_.sample_deadline;
    Result<Target> target = TargetFor(address);
    std::vector<CheckResult> out;
    out.reserve(checks.size());
    for (const Check& check : checks) {
      if (!target.ok()) {
        out.push_back(Inconclusive(check, target.status().message()));
        continue;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        out.push_back(Inconclusive(check, "the sample's deadline (" +
                                              std::to_string(opts_.sample_deadline.count()) +
                                              "ms) passed before this check"));
        continue;
      }
      out.push_back(Query(*target, check, std::min(left, opts_.timeout)));
    }
    return AggregateChecks(std::move(out));
  }

 private:
  // What one sample queries: the endpoint's transport, the address's path and the credentials.
  struct Target {
    std::shared_ptr<kube::HttpTransport> transport;
    std::string path;           // the address's path prefix, "" or "/prometheus"
    std::string authorization;  // the Authorization header's value, or ""
  };

  Result<Target> TargetFor(const std::string& address) {
    auto addr = ParseUrl(address);
    if (!addr.ok())
      return Status(StatusCode::kInvalidArgument, "prometheus address " + addr.status().message());
    const std::pair<AnalysisEndpoint, Url>* match = nullptr;
    for (const auto& e : endpoints_) {
      if (Allows(e.second, *addr)) {
        match = &e;
        break;
      }
    }
    if (match == nullptr) {
      return Status(StatusCode::kForbidden,
                    "prometheus address \"" + RedactedAddress(address) +
                        "\" is not an allowed analysis endpoint; not queried");
    }
    const AnalysisEndpoint& ep = match->first;
    Target t;
    t.path = addr->path;
    if (!ep.bearer_token_file.empty()) {
      auto token = ReadSmallFile(ep.bearer_token_file, "bearerTokenFile");
      if (!token.ok()) return token.status();
      t.authorization = "Bearer " + *token;
    } else if (!ep.username_file.empty()) {
      auto user = ReadSmallFile(ep.username_file, "basicAuth.usernameFile");
      if (!user.ok()) return user.status();
      auto pass = ReadSmallFile(ep.password_file, "basicAuth.passwordFile");
      if (!pass.ok()) return pass.status();
      const std::string plain = *user + ":" + *pass;
      t.authorization = "Basic " + utility::conversions::to_base64(
                                       std::vector<unsigned char>(plain.begin(), plain.end()));
    }
    std::string ca;
    if (!ep.ca_file.empty()) {
      auto read = ReadSmallFile(ep.ca_file, "caFile");
      if (!read.ok()) return read.status();
      ca = *read + "\n";
    }
    auto transport = TransportFor(match->second.Origin(), ca);
    if (!transport.ok()) return transport.status();
    t.transport = *transport;
    return t;
  }

  // One transport per endpoint origin and CA (a rotated CA gets a new one).
  Result<std::shared_ptr<kube::HttpTransport>> TransportFor(const std::string& origin,
                                                            const std::string& ca) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = transports_.find(origin);
    if (it != transports_.end() && it->second.first == ca) return it->second.second;
    kube::TransportOptions t;
    t.server = origin;
    t.tls.ca_pem = ca;
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
                    "invalid prometheus endpoint: " + created.status().message());
    }
    std::shared_ptr<kube::HttpTransport> shared = std::move(created).value();
    transports_[origin] = {ca, shared};
    return shared;
  }

  CheckResult Query(const Target& target, const Check& check,
                    std::chrono::milliseconds timeout) const {
    kube::HttpRequest req;
    req.method = "GET";
    req.path = target.path + QueryPath(check.query);
    req.headers.emplace_back("Accept", "application/json");
    if (!target.authorization.empty())
      req.headers.emplace_back("Authorization", target.authorization);
    req.timeout = timeout;
    req.max_body_bytes = opts_.max_response_bytes;
    try {
      Result<kube::HttpResponse> resp = target.transport->Send(req, nullptr);
      if (!resp.ok()) {
        const std::string why = SanitizeForStatus(resp.status().message(), kErrorChars);
        if (resp.status().code() == StatusCode::kMalformed) {
          return Inconclusive(check, "prometheus response rejected: " + why);
        }
        return Inconclusive(check, "prometheus unreachable: " + why);
      }
      return EvaluateQueryResponse(check, resp->status, resp->body);
    } catch (const std::exception& e) {
      return Inconclusive(check,
                          "prometheus unreachable: " + SanitizeForStatus(e.what(), kErrorChars));
    }
  }

  PrometheusClientOptions opts_;
  std::vector<std::pair<AnalysisEndpoint, Url>> endpoints_;
  std::mutex mu_;
  // By endpoint origin: the CA it was made with and the transport; guarded by mu_.
  std::map<std::string, std::pair<std::string, std::shared_ptr<kube::HttpTransport>>> transports_;
};

// The JSON object's string field `key`, or "" when absent; an error when not a string.
Result<std::string> OptionalString(const Json& obj, const char* key, const std::string& where) {
  if (!obj.has_field(key)) return std::string();
  const Json& v = obj.at(key);
  if (!v.is_string()) {
    return Status(StatusCode::kInvalidArgument, where + "." + key + " must be a string");
  }
  return v.as_string();
}

Status UnknownFields(const Json& obj, const std::set<std::string>& known,
                     const std::string& where) {
  for (const auto& [k, v] : obj.as_object()) {
    if (!known.contains(k)) {
      return Status(StatusCode::kInvalidArgument,
                    where + ": unknown field \"" + SanitizeForStatus(k, 60) + "\"");
    }
  }
  return Status::Ok();
}

Result<AnalysisEndpoint> ParseEndpoint(const Json& e, const std::string& where) {
  if (!e.is_object()) return Status(StatusCode::kInvalidArgument, where + " must be an object");
  if (Status st = UnknownFields(e, {"url", "caFile", "bearerTokenFile", "basicAuth"}, where);
      !st.ok()) {
    return st;
  }
  AnalysisEndpoint ep;
  auto url = OptionalString(e, "url", where);
  if (!url.ok()) return url.status();
  ep.url = *url;
  if (ep.url.empty()) return Status(StatusCode::kInvalidArgument, where + ".url is required");
  auto parsed = ParseUrl(ep.url);
  if (!parsed.ok())
    return Status(StatusCode::kInvalidArgument, where + ".url " + parsed.status().message());
  for (auto [key, field] :
       {std::pair{"caFile", &ep.ca_file}, std::pair{"bearerTokenFile", &ep.bearer_token_file}}) {
    auto v = OptionalString(e, key, where);
    if (!v.ok()) return v.status();
    *field = *v;
  }
  if (e.has_field("basicAuth")) {
    const Json& b = e.at("basicAuth");
    const std::string bw = where + ".basicAuth";
    if (!b.is_object()) return Status(StatusCode::kInvalidArgument, bw + " must be an object");
    if (Status st = UnknownFields(b, {"usernameFile", "passwordFile"}, bw); !st.ok()) return st;
    auto user = OptionalString(b, "usernameFile", bw);
    if (!user.ok()) return user.status();
    auto pass = OptionalString(b, "passwordFile", bw);
    if (!pass.ok()) return pass.status();
    ep.username_file = *user;
    ep.password_file = *pass;
    if (ep.username_file.empty() || ep.password_file.empty()) {
      return Status(StatusCode::kInvalidArgument, bw + " needs both usernameFile and passwordFile");
    }
  }
  if (!ep.bearer_token_file.empty() && !ep.username_file.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  where + ": bearerTokenFile and basicAuth are mutually exclusive");
  }
  if (parsed->scheme == "https" && ep.ca_file.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  where + ": an https endpoint needs caFile (the system trust store is not used)");
  }
  if (parsed->scheme == "http" && (!ep.bearer_token_file.empty() || !ep.username_file.empty())) {
    return Status(StatusCode::kInvalidArgument,
                  where + ": credentials are sent only over https, not to " + ep.url);
  }
  if (!ep.ca_file.empty() && parsed->scheme != "https") {
    return Status(StatusCode::kInvalidArgument, where + ": caFile needs an https url");
  }
  return ep;
}

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
    return Malformed(check, SanitizeForStatus(e.what(), kErrorChars));
  }
}

std::string QueryPath(const std::string& query) {
  return "/api/v1/query?query=" + kube::QueryEscape(query);
}

std::unique_ptr<PrometheusClient> NewPrometheusClient(PrometheusClientOptions opts) {
  return std::make_unique<HttpPrometheusClient>(std::move(opts));
}

std::string SanitizeForStatus(std::string_view text, std::size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max));
  for (char c : text) {
    if (out.size() >= max) {
      if (max >= 3) out.replace(max - 3, 3, "...");
      return out;
    }
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') {
      out += ' ';
    } else if (u < 0x20 || u >= 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

std::string RedactedAddress(std::string_view address) {
  std::string out(address);
  const size_t cut = out.find_first_of("?#");
  if (cut != std::string::npos) out = out.substr(0, cut) + "<redacted>";
  const size_t scheme = out.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t path = out.find('/', start);
  const size_t at = out.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at != std::string::npos && at >= start) out.replace(start, at - start, "<redacted>");
  return SanitizeForStatus(out, 256);
}

Result<std::vector<AnalysisEndpoint>> ParseAnalysisEndpoints(const std::string& text) {
  Json doc;
  try {
    doc = Json::parse(text);
  } catch (const std::exception& e) {
    return Status(StatusCode::kInvalidArgument, std::string("not JSON: ") + e.what());
  }
  if (!doc.is_object()) return Status(StatusCode::kInvalidArgument, "must be a JSON object");
  if (Status st = UnknownFields(doc, {"endpoints"}, "the file"); !st.ok()) return st;
  std::vector<AnalysisEndpoint> out;
  if (!doc.has_field("endpoints")) return out;
  const Json& list = doc.at("endpoints");
  if (list.is_null()) return out;
  if (!list.is_array()) return Status(StatusCode::kInvalidArgument, "endpoints must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    auto ep = ParseEndpoint(list.at(i), "endpoints[" + std::to_string(i) + "]");
    if (!ep.ok()) return ep.status();
    out.push_back(std::move(ep).value());
  }
  return out;
}

bool AnalysisEndpointAllows(const std::string& endpoint_url, const std::string& address) {
  auto e = ParseUrl(endpoint_url);
  auto a = ParseUrl(address);
  return e.ok() && a.ok() && Allows(*e, *a);
}

}  // namespace rollgate::rollout
