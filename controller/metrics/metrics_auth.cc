#include "controller/metrics/metrics_auth.h"

#include <algorithm>
#include <utility>

#include "controller/common/digest.h"
#include "controller/common/log.h"
#include "controller/kube/resource.h"

namespace rollgate::metrics {
namespace {

using kube::Json;

const Json* Field(const Json& obj, const char* name) {
  if (!obj.is_object() || !obj.has_field(name)) return nullptr;
  return &obj.at(name);
}

std::string StringField(const Json& obj, const char* name) {
  const Json* f = Field(obj, name);
  return f != nullptr && f->is_string() ? f->as_string() : std::string();
}

std::vector<std::string> Strings(const Json* arr) {
  std::vector<std::string> out;
  if (arr == nullptr || !arr->is_array()) return out;
  for (const auto& v : arr->as_array()) {
    if (v.is_string()) out.push_back(v.as_string());
  }
  return out;
}

Json StringArray(const std::vector<std::string>& v) {
  Json arr = Json::array(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) arr[i] = Json::string(v[i]);
  return arr;
}

}  // namespace

std::string BearerToken(const std::string& authorization) {
  const auto sp = authorization.find(' ');
  if (sp == std::string::npos) return {};
  std::string scheme = authorization.substr(0, sp);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "bearer") return {};
  const auto b = authorization.find_first_not_of(' ', sp);
  if (b == std::string::npos) return {};
  std::string token = authorization.substr(b);
  while (!token.empty() && token.back() == ' ') token.pop_back();
  if (token.find_first_of(" \t\r\n") != std::string::npos) return {};
  return token;
}

Json TokenReviewRequest(const std::string& token) {
  Json r = Json::object();
  r["apiVersion"] = Json::string("authentication.k8s.io/v1");
  r["kind"] = Json::string("TokenReview");
  r["spec"]["token"] = Json::string(token);
  return r;
}

bool ParseTokenReview(const Json& review, ReviewedUser& user, std::string& error) {
  const Json* status = Field(review, "status");
  if (status == nullptr || !status->is_object()) {
    error = "no status in the TokenReview";
    return false;
  }
  error = StringField(*status, "error");
  const Json* authenticated = Field(*status, "authenticated");
  if (authenticated == nullptr || !authenticated->is_boolean() || !authenticated->as_bool()) {
    return false;
  }
  const Json* u = Field(*status, "user");
  if (u == nullptr || !u->is_object()) {
    error = "no user in the TokenReview";
    return false;
  }
  user.username = StringField(*u, "username");
  user.uid = StringField(*u, "uid");
  user.groups = Strings(Field(*u, "groups"));
  user.extra.clear();
  if (const Json* extra = Field(*u, "extra"); extra != nullptr && extra->is_object()) {
    for (const auto& [k, v] : extra->as_object()) user.extra[k] = Strings(&v);
  }
  return !user.username.empty();
}

Json SubjectAccessReviewRequest(const ReviewedUser& user, const std::string& path,
                                const std::string& verb) {
  Json r = Json::object();
  r["apiVersion"] = Json::string("authorization.k8s.io/v1");
  r["kind"] = Json::string("SubjectAccessReview");
  Json& spec = r["spec"];
  spec["user"] = Json::string(user.username);
  if (!user.uid.empty()) spec["uid"] = Json::string(user.uid);
  spec["groups"] = StringArray(user.groups);
  if (!user.extra.empty()) {
    Json extra = Json::object();
    for (const auto& [k, v] : user.extra) extra[k] = StringArray(v);
    spec["extra"] = extra;
  }
  spec["nonResourceAttributes"]["path"] = Json::string(path);
  spec["nonResourceAttributes"]["verb"] = Json::string(verb);
  return r;
}

bool ParseSubjectAccessReview(const Json& review) {
  const Json* status = Field(review, "status");
  if (status == nullptr) return false;
  const Json* allowed = Field(*status, "allowed");
  return allowed != nullptr && allowed->is_boolean() && allowed->as_bool();
}

MetricsAuthorizer::MetricsAuthorizer(kube::KubeClient& client, const Clock& clock,
                                     std::chrono::seconds ttl, std::size_t max_entries)
    : client_(client),
      clock_(clock),
      ttl_(ttl),
      max_entries_(std::max<std::size_t>(max_entries, 1)) {}

AuthDecision MetricsAuthorizer::Authorize(const std::string& authorization,
                                          const std::string& path) {
  const std::string token = BearerToken(authorization);
  if (token.empty()) return {401, "a bearer token is required"};
  const std::string key = Sha256Hex(token) + "\n" + path;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    const auto it = cache_.find(key);
    if (it != cache_.end() && clock_.Now() < it->second.expires) return it->second.decision;
  }
  AuthDecision d = Review(token, path);
  if (d.code != 503) Remember(key, d);
  return d;
}

AuthDecision MetricsAuthorizer::Review(const std::string& token, const std::string& path) {
  const auto token_reviews =
      kube::ResourceType::Group("authentication.k8s.io", "v1", "tokenreviews", false);
  auto tr = client_.Create(token_reviews, "", TokenReviewRequest(token));
  if (!tr.ok()) {
    log::Warn("metrics", "cannot review a scraper's token", {{"error", tr.status().ToString()}});
    return {503, "authentication is unavailable"};
  }
  ReviewedUser user;
  std::string error;
  if (!ParseTokenReview(*tr, user, error)) return {401, "the token was not authenticated"};
  const auto access_reviews =
      kube::ResourceType::Group("authorization.k8s.io", "v1", "subjectaccessreviews", false);
  auto sar = client_.Create(access_reviews, "", SubjectAccessReviewRequest(user, path, "get"));
  if (!sar.ok()) {
    log::Warn("metrics", "cannot review a scraper's access",
              {{"user", user.username}, {"error", sar.status().ToString()}});
    return {503, "authorization is unavailable"};
  }
  if (!ParseSubjectAccessReview(*sar)) {
    log::Info("metrics", "scrape refused", {{"user", user.username}, {"path", path}});
    return {403, user.username + " may not get " + path};
  }
  return {200, ""};
}

void MetricsAuthorizer::Remember(const std::string& key, const AuthDecision& d) {
  const std::lock_guard<std::mutex> lock(mu_);
  const auto now = clock_.Now();
  if (cache_.size() >= max_entries_ && cache_.find(key) == cache_.end()) {
    for (auto it = cache_.begin(); it != cache_.end();) {
      it = it->second.expires <= now ? cache_.erase(it) : std::next(it);
    }
    if (cache_.size() >= max_entries_) {
      auto oldest = std::min_element(
          cache_.begin(), cache_.end(),
          [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
      cache_.erase(oldest);
    }
  }
  cache_[key] = {d, now + ttl_};
}

}  // namespace rollgate::metrics
