// ClusterRegistry: the remote clusters' clients, built from kubeconfig Secrets in the hub.
#include "controller/kube/cluster_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "controller/kube/rest_client.h"
#include "tests/fakes/base64.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/https_server.h"
#include "tests/fakes/loopback.h"
#include "tests/fakes/test_certs.h"
#include "tests/fakes/unimplemented_client.h"

namespace rollgate::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kToken[] = "TOKEN-SECRET-one";
constexpr char kRotated[] = "TOKEN-SECRET-two";

std::string Kubeconfig(const std::string& server, const std::string& user) {
  return "apiVersion: v1\nkind: Config\ncurrent-context: hub\n"
         "clusters:\n- name: prod\n  cluster:\n    server: " +
         server + "\n    certificate-authority-data: " +
         testing::Base64Encode(testing::SharedTestPki().ca.cert) +
         "\ncontexts:\n- name: hub\n  context:\n    cluster: prod\n    user: hub\n"
         "users:\n- name: hub\n  user:\n" +
         user;
}

std::string TokenUser(const std::string& token) { return "    token: " + token + "\n"; }

Json SecretWith(const std::string& rv, const std::map<std::string, std::string>& data) {
  Json s = Json::object();
  s["metadata"]["namespace"] = Json::string("team-a");
  s["metadata"]["name"] = Json::string("prod-eu");
  s["metadata"]["resourceVersion"] = Json::string(rv);
  s["data"] = Json::object();
  for (const auto& [k, v] : data) s["data"][k] = Json::string(v);
  return s;
}

Json KubeconfigSecret(const std::string& rv, const std::string& token,
                      const std::string& server = "https://prod.example:6443") {
  return SecretWith(
      rv, {{kKubeconfigSecretKey, testing::Base64Encode(Kubeconfig(server, TokenUser(token)))}});
}

// The hub: answers GETs of Secrets with what the test set; counts them.
class FakeHub : public testing::UnimplementedClient {
 public:
  Result<Json> Get(const ResourceType& rt, const std::string& ns,
                   const std::string& name) override {
    EXPECT_EQ(rt.resource, "secrets");
    gets.push_back(ns + "/" + name);
    return answer;
  }
  Result<Json> answer = Status(StatusCode::kNotFound, "secrets \"prod-eu\" not found");
  std::vector<std::string> gets;
};

// A remote cluster's client: answers every GET with `answer`, counts calls.
class FakeRemote : public testing::UnimplementedClient {
 public:
  explicit FakeRemote(std::shared_ptr<Result<Json>> answer, std::shared_ptr<int> calls)
      : answer_(std::move(answer)), calls_(std::move(calls)) {}
  Result<Json> Get(const ResourceType&, const std::string&, const std::string&) override {
    ++*calls_;
    return *answer_;
  }

 private:
  std::shared_ptr<Result<Json>> answer_;
  std::shared_ptr<int> calls_;
};

class ClusterRegistryTest : public ::testing::Test {
 protected:
  ClusterRegistryTest()
      : registry_(hub_, clock_, [this](const RestConfig& c) -> Result<std::unique_ptr<KubeClient>> {
          built_.push_back(c);
          return std::unique_ptr<KubeClient>(std::make_unique<FakeRemote>(remote_, calls_));
        }) {}

  std::string TokenOf(std::size_t i) const {
    auto t = built_.at(i).token->Token();
    return t.ok() ? *t : t.status().message();
  }

  // `msg` carries no credential.
  static void ExpectNoSecrets(const std::string& msg) {
    EXPECT_THAT(msg, Not(HasSubstr("SECRET")));
    EXPECT_THAT(msg, Not(HasSubstr("BEGIN CERTIFICATE")));
    EXPECT_THAT(msg, Not(HasSubstr(testing::Base64Encode(testing::SharedTestPki().ca.cert))));
  }

  testing::FakeClock clock_;
  FakeHub hub_;
  std::shared_ptr<Result<Json>> remote_ = std::make_shared<Result<Json>>(Json::object());
  std::shared_ptr<int> calls_ = std::make_shared<int>(0);
  std::vector<RestConfig> built_;
  ClusterRegistry registry_;
};

TEST_F(ClusterRegistryTest, BuildsOneClientFromTheSecretAndReusesIt) {
  hub_.answer = KubeconfigSecret("10", kToken);
  auto a = registry_.Client("team-a", "prod-eu");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = registry_.Client("team-a", "prod-eu");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(hub_.gets, std::vector<std::string>{"team-a/prod-eu"});
  ASSERT_EQ(built_.size(), 1U);
  EXPECT_EQ(built_[0].server, "https://prod.example:6443");
  EXPECT_EQ(built_[0].ca_pem, testing::SharedTestPki().ca.cert);
  EXPECT_EQ(TokenOf(0), kToken);
  EXPECT_THAT(built_[0].source, HasSubstr("Secret team-a/prod-eu"));
  EXPECT_EQ(registry_.Size(), 1U);
  // The client it returned reaches the remote cluster's client.
  EXPECT_TRUE((*a)->Get(resources::Deployments(), "prod", "api").ok());
  EXPECT_EQ(*calls_, 1);
}

TEST_F(ClusterRegistryTest, ARotatedSecretIsPickedUpAtTheNextRead) {
  hub_.answer = KubeconfigSecret("10", kToken);
  auto first = registry_.Client("team-a", "prod-eu");
  ASSERT_TRUE(first.ok());

  clock_.Advance(seconds(31));  // unchanged Secret: the same client, no new build
  auto same = registry_.Client("team-a", "prod-eu");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(first->get(), same->get());
  EXPECT_EQ(hub_.gets.size(), 2U);
  EXPECT_EQ(built_.size(), 1U);

  hub_.answer = KubeconfigSecret("11", kRotated);
  clock_.Advance(seconds(10));  // within the recheck interval: not read yet
  EXPECT_EQ(registry_.Client("team-a", "prod-eu")->get(), first->get());
  clock_.Advance(seconds(21));
  auto rotated = registry_.Client("team-a", "prod-eu");
  ASSERT_TRUE(rotated.ok());
  EXPECT_NE(rotated->get(), first->get());
  ASSERT_EQ(built_.size(), 2U);
  EXPECT_EQ(TokenOf(1), kRotated);
  // The old client still serves a call that holds it.
  EXPECT_TRUE((*first)->Get(resources::Deployments(), "prod", "api").ok());
}

TEST_F(ClusterRegistryTest, ADeletedSecretDropsTheClientAtOnce) {
  hub_.answer = KubeconfigSecret("10", kToken);
  ASSERT_TRUE(registry_.Client("team-a", "prod-eu").ok());
  hub_.answer = Status(StatusCode::kNotFound, "secrets \"prod-eu\" not found");
  clock_.Advance(seconds(30));
  auto gone = registry_.Client("team-a", "prod-eu");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(gone.status().message(), "kubeconfig Secret team-a/prod-eu not found");
  EXPECT_EQ(registry_.Size(), 0U);
}

TEST_F(ClusterRegistryTest, ASecretTheControllerMayNotReadSaysWhatToGrant) {
  hub_.answer = KubeconfigSecret("10", kToken);
  ASSERT_TRUE(registry_.Client("team-a", "prod-eu").ok());
  hub_.answer = Status(StatusCode::kForbidden, "secrets \"prod-eu\" is forbidden");
  clock_.Advance(seconds(30));
  auto refused = registry_.Client("team-a", "prod-eu");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kForbidden);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("may not read kubeconfig Secret team-a/prod-eu: grant its ServiceAccount "
                        "get on that Secret"));
  EXPECT_EQ(registry_.Size(), 0U) << "consent withdrawn: the old client is not kept";
}

TEST_F(ClusterRegistryTest, AHubFailureIsReturnedAndTheNextCallReadsAgain) {
  hub_.answer = Status(StatusCode::kTransport, "connection refused");
  auto failed = registry_.Client("team-a", "prod-eu");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kTransport);
  EXPECT_EQ(failed.status().message(), "read kubeconfig Secret team-a/prod-eu: connection refused");
  hub_.answer = KubeconfigSecret("10", kToken);
  EXPECT_TRUE(registry_.Client("team-a", "prod-eu").ok());
  EXPECT_EQ(hub_.gets.size(), 2U);
}

struct Refusal {
  const char* name;
  std::map<std::string, std::string> data;
  const char* says;
};

class ClusterRegistryRefusalTest : public ClusterRegistryTest,
                                   public ::testing::WithParamInterface<Refusal> {};

TEST_P(ClusterRegistryRefusalTest, IsRefusedNamingTheSecretAndIsNotReadAgainAtOnce) {
  hub_.answer = SecretWith("7", GetParam().data);
  auto r = registry_.Client("team-a", "prod-eu");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), StartsWith("kubeconfig Secret team-a/prod-eu: "));
  EXPECT_THAT(r.status().message(), HasSubstr(GetParam().says));
  ExpectNoSecrets(r.status().message());
  EXPECT_TRUE(built_.empty());
  // The refusal stands until the Secret is read again: no read per reconcile.
  auto again = registry_.Client("team-a", "prod-eu");
  EXPECT_EQ(again.status().message(), r.status().message());
  EXPECT_EQ(hub_.gets.size(), 1U);
  // A fixed Secret is taken at the next read.
  hub_.answer = KubeconfigSecret("8", kToken);
  clock_.Advance(seconds(30));
  EXPECT_TRUE(registry_.Client("team-a", "prod-eu").ok());
}

// NOLINTBEGIN(cert-err58-cpp): test parameters, built before main
INSTANTIATE_TEST_SUITE_P(
    Secrets, ClusterRegistryRefusalTest,
    ::testing::Values(
        Refusal{"NoValueKey", {{"kubeconfig", testing::Base64Encode("x")}}, "no key \"value\""},
        Refusal{"NotBase64", {{"value", "!!not-base64!!"}}, "data.value is not base64"},
        Refusal{"ExecPlugin",
                {{"value", testing::Base64Encode(Kubeconfig(
                               "https://prod.example:6443",
                               "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                               "      command: /bin/sh\n"))}},
                "exec"},
        Refusal{"TokenFile",
                {{"value",
                  testing::Base64Encode(Kubeconfig(
                      "https://prod.example:6443",
                      "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n"))}},
                "tokenFile"},
        Refusal{"PlainHttp",
                {{"value", testing::Base64Encode(Kubeconfig("http://prod.example:8080",
                                                            TokenUser(kToken)))}},
                "https"}),
    [](const ::testing::TestParamInfo<Refusal>& i) { return std::string(i.param.name); });
// NOLINTEND(cert-err58-cpp)

TEST_F(ClusterRegistryTest, CollectDropsTheClustersNobodyAskedForLately) {
  hub_.answer = KubeconfigSecret("10", kToken);
  ASSERT_TRUE(registry_.Client("team-a", "prod-eu").ok());
  ASSERT_TRUE(registry_.Client("team-a", "prod-us").ok());
  clock_.Advance(std::chrono::minutes(6));
  ASSERT_TRUE(registry_.Client("team-a", "prod-us").ok());  // used: kept
  EXPECT_EQ(registry_.Collect(), 0U);
  clock_.Advance(std::chrono::minutes(5));
  EXPECT_EQ(registry_.Collect(), 1U);
  EXPECT_EQ(registry_.Size(), 1U);
  clock_.Advance(std::chrono::minutes(10));
  EXPECT_EQ(registry_.Collect(), 1U);
  EXPECT_EQ(registry_.Size(), 0U);
}

// ---- The breaker ----

TEST(ClusterBreakerTest, AnUnreachableClusterFailsFastUntilItsBackoffPassed) {
  testing::FakeClock clock;
  auto answer = std::make_shared<Result<Json>>(Status(StatusCode::kTransport, "connect: refused"));
  auto calls = std::make_shared<int>(0);
  auto client = WithBreaker(std::make_unique<FakeRemote>(answer, calls), "team-a/prod-eu", clock,
                            seconds(1), seconds(4));
  auto get = [&] { return client->Get(resources::Deployments(), "prod", "api"); };

  EXPECT_EQ(get().status().code(), StatusCode::kTransport);
  EXPECT_EQ(*calls, 1);
  auto fast = get();
  EXPECT_EQ(fast.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(fast.status().message(),
              StartsWith("cluster team-a/prod-eu unreachable: connect: refused (next attempt in"));
  EXPECT_EQ(*calls, 1) << "no call while the breaker is open";

  // The backoff doubles (1 s, 2 s, 4 s) and stays at its bound.
  for (const auto wait : {seconds(1), seconds(2), seconds(4), seconds(4)}) {
    clock.Advance(wait - milliseconds(1));
    EXPECT_EQ(get().status().code(), StatusCode::kUnavailable);
    const int before = *calls;
    clock.Advance(milliseconds(1));
    EXPECT_EQ(get().status().code(), StatusCode::kTransport);
    EXPECT_EQ(*calls, before + 1);
  }

  // An answer, even an error one, closes it: the cluster is reachable.
  *answer = Status(StatusCode::kNotFound, "deployments.apps \"api\" not found");
  clock.Advance(seconds(4));
  EXPECT_EQ(get().status().code(), StatusCode::kNotFound);
  EXPECT_EQ(get().status().code(), StatusCode::kNotFound);
  *answer = Status(StatusCode::kTimeout, "no complete response within 30s");
  EXPECT_EQ(get().status().code(), StatusCode::kTimeout);
  EXPECT_EQ(get().status().code(), StatusCode::kUnavailable);
  clock.Advance(seconds(1));  // the backoff started again from its minimum
  *answer = Json::object();
  EXPECT_TRUE(get().ok());
}

// ---- Against real connections: refused, reset and frozen are different failures ----

class ClusterRegistryNetworkTest : public ::testing::Test {
 protected:
  // A registry whose one cluster, team-a/prod-eu, is at `server`.
  Result<std::shared_ptr<KubeClient>> ClientFor(const std::string& server) {
    hub_.answer = KubeconfigSecret("1", kToken, server);
    return registry_.Client("team-a", "prod-eu");
  }

  RealClock clock_;
  FakeHub hub_;
  ClusterRegistry registry_{
      hub_, clock_,
      [this](const RestConfig& c) {
        RestClientOptions ro;
        ro.request_timeout = milliseconds(500);
        ro.max_retries = 0;
        auto rc = RestClient::FromConfig(c, clock_, ro);
        if (!rc.ok()) return Result<std::unique_ptr<KubeClient>>(rc.status());
        return Result<std::unique_ptr<KubeClient>>(std::move(rc).value());
      },
      ClusterRegistryOptions{seconds(30), std::chrono::minutes(10), seconds(30), seconds(60)}};
};

TEST_F(ClusterRegistryNetworkTest, AnAnsweringClusterIsReachedWithTheSecretsToken) {
  std::atomic<int> requests{0};
  std::string authorization;
  testing::HttpsServer server({testing::SharedTestPki().server, ""},
                              [&](const testing::Request& r, testing::ResponseWriter& w) {
                                ++requests;
                                auto it = r.headers.find("authorization");
                                authorization = it == r.headers.end() ? "" : it->second;
                                w.Respond(200, R"({"metadata":{"name":"api"}})");
                              });
  auto client = ClientFor(server.url());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto d = (*client)->Get(resources::Deployments(), "prod", "api");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(requests.load(), 1);
  EXPECT_EQ(authorization, std::string("Bearer ") + kToken);
}

TEST_F(ClusterRegistryNetworkTest, ARefusedConnectionOpensTheBreaker) {
  auto l = testing::ListenLoopback(1);
  ASSERT_GE(l.fd, 0);
  ::close(l.fd);  // nothing listens there now: connections are refused
  auto client = ClientFor("https://127.0.0.1:" + std::to_string(l.port));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto first = (*client)->Get(resources::Deployments(), "prod", "api");
  EXPECT_EQ(first.status().code(), StatusCode::kTransport) << first.status().ToString();
  auto second = (*client)->Get(resources::Deployments(), "prod", "api");
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("cluster team-a/prod-eu unreachable"));
}

TEST_F(ClusterRegistryNetworkTest, AResetConnectionOpensTheBreakerAndLaterCallsSendNothing) {
  testing::HttpsServer server({testing::SharedTestPki().server, ""},
                              [](const testing::Request&, testing::ResponseWriter& w) {
                                w.Abort();  // RST instead of a response
                              });
  auto client = ClientFor(server.url());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto first = (*client)->Get(resources::Deployments(), "prod", "api");
  EXPECT_EQ(first.status().code(), StatusCode::kTransport) << first.status().ToString();
  const std::size_t seen = server.request_count();
  EXPECT_GE(seen, 1U);
  auto second = (*client)->Get(resources::Deployments(), "prod", "api");
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(server.request_count(), seen) << "the open breaker sent no request";
}

TEST_F(ClusterRegistryNetworkTest, AFrozenClusterTimesOutOnceThenFailsFast) {
  // A listener that never accepts: the TCP handshake completes in the kernel's backlog, and then
  // nothing ever answers (a half-open peer).
  auto l = testing::ListenLoopback(16);
  ASSERT_GE(l.fd, 0);
  auto client = ClientFor("https://127.0.0.1:" + std::to_string(l.port));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto first = (*client)->Get(resources::Deployments(), "prod", "api");
  EXPECT_TRUE(first.status().code() == StatusCode::kTimeout ||
              first.status().code() == StatusCode::kTransport)
      << first.status().ToString();
  auto second = (*client)->Get(resources::Deployments(), "prod", "api");
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << second.status().ToString();
  ::close(l.fd);
}

}  // namespace
}  // namespace rollgate::kube
