// The rollout engine end to end: the real rollgate-controller binary, run as a child process
// (so that it can be SIGKILLed and restarted), against the real local control plane of the e2e
// fixture (kube-apiserver, kube-controller-manager, scheduler, kwok pods). Each test is one
// scenario of the DESIGN's "Rollout semantics" and "Security" sections, in its own namespaces
// (prefix rg-<pid>-<random>), with Deployments of 2 replicas named like the split-image example.
//
// To keep the suite short on a small machine the scenarios that can share a controller are
// provisioned together in SetUpTestSuite (only those selected by --gtest_filter) and progress in
// parallel under one controller (--allowed-registries=registry.example.com); each test then
// drives and checks its own scenario. The kill/restart test stops that controller first (two
// controllers must never act on one rollout) and runs its own, namespace-scoped one.
//
// Needs: KUBECONFIG (the fixture's cluster), ROLLGATE_CONTROLLER_BIN (the controller binary),
// ROLLGATE_CRD (crds/rollgate.io_containerrollouts.yaml), CONTROL_PLANE_BIN (kubectl, for the
// server-side apply of the CRD). Controller logs go to ROLLGATE_E2E_LOG_DIR (default: a
// directory under the working directory); a failing test prints the lines about its scenario.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "controller/kube/rest_client.h"
#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/controller.h"
#include "tests/e2e/support/log_reader.h"
#include "tests/e2e/support/rollout_checks.h"
#include "tests/e2e/support/scenario.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {
namespace {

namespace resources = kube::resources;

// ---- images ------------------------------------------------------------------------------------

constexpr const char* kBackend1 = "registry.example.com/app/backend:1.9.0";
constexpr const char* kBackend2 = "registry.example.com/app/backend:2.0.0";
constexpr const char* kBackend3 = "registry.example.com/app/backend:3.0.0";
constexpr const char* kWorkerCpu1 = "registry.example.com/app/worker-cpu:1.9.0";
constexpr const char* kWorkerCpu2 = "registry.example.com/app/worker-cpu:2.0.0";
constexpr const char* kWorkerGpu1 = "registry.example.com/app/worker-gpu:1.9.0";
constexpr const char* kWorkerGpu2 = "registry.example.com/app/worker-gpu:2.0.0";
// Pods of an image whose reference contains "never-ready" run but never become Ready
// (hack/cluster/stages/chaos-pod-never-ready.yaml).
constexpr const char* kBackendNeverReady = "registry.example.com/app/backend:2.0.0-never-ready";

const std::map<std::string, std::string>& NewImages() {
  static const std::map<std::string, std::string> images = {
      {"backend", kBackend2}, {"worker-cpu", kWorkerCpu2}, {"worker-gpu", kWorkerGpu2}};
  return images;
}

// ---- suite-wide state --------------------------------------------------------------------------

struct Suite {
  std::string prefix;  // of every namespace this run creates
  std::filesystem::path log_dir;
  std::map<std::string, Scenario> scenarios;  // by test name
  std::unique_ptr<ControllerProcess> shared;  // the shared controller
  std::string shared_log;
  std::string setup_error;
};

Suite& G() {
  static auto* s = new Suite();  // never destroyed: outlives every test
  return *s;
}

// The shared controller: cluster-wide, images from registry.example.com only.
std::string StartSharedController() {
  G().shared = std::make_unique<ControllerProcess>("shared", G().shared_log);
  return G().shared->Start({"--log-level=debug", "--allowed-registries=registry.example.com"});
}

// SIGTERM, then the controller must exit with code 0 within 5 s (graceful shutdown).
void StopSharedController() {
  if (G().shared) G().shared->Stop(seconds(5));
  G().shared.reset();
}

// ---- scenarios ---------------------------------------------------------------------------------

Scenario NewScenario(const std::string& suffix) {
  Scenario s;
  s.ns = G().prefix + "-" + suffix;
  s.namespaces[s.ns] = "";
  s.log = G().shared_log;
  return s;
}

// dev/staging/prod in three namespaces that opt in to rollouts from the rollout's namespace; an
// API Deployment (backend image) and a worker Deployment (CPU worker in dev, GPU worker later).
Scenario HappyScenario() {
  Scenario s = NewScenario("happy");
  std::vector<Environment> envs;
  for (const char* env : {"dev", "staging", "prod"}) {
    const std::string ns = s.ns + "-" + env;
    s.namespaces[ns] = s.ns;
    const bool dev = std::string(env) == "dev";
    AddDeployment(s, std::string(env) + "-api", ns, "api", {{"api", kBackend1}});
    AddDeployment(s, std::string(env) + "-worker", ns, "worker",
                  {{"worker", dev ? kWorkerCpu1 : kWorkerGpu1}});
    envs.push_back({env,
                    ns,
                    false,
                    {{"api", {{"api", "backend"}}},
                     {"worker", {{"worker", dev ? "worker-cpu" : "worker-gpu"}}}}});
  }
  SetRollout(s, NewImages(), envs);
  return s;
}

// dev (a CPU worker, healthy) then staging, whose new backend image never becomes ready.
Scenario DeadlineScenario() {
  Scenario s = NewScenario("deadline");
  AddDeployment(s, "dev-worker", s.ns, "dev-worker", {{"worker", kWorkerCpu1}});
  AddDeployment(s, "staging-api", s.ns, "staging-api", {{"api", kBackend1}});
  AddDeployment(s, "staging-worker", s.ns, "staging-worker", {{"worker", kWorkerGpu1}});
  SetRollout(
      s,
      {{"backend", kBackendNeverReady}, {"worker-cpu", kWorkerCpu2}, {"worker-gpu", kWorkerGpu2}},
      {{"dev", "", false, {{"dev-worker", {{"worker", "worker-cpu"}}}}},
       {"staging",
        "",
        false,
        {{"staging-api", {{"api", "backend"}}}, {"staging-worker", {{"worker", "worker-gpu"}}}}}},
      30);
  return s;
}

// dev, staging (manual approval: holds there), prod; one API Deployment each.
Scenario RespecScenario() {
  Scenario s = NewScenario("respec");
  std::vector<Environment> envs;
  for (const char* env : {"dev", "staging", "prod"}) {
    AddDeployment(s, std::string(env) + "-api", s.ns, std::string(env) + "-api",
                  {{"api", kBackend1}});
    envs.push_back({env,
                    "",
                    std::string(env) == "staging",
                    {{std::string(env) + "-api", {{"api", "backend"}}}}});
  }
  SetRollout(s, {{"backend", kBackend2}}, envs);
  return s;
}

// dev and staging, both with manual approval; one API Deployment each.
Scenario ApprovalScenario() {
  Scenario s = NewScenario("approval");
  AddDeployment(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  AddDeployment(s, "staging-api", s.ns, "staging-api", {{"api", kBackend1}});
  SetRollout(s, {{"backend", kBackend2}},
             {{"dev", "", true, {{"dev-api", {{"api", "backend"}}}}},
              {"staging", "", true, {{"staging-api", {{"api", "backend"}}}}}});
  return s;
}

// One environment whose new backend never becomes ready; the default 600 s deadline keeps it in
// Verifying until the test aborts it.
Scenario AbortScenario() {
  Scenario s = NewScenario("abort");
  AddDeployment(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  AddDeployment(s, "dev-worker", s.ns, "dev-worker", {{"worker", kWorkerCpu1}});
  SetRollout(s, {{"backend", kBackendNeverReady}, {"worker-cpu", kWorkerCpu2}},
             {{"dev",
               "",
               false,
               {{"dev-api", {{"api", "backend"}}}, {"dev-worker", {{"worker", "worker-cpu"}}}}}});
  return s;
}

// One environment with manual approval.
Scenario AbortHeldScenario() {
  Scenario s = NewScenario("abort-held");
  AddDeployment(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  SetRollout(s, {{"backend", kBackend2}}, {{"dev", "", true, {{"dev-api", {{"api", "backend"}}}}}});
  return s;
}

// dev targets dev-api and dev-late; dev-late is created by the test after the failure.
Scenario RetryScenario() {
  Scenario s = NewScenario("retry");
  AddDeployment(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  SetRollout(s, {{"backend", kBackend2}, {"worker-cpu", kWorkerCpu2}},
             {{"dev",
               "",
               false,
               {{"dev-api", {{"api", "backend"}}}, {"dev-late", {{"worker", "worker-cpu"}}}}}});
  return s;
}

// The target namespace exists but does not carry rollgate.io/allow-rollouts-from.
Scenario OptInScenario() {
  Scenario s = NewScenario("optin");
  const std::string other = s.ns + "-other";
  s.namespaces[other] = "";
  AddDeployment(s, "api", other, "api", {{"api", kBackend1}});
  SetRollout(s, {{"backend", kBackend2}}, {{"dev", other, false, {{"api", {{"api", "backend"}}}}}});
  return s;
}

// dev targets dev-api and "ghost", which does not exist.
Scenario NoDeploymentScenario() {
  Scenario s = NewScenario("nodeploy");
  AddDeployment(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  SetRollout(
      s, {{"backend", kBackend2}},
      {{"dev", "", false, {{"dev-api", {{"api", "backend"}}}, {"ghost", {{"api", "backend"}}}}}});
  return s;
}

// dev targets a container "sidecar" that dev-api does not have.
Scenario NoContainerScenario() {
  Scenario s = NewScenario("nocontainer");
  AddDeployment(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  SetRollout(s, {{"backend", kBackend2}, {"worker-cpu", kWorkerCpu2}},
             {{"dev", "", false, {{"dev-api", {{"api", "backend"}, {"sidecar", "worker-cpu"}}}}}});
  return s;
}

// An image reference the CRD accepts (any non-empty string) but that is not valid: uppercase
// repository.
Scenario InvalidScenario() {
  Scenario s = NewScenario("invalid");
  AddDeployment(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  SetRollout(s, {{"backend", "registry.example.com/App:1"}},
             {{"dev", "", false, {{"dev-api", {{"api", "backend"}}}}}});
  return s;
}

// The shared controller runs with --allowed-registries=registry.example.com.
Scenario RegistryScenario() {
  Scenario s = NewScenario("registry");
  AddDeployment(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  SetRollout(s, {{"backend", "docker.io/library/nginx:1"}},
             {{"dev", "", false, {{"dev-api", {{"api", "backend"}}}}}});
  return s;
}

// Test name -> the scenario it checks, for the scenarios that share the suite's controller.
const std::vector<std::pair<std::string, std::function<Scenario()>>>& SharedScenarios() {
  static const auto* list = new std::vector<std::pair<std::string, std::function<Scenario()>>>{
      {"ManualApprovalHoldsUntilPromoteAnnotationChanges", ApprovalScenario},
      {"SpecChangeMidRolloutStartsRevisionTwoAtFirstEnvironment", RespecScenario},
      {"AbortDuringNeverReadyEnvironmentRollsBackAndEndsAborted", AbortScenario},
      {"AbortWhileAwaitingApprovalEndsAbortedAndStaysAborted", AbortHeldScenario},
      {"RetryRestartsFailedEnvironment", RetryScenario},
      {"HappyPathAcrossThreeEnvironmentsPatchesEachDeploymentOnce", HappyScenario},
      {"NeverReadyTargetHitsProgressDeadlineAndRollsBack", DeadlineScenario},
      {"CrossNamespaceTargetWithoutOptInFailsUntouched", OptInScenario},
      {"MissingDeploymentFailsBeforeAnyPatch", NoDeploymentScenario},
      {"MissingContainerFailsBeforeAnyPatch", NoContainerScenario},
      {"InvalidImageReferenceIsInvalidSpecWithoutRequeueLoop", InvalidScenario},
      {"ImageFromRegistryNotAllowedFailsUntouched", RegistryScenario},
  };
  return *list;
}

// ---- the fixture -------------------------------------------------------------------------------

class RolloutE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { G().setup_error = SetUpSuite(); }

  static std::string SetUpSuite() {
    Suite& g = G();
    if (std::string err = RequireEnv(
            {"KUBECONFIG", "ROLLGATE_CONTROLLER_BIN", "ROLLGATE_CRD", "CONTROL_PLANE_BIN"});
        !err.empty()) {
      return err;
    }
    Cluster& cluster = Cluster::Get();
    if (std::string err = cluster.Connect(); !err.empty()) return err;
    g.prefix = UniquePrefix("rg");
    g.log_dir = LogDir("rollout-e2e-logs-" + g.prefix);
    g.shared_log = (g.log_dir / "shared-controller.log").string();
    std::cout << "[rollout e2e] namespaces " << g.prefix << "-*, controller logs in "
              << g.log_dir.string() << std::endl;

    if (std::string err = cluster.ApplyCrd("rollgate-rollout-e2e"); !err.empty()) return err;

    // Provision the shared scenarios of the tests that will run, then start their controller.
    std::set<std::string> selected;
    const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
    for (int i = 0; suite != nullptr && i < suite->total_test_count(); ++i) {
      const auto* info = suite->GetTestInfo(i);
      if (info->should_run()) selected.insert(info->name());
    }
    std::vector<Scenario*> to_provision;
    for (const auto& [test, make] : SharedScenarios()) {
      if (suite != nullptr && !selected.contains(test)) continue;
      g.scenarios[test] = make();
      to_provision.push_back(&g.scenarios[test]);
    }
    if (to_provision.empty()) return "";
    const auto t0 = steady_clock::now();
    if (std::string err = Provision(to_provision); !err.empty()) return err;
    if (std::string err = StartSharedController(); !err.empty()) {
      return "start the controller: " + err;
    }
    std::cout << "[rollout e2e] " << to_provision.size() << " scenarios provisioned in "
              << std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0).count()
              << " ms; shared controller pid " << g.shared->pid() << std::endl;
    return "";
  }

  static void TearDownTestSuite() {
    StopSharedController();
    if (Cluster::Get().connected()) Cluster::Get().DeleteNamespaces();
  }

  void SetUp() override {
    ASSERT_EQ(G().setup_error, "") << "suite setup failed";
    auto it = G().scenarios.find(TestName());
    if (it != G().scenarios.end()) {
      ASSERT_TRUE(G().shared && G().shared->Running())
          << "the shared controller is not running; see " << G().shared_log;
    }
  }

  void TearDown() override {
    auto it = G().scenarios.find(TestName());
    if (it == G().scenarios.end()) return;
    const Scenario& s = it->second;
    if (G().shared && s.log == G().shared_log) {
      EXPECT_TRUE(G().shared->Running()) << "the shared controller exited; see " << G().shared_log;
    }
    if (HasFailure()) ReportScenario(s, (G().log_dir / (TestName() + ".log")).string());
  }

  // Given: the test's scenario, provisioned in SetUpTestSuite and progressing under the shared
  // controller.
  static Scenario& Given() {
    static Scenario none;
    auto it = G().scenarios.find(TestName());
    if (it == G().scenarios.end()) {
      ADD_FAILURE() << "no scenario provisioned for " << TestName();
      return none;
    }
    return it->second;
  }
};

// ---- 5a: manual approval -----------------------------------------------------------------------

TEST_F(RolloutE2E, ManualApprovalHoldsUntilPromoteAnnotationChanges) {
  // Given: dev and staging, both with manual approval.
  Scenario& s = Given();

  // When: nothing promotes dev yet / Then: dev is held, untouched.
  auto r = WaitRollout(s, "dev AwaitingApproval", EnvPhaseIs("dev", "AwaitingApproval"));
  ASSERT_TRUE(r);
  EXPECT_EQ(Str(*r, "status.phase"), "AwaitingApproval");
  ExpectCondition(*r, "Progressing", "True", "AwaitingApproval");
  ExpectCondition(*r, "Ready", "False", "");
  ExpectRolloutStays(
      s, "dev held in AwaitingApproval (no promote annotation yet)",
      [](const Json& x) { return EnvField(x, "dev", "phase") == "AwaitingApproval"; }, seconds(2));
  ExpectUntouched(s.deps["dev-api"]);
  WaitEvent(s, "Normal", "AwaitingApproval");

  // When: the promote annotation is set / Then: dev rolls out, staging is held.
  Annotate(s, "rollgate.io/promote", "first");
  r = WaitRollout(s, "dev Succeeded and staging AwaitingApproval", [](const Json& x) {
    return EnvField(x, "dev", "phase") == "Succeeded" &&
           EnvField(x, "staging", "phase") == "AwaitingApproval";
  });
  ASSERT_TRUE(r);
  EXPECT_NE(EnvField(*r, "dev", "approvedAt"), "");
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");
  // Then: the same promote value acts once: staging stays held.
  ExpectRolloutStays(
      s, "staging held while rollgate.io/promote keeps its old value",
      [](const Json& x) { return EnvField(x, "staging", "phase") == "AwaitingApproval"; },
      seconds(2));
  ExpectUntouched(s.deps["staging-api"]);

  // When: the promote annotation changes / Then: staging rolls out; the rollout succeeds.
  Annotate(s, "rollgate.io/promote", "second");
  r = WaitPhase(s, "Succeeded");
  ASSERT_TRUE(r);
  EXPECT_NE(EnvField(*r, "staging", "approvedAt"), "");
  ExpectRuns(s.deps["staging-api"], {{"api", kBackend2}}, 1, "1");
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  EXPECT_GE(CountEvents(Events(s), "Normal", "Promoted"), 2) << RenderEvents(Events(s));
}

// ---- 4: spec change mid-rollout ----------------------------------------------------------------

TEST_F(RolloutE2E, SpecChangeMidRolloutStartsRevisionTwoAtFirstEnvironment) {
  // Given: revision 1 done in dev and held at staging (manual approval).
  Scenario& s = Given();
  auto r = WaitRollout(s, "dev Succeeded, staging AwaitingApproval", [](const Json& x) {
    return EnvField(x, "dev", "phase") == "Succeeded" &&
           EnvField(x, "staging", "phase") == "AwaitingApproval";
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 1);
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");

  // When: the spec's image changes.
  SetImage(s, "backend", kBackend3);

  // Then: revision 2 starts over at dev and is held at staging again.
  bool saw_restart_at_dev = false;
  r = WaitRollout(s, "revision 2 held again at staging", [&](const Json& x) {
    if (Int(x, "status.revision") == 2 && Str(x, "status.currentEnvironment") == "dev") {
      saw_restart_at_dev = true;
    }
    return Int(x, "status.revision") == 2 && EnvField(x, "dev", "phase") == "Succeeded" &&
           EnvField(x, "staging", "phase") == "AwaitingApproval";
  });
  ASSERT_TRUE(r);
  std::cout << "[rollout e2e] observed revision 2 at environment dev while polling: "
            << (saw_restart_at_dev ? "yes" : "no (it was faster than the 100 ms poll)")
            << std::endl;
  // Revision 2 redid dev: its previous images are revision 1's images.
  EXPECT_EQ(PreviousImages(*r, "dev", "dev-api"),
            (std::map<std::string, std::string>{{"api", kBackend2}}));
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend3}}, 2, "2");
  ExpectUntouched(s.deps["staging-api"]);
  ExpectUntouched(s.deps["prod-api"]);
  if (auto ev = WaitEvent(s, "Normal", "NewRevision")) {
    EXPECT_NE(Str(*ev, "message").find("revision 2 started at environment dev"), std::string::npos)
        << Str(*ev, "message");
  }

  // When: staging is promoted / Then: revision 2 completes everywhere.
  Annotate(s, "rollgate.io/promote", "rev2");
  r = WaitPhase(s, "Succeeded");
  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 2);
  EXPECT_EQ(Int(*r, "status.observedGeneration"), Int(*r, "metadata.generation"));
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend3}}, 2, "2");
  ExpectRuns(s.deps["staging-api"], {{"api", kBackend3}}, 1, "2");
  ExpectRuns(s.deps["prod-api"], {{"api", kBackend3}}, 1, "2");
  EXPECT_EQ(PreviousImages(*r, "prod", "prod-api"),
            (std::map<std::string, std::string>{{"api", kBackend1}}));
  ExpectCondition(*r, "Ready", "True", "Succeeded");
}

// ---- 5b: abort during a never-ready environment -------------------------------------------------

TEST_F(RolloutE2E, AbortDuringNeverReadyEnvironmentRollsBackAndEndsAborted) {
  // Given: dev patched to an image whose pods never become ready.
  Scenario& s = Given();
  auto r = WaitRollout(s, "dev Verifying (patched, waiting for never-ready pods)",
                       EnvPhaseIs("dev", "Verifying"));
  ASSERT_TRUE(r);
  ExpectRuns(s.deps["dev-api"], {{"api", kBackendNeverReady}}, 1, "1");
  ExpectRolloutStays(s, "dev still Verifying (its new pods never become ready)",
                     EnvPhaseIs("dev", "Verifying"), seconds(2));

  // When: the rollout is aborted.
  Annotate(s, "rollgate.io/abort", "stop");

  // Then: dev is rolled back and the rollout ends Aborted.
  r = WaitPhase(s, "Aborted", seconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "phase"), "RolledBack");
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "Aborted");
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend1}}, 2, "1-rollback");
  ExpectRuns(s.deps["dev-worker"], {{"worker", kWorkerCpu1}}, 2, "1-rollback");
  WaitDeploymentAvailable(s.deps["dev-api"], {{"api", kBackend1}});
  ExpectCondition(*r, "Ready", "False", "Aborted");
  ExpectCondition(*r, "Degraded", "True", "Aborted");
  WaitEvent(s, "Warning", "Aborted");
  WaitEvent(s, "Normal", "RolledBack");
}

// ---- 5b': abort while an environment awaits approval -------------------------------------------

TEST_F(RolloutE2E, AbortWhileAwaitingApprovalEndsAbortedAndStaysAborted) {
  // Given: dev held for approval.
  Scenario& s = Given();
  ASSERT_TRUE(WaitRollout(s, "dev AwaitingApproval", EnvPhaseIs("dev", "AwaitingApproval")));

  // When: the rollout is aborted.
  Annotate(s, "rollgate.io/abort", "stop");

  // Then: it ends Aborted without touching dev.
  auto r = WaitPhase(s, "Aborted", seconds(30));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "Aborted");
  ExpectCondition(*r, "Degraded", "True", "Aborted");
  ExpectUntouched(s.deps["dev-api"]);
  WaitEvent(s, "Warning", "Aborted");

  // When: a promote arrives afterwards / Then: Aborted is terminal: the environment does not
  // start (only a retry restarts an aborted rollout).
  Annotate(s, "rollgate.io/promote", "late");
  ExpectRolloutStays(
      s, "phase Aborted after a late promote",
      [](const Json& x) { return Str(x, "status.phase") == "Aborted"; }, seconds(3));
  ExpectUntouched(s.deps["dev-api"]);
}

// ---- 5c: retry a failed environment ------------------------------------------------------------

TEST_F(RolloutE2E, RetryRestartsFailedEnvironment) {
  // Given: dev failed because one of its Deployments did not exist.
  Scenario& s = Given();
  auto r = WaitPhase(s, "Failed");
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "DeploymentNotFound");
  EXPECT_EQ(EnvField(*r, "dev", "attempts").size(), 0u);
  ExpectUntouched(s.deps["dev-api"]);

  // When: the cause is fixed (the Deployment created), then the rollout retried.
  Workload late{s.ns, "dev-late", {{"worker", kWorkerCpu1}}, "", 0};
  auto created = Cluster::Get().client().Create(resources::Deployments(), late.ns, late.Object());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  late.generation = Int(*created, "metadata.generation");
  s.deps["dev-late"] = late;
  WaitDeploymentAvailable(late, late.images);
  Annotate(s, "rollgate.io/retry", "1");

  // Then: dev restarts (attempt 1) and succeeds.
  r = WaitPhase(s, "Succeeded", seconds(90), [](const Json& x) {
    const Json* e = EnvStatus(x, "dev");
    return e != nullptr && Int(*e, "attempts", 0) >= 1;
  });
  ASSERT_TRUE(r);
  const Json* env = EnvStatus(*r, "dev");
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(Int(*env, "attempts", 0), 1) << StatusOf(*r);
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");
  ExpectRuns(late, {{"worker", kWorkerCpu2}}, 1, "1");
  EXPECT_EQ(PreviousImages(*r, "dev", "dev-late"),
            (std::map<std::string, std::string>{{"worker", kWorkerCpu1}}));
  WaitEvent(s, "Normal", "Retry");
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  ExpectCondition(*r, "Degraded", "False", "");
}

// ---- 1: happy path -----------------------------------------------------------------------------

TEST_F(RolloutE2E, HappyPathAcrossThreeEnvironmentsPatchesEachDeploymentOnce) {
  // Given: dev, staging, prod in namespaces that opt in; no approval.
  Scenario& s = Given();

  // When: the controller runs the rollout to its end.
  auto r = WaitPhase(s, "Succeeded", seconds(120));

  // Then: every environment succeeded in order, each Deployment patched exactly once.
  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 1);
  EXPECT_EQ(Int(*r, "status.observedGeneration"), Int(*r, "metadata.generation"));
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  ExpectCondition(*r, "Progressing", "False", "");
  ExpectCondition(*r, "Degraded", "False", "");
  std::string previous_finish;
  for (const char* env : {"dev", "staging", "prod"}) {
    SCOPED_TRACE(env);
    EXPECT_EQ(EnvField(*r, env, "phase"), "Succeeded");
    const std::string started = EnvField(*r, env, "startedAt");
    const std::string finished = EnvField(*r, env, "finishedAt");
    EXPECT_NE(started, "");
    EXPECT_NE(finished, "");
    // Strictly in order (RFC 3339 UTC strings compare chronologically).
    EXPECT_LE(previous_finish, started) << "an environment started before the previous finished";
    previous_finish = finished;
    const bool dev = std::string(env) == "dev";
    EXPECT_EQ(PreviousImages(*r, env, "api"),
              (std::map<std::string, std::string>{{"api", kBackend1}}));
    EXPECT_EQ(PreviousImages(*r, env, "worker"),
              (std::map<std::string, std::string>{{"worker", dev ? kWorkerCpu1 : kWorkerGpu1}}));
    const Json* t = Find(*EnvStatus(*r, env), "targets", "deployment", "api");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(Int(*t, "updatedReplicas"), 2);
    EXPECT_EQ(Int(*t, "readyReplicas"), 2);
    ExpectRuns(s.deps[std::string(env) + "-api"], {{"api", kBackend2}}, 1, "1");
    ExpectRuns(s.deps[std::string(env) + "-worker"], {{"worker", dev ? kWorkerCpu2 : kWorkerGpu2}},
               1, "1");
    WaitDeploymentAvailable(s.deps[std::string(env) + "-api"], {{"api", kBackend2}});
  }
  for (const auto& [name, d] : s.deps) {
    EXPECT_EQ(CountLog(s.log, "patched deployment images", "deployment=" + d.Key()), 1) << d.Key();
  }
  WaitEvent(s, "Normal", "RolloutSucceeded");
  const auto events = Events(s);
  EXPECT_EQ(CountEvents(events, "Normal", "RolloutStarted"), 1) << RenderEvents(events);
  EXPECT_EQ(CountEvents(events, "Normal", "EnvironmentStarted"), 3) << RenderEvents(events);
  EXPECT_EQ(CountEvents(events, "Normal", "EnvironmentSucceeded"), 3) << RenderEvents(events);
  for (const auto& e : events) EXPECT_EQ(Str(e, "type"), "Normal") << RenderEvents(events);
}

// ---- 2: a target that never becomes ready ------------------------------------------------------

TEST_F(RolloutE2E, NeverReadyTargetHitsProgressDeadlineAndRollsBack) {
  // Given: dev healthy, then staging's new backend never ready, with a 30 s progress deadline.
  Scenario& s = Given();

  // When: the deadline passes.
  auto r = WaitPhase(s, "RolledBack", seconds(150));

  // Then: staging is rolled back after the deadline; dev keeps the new images.
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "phase"), "Succeeded");
  EXPECT_EQ(EnvField(*r, "staging", "phase"), "RolledBack");
  EXPECT_EQ(EnvField(*r, "staging", "reason"), "ProgressDeadlineExceeded");
  EXPECT_EQ(Str(*r, "status.currentEnvironment"), "staging");
  EXPECT_EQ(PreviousImages(*r, "staging", "staging-api"),
            (std::map<std::string, std::string>{{"api", kBackend1}}));
  // The deadline (30 s) passed before the environment failed.
  const auto started = EnvTime(*r, "staging", "startedAt");
  const auto finished = EnvTime(*r, "staging", "finishedAt");
  EXPECT_GE(finished - started, seconds(30)) << StatusOf(*r);
  // Earlier environments keep the new images; the failed one is restored.
  ExpectRuns(s.deps["dev-worker"], {{"worker", kWorkerCpu2}}, 1, "1");
  ExpectRuns(s.deps["staging-api"], {{"api", kBackend1}}, 2, "1-rollback");
  ExpectRuns(s.deps["staging-worker"], {{"worker", kWorkerGpu1}}, 2, "1-rollback");
  WaitDeploymentAvailable(s.deps["staging-api"], {{"api", kBackend1}});
  ExpectCondition(*r, "Ready", "False", "RolledBack");
  ExpectCondition(*r, "Degraded", "True", "ProgressDeadlineExceeded");
  WaitEvent(s, "Warning", "ProgressDeadlineExceeded");
  WaitEvent(s, "Warning", "RollingBack");
  WaitEvent(s, "Normal", "RolledBack");

  // When: the rollout is retried / Then: the rolled-back environment restarts (attempt 2):
  // previous images recorded again, the never-ready image patched in again.
  Annotate(s, "rollgate.io/retry", "1");
  r = WaitRollout(s, "staging restarted by the retry", [](const Json& x) {
    const Json* env = EnvStatus(x, "staging");
    return env != nullptr && Int(*env, "attempts", 0) == 1 && Str(*env, "phase") == "Verifying";
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(Str(*r, "status.phase"), "Progressing");
  EXPECT_EQ(EnvField(*r, "dev", "phase"), "Succeeded") << "retry restarts only the failed one";
  EXPECT_EQ(PreviousImages(*r, "staging", "staging-api"),
            (std::map<std::string, std::string>{{"api", kBackend1}}));
  ExpectRuns(s.deps["staging-api"], {{"api", kBackendNeverReady}}, 3, "1");
  ExpectRuns(s.deps["dev-worker"], {{"worker", kWorkerCpu2}}, 1, "1");

  // When: it is aborted / Then: it rolls back again.
  Annotate(s, "rollgate.io/abort", "1");
  r = WaitPhase(s, "Aborted", seconds(60));
  ASSERT_TRUE(r);
  ExpectRuns(s.deps["staging-api"], {{"api", kBackend1}}, 4, "1-rollback");
}

// ---- 6: namespace opt-in -----------------------------------------------------------------------

TEST_F(RolloutE2E, CrossNamespaceTargetWithoutOptInFailsUntouched) {
  // Given: a target in a namespace without rollgate.io/allow-rollouts-from.
  Scenario& s = Given();

  // When
  auto r = WaitPhase(s, "Failed", seconds(60));

  // Then: NamespaceNotPermitted, nothing recorded or changed.
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "NamespaceNotPermitted");
  EXPECT_NE(EnvField(*r, "dev", "message").find("rollgate.io/allow-rollouts-from=" + s.ns),
            std::string::npos)
      << EnvField(*r, "dev", "message");
  EXPECT_TRUE(PreviousImages(*r, "dev", "api").empty()) << "nothing may be recorded or changed";
  ExpectUntouched(s.deps["api"]);
  ExpectCondition(*r, "Ready", "False", "Failed");
  ExpectCondition(*r, "Degraded", "True", "NamespaceNotPermitted");
  WaitEvent(s, "Warning", "NamespaceNotPermitted");
}

// ---- 7: missing Deployment / container ---------------------------------------------------------

TEST_F(RolloutE2E, MissingDeploymentFailsBeforeAnyPatch) {
  // Given: one of dev's targets does not exist.
  Scenario& s = Given();

  // When
  auto r = WaitPhase(s, "Failed", seconds(60));

  // Then: DeploymentNotFound, the existing target untouched.
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "DeploymentNotFound");
  EXPECT_NE(EnvField(*r, "dev", "message").find(s.ns + "/ghost"), std::string::npos);
  EXPECT_TRUE(PreviousImages(*r, "dev", "dev-api").empty());
  ExpectUntouched(s.deps["dev-api"]);
  ExpectCondition(*r, "Degraded", "True", "DeploymentNotFound");
  WaitEvent(s, "Warning", "DeploymentNotFound");
}

TEST_F(RolloutE2E, MissingContainerFailsBeforeAnyPatch) {
  // Given: dev's target lacks one of the containers the rollout names.
  Scenario& s = Given();

  // When
  auto r = WaitPhase(s, "Failed", seconds(60));

  // Then: ContainerNotFound, the target untouched.
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "ContainerNotFound");
  EXPECT_NE(EnvField(*r, "dev", "message").find("sidecar"), std::string::npos);
  ExpectUntouched(s.deps["dev-api"]);
  ExpectCondition(*r, "Degraded", "True", "ContainerNotFound");
  WaitEvent(s, "Warning", "ContainerNotFound");
}

// ---- 8: what only the controller can check -----------------------------------------------------

TEST_F(RolloutE2E, InvalidImageReferenceIsInvalidSpecWithoutRequeueLoop) {
  // Given: an image reference the CRD accepts but that is not valid.
  Scenario& s = Given();

  // When: the controller sees it / Then: Ready=False InvalidSpec, the target untouched.
  auto r = WaitRollout(s, "Ready=False reason InvalidSpec", [](const Json& x) {
    const Json* c = Find(x, "status.conditions", "type", "Ready");
    return c != nullptr && Str(*c, "reason") == "InvalidSpec";
  });
  ASSERT_TRUE(r);
  ExpectCondition(*r, "Ready", "False", "InvalidSpec");
  EXPECT_NE(Str(*r, "status.message").find("spec.images.backend"), std::string::npos)
      << StatusOf(*r);
  EXPECT_EQ(Int(*r, "status.observedGeneration"), Int(*r, "metadata.generation"));
  ExpectUntouched(s.deps["dev-api"]);

  // Then: no requeue loop: the object stays exactly as it is and no reconcile fails.
  const std::string rv = Str(*r, "metadata.resourceVersion");
  const int events_before = CountEvents(Events(s), "Warning", "InvalidSpec");
  ExpectRolloutStays(
      s, "resourceVersion " + rv,
      [&](const Json& x) { return Str(x, "metadata.resourceVersion") == rv; }, seconds(5));
  const int events_after = CountEvents(Events(s), "Warning", "InvalidSpec");
  EXPECT_EQ(CountLog(s.log, "reconcile failed; will retry", "rollout=" + s.Key()), 0);
  EXPECT_EQ(CountLog(s.log, "reconcile failed; not retrying", "rollout=" + s.Key()), 0);

  // When: a target's change makes the controller look at the rollout again (a label, as a
  // Deployment's metadata.generation also counts annotation changes) / Then: the spec is still
  // the same invalid one, so nothing new may be reported (the Warning was already recorded).
  auto touched = Cluster::Get().client().Patch(
      resources::Deployments(), s.deps["dev-api"].ns, s.deps["dev-api"].name,
      kube::PatchType::kMerge, R"({"metadata":{"labels":{"e2e.rollgate.io/touch":"1"}}})", {});
  ASSERT_TRUE(touched.ok()) << touched.status().ToString();
  ExpectRolloutStays(
      s, "resourceVersion " + rv + " after a target Deployment changed",
      [&](const Json& x) { return Str(x, "metadata.resourceVersion") == rv; }, seconds(2));
  const auto events = Events(s);
  std::cout << "[rollout e2e] InvalidSpec events recorded: before the 5 s window " << events_before
            << ", after it " << events_after << ", after a target changed "
            << CountEvents(events, "Warning", "InvalidSpec") << std::endl;
  EXPECT_EQ(CountEvents(events, "Warning", "InvalidSpec"), 1)
      << "one invalid spec, one InvalidSpec event: the controller re-records the Warning on "
         "every reconcile of an unchanged invalid spec"
      << RenderEvents(events);

  // When: the spec is fixed / Then: revision 1 starts and succeeds.
  SetImage(s, "backend", kBackend2);
  r = WaitRollout(s, "phase Succeeded after the fix",
                  [](const Json& x) { return Str(x, "status.phase") == "Succeeded"; });
  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 1);
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");
}

// ---- 9: --allowed-registries -------------------------------------------------------------------

TEST_F(RolloutE2E, ImageFromRegistryNotAllowedFailsUntouched) {
  // Given: an image from docker.io; the controller allows registry.example.com only.
  Scenario& s = Given();

  // When
  auto r = WaitPhase(s, "Failed", seconds(60));

  // Then: ImageNotAllowed, naming both registries; the target untouched.
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "ImageNotAllowed");
  const std::string msg = EnvField(*r, "dev", "message");
  EXPECT_NE(msg.find("docker.io"), std::string::npos) << msg;
  EXPECT_NE(msg.find("registry.example.com"), std::string::npos) << msg;
  ExpectUntouched(s.deps["dev-api"]);
  ExpectCondition(*r, "Degraded", "True", "ImageNotAllowed");
  WaitEvent(s, "Warning", "ImageNotAllowed");
}

// ---- 3: SIGKILL between the status write and the patch, and after the patch --------------------

// What the API shows about one environment of the kill scenario.
struct KillState {
  int env_index = -1;     // of status.currentEnvironment
  std::string env_phase;  // of the environment watched
  bool previous = false;  // previousImages recorded for every target of it
  int patched = 0;        // its Deployments carrying rollgate.io/revision=1
  std::string Describe(int targets) const {
    std::string out = "environment phase " + (env_phase.empty() ? "(none)" : env_phase) +
                      ", previousImages " + (previous ? "recorded" : "absent") + ", " +
                      std::to_string(patched) + "/" + std::to_string(targets) + " patched";
    if (env_phase == "Updating" && previous && patched == 0) {
      out = "A (after the status write, before any patch): " + out;
    } else if (env_phase == "Updating" && patched > 0 && patched < targets) {
      out = "B (between two patches): " + out;
    } else if (env_phase == "Updating" && patched == targets) {
      out = "C (after the patches, before the status write): " + out;
    }
    return out;
  }
};

// dev, staging, prod in the scenario's namespace, an API and a worker Deployment each.
Scenario KillScenario() {
  Scenario s = NewScenario("kill");
  s.log = (G().log_dir / "kill-restart-controller.log").string();
  std::vector<Environment> envs;
  for (const std::string env : {"dev", "staging", "prod"}) {
    const bool dev = env == "dev";
    AddDeployment(s, env + "-api", s.ns, env + "-api", {{"api", kBackend1}});
    AddDeployment(s, env + "-worker", s.ns, env + "-worker",
                  {{"worker", dev ? kWorkerCpu1 : kWorkerGpu1}});
    envs.push_back({env,
                    "",
                    false,
                    {{env + "-api", {{"api", "backend"}}},
                     {env + "-worker", {{"worker", dev ? "worker-cpu" : "worker-gpu"}}}}});
  }
  SetRollout(s, NewImages(), envs);
  return s;
}

TEST_F(RolloutE2E, KilledBetweenStatusWriteAndPatchAndAfterPatchPatchesOnce) {
  // Given: a three-environment rollout and a controller of its own (two controllers must never
  // act on one rollout), with a slow API budget (4 requests/s, no burst) that spaces its writes
  // ~250 ms apart, so the test can see each instant through the API and SIGKILL it right there.
  StopSharedController();
  G().scenarios[TestName()] = KillScenario();  // for the log extract on failure
  ASSERT_EQ(Provision({&G().scenarios[TestName()]}), "");
  Scenario s = G().scenarios[TestName()];
  const std::vector<std::string> envs = {"dev", "staging", "prod"};
  const std::vector<std::string> flags = {"--log-level=debug", "--namespace=" + s.ns,
                                          "--kube-qps=4", "--kube-burst=1"};
  ControllerProcess ctl("kill-restart", s.log);
  int runs = 0;
  auto ensure_running = [&]() {
    if (ctl.Running()) return;
    ASSERT_EQ(ctl.Start(flags), "");
    ++runs;
  };
  auto observe = [&](size_t env_index) {
    KillState st;
    const Json r = GetRollout(s);
    const std::string current = Str(r, "status.currentEnvironment");
    for (size_t i = 0; i < envs.size(); ++i) {
      if (envs[i] == current) st.env_index = static_cast<int>(i);
    }
    const std::string& env = envs[env_index];
    st.env_phase = EnvField(r, env, "phase");
    st.previous = !PreviousImages(r, env, env + "-api").empty() &&
                  !PreviousImages(r, env, env + "-worker").empty();
    for (const char* kind : {"-api", "-worker"}) {
      const Json d = GetDeployment(s.deps[env + kind]);
      if (RevisionAnnotation(d) == "1") ++st.patched;
    }
    return st;
  };

  // When: per environment, the controller is SIGKILLed once it wrote Updating with previous
  // images and 0, 1, then 2 of the 2 targets patched, restarted each time, then left to finish.
  std::vector<std::string> hits;
  std::vector<std::string> missed;
  int hit_a = 0;
  int hit_after_patch = 0;
  for (size_t e = 0; e < envs.size(); ++e) {
    for (int want_patched = 0; want_patched <= 2; ++want_patched) {
      ensure_running();
      const std::string target =
          envs[e] + ": Updating with " + std::to_string(want_patched) + "/2 patched";
      const auto deadline = steady_clock::now() + seconds(60);
      bool killed = false;
      bool passed = false;
      while (!killed && !passed && steady_clock::now() < deadline) {
        const KillState st = observe(e);
        if (st.env_phase == "Updating" && st.previous && st.patched == want_patched) {
          ASSERT_TRUE(ctl.Kill(target)) << "the controller survived SIGKILL";
          killed = true;
        } else if (st.env_index > static_cast<int>(e) ||
                   (st.env_phase != "" && st.env_phase != "Pending" &&
                    st.env_phase != "Updating") ||
                   (st.env_phase == "Updating" && st.patched > want_patched)) {
          passed = true;
        }
        ASSERT_TRUE(killed || ctl.Running()) << "the controller exited on its own; see " << s.log;
      }
      if (!killed) {
        missed.push_back(target + (passed ? " (went past it)" : " (timed out)"));
        continue;
      }
      // The state the controller was killed in, as the API server has it.
      const KillState after = observe(e);
      const std::string what = envs[e] + ": " + after.Describe(2);
      hits.push_back(what);
      if (what.find(": A (") != std::string::npos) ++hit_a;
      if (what.find(": B (") != std::string::npos || what.find(": C (") != std::string::npos) {
        ++hit_after_patch;
      }
    }
  }
  ensure_running();
  auto r = WaitPhase(s, "Succeeded", seconds(120));
  ctl.Stop(seconds(5));

  // Then: both kinds of instants were hit, and the rollout ends exactly as an undisturbed one:
  // every Deployment patched once.
  std::cout << "[rollout e2e] controller runs: " << runs << "; SIGKILL instants hit:\n";
  for (const auto& h : hits) std::cout << "  " << h << "\n";
  for (const auto& m : missed) std::cout << "  missed " << m << "\n";
  std::cout << std::flush;
  ::testing::Test::RecordProperty("controller_runs", runs);
  ::testing::Test::RecordProperty("kills", static_cast<int>(hits.size()));
  EXPECT_GE(hit_a, 1) << "never killed between the status write and the patch";
  EXPECT_GE(hit_after_patch, 1) << "never killed after a patch";

  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 1);
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  for (const auto& env : envs) {
    SCOPED_TRACE(env);
    const bool dev = env == "dev";
    EXPECT_EQ(EnvField(*r, env, "phase"), "Succeeded");
    EXPECT_EQ(PreviousImages(*r, env, env + "-api"),
              (std::map<std::string, std::string>{{"api", kBackend1}}));
    EXPECT_EQ(PreviousImages(*r, env, env + "-worker"),
              (std::map<std::string, std::string>{{"worker", dev ? kWorkerCpu1 : kWorkerGpu1}}));
    ExpectRuns(s.deps[env + "-api"], {{"api", kBackend2}}, 1, "1");
    ExpectRuns(s.deps[env + "-worker"], {{"worker", dev ? kWorkerCpu2 : kWorkerGpu2}}, 1, "1");
  }
  // A second, identical patch would not bump the generation: count the patches in the log too
  // (0 when the kill came after the API server applied a patch but before the line was written).
  for (const auto& [name, d] : s.deps) {
    EXPECT_LE(CountLog(s.log, "patched deployment images", "deployment=" + d.Key()), 1) << d.Key();
  }
}

}  // namespace
}  // namespace rollgate::e2e
