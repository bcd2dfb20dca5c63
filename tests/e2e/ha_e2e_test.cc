// High availability and resilience end to end (issue 8): the real rollgate-controller binary, run
// as child processes, against the real local control plane of the e2e fixture.
//
//   1. Two replicas with --leader-elect: exactly one reconciles; SIGKILL of the leader mid rollout
//      → the standby takes over within the lease duration and the rollout finishes with each
//      Deployment patched once; SIGTERM of the new leader → a third replica takes over at once
//      (the lease is released on shutdown).
//   2. The API server stopped for 20 s in the middle of a rollout and started again (same data,
//      port and flags; etcd keeps running): the rollout completes, each Deployment patched once,
//      and the restarts are counted in rollgate_watch_restarts_total.
//   3. A seeded, bounded loop of 20 SIGKILLs at random instants across a three-environment
//      rollout, then a run to completion: the final state is exactly that of an undisturbed run.
//
// Each test prints its figures on lines starting with "[ha e2e]" (takeover after SIGKILL,
// hand-over after SIGTERM, recovery after the API-server outage, the random seed).
//
// Needs: KUBECONFIG, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD, CONTROL_PLANE_BIN (kubectl), and for
// the outage test ROLLGATE_CLUSTER_SH (hack/cluster.sh) and ROLLGATE_CLUSTER_DIR (ctest sets
// them all). ROLLGATE_HA_SEED fixes the random-kill seed. Controller logs go to
// ROLLGATE_E2E_LOG_DIR (default: a directory under the working directory).
// The outage test disturbs every client of the shared cluster: the ctest entry runs RUN_SERIAL,
// and the fixture starts the API server again even when the test fails.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "controller/kube/rest_client.h"
#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/controller.h"
#include "tests/e2e/support/log_reader.h"
#include "tests/e2e/support/net.h"
#include "tests/e2e/support/rollout_checks.h"
#include "tests/e2e/support/scenario.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {
namespace {

namespace resources = kube::resources;

constexpr const char* kBackend1 = "registry.example.com/app/backend:1.9.0";
constexpr const char* kBackend2 = "registry.example.com/app/backend:2.0.0";
constexpr const char* kWorker1 = "registry.example.com/app/worker-cpu:1.9.0";
constexpr const char* kWorker2 = "registry.example.com/app/worker-cpu:2.0.0";
constexpr const char* kPatchedMsg = "patched deployment images";
constexpr const char* kLeaseName = "rollgate-ha-e2e";

// The image each container runs once the rollout is done.
const std::string& NewImageOf(const std::string& container) {
  static const std::map<std::string, std::string> images = {{"api", kBackend2},
                                                            {"worker", kWorker2}};
  return images.at(container);
}

// Leader election timing of the HA test (seconds): lease > renew > 1.2 x retry.
constexpr double kLease = 4;
constexpr double kRenew = 3;
constexpr double kRetry = 0.5;

// ---- suite state --------------------------------------------------------------------------------

struct Suite {
  std::string prefix;
  std::filesystem::path log_dir;
  std::string setup_error;
};

Suite& G() {
  static auto* s = new Suite();  // never destroyed: outlives every test
  return *s;
}

// ---- the scenario: namespace, Deployments, rollout ----------------------------------------------

// dev, staging, prod; an api (backend image) and a worker Deployment in each, one namespace; every
// pod Ready after `ready_delay`.
Scenario ThreeEnvironments(const std::string& suffix, const std::string& ready_delay,
                           bool prod_manual) {
  Scenario s;
  s.ns = G().prefix + "-" + suffix;
  s.namespaces[s.ns] = "";
  std::vector<Environment> envs;
  for (const std::string e : {"dev", "staging", "prod"}) {
    AddDeployment(s, e + "-api", s.ns, e + "-api", {{"api", kBackend1}}, ready_delay);
    AddDeployment(s, e + "-worker", s.ns, e + "-worker", {{"worker", kWorker1}}, ready_delay);
    envs.push_back({e,
                    "",
                    prod_manual && e == "prod",
                    {{e + "-api", {{"api", "backend"}}}, {e + "-worker", {{"worker", "worker"}}}}});
  }
  SetRollout(s, {{"backend", kBackend2}, {"worker", kWorker2}}, envs);
  return s;
}

// Given: the scenario on the cluster (one deadline of 120 s for all of it).
std::string Provision(Scenario& s) {
  ProvisionTimeouts t;
  t.overall = seconds(120);
  return Provision({&s}, t);
}

std::string LeaseHolder(const std::string& ns) {
  return Cluster::Get().LeaseHolder(ns, kLeaseName);
}

// "staging/Verifying 1/2 patched" (the current environment as the API server has it).
std::string Where(const Scenario& s) {
  const Json r = GetRollout(s);
  if (r.is_null()) return "(rollout unreadable)";
  const std::string phase = Str(r, "status.phase");
  const std::string env = Str(r, "status.currentEnvironment");
  if (env.empty()) return phase.empty() ? "(no status yet)" : phase;
  int patched = 0;
  int targets = 0;
  for (const auto& e : s.envs) {
    if (e.name != env) continue;
    for (const auto& t : e.targets) {
      ++targets;
      if (RevisionAnnotation(GetDeployment(s.deps.at(t.deployment))) == "1") ++patched;
    }
  }
  return phase + " " + env + "/" + EnvPhase(r, env) + " " + std::to_string(patched) + "/" +
         std::to_string(targets) + " patched";
}

// Polls every `every` until pred() holds; false (after adding a failure naming `what` and the
// rollout's last status) on timeout.
bool WaitFor(const Scenario& s, const std::string& what, milliseconds timeout,
             const std::function<bool()>& pred, milliseconds every = milliseconds(100)) {
  return WaitUntil(what, timeout, pred, every,
                   [&] { return s.Key() + " rollout status: " + StatusOf(GetRollout(s)); });
}

// Then: the end state of an undisturbed run: Succeeded at revision 1, every environment
// Succeeded with the original images recorded as previous, every Deployment on the new image,
// patched exactly once (generation + 1), and at most one "patched" log line per Deployment across
// `logs`.
void ExpectCompleted(const Scenario& s, const Json& r, const std::vector<std::string>& logs) {
  EXPECT_EQ(Str(r, "status.phase"), "Succeeded") << StatusOf(r);
  EXPECT_EQ(Int(r, "status.revision"), 1);
  EXPECT_EQ(Int(r, "status.observedGeneration"), Int(r, "metadata.generation"));
  for (const auto& e : s.envs) {
    EXPECT_EQ(EnvPhase(r, e.name), "Succeeded") << e.name;
    for (const auto& t : e.targets) {
      const std::string& name = t.deployment;
      SCOPED_TRACE(name);
      const Workload& d = s.deps.at(name);
      const auto& [container, old_image] = *d.images.begin();
      EXPECT_EQ(PreviousImages(r, e.name, name),
                (std::map<std::string, std::string>{{container, old_image}}))
          << "previousImages of " << name;
      const Json got = GetDeployment(d);
      ASSERT_FALSE(got.is_null());
      EXPECT_EQ(Int(got, "metadata.generation"), d.generation + 1)
          << name << ": patched once per revision means exactly one pod-template change";
      const Json* c = At(got, "spec.template.spec.containers.0");
      ASSERT_NE(c, nullptr);
      EXPECT_EQ(Str(*c, "image"), NewImageOf(container));
      EXPECT_EQ(RevisionAnnotation(got), "1");
      int lines = 0;
      for (const auto& log : logs) lines += CountLog(log, kPatchedMsg, "deployment=" + d.Key());
      EXPECT_LE(lines, 1) << name << " was patched " << lines << " times (controller logs)";
    }
  }
}

// ---- the fixture --------------------------------------------------------------------------------

class HaE2E : public ::testing::Test {
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
    kube::RestClientOptions ro;
    ro.request_timeout = seconds(10);
    if (std::string err = cluster.Connect(ro); !err.empty()) return err;
    g.prefix = UniquePrefix("rg-ha");
    g.log_dir = LogDir("ha-e2e-logs-" + g.prefix);
    std::cout << "[ha e2e] namespaces " << g.prefix << "-*, controller logs in "
              << g.log_dir.string() << std::endl;
    return cluster.ApplyCrd("rollgate-ha-e2e");
  }

  static void TearDownTestSuite() {
    if (Cluster::Get().connected()) Cluster::Get().DeleteNamespaces();
  }

  void SetUp() override { ASSERT_EQ(G().setup_error, "") << "suite setup failed"; }

  void TearDown() override {
    Cluster& cluster = Cluster::Get();
    // Whatever happened, the shared cluster must be whole again for the tests that follow.
    if (api_server_stopped_) {
      std::cout << "[ha e2e] starting the API server again (fixture teardown)" << std::endl;
      EXPECT_EQ(
          cluster.ClusterSh({"start-component", EnvVar("ROLLGATE_CLUSTER_DIR"), "kube-apiserver"}),
          "");
      api_server_stopped_ = false;
    }
    if (check_nodes_) {
      const auto deadline = steady_clock::now() + seconds(90);
      while (!cluster.NodesReady() && steady_clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(200));
      }
      EXPECT_TRUE(cluster.NodesReady()) << "the cluster's nodes are not all Ready after the test";
    }
    for (auto& c : controllers_) {
      if (c->Running()) {
        c->Signal(SIGKILL);
        (void)c->Wait(seconds(10));
      }
    }
    if (!HasFailure()) return;
    for (auto& c : controllers_) {
      std::cout << "---- controller " << c->name() << " ----\n" << Tail(c->log(), 60);
    }
    std::cout << "---- end ----" << std::endl;
  }

  // A controller whose log is <log dir>/<test>-<name>.log and which TearDown kills if needed.
  ControllerProcess& NewController(const std::string& name) {
    controllers_.push_back(std::make_unique<ControllerProcess>(
        name, (G().log_dir / (TestName() + "-" + name + ".log")).string()));
    return *controllers_.back();
  }

  // Starts `c` at debug level with `flags`, its health endpoint off and its metrics on a loopback
  // port of its own (or off).
  static std::string StartController(ControllerProcess& c, const std::vector<std::string>& flags,
                                     bool with_metrics) {
    std::vector<std::string> all = {"--log-level=debug"};
    all.insert(all.end(), flags.begin(), flags.end());
    return c.Start(all, with_metrics ? Endpoint::kLoopback : Endpoint::kOff, Endpoint::kOff);
  }

  bool api_server_stopped_ = false;
  bool check_nodes_ = false;
  std::vector<std::unique_ptr<ControllerProcess>> controllers_;
};

// ---- 1: leader election: SIGKILL takeover, SIGTERM hand-over ------------------------------------

TEST_F(HaE2E, LeaderElectionFailoverPatchesOnceAndHandsOverOnSigterm) {
  // Given: three environments (prod held for approval), two leader-elected replicas.
  Scenario s = ThreeEnvironments("le", "2s", /*prod_manual=*/true);
  ASSERT_EQ(Provision(s), "");
  const std::vector<std::string> flags = {"--namespace=" + s.ns,
                                          "--leader-elect",
                                          "--leader-election-namespace=" + s.ns,
                                          std::string("--leader-election-id=") + kLeaseName,
                                          "--leader-election-lease-duration=" + Fixed(kLease, 1),
                                          "--leader-election-renew-deadline=" + Fixed(kRenew, 1),
                                          "--leader-election-retry-period=" + Fixed(kRetry, 1)};
  ControllerProcess& a = NewController("A");
  ControllerProcess& b = NewController("B");
  ASSERT_EQ(StartController(a, flags, true), "");
  ASSERT_EQ(StartController(b, flags, true), "");

  // When: one of them acquires the Lease.
  ControllerProcess* leader = nullptr;
  ControllerProcess* standby = nullptr;
  ASSERT_TRUE(WaitFor(s, "a replica to hold the Lease", seconds(30), [&] {
    const std::string h = LeaseHolder(s.ns);
    if (h == a.Identity()) {
      leader = &a;
      standby = &b;
    } else if (h == b.Identity()) {
      leader = &b;
      standby = &a;
    }
    return leader != nullptr;
  }));
  std::cout << "[ha e2e] leader " << leader->name() << " (" << leader->Identity() << "), standby "
            << standby->name() << " (" << standby->Identity() << ")" << std::endl;

  // Then, mid rollout (staging patched and waiting for its pods, 2 s readiness each): the Lease
  // stayed with the leader the whole time.
  bool lease_stable = true;
  ASSERT_TRUE(WaitFor(s, "staging Verifying", seconds(120), [&] {
    if (LeaseHolder(s.ns) != leader->Identity()) lease_stable = false;
    const Json r = GetRollout(s);
    return EnvPhase(r, "staging") == "Verifying" || Terminal(Str(r, "status.phase"));
  }));
  EXPECT_TRUE(lease_stable) << "the Lease changed hands while both replicas were healthy";
  ASSERT_EQ(EnvPhase(GetRollout(s), "staging"), "Verifying");
  ASSERT_TRUE(a.Running() && b.Running());

  // Then: exactly one reconciles: only the leader started workers and patched.
  EXPECT_EQ(leader->LeaderGauge(), 1);
  EXPECT_EQ(standby->LeaderGauge(), 0);
  EXPECT_EQ(CountLog(standby->log(), kPatchedMsg), 0) << "the standby patched Deployments";
  EXPECT_EQ(CountLog(standby->log(), "caches synced"), 0) << "the standby started its workers";
  for (const char* d : {"dev-api", "dev-worker", "staging-api", "staging-worker"}) {
    EXPECT_EQ(CountLog(leader->log(), kPatchedMsg, "deployment=" + s.ns + "/" + d), 1) << d;
  }

  // When: the leader is SIGKILLed / Then: the standby takes over once the lease has expired, not
  // before.
  const std::string where_killed = Where(s);
  const auto t_kill = steady_clock::now();
  leader->Kill();
  std::string holder;
  ASSERT_TRUE(WaitFor(
      s, "the standby to take the Lease", seconds(30),
      [&] {
        holder = LeaseHolder(s.ns);
        return holder != leader->Identity() && holder != "(unreadable)";
      },
      milliseconds(20)));
  const double takeover = SecondsSince(t_kill);
  std::cout << "[ha e2e] FIGURE takeover after SIGKILL of the leader: " << Fixed(takeover)
            << " s (lease " << Fixed(kLease, 1) << " s, renew deadline " << Fixed(kRenew, 1)
            << " s, retry " << Fixed(kRetry, 1) << " s; killed at " << where_killed << ")"
            << std::endl;
  ::testing::Test::RecordProperty("takeover_after_sigkill_ms", static_cast<int>(takeover * 1000));
  ASSERT_EQ(holder, standby->Identity());
  EXPECT_GE(takeover, kLease - kRetry - 0.5) << "taken over before the lease could have expired";
  EXPECT_LE(takeover, kLease + 2.0) << "not taken over within the lease duration (+ 2 s slack)";
  ControllerProcess& leader2 = *standby;
  // The replacement replica (as a Deployment would start one), started once the standby leads:
  // a candidate that starts while the Lease is orphaned judges its expiry from its own first
  // look, so it could win that race just as well.
  ControllerProcess& third = NewController("C");
  ASSERT_EQ(StartController(third, flags, true), "");

  // Then: the new leader finishes staging and holds prod for approval; it re-patches nothing.
  auto r = WaitPhase(s, "AwaitingApproval", seconds(120));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvPhase(*r, "staging"), "Succeeded");
  EXPECT_EQ(CountLog(leader2.log(), kPatchedMsg), 0) << "the new leader re-patched a Deployment";
  EXPECT_EQ(CountLog(third.log(), kPatchedMsg), 0);

  // When: the new leader is SIGTERMed / Then: it releases the Lease; the third replica takes
  // over at once.
  ASSERT_TRUE(WaitFor(s, "the third replica to campaign", seconds(30),
                      [&] { return CountLog(third.log(), "campaigning") > 0; }));
  std::this_thread::sleep_for(milliseconds(1500));  // let it observe the current holder
  EXPECT_EQ(leader2.LeaderGauge(), 1);
  EXPECT_EQ(third.LeaderGauge(), 0);
  ASSERT_EQ(LeaseHolder(s.ns), leader2.Identity());
  const auto t_term = steady_clock::now();
  leader2.Signal(SIGTERM);
  ASSERT_TRUE(WaitFor(
      s, "the third replica to take the Lease", seconds(30),
      [&] { return LeaseHolder(s.ns) == third.Identity(); }, milliseconds(20)));
  const double handover = SecondsSince(t_term);
  const std::optional<int> st = leader2.Wait(seconds(10));
  ASSERT_TRUE(st) << "the SIGTERMed leader did not exit";
  EXPECT_EQ(ChildProcess::Describe(*st), "exit code 0");
  std::cout << "[ha e2e] FIGURE hand-over after SIGTERM of the leader: " << Fixed(handover)
            << " s (lease released on shutdown; retry period " << Fixed(kRetry, 1) << " s)"
            << std::endl;
  ::testing::Test::RecordProperty("handover_after_sigterm_ms", static_cast<int>(handover * 1000));
  EXPECT_LT(handover, 3.0) << "hand-over after SIGTERM should take about a second";
  EXPECT_GE(CountLog(leader2.log(), "released the lease"), 1);

  // When: prod is promoted / Then: the third leader patches it and the rollout succeeds, each
  // Deployment patched once across all three replicas.
  ASSERT_NO_FATAL_FAILURE(Annotate(s, "rollgate.io/promote", "ha-e2e"));
  r = WaitPhase(s, "Succeeded", seconds(120));
  ASSERT_TRUE(r);
  ExpectCompleted(s, *r, {a.log(), b.log(), third.log()});
  for (const char* d : {"prod-api", "prod-worker"}) {
    EXPECT_EQ(CountLog(third.log(), kPatchedMsg, "deployment=" + s.ns + "/" + d), 1) << d;
  }
  auto lease = Cluster::Get().client().Get(resources::Leases(), s.ns, kLeaseName);
  ASSERT_TRUE(lease.ok());
  std::cout << "[ha e2e] lease transitions: " << Int(*lease, "spec.leaseTransitions") << std::endl;
  third.Stop(seconds(10));
}

// ---- 2: API server stopped for 20 s mid rollout -------------------------------------------------

TEST_F(HaE2E, ApiServerDownTwentySecondsMidRolloutCompletesAndCountsWatchRestarts) {
  if (EnvVar("ROLLGATE_CLUSTER_SH").empty() || EnvVar("ROLLGATE_CLUSTER_DIR").empty()) {
    GTEST_SKIP()
        << "ROLLGATE_CLUSTER_SH and ROLLGATE_CLUSTER_DIR are needed to stop the API server";
  }
  Cluster& cluster = Cluster::Get();
  const std::string cluster_dir = EnvVar("ROLLGATE_CLUSTER_DIR");
  check_nodes_ = true;

  // Given: a three-environment rollout in the middle of staging (patched, pods becoming ready).
  Scenario s = ThreeEnvironments("outage", "2s", /*prod_manual=*/false);
  ASSERT_EQ(Provision(s), "");
  ControllerProcess& c = NewController("A");
  ASSERT_EQ(StartController(c, {"--namespace=" + s.ns}, true), "");
  ASSERT_TRUE(WaitFor(s, "staging Verifying", seconds(120), [&] {
    const Json r = GetRollout(s);
    return EnvPhase(r, "staging") == "Verifying" || Terminal(Str(r, "status.phase"));
  }));
  ASSERT_EQ(EnvPhase(GetRollout(s), "staging"), "Verifying");
  const std::string where_stopped = Where(s);
  double restarts_before = 0;
  if (auto m = c.Metrics()) {
    for (const auto& [l, v] : MetricSamples(*m, "rollgate_watch_restarts_total")) {
      restarts_before += v;
    }
  }

  // When: the API server is stopped; 20 s after the stop began, it is started again.
  const auto t_stop = steady_clock::now();
  api_server_stopped_ = true;
  c.Mark("stopping the API server");
  ASSERT_EQ(cluster.ClusterSh({"stop-component", cluster_dir, "kube-apiserver"}), "");
  const double stop_took = SecondsSince(t_stop);
  while (SecondsSince(t_stop) < 20.0) {
    ASSERT_TRUE(c.Running()) << "the controller exited while the API server was down";
    std::this_thread::sleep_for(milliseconds(200));
  }
  const double down_for = SecondsSince(t_stop);
  c.Mark("starting the API server");
  ASSERT_EQ(cluster.ClusterSh({"start-component", cluster_dir, "kube-apiserver"}), "");
  api_server_stopped_ = false;
  // kwok stands in for the nodes' kubelets, whose recovery is not under test. In 1 of ~15 runs it
  // never made the pods created around the outage Ready: the API server itself reported the
  // staging Deployments 1 of 3 available for the whole 180 s while the controller's status
  // mirrored exactly that. A real kubelet re-lists its pods; kwok is restarted to do the same.
  ASSERT_EQ(cluster.ClusterSh({"stop-component", cluster_dir, "kwok"}), "");
  ASSERT_EQ(cluster.ClusterSh({"start-component", cluster_dir, "kwok"}), "");
  const auto t_ready = steady_clock::now();
  const double outage = SecondsSince(t_stop);
  c.Mark("the API server is ready again");
  ASSERT_TRUE(c.Running()) << "the controller exited during the outage";

  // Then: recovery, observed every 50 ms from the moment the API server is ready again: the
  // controller's first write to the rollout, the staging Deployments fully rolled out
  // (kube-controller-manager and kwok resume on their own schedule), staging Succeeded in the
  // rollout's status (the controller's reaction to that), and the whole rollout Succeeded. The
  // resourceVersion is read again now: the stopping API server may still have served requests on
  // open connections during its graceful shutdown.
  const std::string rv_at_ready = Str(GetRollout(s), "metadata.resourceVersion");
  std::optional<double> first_write;
  std::optional<double> staging_available;
  std::optional<double> staging_succeeded;
  auto mark = [&](std::optional<double>& at, bool now) {
    if (!at && now) at = SecondsSince(t_ready);
  };
  std::optional<Json> r;
  const auto deadline = steady_clock::now() + seconds(180);
  while (!r) {
    if (!staging_available) {
      bool all = true;
      for (const char* d : {"staging-api", "staging-worker"}) {
        const Json got = GetDeployment(s.deps.at(d));
        all = all && !got.is_null() && Available(got) && RevisionAnnotation(got) == "1";
      }
      mark(staging_available, all);
    }
    const Json now = GetRollout(s);
    const std::string rv = Str(now, "metadata.resourceVersion");
    mark(first_write, !rv.empty() && !rv_at_ready.empty() && rv != rv_at_ready);
    mark(staging_succeeded, EnvPhase(now, "staging") == "Succeeded");
    const std::string phase = Str(now, "status.phase");
    if (phase == "Succeeded") {
      r = now;
    } else if (Terminal(phase) || steady_clock::now() > deadline) {
      // What the API server says of the staging Deployments tells a controller that missed
      // their progress (a stale cache) from a cluster that never made any (kube-controller-
      // manager or kwok not recovered).
      std::string deployments;
      for (const char* d : {"staging-api", "staging-worker"}) {
        const Json got = GetDeployment(s.deps.at(d));
        deployments += std::string(" ") + d + "=" +
                       (got.is_null() ? "(absent)" : got.at("status").serialize());
      }
      FAIL() << s.Key() << ": not Succeeded within 180 s of the API server's return; staging "
             << "Deployments available per the API server "
             << (staging_available ? "after " + Fixed(*staging_available) + " s" : "never") << ";"
             << deployments << "; status " << StatusOf(now);
    } else {
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  const double completed = SecondsSince(t_ready);
  auto secs = [](const std::optional<double>& v) {
    return v ? Fixed(*v) + " s" : std::string("(not seen)");
  };
  std::cout << "[ha e2e] FIGURE API-server outage: stopped at " << where_stopped << "; stop took "
            << Fixed(stop_took) << " s, restart issued " << Fixed(down_for)
            << " s after the stop began, API server ready " << Fixed(outage)
            << " s after the stop began (total outage)" << std::endl;
  std::cout << "[ha e2e] FIGURE recovery after the API server was ready again: the controller's "
               "first rollout write after "
            << secs(first_write)
            << "; staging Deployments rolled out (kube-controller-manager, kwok) after "
            << secs(staging_available) << ", staging Succeeded in the rollout status after "
            << secs(staging_succeeded) << "; rollout Succeeded after " << Fixed(completed) << " s"
            << std::endl;
  if (staging_available && staging_succeeded) {
    std::cout << "[ha e2e] FIGURE controller reaction after the outage (staging rolled out -> "
                 "staging Succeeded): "
              << Fixed(*staging_succeeded - *staging_available) << " s" << std::endl;
  }
  ::testing::Test::RecordProperty("outage_ms", static_cast<int>(outage * 1000));
  ::testing::Test::RecordProperty("recovery_succeeded_ms", static_cast<int>(completed * 1000));
  ExpectCompleted(s, *r, {c.log()});

  // Then: the watch restarts are counted.
  auto m = c.Metrics();
  ASSERT_TRUE(m) << "cannot scrape the controller's /metrics on port " << c.metrics_port();
  const auto restarts = MetricSamples(*m, "rollgate_watch_restarts_total");
  double total = 0;
  std::string rendered;
  for (const auto& [labels, v] : restarts) {
    total += v;
    rendered += " " + labels + "=" + Fixed(v, 0);
  }
  std::cout << "[ha e2e] rollgate_watch_restarts_total before the outage "
            << Fixed(restarts_before, 0)
            << ", after:" << (rendered.empty() ? " (no samples)" : rendered) << std::endl;
  EXPECT_GT(total, restarts_before) << "no watch restart counted across the API-server outage";
  bool any_positive = false;
  for (const auto& [labels, v] : restarts) any_positive = any_positive || v > 0;
  EXPECT_TRUE(any_positive);
  EXPECT_TRUE(cluster.NodesReady()) << "nodes not Ready after the API server came back";
  c.Stop(seconds(10));
}

// ---- 3: random SIGKILLs across a three-environment rollout --------------------------------------

TEST_F(HaE2E, RandomSigkillLoopEndsInTheCorrectState) {
  // Given: a seeded random source (ROLLGATE_HA_SEED fixes it) and a three-environment rollout.
  constexpr int kKills = 20;
  std::uint64_t seed = 0;
  if (const std::string fixed = EnvVar("ROLLGATE_HA_SEED"); !fixed.empty()) {
    seed = std::strtoull(fixed.c_str(), nullptr, 10);
  } else {
    std::random_device rd;
    seed = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  }
  std::cout << "[ha e2e] random-kill seed " << seed << " (rerun with ROLLGATE_HA_SEED=" << seed
            << ")" << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> delay_ms(0, 700);
  Scenario s = ThreeEnvironments("randkill", "1s", /*prod_manual=*/false);
  ASSERT_EQ(Provision(s), "");
  ControllerProcess& c = NewController("A");
  const std::vector<std::string> flags = {"--namespace=" + s.ns};

  // When: the controller is started and SIGKILLed 20 times at random instants, then run to
  // completion.
  std::vector<std::string> kills;
  const auto t0 = steady_clock::now();
  for (int i = 0; i < kKills; ++i) {
    ASSERT_EQ(StartController(c, flags, false), "");
    const int d = delay_ms(rng);
    std::this_thread::sleep_for(milliseconds(d));
    ASSERT_TRUE(c.Running()) << "the controller exited on its own (run " << i + 1 << ")";
    c.Kill();
    kills.push_back("kill " + std::to_string(i + 1) + " after " + std::to_string(d) +
                    " ms: " + Where(s));
  }
  const double loop_s = SecondsSince(t0);
  ASSERT_EQ(StartController(c, flags, false), "");
  auto r = WaitPhase(s, "Succeeded", seconds(180));
  std::cout << "[ha e2e] " << kKills << " SIGKILLs in " << Fixed(loop_s, 1)
            << " s; state the API server showed after each kill:\n";
  for (const auto& k : kills) std::cout << "  " << k << "\n";
  std::cout << "[ha e2e] final run to Succeeded took " << Fixed(SecondsSince(t0) - loop_s, 1)
            << " s" << std::endl;

  // Then: exactly the end state of an undisturbed run.
  ASSERT_TRUE(r);
  ExpectCompleted(s, *r, {c.log()});
  c.Stop(seconds(10));
}

}  // namespace
}  // namespace rollgate::e2e
