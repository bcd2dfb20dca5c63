#include "controller/metrics/metrics_auth.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "controller/metrics/metrics.h"
#include "controller/metrics/metrics_server.h"
#include "controller/metrics/server_tls.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/test_certs.h"
#include "tests/fakes/unimplemented_client.h"
#include "tests/unit/metrics/http_get.h"
#include "tests/unit/metrics/scrape.h"

namespace rollgate::metrics {
namespace {

using kube::Json;
using ::testing::HasSubstr;
using ::testing::Not;

// An API server that authenticates the tokens in `users` (token -> user name) and allows the
// users in `allowed`; `down` fails every request. Records what it was asked.
class ReviewServer : public rollgate::testing::UnimplementedClient {
 public:
  std::mutex mu;
  std::map<std::string, std::string> users;
  std::vector<std::string> allowed;
  bool down = false;
  std::vector<Json> requests;

  Result<Json> Create(const kube::ResourceType& rt, const std::string& ns,
                      const Json& obj) override {
    const std::lock_guard<std::mutex> lock(mu);
    requests.push_back(obj);
    EXPECT_EQ(ns, "");
    EXPECT_FALSE(rt.namespaced);
    if (down) return Status(StatusCode::kTransport, "connection refused");
    Json out = obj;
    if (rt.resource == "tokenreviews") {
      EXPECT_EQ(rt.group, "authentication.k8s.io");
      const auto it = users.find(obj.at("spec").at("token").as_string());
      out["status"]["authenticated"] = Json::boolean(it != users.end());
      if (it != users.end()) {
        out["status"]["user"]["username"] = Json::string(it->second);
        out["status"]["user"]["groups"] = Json::array({Json::string("system:authenticated")});
      }
      return out;
    }
    EXPECT_EQ(rt.resource, "subjectaccessreviews");
    EXPECT_EQ(rt.group, "authorization.k8s.io");
    const std::string user = obj.at("spec").at("user").as_string();
    const bool ok =
        std::find(allowed.begin(), allowed.end(), user) != allowed.end() &&
        obj.at("spec").at("nonResourceAttributes").at("path").as_string() == "/metrics" &&
        obj.at("spec").at("nonResourceAttributes").at("verb").as_string() == "get";
    out["status"]["allowed"] = Json::boolean(ok);
    return out;
  }
  std::size_t Count() {
    const std::lock_guard<std::mutex> lock(mu);
    return requests.size();
  }
};

TEST(BearerTokenTest, TakesOnlyAWellFormedBearerToken) {
  EXPECT_EQ(BearerToken("Bearer abc.def"), "abc.def");
  EXPECT_EQ(BearerToken("bearer   abc "), "abc");
  EXPECT_EQ(BearerToken("Basic dXNlcjpwdw=="), "");
  EXPECT_EQ(BearerToken("Bearer"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
  EXPECT_EQ(BearerToken("Bearer a b"), "");
  EXPECT_EQ(BearerToken(""), "");
}

TEST(ReviewsTest, BuildAndParseTheReviews) {
  const Json tr = TokenReviewRequest("t0k");
  EXPECT_EQ(tr.at("kind").as_string(), "TokenReview");
  EXPECT_EQ(tr.at("spec").at("token").as_string(), "t0k");

  Json resp = Json::parse(
      R"({"status":{"authenticated":true,"user":{"username":"system:serviceaccount:mon:prometheus",
      "uid":"u1","groups":["system:serviceaccounts","system:authenticated"],
      "extra":{"authentication.kubernetes.io/pod-name":["p"]}}}})");
  ReviewedUser u;
  std::string error;
  ASSERT_TRUE(ParseTokenReview(resp, u, error));
  EXPECT_EQ(u.username, "system:serviceaccount:mon:prometheus");
  EXPECT_EQ(u.groups.size(), 2U);
  const Json sar = SubjectAccessReviewRequest(u, "/metrics", "get");
  EXPECT_EQ(sar.at("kind").as_string(), "SubjectAccessReview");
  EXPECT_EQ(sar.at("spec").at("user").as_string(), u.username);
  EXPECT_EQ(sar.at("spec").at("uid").as_string(), "u1");
  EXPECT_EQ(sar.at("spec").at("groups").size(), 2U);
  EXPECT_EQ(sar.at("spec").at("extra").at("authentication.kubernetes.io/pod-name").size(), 1U);
  EXPECT_EQ(sar.at("spec").at("nonResourceAttributes").at("path").as_string(), "/metrics");
  EXPECT_FALSE(sar.at("spec").has_field("resourceAttributes"));

  EXPECT_FALSE(ParseTokenReview(
      Json::parse(R"({"status":{"authenticated":false,"error":"invalid bearer token"}})"), u,
      error));
  EXPECT_EQ(error, "invalid bearer token");
  EXPECT_FALSE(ParseTokenReview(Json::parse(R"({"status":{}})"), u, error));
  EXPECT_FALSE(ParseTokenReview(Json::parse(R"({})"), u, error));
  EXPECT_TRUE(ParseSubjectAccessReview(Json::parse(R"({"status":{"allowed":true}})")));
  EXPECT_FALSE(ParseSubjectAccessReview(Json::parse(R"({"status":{"allowed":false}})")));
  EXPECT_FALSE(ParseSubjectAccessReview(Json::parse(R"({"status":{}})")));
}

TEST(MetricsAuthorizerTest, DecidesAndCachesPerToken) {
  ReviewServer api;
  api.users = {{"good", "prometheus"}, {"other", "tenant"}};
  api.allowed = {"prometheus"};
  rollgate::testing::FakeClock clock;
  MetricsAuthorizer auth(api, clock, std::chrono::seconds(60));
  EXPECT_EQ(auth.Authorize("", "/metrics").code, 401);
  EXPECT_EQ(api.Count(), 0U) << "no token: nothing to ask";
  EXPECT_EQ(auth.Authorize("Bearer nope", "/metrics").code, 401);
  const AuthDecision forbidden = auth.Authorize("Bearer other", "/metrics");
  EXPECT_EQ(forbidden.code, 403);
  EXPECT_THAT(forbidden.reason, HasSubstr("tenant"));
  EXPECT_THAT(forbidden.reason, Not(HasSubstr("other")));  // never the token
  EXPECT_EQ(auth.Authorize("Bearer good", "/metrics").code, 200);
  const std::size_t asked = api.Count();
  EXPECT_EQ(asked, 5U);  // one TokenReview for "nope"; a TokenReview and a SAR for the others
  // Cached: the same tokens cost nothing until the ttl passes.
  EXPECT_EQ(auth.Authorize("Bearer good", "/metrics").code, 200);
  EXPECT_EQ(auth.Authorize("Bearer other", "/metrics").code, 403);
  EXPECT_EQ(auth.Authorize("Bearer nope", "/metrics").code, 401);
  EXPECT_EQ(api.Count(), asked);
  // A revoked grant is seen once the ttl passed.
  api.allowed.clear();
  clock.Advance(std::chrono::seconds(61));
  EXPECT_EQ(auth.Authorize("Bearer good", "/metrics").code, 403);
  // Requests never carry the token anywhere but the TokenReview's spec.
  for (const Json& r : api.requests) {
    if (r.at("kind").as_string() != "TokenReview") {
      EXPECT_THAT(r.serialize(), Not(HasSubstr("good")));
    }
  }
}

TEST(MetricsAuthorizerTest, AnUnreachableApiServerIs503AndNotCached) {
  ReviewServer api;
  api.users = {{"good", "prometheus"}};
  api.allowed = {"prometheus"};
  api.down = true;
  rollgate::testing::FakeClock clock;
  MetricsAuthorizer auth(api, clock);
  EXPECT_EQ(auth.Authorize("Bearer good", "/metrics").code, 503);
  api.down = false;
  EXPECT_EQ(auth.Authorize("Bearer good", "/metrics").code, 200);
}

TEST(MetricsAuthorizerTest, TheCacheIsBounded) {
  ReviewServer api;
  rollgate::testing::FakeClock clock;
  MetricsAuthorizer auth(api, clock, std::chrono::seconds(60), 4);
  for (int i = 0; i < 10; ++i) auth.Authorize("Bearer t" + std::to_string(i), "/metrics");
  EXPECT_EQ(api.Count(), 10U);
  // t9 (recent) is still cached, t0 (evicted) is asked again.
  auth.Authorize("Bearer t9", "/metrics");
  EXPECT_EQ(api.Count(), 10U);
  auth.Authorize("Bearer t0", "/metrics");
  EXPECT_EQ(api.Count(), 11U);
}

// An HTTPS GET with an optional bearer token; the server's certificate is not verified (it is
// self-signed), as Prometheus does with insecureSkipVerify.
testing::HttpReply HttpsGet(int port, const std::string& path, const std::string& token) {
  testing::HttpReply r;
  const int fd = testing::Connect(port);
  if (fd < 0) return r;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) == 1) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    req += "\r\n";
    SSL_write(ssl.get(), req.data(), static_cast<int>(req.size()));
    std::string raw;
    char buf[4096];
    for (;;) {
      const int n = SSL_read(ssl.get(), buf, sizeof buf);
      if (n <= 0) break;
      raw.append(buf, static_cast<std::size_t>(n));
    }
    r = testing::SplitReply(raw);
  }
  close(fd);
  return r;
}

TEST(SecureMetricsServerTest, ServesOverTlsToAllowedTokensOnly) {
  ReviewServer api;
  api.users = {{"good", "prometheus"}, {"other", "tenant"}};
  api.allowed = {"prometheus"};
  rollgate::testing::FakeClock clock;
  MetricsAuthorizer auth(api, clock);
  auto tls = SelfSignedServerTls("rollgate-metrics");
  ASSERT_TRUE(tls.ok()) << tls.status().message();
  Metrics m;
  for (int i = 0; i < 300; ++i) {  // about 4 MB of text: many pieces, more than a TLS buffer
    m.ObserveRollout("app", "r" + std::to_string(i), i, "Progressing",
                     {{"dev", "Succeeded"}, {"staging", "Updating"}, {"production", "Pending"}});
  }
  std::atomic<int> scrapes{0};
  auto server =
      MetricsServer::Start("127.0.0.1:0", m.Exposition(), [&] { scrapes++; }, {*tls, &auth});
  ASSERT_TRUE(server.ok()) << server.status().message();
  const int port = (*server)->port();
  testing::HttpReply r = HttpsGet(port, "/metrics", "");
  EXPECT_EQ(r.code, 401);
  EXPECT_THAT(r.headers, HasSubstr("WWW-Authenticate: Bearer"));
  EXPECT_THAT(r.body, Not(HasSubstr("rollgate_")));
  r = HttpsGet(port, "/metrics", "other");
  EXPECT_EQ(r.code, 403);
  EXPECT_THAT(r.body, Not(HasSubstr("rollgate_")));
  EXPECT_EQ(scrapes.load(), 0) << "a refused scrape collects nothing";
  r = HttpsGet(port, "/metrics", "good");
  EXPECT_EQ(r.code, 200);
  EXPECT_TRUE(r.chunked && r.complete) << "sent in pieces over TLS, ending with the last chunk";
  EXPECT_THAT(r.body, HasSubstr("rollgate_build_info"));
  EXPECT_EQ(r.body, testing::ScrapeText(m)) << "every piece, in order";
  // Plain HTTP gets no metrics from a TLS port.
  EXPECT_NE(testing::Get(port, "/metrics", std::chrono::milliseconds(2000)).code, 200);
  server->reset();
}

TEST(ServerTlsTest, LoadsAPairAndRefusesMissingOrMismatchedFiles) {
  const auto& pki = rollgate::testing::SharedTestPki();
  char dir_template[] = "/tmp/rollgate-tls-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  ASSERT_NE(dir, nullptr);
  const std::string d = dir;
  auto write = [&d](const std::string& name, const std::string& text) {
    std::ofstream(d + "/" + name) << text;
    return d + "/" + name;
  };
  const std::string crt = write("tls.crt", pki.server.cert);
  const std::string key = write("tls.key", pki.server.key);
  const std::string other_key = write("other.key", pki.client.key);
  auto ok = LoadServerTls(crt, key);
  EXPECT_TRUE(ok.ok()) << ok.status().message();
  auto mismatched = LoadServerTls(crt, other_key);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_THAT(mismatched.status().message(), HasSubstr("mismatch"));
  EXPECT_THAT(mismatched.status().message(), Not(HasSubstr("PRIVATE KEY")));  // no key material
  std::filesystem::remove_all(d);
  auto missing = LoadServerTls("/nonexistent/tls.crt", "/nonexistent/tls.key");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/tls.crt"));
}

}  // namespace
}  // namespace rollgate::metrics
