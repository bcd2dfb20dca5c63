// The write guard end to end on the real control plane (issue 13, reproduced failures 1-3): a
// rollback never writes into a namespace that withdrew its consent, never re-creates a container
// its owner renamed, and two rollouts never fight over one Deployment (the second fails
// TargetConflict and changes nothing; the claim is released when the first finishes). What the
// API server decides here: namespace labels read fresh, strategic-merge patches by container
// name, the resourceVersion precondition, metadata.generation counting every template change.
// Needs: KUBECONFIG, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD, CONTROL_PLANE_BIN.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "controller/kube/rest_client.h"
#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/controller.h"
#include "tests/e2e/support/rollout_checks.h"
#include "tests/e2e/support/scenario.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {
namespace {

namespace resources = kube::resources;
using std::chrono::seconds;

constexpr const char* kBackend1 = "registry.example.com/app/backend:1.9.0";
constexpr const char* kBackend3 = "registry.example.com/app/backend:3.0.0";
// Pods of this image run but never become Ready (hack/cluster/stages/chaos-pod-never-ready.yaml).
constexpr const char* kNeverReady = "registry.example.com/app/backend:2.0.0-never-ready";

// The Deployment's rollgate.io/owner claim ("" when none).
std::string Owner(const Json& d) {
  const auto annotations = StrMap(d, "metadata.annotations");
  auto it = annotations.find("rollgate.io/owner");
  return it == annotations.end() ? "" : it->second;
}

class GuardE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing =
        RequireEnv({"KUBECONFIG", "ROLLGATE_CONTROLLER_BIN", "ROLLGATE_CRD", "CONTROL_PLANE_BIN"});
    ASSERT_EQ(missing, "");
    Cluster& c = Cluster::Get();
    ASSERT_EQ(c.Connect(), "");
    ASSERT_EQ(c.ApplyCrd(), "");
    prefix_ = UniquePrefix("rg-guard");
    log_ = MakeTempDir("guard") + "/controller.log";
  }
  void TearDown() override {
    if (controller_) controller_->Stop(seconds(5));
    Cluster::Get().DeleteNamespaces();
  }

  // A cluster-wide controller (targets in other namespaces).
  void StartController() {
    controller_ = std::make_unique<ControllerProcess>("guard", log_);
    ASSERT_EQ(controller_->Start({"--log-level=debug"}), "");
  }

  // One environment "prod" in `target_ns` with Deployment api (container app).
  Scenario OneTarget(const std::string& ns, const std::string& target_ns, const std::string& image,
                     int deadline_s, const std::string& name = "app") {
    Scenario s;
    s.ns = ns;
    s.rollout = name;
    s.log = log_;
    s.namespaces[ns] = "";
    if (target_ns != ns) s.namespaces[target_ns] = ns;
    AddDeployment(s, "api", target_ns, "api", {{"app", kBackend1}});
    SetRollout(s, {{"backend", image}},
               {{"prod", target_ns == ns ? "" : target_ns, false, {{"api", {{"app", "backend"}}}}}},
               deadline_s);
    return s;
  }

  std::string prefix_;
  std::string log_;
  std::unique_ptr<ControllerProcess> controller_;
};

// Reproduced failure 1: team-b withdraws its consent while team-a's rollout verifies there; the
// abort's rollback must not patch team-b's Deployment.
TEST_F(GuardE2E, RollbackIntoANamespaceThatWithdrewItsConsentWritesNothing) {
  // Given: a rollout in team-a whose image for team-b never becomes ready, Verifying.
  const std::string team_a = prefix_ + "-a";
  const std::string team_b = prefix_ + "-b";
  Scenario s = OneTarget(team_a, team_b, kNeverReady, 600);
  ASSERT_EQ(Provision({&s}), "");
  StartController();
  auto r = WaitRollout(s, "prod Verifying", EnvPhaseIs("prod", "Verifying"), seconds(60));
  ASSERT_TRUE(r);
  ExpectRuns(s.deps["api"], {{"app", kNeverReady}}, 1, "1");

  // When: team-b removes the opt-in label, then the rollout is aborted.
  auto patched = Cluster::Get().client().Patch(
      resources::Namespaces(), "", team_b, kube::PatchType::kMerge,
      R"({"metadata":{"labels":{"rollgate.io/allow-rollouts-from":null}}})", {});
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  Annotate(s, "rollgate.io/abort", "now");

  // Then: the rollout fails NamespaceNotPermitted and team-b's Deployment keeps its generation.
  r = WaitPhase(s, "Failed", seconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "prod", "reason"), "NamespaceNotPermitted");
  EXPECT_NE(EnvField(*r, "prod", "message").find("rollback of " + team_b + "/api refused"),
            std::string::npos)
      << EnvField(*r, "prod", "message");
  EXPECT_EQ(PreviousImages(*r, "prod", "api"),
            (std::map<std::string, std::string>{{"app", kBackend1}}))
      << "the previous images stay recorded";
  ExpectRuns(s.deps["api"], {{"app", kNeverReady}}, 1, "1");
  WaitEvent(s, "Warning", "RollbackFailed");
}

// Reproduced failure 2: the target container is renamed by its owner mid-rollout; the rollback
// must not add a container with the old name next to the renamed one.
TEST_F(GuardE2E, AContainerRenamedMidRolloutIsNeverReCreatedByTheRollback) {
  const std::string ns = prefix_ + "-rename";
  Scenario s = OneTarget(ns, ns, kNeverReady, 600);
  ASSERT_EQ(Provision({&s}), "");
  StartController();
  auto r = WaitRollout(s, "prod Verifying", EnvPhaseIs("prod", "Verifying"), seconds(60));
  ASSERT_TRUE(r);

  // When: the owner renames container app to app2.
  auto patched = Cluster::Get().client().Patch(
      resources::Deployments(), ns, "api", kube::PatchType::kJsonPatch,
      R"([{"op":"test","path":"/spec/template/spec/containers/0/name","value":"app"},)"
      R"({"op":"replace","path":"/spec/template/spec/containers/0/name","value":"app2"}])",
      {});
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();

  // Then: ContainerNotFound names the container; the rollback is refused, nothing is added.
  r = WaitPhase(s, "Failed", seconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "prod", "reason"), "ContainerNotFound");
  EXPECT_NE(EnvField(*r, "prod", "message").find("\"app\""), std::string::npos)
      << EnvField(*r, "prod", "message");
  Json d = GetDeployment(s.deps["api"]);
  EXPECT_EQ(ContainerImages(d), (std::map<std::string, std::string>{{"app2", kNeverReady}}))
      << "no container was added";
  EXPECT_EQ(RevisionAnnotation(d), "1") << "no rollback patch was sent";
}

// Reproduced failure 3: rollout y is applied for x's Deployment while x verifies there. y fails
// TargetConflict and changes nothing; x goes on; once x has finished, y can take over.
TEST_F(GuardE2E, ASecondRolloutForAClaimedDeploymentFailsTargetConflictAndChangesNothing) {
  // Given: rollout x verifying a never-ready image on api.
  const std::string ns = prefix_ + "-claim";
  Scenario x = OneTarget(ns, ns, kNeverReady, 600, "x");
  ASSERT_EQ(Provision({&x}), "");
  StartController();
  auto r = WaitRollout(x, "x Verifying", EnvPhaseIs("prod", "Verifying"), seconds(60));
  ASSERT_TRUE(r);
  Json d = GetDeployment(x.deps["api"]);
  EXPECT_EQ(Owner(d), ns + "/x");

  // When: rollout y targets the same Deployment with another image.
  Scenario y = RolloutNamed(ns, "y", log_);
  y.deps = x.deps;
  y.object = RolloutBuilder("y")
                 .Namespace(ns)
                 .Image("backend", kBackend3)
                 .Env({"prod", "", false, {{"api", {{"app", "backend"}}}}})
                 .Build();
  auto created = Cluster::Get().client().Create(resources::ContainerRollouts(), ns, y.object);
  ASSERT_TRUE(created.ok()) << created.status().ToString();

  // Then: y fails TargetConflict naming x; the Deployment is not patched again; x goes on.
  r = WaitPhase(y, "Failed", seconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "prod", "reason"), "TargetConflict");
  EXPECT_NE(EnvField(*r, "prod", "message").find("claimed by rollout " + ns + "/x"),
            std::string::npos)
      << EnvField(*r, "prod", "message");
  ExpectRolloutStays(x, "x still Verifying", EnvPhaseIs("prod", "Verifying"), seconds(5));
  ExpectRuns(x.deps["api"], {{"app", kNeverReady}}, 1, "1");

  // When: x is aborted (restored: the claim no longer holds) and y is retried.
  Annotate(x, "rollgate.io/abort", "now");
  ASSERT_TRUE(WaitPhase(x, "Aborted", seconds(60)));
  ExpectRuns(x.deps["api"], {{"app", kBackend1}}, 2, "1-rollback");
  Annotate(y, "rollgate.io/retry", "1");

  // Then: y takes the Deployment over.
  r = WaitPhase(y, "Succeeded", seconds(90),
                [](const Json& o) { return Str(o, "status.phase") != "Failed"; });
  ASSERT_TRUE(r);
  d = GetDeployment(x.deps["api"]);
  EXPECT_EQ(ContainerImages(d), (std::map<std::string, std::string>{{"app", kBackend3}}));
  EXPECT_EQ(Owner(d), ns + "/y");
}

}  // namespace
}  // namespace rollgate::e2e
