#include "controller/kube/api_errors.h"

#include <cpprest/json.h>

#include <algorithm>
#include <charconv>

#include "controller/kube/json_fields.h"

namespace rollgate::kube {
namespace {

StatusCode CodeFor(int http, const std::string& reason) {
  switch (http) {
    case 400:
      return StatusCode::kBadRequest;
    case 401:
      return StatusCode::kUnauthorized;
    case 403:
      return StatusCode::kForbidden;
    case 404:
      return StatusCode::kNotFound;
    case 405:
      return StatusCode::kMethodNotAllowed;
    case 409:
      return reason == "AlreadyExists" ? StatusCode::kAlreadyExists : StatusCode::kConflict;
    case 410:
      return StatusCode::kGone;
    case 422:
      return StatusCode::kInvalid;
    case 429:
      return StatusCode::kTooManyRequests;
    case 503:
      return StatusCode::kUnavailable;
    case 504:
      return StatusCode::kTimeout;
    default:
      break;
  }
  if (http >= 500) return StatusCode::kInternal;
  if (reason == "Expired" || reason == "Gone") return StatusCode::kGone;
  return StatusCode::kUnknown;
}

std::string Summarise(const std::string& body) {
  std::string line = body.substr(0, body.find('\n'));
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return line;
}

// A server's Retry-After, bounded to [1 s, 1 h]: a zero or negative hint would let a client
// hammer an overloaded server; a huge one would overflow durations and stall us for ever.
std::chrono::seconds ClampRetryAfter(long long secs) {
  return std::chrono::seconds(std::clamp<long long>(secs, 1, 3600));
}

// Fills `st` from a parsed metav1.Status; returns false when `v` is not one.
bool FromStatusJson(const web::json::value& v, Status& st, int http, const std::string& what) {
  if (!v.is_object() || StringField(v, "kind") != "Status") return false;
  const std::string reason = StringField(v, "reason");
  if (http == 0 && v.has_field("code") && v.at("code").is_integer())
    http = v.at("code").as_integer();
  std::string message = StringField(v, "message");
  st = Status(CodeFor(http, reason), what + ": " + (message.empty() ? reason : message));
  st.set_http_status(http).set_reason(reason);
  if (v.has_field("details") && v.at("details").is_object()) {
    const auto& d = v.at("details");
    if (d.has_field("causes") && d.at("causes").is_array()) {
      for (const auto& c : d.at("causes").as_array()) {
        st.add_cause(
            {StringField(c, "field"), StringField(c, "reason"), StringField(c, "message")});
      }
    }
    if (d.has_field("retryAfterSeconds") && d.at("retryAfterSeconds").is_integer()) {
      st.set_retry_after(ClampRetryAfter(d.at("retryAfterSeconds").as_number().to_int64()));
    }
  }
  return true;
}

}  // namespace

Status StatusFromResponse(int http_status, const std::string& body,
                          const std::map<std::string, std::string>& headers,
                          const std::string& what) {
  Status st;
  bool parsed = false;
  try {
    parsed = !body.empty() && FromStatusJson(web::json::value::parse(body), st, http_status, what);
  } catch (const std::exception&) {
    parsed = false;
  }
  if (!parsed) {
    std::string msg = what + ": HTTP " + std::to_string(http_status);
    if (!body.empty()) msg += ": " + Summarise(body);
    st = Status(CodeFor(http_status, ""), msg);
    st.set_http_status(http_status);
  }
  if (auto it = headers.find("retry-after"); it != headers.end()) {
    long long secs = 0;
    const auto& s = it->second;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), secs);
    if (ec == std::errc() && ptr == s.data() + s.size()) st.set_retry_after(ClampRetryAfter(secs));
  }
  return st;
}

Status StatusFromStatusObject(const std::string& json_text, const std::string& what) {
  Status st;
  try {
    if (FromStatusJson(web::json::value::parse(json_text), st, 0, what)) return st;
  } catch (const std::exception&) {
  }
  return Status(StatusCode::kMalformed, what + ": watch ERROR event without a valid Status");
}

}  // namespace rollgate::kube
