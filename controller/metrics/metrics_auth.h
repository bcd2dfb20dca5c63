// Who may read /metrics: the caller's bearer token is authenticated with a TokenReview and the
// user it names is authorised with a SubjectAccessReview for `get` on the non-resource URL
// /metrics, as controller-runtime's metrics filter (and kube-rbac-proxy) do. So /metrics, which
// names every tenant's rollouts, is readable by exactly the identities an operator grants, e.g.
// Prometheus' ServiceAccount bound to the chart's <release>-metrics-reader ClusterRole.
//
//   no or malformed Authorization header, or a token the API server does not authenticate: 401
//   authenticated, but not allowed to get /metrics:                                        403
//   the API server could not be asked (an error, a timeout):                                503
//
// Decisions (allowed, 401, 403; never a 503) are cached for `ttl` under the SHA-256 of the token,
// so a scraper costs two API requests per ttl, not per scrape; at most `max_entries` are kept
// (expired first, then the oldest). Tokens are never logged, stored or echoed: only their hashes
// are kept, and only the user name appears in logs.
// Thread-safety: Authorize may be called from any thread (one mutex around the cache; API
// requests run outside it).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "controller/common/clock.h"
#include "controller/kube/kube_client.h"

namespace rollgate::metrics {

struct AuthDecision {
  int code = 503;      // 200 allowed, 401, 403, 503
  std::string reason;  // short, for the response body and the log; never the token
};

struct ReviewedUser {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
};

// Pure. The bearer token of an Authorization header value ("Bearer <token>", scheme
// case-insensitive); empty when there is none or it is malformed.
std::string BearerToken(const std::string& authorization);

// Pure. authentication.k8s.io/v1 TokenReview for `token`.
kube::Json TokenReviewRequest(const std::string& token);
// Pure. The user a TokenReview response authenticated; false when status.authenticated is not
// true (`error` then holds status.error, if any).
bool ParseTokenReview(const kube::Json& review, ReviewedUser& user, std::string& error);

// Pure. authorization.k8s.io/v1 SubjectAccessReview: may `user` `verb` the non-resource `path`?
kube::Json SubjectAccessReviewRequest(const ReviewedUser& user, const std::string& path,
                                      const std::string& verb);
// Pure. status.allowed of a SubjectAccessReview response (false when absent).
bool ParseSubjectAccessReview(const kube::Json& review);

class MetricsAuthorizer {
 public:
  MetricsAuthorizer(kube::KubeClient& client, const Clock& clock,
                    std::chrono::seconds ttl = std::chrono::seconds(60),
                    std::size_t max_entries = 1024);

  // The decision for a request to `path` carrying this Authorization header value.
  AuthDecision Authorize(const std::string& authorization, const std::string& path);

 private:
  struct Entry {
    AuthDecision decision;
    Clock::MonoTime expires;
  };
  AuthDecision Review(const std::string& token, const std::string& path);
  void Remember(const std::string& key, const AuthDecision& d);

  kube::KubeClient& client_;
  const Clock& clock_;
  std::chrono::seconds ttl_;
  std::size_t max_entries_;
  std::mutex mu_;
  std::map<std::string, Entry> cache_;  // SHA-256(token) + "\n" + path -> decision
};

}  // namespace rollgate::metrics
