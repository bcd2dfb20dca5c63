// Canary analysis end to end: the real rollgate-controller on the local control plane queries a
// real Prometheus (tests/e2e/prometheus.sh, scraping a static exposition on loopback). A query that
// holds lets the environment succeed after `samples` samples; one that does not fails it with
// AnalysisFailed and rolls it back; an unreachable Prometheus is inconclusive, never a pass, and
// fails it with AnalysisInconclusive after `samples` attempts; an address the operator did not
// list (--analysis-endpoints-file) fails the environment AnalysisEndpointNotAllowed before any
// change, and no connection ever reaches it.
// Needs: KUBECONFIG, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD, CONTROL_PLANE_BIN (ctest sets them).
// Thread-safety: single-threaded tests.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include "controller/kube/rest_client.h"
#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/controller.h"
#include "tests/e2e/support/prometheus.h"
#include "tests/e2e/support/rollout_checks.h"
#include "tests/e2e/support/scenario.h"
#include "tests/fakes/loopback.h"

namespace rollgate::e2e {
namespace {

constexpr const char* kWorker1 = "registry.example.com/app/worker-gpu:1.0.0";
constexpr const char* kWorker2 = "registry.example.com/app/worker-gpu:2.0.0";

struct Suite {
  std::string ns;
  std::string dir;  // prometheus.sh's directory (removed by its stop), the controller's log
  PrometheusScript prometheus;
  std::unique_ptr<ControllerProcess> controller;
};

Suite& Ctx() {
  static auto* s = new Suite();  // never destroyed: outlives every test
  return *s;
}

// The suite's controller (one namespace, no HTTP endpoints) and Prometheus.
std::string StartSuite() {
  Suite& s = Ctx();
  Cluster& cluster = Cluster::Get();
  if (std::string err = RequireEnv(
          {"KUBECONFIG", "ROLLGATE_CONTROLLER_BIN", "ROLLGATE_CRD", "CONTROL_PLANE_BIN"});
      !err.empty()) {
    return err;
  }
  if (std::string err = cluster.Connect(); !err.empty()) return err;
  if (std::string err = cluster.ApplyCrd(); !err.empty()) return err;
  s.dir = MakeTempDir("rollgate-analysis-e2e");
  if (s.dir.empty()) return "mkdtemp failed";
  if (std::string err = s.prometheus.Start(s.dir); !err.empty()) return err;
  s.ns = "e2e-analysis-" + std::to_string(::getpid());
  if (std::string err = cluster.CreateNamespace(s.ns); !err.empty()) return err;
  (void)cluster.WaitForServiceAccount(s.ns, Deadline(seconds(10)));
  // The operator's allow-list: the suite's Prometheus and a closed port; nothing else.
  const std::string endpoints = s.dir + "/analysis-endpoints.json";
  std::ofstream(endpoints) << R"({"endpoints": [{"url": ")" << s.prometheus.url()
                           << R"("}, {"url": "http://127.0.0.1:1"}]})";
  s.controller = std::make_unique<ControllerProcess>("analysis", s.dir + "/controller.log");
  return s.controller->Start({"--namespace", s.ns, "--analysis-endpoints-file", endpoints},
                             Endpoint::kOff, Endpoint::kOff);
}

// A loopback TCP server that only counts the connections it accepts (and closes them).
class CountingListener {
 public:
  CountingListener() {
    const rollgate::testing::LoopbackListener l = rollgate::testing::ListenLoopback(16);
    fd_ = l.fd;
    port_ = l.port;
    if (fd_ < 0) return;
    thread_ = std::thread([this] {
      while (true) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // the listener was shut down
        ++accepted_;
        ::close(c);
      }
    });
  }
  CountingListener(const CountingListener&) = delete;
  CountingListener& operator=(const CountingListener&) = delete;
  ~CountingListener() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

class AnalysisRolloutE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { error_ = new std::string(StartSuite()); }
  static void TearDownTestSuite() {
    Suite& s = Ctx();
    if (s.controller) s.controller->Shutdown(seconds(10));
    if (Cluster::Get().connected()) Cluster::Get().DeleteNamespaces();
    s.prometheus.Stop();
  }
  void SetUp() override { ASSERT_TRUE(error_->empty()) << *error_; }

  // Given: a Deployment `name` running kWorker1 and a one-environment ("canary") rollout to
  // kWorker2 whose analysis checks `query` <= `max` 3 times, a second apart, against `address`.
  static Scenario GivenAnalyzedRollout(const std::string& name, const std::string& address,
                                       const std::string& query, double max) {
    Suite& s = Ctx();
    auto& client = Cluster::Get().client();
    EXPECT_TRUE(client
                    .Create(kube::resources::Deployments(), s.ns,
                            DeploymentBuilder(name).Container("worker", kWorker1).Build())
                    .ok());
    const Json rollout = RolloutBuilder(name)
                             .Image("worker", kWorker2)
                             .Env({"canary", "", false, {{name, {{"worker", "worker"}}}}})
                             .Analyze("canary", {address, {{"error-rate", query, max}}, 1, 3})
                             .Build();
    auto created = client.Create(kube::resources::ContainerRollouts(), s.ns, rollout);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return RolloutNamed(s.ns, name);
  }

  // When: the controller runs it to its end (up to 90 s); its final state.
  static Json WhenItFinishes(const Scenario& rollout) {
    return WaitRollout(rollout, "a terminal phase",
                       [](const Json& r) { return Terminal(Str(r, "status.phase")); })
        .value_or(Json::null());
  }

  static std::string DeploymentImage(const std::string& name) {
    return ContainerImages(GetDeployment({Ctx().ns, name, {}, "", 0}))["worker"];
  }

  static inline std::string* error_ = nullptr;
};

TEST_F(AnalysisRolloutE2E, QueryThatHoldsPassesAfterEverySample) {
  // Given
  const Scenario rollout =
      GivenAnalyzedRollout("holds", Ctx().prometheus.url(), "rollgate_demo_errors_ratio", 0.01);
  // When
  const Json st = WhenItFinishes(rollout);
  // Then
  EXPECT_EQ(Str(st, "status.phase"), "Succeeded") << st.serialize();
  EXPECT_EQ(Int(st, "status.environments.0.analysis.samples"), 3);
  EXPECT_EQ(Int(st, "status.environments.0.analysis.passed"), 3);
  EXPECT_EQ(DeploymentImage("holds"), kWorker2);
}

TEST_F(AnalysisRolloutE2E, QueryOutOfBoundsFailsAndRollsBack) {
  // Given
  const Scenario rollout =
      GivenAnalyzedRollout("breaks", Ctx().prometheus.url(), "rollgate_demo_errors_ratio", 0.001);
  // When
  const Json st = WhenItFinishes(rollout);
  // Then
  EXPECT_EQ(Str(st, "status.phase"), "RolledBack") << st.serialize();
  EXPECT_EQ(Str(st, "status.environments.0.reason"), "AnalysisFailed");
  EXPECT_NE(Str(st, "status.environments.0.message").find("> max 0.001"), std::string::npos)
      << Str(st, "status.environments.0.message");
  EXPECT_EQ(DeploymentImage("breaks"), kWorker1);
}

TEST_F(AnalysisRolloutE2E, UnreachablePrometheusIsInconclusiveNeverAPass) {
  // Given
  const Scenario rollout =
      GivenAnalyzedRollout("unreachable", "http://127.0.0.1:1", "rollgate_demo_errors_ratio", 0.01);
  // When
  const Json st = WhenItFinishes(rollout);
  // Then
  EXPECT_EQ(Str(st, "status.phase"), "RolledBack") << st.serialize();
  EXPECT_EQ(Str(st, "status.environments.0.reason"), "AnalysisInconclusive");
  EXPECT_EQ(Int(st, "status.environments.0.analysis.inconclusive"), 3);
  EXPECT_EQ(Int(st, "status.environments.0.analysis.passed"), 0);
  EXPECT_EQ(DeploymentImage("unreachable"), kWorker1);
}

TEST_F(AnalysisRolloutE2E, AddressNotAllowedFailsBeforeAnyChangeAndIsNeverRequested) {
  // Given: a server on loopback the operator did not list (an internal service, a metadata
  // endpoint: a tenant may name anything).
  CountingListener internal;
  ASSERT_NE(internal.port(), 0);
  const std::string address = "http://127.0.0.1:" + std::to_string(internal.port());
  const Scenario rollout =
      GivenAnalyzedRollout("ssrf", address, "rollgate_demo_errors_ratio", 0.01);
  // When
  const Json st = WhenItFinishes(rollout);
  // Then: the environment fails in pre-flight with the new reason, the Deployment is untouched,
  // and nothing ever connected to the server.
  EXPECT_EQ(Str(st, "status.phase"), "Failed") << st.serialize();
  EXPECT_EQ(Str(st, "status.environments.0.reason"), "AnalysisEndpointNotAllowed");
  EXPECT_NE(
      Str(st, "status.environments.0.message")
          .find("prometheus address \"" + address + "\" is not an endpoint the operator allows"),
      std::string::npos)
      << Str(st, "status.environments.0.message");
  EXPECT_EQ(DeploymentImage("ssrf"), kWorker1);
  EXPECT_EQ(internal.accepted(), 0);
}

}  // namespace
}  // namespace rollgate::e2e
