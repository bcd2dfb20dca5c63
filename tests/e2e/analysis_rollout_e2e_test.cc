// Canary analysis end to end: the real rollgate-controller on the local control plane queries a
// real Prometheus (tests/e2e/prometheus.sh, scraping a static exposition on loopback). A query that
// holds lets the environment succeed after `samples` samples; one that does not fails it with
// AnalysisFailed and rolls it back; an unreachable Prometheus is inconclusive, never a pass, and
// fails it with AnalysisInconclusive after `samples` attempts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "controller/common/clock.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/rest_client.h"
#include "tests/e2e/rollout_e2e_support.h"

namespace rollgate::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string EnvVar(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): test set-up
  return v == nullptr ? std::string() : std::string(v);
}

std::string Script() {
  return (std::filesystem::path(__FILE__).parent_path() / "prometheus.sh").string();
}

struct Suite {
  std::string error;
  std::string prom_dir;
  std::string prometheus_url;
  std::string ns;
  std::unique_ptr<kube::RestClient> client;
  ChildProcess controller;
  std::string controller_log;
  RealClock clock;
};

Suite& Ctx() {
  static Suite* s = new Suite();
  return *s;
}

std::string StartSuite() {
  Suite& s = Ctx();
  const std::string kubeconfig = EnvVar("KUBECONFIG");
  const std::string bin = EnvVar("ROLLGATE_CONTROLLER_BIN");
  const std::string crd = EnvVar("ROLLGATE_CRD");
  const std::string kubectl = EnvVar("CONTROL_PLANE_BIN") + "/kubectl";
  if (kubeconfig.empty() || bin.empty() || crd.empty()) {
    return "KUBECONFIG, ROLLGATE_CONTROLLER_BIN and ROLLGATE_CRD must be set by ctest";
  }
  std::string out;
  if (RunCommand({kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side",
                  "--force-conflicts", "-f", crd},
                 out) != 0) {
    return "applying the CRD failed: " + out;
  }
  (void)RunCommand({kubectl, "--kubeconfig", kubeconfig, "wait", "--for=condition=Established",
                    "crd/containerrollouts.rollgate.io", "--timeout=60s"},
                   out);
  char templ[] = "/tmp/rollgate-analysis-e2e.XXXXXX";
  if (::mkdtemp(templ) == nullptr) return "mkdtemp failed";
  s.prom_dir = templ;
  if (RunCommand(
          {"/bin/bash", Script(), "start", s.prom_dir, "--owner", std::to_string(::getpid())},
          out) != 0) {
    return "prometheus.sh start failed: " + out;
  }
  for (size_t pos = 0; pos < out.size();) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    const std::string line = out.substr(pos, nl - pos);
    if (line.rfind("PROMETHEUS_URL=", 0) == 0) s.prometheus_url = line.substr(15);
    pos = nl + 1;
  }
  if (s.prometheus_url.empty()) return "prometheus.sh printed no PROMETHEUS_URL: " + out;

  auto cfg = kube::LoadKubeconfig({kubeconfig, ""});
  if (!cfg.ok()) return cfg.status().ToString();
  auto c = kube::RestClient::FromConfig(*cfg, s.clock, {});
  if (!c.ok()) return c.status().ToString();
  s.client = std::move(c).value();
  s.ns = "e2e-analysis-" + std::to_string(::getpid());
  auto created = s.client->Create(kube::resources::Namespaces(), "",
                                  Obj({{"apiVersion", Json::string("v1")},
                                       {"kind", Json::string("Namespace")},
                                       {"metadata", Obj({{"name", Json::string(s.ns)}})}}));
  if (!created.ok()) return created.status().ToString();
  for (int i = 0; i < 100; ++i) {
    if (s.client->Get(kube::ResourceType::Core("v1", "serviceaccounts"), s.ns, "default").ok()) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  s.controller_log = s.prom_dir + "/controller.log";
  return s.controller.Start({bin, "--kubeconfig", kubeconfig, "--namespace", s.ns,
                             "--metrics-bind-address=0", "--health-probe-bind-address=0"},
                            s.controller_log);
}

class AnalysisRolloutE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { error_ = new std::string(StartSuite()); }
  static void TearDownTestSuite() {
    Suite& s = Ctx();
    s.controller.Signal(SIGTERM);
    (void)s.controller.Wait(seconds(10));
    if (s.client) {
      kube::DeleteOptions d;
      d.propagation_policy = "Background";
      (void)s.client->Delete(kube::resources::Namespaces(), "", s.ns, d);
    }
    if (!s.prom_dir.empty()) {
      std::string out;
      (void)RunCommand({"/bin/bash", Script(), "stop", s.prom_dir}, out);
    }
  }
  void SetUp() override { ASSERT_TRUE(error_->empty()) << *error_; }

  static Json Deployment(const std::string& name) {
    return Json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")" +
                       name + R"("},"spec":{"replicas":1,"selector":{"matchLabels":{"app":")" +
                       name + R"("}},"template":{"metadata":{"labels":{"app":")" + name +
                       R"("}},"spec":{"containers":[{"name":"worker","image":)"
                       R"("registry.example.com/app/worker-gpu:1.0.0"}]}}}})");
  }

  // Creates a Deployment and a one-environment rollout whose analysis runs `query` within
  // [.., max] against `address`; returns the rollout's final status.
  static Json RunRollout(const std::string& name, const std::string& address,
                         const std::string& query, double max) {
    Suite& s = Ctx();
    EXPECT_TRUE(s.client->Create(kube::resources::Deployments(), s.ns, Deployment(name)).ok());
    const std::string rollout =
        R"({"apiVersion":"rollgate.io/v1alpha1","kind":"ContainerRollout","metadata":{"name":")" +
        name +
        R"("},"spec":{"images":{"worker":"registry.example.com/app/worker-gpu:2.0.0"},)"
        R"("environments":[{"name":"canary","targets":[{"deployment":")" +
        name + R"(","containers":{"worker":"worker"}}],"analysis":{"prometheus":{"address":")" +
        address + R"("},"checks":[{"name":"error-rate","query":")" + query + R"(","max":)" +
        std::to_string(max) + R"(}],"intervalSeconds":1,"samples":3}}]}})";
    auto created =
        s.client->Create(kube::resources::ContainerRollouts(), s.ns, Json::parse(rollout));
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    const auto deadline = std::chrono::steady_clock::now() + seconds(90);
    Json last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto got = s.client->Get(kube::resources::ContainerRollouts(), s.ns, name);
      if (got.ok()) {
        last = *got;
        const std::string phase = Str(last, "status.phase");
        if (phase == "Succeeded" || phase == "Failed" || phase == "RolledBack") return last;
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    ADD_FAILURE() << name << " did not finish; last status: " << last.serialize();
    return last;
  }

  static std::string DeploymentImage(const std::string& name) {
    auto d = Ctx().client->Get(kube::resources::Deployments(), Ctx().ns, name);
    return d.ok() ? Str(*d, "spec.template.spec.containers.0.image") : "";
  }

  static inline std::string* error_ = nullptr;
};

TEST_F(AnalysisRolloutE2E, QueryThatHoldsPassesAfterEverySample) {
  Json st = RunRollout("holds", Ctx().prometheus_url, "rollgate_demo_errors_ratio", 0.01);
  EXPECT_EQ(Str(st, "status.phase"), "Succeeded") << st.serialize();
  EXPECT_EQ(Int(st, "status.environments.0.analysis.samples"), 3);
  EXPECT_EQ(Int(st, "status.environments.0.analysis.passed"), 3);
  EXPECT_EQ(DeploymentImage("holds"), "registry.example.com/app/worker-gpu:2.0.0");
}

TEST_F(AnalysisRolloutE2E, QueryOutOfBoundsFailsAndRollsBack) {
  Json st = RunRollout("breaks", Ctx().prometheus_url, "rollgate_demo_errors_ratio", 0.001);
  EXPECT_EQ(Str(st, "status.phase"), "RolledBack") << st.serialize();
  EXPECT_EQ(Str(st, "status.environments.0.reason"), "AnalysisFailed");
  EXPECT_NE(Str(st, "status.environments.0.message").find("> max 0.001"), std::string::npos)
      << Str(st, "status.environments.0.message");
  EXPECT_EQ(DeploymentImage("breaks"), "registry.example.com/app/worker-gpu:1.0.0");
}

TEST_F(AnalysisRolloutE2E, UnreachablePrometheusIsInconclusiveNeverAPass) {
  Json st = RunRollout("unreachable", "http://127.0.0.1:1", "rollgate_demo_errors_ratio", 0.01);
  EXPECT_EQ(Str(st, "status.phase"), "RolledBack") << st.serialize();
  EXPECT_EQ(Str(st, "status.environments.0.reason"), "AnalysisInconclusive");
  EXPECT_EQ(Int(st, "status.environments.0.analysis.inconclusive"), 3);
  EXPECT_EQ(Int(st, "status.environments.0.analysis.passed"), 0);
  EXPECT_EQ(DeploymentImage("unreachable"), "registry.example.com/app/worker-gpu:1.0.0");
}

}  // namespace
}  // namespace rollgate::e2e
