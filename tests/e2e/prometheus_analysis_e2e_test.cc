// Canary analysis against a real Prometheus (Debian's `prometheus`, started on loopback by
// tests/e2e/prometheus.sh for this test suite): a query that holds passes, one that does not
// fails with a readable message, an empty result, NaN, several series and a PromQL error are
// inconclusive, and an unreachable or silent Prometheus is inconclusive within the timeout; an
// address no endpoint allows is never queried. The same Prometheus behind TLS and basic auth
// (prometheus.sh --tls) passes with the endpoint's CA and credential files, and is inconclusive
// with a wrong password (never shown) or another CA.
// Needs no Kubernetes cluster. ROLLGATE_PROMETHEUS_SH overrides the script's location
// (support/prometheus.h).
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controller/rollout/analysis.h"
#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/net.h"
#include "tests/e2e/support/process.h"
#include "tests/e2e/support/prometheus.h"

namespace rollgate::rollout {
namespace {

using e2e::LoopbackListener;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

class PrometheusAnalysisE2E : public ::testing::Test {
 protected:
  // Given (for every test): a real Prometheus scraping rollgate_demo_errors_ratio 0.002 and
  // rollgate_demo_jobs_total 42.
  static void SetUpTestSuite() {
    Suite& s = Ctx();
    s.dir = e2e::MakeTempDir("rollgate-prometheus-e2e");
    if (s.dir.empty()) {
      s.error = "mkdtemp failed";
      return;
    }
    s.error = s.prometheus.Start(s.dir);
  }

  static void TearDownTestSuite() {
    Suite& s = Ctx();
    if (s.dir.empty()) return;
    s.prometheus.Stop();
    std::error_code ec;
    std::filesystem::remove_all(s.dir, ec);  // when start failed before taking the directory
  }

  void SetUp() override {
    ASSERT_TRUE(Ctx().error.empty()) << Ctx().error;
    client_ = Client(seconds(5), {Url(), Ctx().prometheus.metrics_url() + "/prefix"});
  }

  // A client allowed to query `endpoints` (the operator's --analysis-endpoints-file).
  static std::unique_ptr<PrometheusClient> Client(milliseconds timeout,
                                                  const std::vector<std::string>& endpoints) {
    PrometheusClientOptions o;
    o.timeout = timeout;
    for (const auto& e : endpoints) o.endpoints.push_back({e, "", "", "", ""});
    return NewPrometheusClient(std::move(o));
  }

  static const std::string& Url() { return Ctx().prometheus.url(); }

  CheckResult One(const Check& check) {
    SampleResult r = client_->Sample(Url(), {check});
    EXPECT_EQ(r.checks.size(), 1u);
    if (r.checks.size() != 1) return {};
    EXPECT_EQ(r.outcome, r.checks[0].outcome);
    return r.checks[0];
  }

  // The suite's Prometheus, shared by its tests.
  struct Suite {
    std::string dir;
    e2e::PrometheusScript prometheus;
    std::string error;  // of SetUpTestSuite
  };
  static Suite& Ctx() {
    static auto* s = new Suite();  // never destroyed: outlives every test
    return *s;
  }

  std::unique_ptr<PrometheusClient> client_;
};

TEST_F(PrometheusAnalysisE2E, QueryThatHoldsPasses) {
  // When: a query within its max / Then: Pass with the value.
  CheckResult r = One({"error-rate", "rollgate_demo_errors_ratio", {}, 0.01});
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.message;
  EXPECT_EQ(r.value, 0.002);
  EXPECT_EQ(r.message, "error-rate = 0.002 (max 0.01)");

  // When: an aggregate within [min, max] / Then: Pass.
  r = One({"jobs", "sum(rollgate_demo_jobs_total)", 40, 50});
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.message;
  EXPECT_EQ(r.message, "jobs = 42 (min 40, max 50)");

  // When: a scalar on both bounds / Then: Pass (bounds inclusive).
  r = One({"jobs-scalar", "scalar(rollgate_demo_jobs_total)", 42, 42});
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.message;
  EXPECT_EQ(r.value, 42.0);
}

TEST_F(PrometheusAnalysisE2E, QueryThatDoesNotHoldFails) {
  // When: above max / Then: Fail.
  CheckResult r = One({"error-rate", "rollgate_demo_errors_ratio", {}, 0.001});
  EXPECT_EQ(r.outcome, SampleOutcome::kFail);
  EXPECT_EQ(r.value, 0.002);
  EXPECT_EQ(r.message, "error-rate = 0.002 > max 0.001");

  // When: below min / Then: Fail.
  r = One({"jobs", "rollgate_demo_jobs_total", 100, {}});
  EXPECT_EQ(r.outcome, SampleOutcome::kFail);
  EXPECT_EQ(r.message, "jobs = 42 < min 100");

  // When: +Inf / Then: Fail.
  r = One({"infinite", "1/0", {}, 1});
  EXPECT_EQ(r.outcome, SampleOutcome::kFail);
  EXPECT_EQ(r.message, "infinite = +Inf > max 1");
}

TEST_F(PrometheusAnalysisE2E, NoDataAndUnusableResultsAreInconclusive) {
  // When: no data / Then: Inconclusive.
  CheckResult r = One({"absent", "absent_metric_xyz", {}, 1});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_FALSE(r.value.has_value());
  EXPECT_EQ(r.message, "absent: query returned no data");

  // When: NaN / Then: Inconclusive.
  r = One({"nan", "0/0", {}, 1});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_EQ(r.message, "nan: value is NaN");

  // When: several series / Then: Inconclusive.
  r = One({"many", R"({__name__=~"rollgate_demo_.*"})", {}, 100});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_EQ(r.message, "many: query returned 2 series; aggregate it to one");

  // When: a range vector / Then: Inconclusive.
  r = One({"range", "rollgate_demo_jobs_total[5s]", {}, 100});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_NE(r.message.find("range vector"), std::string::npos) << r.message;

  // When: a PromQL error / Then: Inconclusive with Prometheus' error.
  r = One({"typo", "sum(rollgate_demo_jobs_total", {}, 100});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_NE(r.message.find("typo: prometheus error bad_data (HTTP 400): "), std::string::npos)
      << r.message;
  EXPECT_NE(r.message.find("parse error"), std::string::npos) << r.message;
}

TEST_F(PrometheusAnalysisE2E, SampleAggregatesEveryCheck) {
  // Given: two checks that hold.
  const std::vector<Check> checks = {
      {"error-rate", "rollgate_demo_errors_ratio", {}, 0.01},
      {"jobs", "rollgate_demo_jobs_total", 1, {}},
  };

  // When: both are sampled (the address with a trailing slash) / Then: Pass.
  SampleResult r = client_->Sample(Url() + "/", checks);
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.Summary();
  EXPECT_EQ(r.Summary(), "Pass: error-rate = 0.002 (max 0.01); jobs = 42 (min 1)");

  // When: one passes and one has no data / Then: Inconclusive.
  r = client_->Sample(Url(), {checks[0], {"absent", "absent_metric_xyz", {}, 1}});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive) << r.Summary();

  // When: one has no data and one fails / Then: Fail.
  r = client_->Sample(Url(), {{"absent", "absent_metric_xyz", {}, 1},
                              {"error-rate", "rollgate_demo_errors_ratio", {}, 0.001}});
  EXPECT_EQ(r.outcome, SampleOutcome::kFail) << r.Summary();
  EXPECT_EQ(r.Summary(), "Fail: absent: query returned no data; error-rate = 0.002 > max 0.001");
}

TEST_F(PrometheusAnalysisE2E, AddressPathPrefixIsKept) {
  // Given: a Prometheus behind a path prefix (--web.route-prefix, a reverse proxy): the static
  // server answers /prefix/api/v1/query from a file, whatever the query string.
  const auto file = std::filesystem::path(Ctx().dir) / "www" / "prefix" / "api" / "v1" / "query";
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << R"({"status":"success","data":{"resultType":"scalar","result":[1,"7"]}})";

  // When
  SampleResult r =
      client_->Sample(Ctx().prometheus.metrics_url() + "/prefix", {{"prefixed", "anything", 7, 7}});

  // Then
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.Summary();
  EXPECT_EQ(r.Summary(), "Pass: prefixed = 7 (min 7, max 7)");
}

TEST_F(PrometheusAnalysisE2E, UnreachablePrometheusIsInconclusive) {
  // Given: a loopback port nothing listens on.
  LoopbackListener closed(LoopbackListener::Mode::kClosed);
  ASSERT_NE(closed.port(), 0);
  const std::string address = "http://127.0.0.1:" + std::to_string(closed.port());

  // When
  const auto start = steady_clock::now();
  SampleResult r = Client(seconds(5), {address})
                       ->Sample(address, {{"error-rate", "rollgate_demo_errors_ratio", {}, 1}});

  // Then: inconclusive at once.
  EXPECT_LT(steady_clock::now() - start, seconds(5));
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_FALSE(r.checks[0].value.has_value());
  EXPECT_EQ(r.checks[0].message.rfind("error-rate: prometheus unreachable: ", 0), 0u)
      << r.checks[0].message;
}

TEST_F(PrometheusAnalysisE2E, SilentPrometheusIsInconclusiveWithinTheTimeout) {
  // Given: a server that accepts connections and never answers, and a 1.5 s client timeout.
  LoopbackListener silent(LoopbackListener::Mode::kSilent);
  ASSERT_NE(silent.port(), 0);
  const std::string address = "http://127.0.0.1:" + std::to_string(silent.port());
  auto client = Client(milliseconds(1500), {address});

  // When
  const auto start = steady_clock::now();
  SampleResult r = client->Sample(address, {{"error-rate", "rollgate_demo_errors_ratio", {}, 1}});
  const auto elapsed = steady_clock::now() - start;

  // Then: inconclusive once the timeout passed.
  EXPECT_GE(elapsed, milliseconds(1400));
  EXPECT_LT(elapsed, milliseconds(4000));
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].message.rfind("error-rate: prometheus unreachable: ", 0), 0u)
      << r.checks[0].message;
}

TEST_F(PrometheusAnalysisE2E, AnAddressNoEndpointAllowsIsNeverQueried) {
  // Given: a client allowed only the suite's Prometheus under a path prefix that is not its own.
  auto client = Client(seconds(5), {Url() + "/allowed-prefix"});

  // When: the real Prometheus' own address is sampled
  SampleResult r = client->Sample(Url(), {{"error-rate", "rollgate_demo_errors_ratio", {}, 1}});

  // Then: inconclusive, not queried (a query that holds would pass).
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_NE(r.checks[0].message.find("is not an allowed analysis endpoint; not queried"),
            std::string::npos)
      << r.checks[0].message;
}

// The same real Prometheus behind its own TLS and basic auth (--web.config.file): the client
// trusts only the endpoint's CA file and sends the credentials from its files.
class PrometheusTlsAnalysisE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Suite& s = Ctx();
    s.dir = e2e::MakeTempDir("rollgate-prometheus-tls-e2e");
    if (s.dir.empty()) {
      s.error = "mkdtemp failed";
      return;
    }
    s.error = s.prometheus.Start(s.dir, /*tls=*/true);
  }
  static void TearDownTestSuite() {
    Suite& s = Ctx();
    if (s.dir.empty()) return;
    s.prometheus.Stop();
    std::error_code ec;
    std::filesystem::remove_all(s.dir, ec);
  }
  void SetUp() override { ASSERT_TRUE(Ctx().error.empty()) << Ctx().error; }

  struct Suite {
    std::string dir;
    e2e::PrometheusScript prometheus;
    std::string error;
  };
  static Suite& Ctx() {
    static auto* s = new Suite();  // never destroyed: outlives every test
    return *s;
  }
  static const e2e::PrometheusScript& Prom() { return Ctx().prometheus; }

  static SampleResult SampleWith(const AnalysisEndpoint& endpoint) {
    PrometheusClientOptions o;
    o.timeout = seconds(5);
    o.endpoints = {endpoint};
    return NewPrometheusClient(std::move(o))
        ->Sample(Prom().url(), {{"error-rate", "rollgate_demo_errors_ratio", {}, 0.01}});
  }
};

TEST_F(PrometheusTlsAnalysisE2E, HttpsWithTheCaAndBasicCredentialsPasses) {
  // When
  SampleResult r = SampleWith(
      {Prom().url(), Prom().ca_file(), "", Prom().username_file(), Prom().password_file()});
  // Then
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.Summary();
  EXPECT_EQ(r.Summary(), "Pass: error-rate = 0.002 (max 0.01)");
}

TEST_F(PrometheusTlsAnalysisE2E, WrongCredentialsAreInconclusiveAndNeverShown) {
  // Given: the right user with a wrong password.
  const std::string wrong = Ctx().dir + "/wrong-password";
  std::ofstream(wrong) << "not-the-password-42";
  // When
  SampleResult r = SampleWith({Prom().url(), Prom().ca_file(), "", Prom().username_file(), wrong});
  // Then: Prometheus' 401, without the password anywhere.
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].message.rfind("error-rate: prometheus answered HTTP 401", 0), 0u)
      << r.checks[0].message;
  EXPECT_EQ(r.Summary().find("not-the-password-42"), std::string::npos) << r.Summary();
}

TEST_F(PrometheusTlsAnalysisE2E, AnotherCaIsRefused) {
  // Given: a CA that did not sign Prometheus' certificate (the controller never falls back to the
  // system store).
  const std::string other_ca = Ctx().dir + "/other-ca.crt";
  std::string out;
  ASSERT_EQ(e2e::RunCommand(
                {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-subj", "/CN=other", "-keyout", Ctx().dir + "/other-ca.key", "-out", other_ca},
                out),
            0)
      << out;
  // When
  SampleResult r =
      SampleWith({Prom().url(), other_ca, "", Prom().username_file(), Prom().password_file()});
  // Then
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].message.rfind("error-rate: prometheus unreachable: ", 0), 0u)
      << r.checks[0].message;
}

}  // namespace
}  // namespace rollgate::rollout
