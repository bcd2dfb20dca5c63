// Alerting end to end (issue 6): a real Prometheus (Debian's `prometheus`, started by the test on
// loopback) scrapes the real rollgate-controller (started by the test against the shared cluster,
// --namespace <test namespace>) every second as job="rollgate" with honor_labels, and evaluates
// manifests/alerts/rollgate-alerts.yaml every second. Rollouts that fail on the local control
// plane must turn the alerts `firing` in Prometheus' /api/v1/alerts with the rollout's
// namespace/rollout/environment labels:
//   - a target Deployment that does not exist: DeploymentNotFound -> RolloutFailed;
//   - a never-ready image with progressDeadlineSeconds 30: ProgressDeadlineExceeded and an
//     automatic rollback -> RolloutFailed and RolloutRolledBack;
//   - a rollout that succeeds raises neither.
// The rules file is loaded unchanged: RolloutFailed and RolloutRolledBack have no `for:` clause, so
// they fire on the first evaluation that sees the failure (the test asserts that the rules it
// relies on still have none, rather than rewriting them).
// Health endpoints: /readyz answers 503 while the informer caches have not synced (a second
// controller pointed at a black-hole API server never syncs) and 200 once they have; /healthz is
// 200 in both. The scrape carries rollgate_build_info{version}.
// Finally every query of the Grafana dashboard (manifests/dashboards/rollgate-dashboard.json) runs
// against this Prometheus: each must be valid, and each must return data except where the test
// cannot produce any (watch restarts, API errors).
// Needs: KUBECONFIG, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD, ROLLGATE_ALERTS, CONTROL_PLANE_BIN
// (ctest sets them); PROMETHEUS_BIN overrides /usr/bin/prometheus.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <set>
#include <thread>

#include "controller/kube/rest_client.h"
#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/controller.h"
#include "tests/e2e/support/log_reader.h"
#include "tests/e2e/support/net.h"
#include "tests/e2e/support/prometheus.h"
#include "tests/e2e/support/rollout_checks.h"
#include "tests/e2e/support/scenario.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {
namespace {

std::filesystem::path RepoRoot() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

// ---- suite-wide state --------------------------------------------------------------------------

struct Suite {
  std::string alerts_file;
  std::string dir;  // work directory: logs, prometheus.yml, TSDB
  std::string ns;
  std::unique_ptr<ControllerProcess> controller;
  PrometheusServer prometheus;
  std::unique_ptr<PrometheusApi> api;
};

Suite& Ctx() {
  static auto* s = new Suite();  // never destroyed: outlives every test
  return *s;
}

// job_name rollgate and honor_labels: what the alerts assume (README, "Runbook"): Rollgate's own
// `namespace` label names the rollout's namespace.
std::string PrometheusConfig(const std::string& rules, int controller_metrics_port) {
  return "global:\n"
         "  scrape_interval: 1s\n"
         "  scrape_timeout: 1s\n"
         "  evaluation_interval: 1s\n"
         "rule_files:\n"
         "  - '" +
         rules +
         "'\n"
         "scrape_configs:\n"
         "  - job_name: rollgate\n"
         "    honor_labels: true\n"
         "    static_configs:\n"
         "      - targets: ['127.0.0.1:" +
         std::to_string(controller_metrics_port) + "']\n";
}

// The controller (its metrics and health endpoints on loopback, serving /healthz) and a
// Prometheus that scrapes it and evaluates the alert rules.
std::string StartSuite() {
  Suite& s = Ctx();
  Cluster& cluster = Cluster::Get();
  if (std::string err = RequireEnv({"KUBECONFIG", "ROLLGATE_CONTROLLER_BIN", "ROLLGATE_CRD",
                                    "ROLLGATE_ALERTS", "CONTROL_PLANE_BIN"});
      !err.empty()) {
    return err;
  }
  s.alerts_file = EnvVar("ROLLGATE_ALERTS");
  if (std::string err = cluster.ApplyCrd(); !err.empty()) return err;
  s.dir = MakeTempDir("rollgate-alerts-e2e");
  if (s.dir.empty()) return "mkdtemp failed";
  if (std::string err = cluster.Connect(); !err.empty()) return err;
  s.ns = "e2e-alerts-" + std::to_string(::getpid());
  if (std::string err = cluster.CreateNamespace(s.ns); !err.empty()) return err;
  (void)cluster.WaitForServiceAccount(s.ns, Deadline(seconds(20)));
  s.controller = std::make_unique<ControllerProcess>("main", s.dir + "/controller.log");
  if (std::string err =
          s.controller->StartServing({"--namespace", s.ns}, Endpoint::kLoopback, 200, seconds(30));
      !err.empty()) {
    return err;
  }
  if (std::string err =
          s.prometheus.Start(s.dir, PrometheusConfig(s.alerts_file, s.controller->metrics_port()),
                             s.dir + "/prometheus.log");
      !err.empty()) {
    return err;
  }
  s.api = std::make_unique<PrometheusApi>(s.prometheus.port());
  return "";
}

class AlertsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { error_ = new std::string(StartSuite()); }
  static void TearDownTestSuite() {
    Suite& s = Ctx();
    s.prometheus.Shutdown();
    if (s.controller) s.controller->Shutdown(seconds(10));
    if (Cluster::Get().connected()) Cluster::Get().DeleteNamespaces();
    if (s.dir.empty()) return;
    if (::testing::UnitTest::GetInstance()->Passed()) {
      std::error_code ec;
      std::filesystem::remove_all(s.dir, ec);
    } else {
      std::cerr << "alerts e2e: kept " << s.dir << " (controller.log, prometheus.log)\n";
    }
  }
  void SetUp() override { ASSERT_TRUE(error_->empty()) << *error_; }

  static const PrometheusApi& Prom() { return *Ctx().api; }
  static Json Query(const std::string& expr) { return Prom().Query(expr); }

  // Waits until alert `name` with `labels` is firing; returns it (with a failure when it is not).
  static std::optional<Json> WaitFiring(const std::string& name,
                                        const std::map<std::string, std::string>& labels) {
    return Prom().WaitFiring(name, labels, seconds(60), [] {
      return "rollgate_rollout_failures_total > 0: " +
             Query("rollgate_rollout_failures_total > 0").serialize() +
             "\nrollgate_environment_phase == 1: " +
             Query("rollgate_environment_phase == 1").serialize() + "\n" +
             Tail(Ctx().controller->log(), 20);
    });
  }

  // ---- Kubernetes objects ----

  // Given: an available one-replica Deployment `name` (container "app") running `image`.
  static void GivenDeployment(const std::string& name, const std::string& image) {
    Suite& s = Ctx();
    auto& client = Cluster::Get().client();
    auto created = client.Create(
        kube::resources::Deployments(), s.ns,
        DeploymentBuilder(name).Replicas(1).Container("app", image).TerminateImmediately().Build());
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    // Start from an available Deployment, as in production (kwok makes the pod ready).
    EXPECT_TRUE(Eventually(
        [&] {
          auto got = client.Get(kube::resources::Deployments(), s.ns, name);
          return got.ok() && Int(*got, "status.availableReplicas", 0) >= 1;
        },
        seconds(60)))
        << "Deployment " << name << " did not become available";
  }

  // Given: a one-environment ("dev") rollout of image key "app" to `image` on Deployment `target`.
  static Scenario GivenRollout(const std::string& name, const std::string& target,
                               const std::string& image, int progress_deadline_seconds = 0) {
    Suite& s = Ctx();
    auto created =
        Cluster::Get().client().Create(kube::resources::ContainerRollouts(), s.ns,
                                       RolloutBuilder(name)
                                           .Image("app", image)
                                           .Env({"dev", "", false, {{target, {{"app", "app"}}}}})
                                           .ProgressDeadlineSeconds(progress_deadline_seconds)
                                           .Build());
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return RolloutNamed(s.ns, name, s.controller->log());
  }

  // Waits for the rollout to reach `phase`; returns its state then (null on failure).
  static Json WaitForPhase(const Scenario& rollout, const std::string& phase, seconds timeout) {
    return WaitPhase(rollout, phase, timeout).value_or(Json::null());
  }

  static inline std::string* error_ = nullptr;
};

std::map<std::string, std::string> RolloutLabels(const std::string& rollout) {
  return {{"namespace", Ctx().ns}, {"rollout", rollout}, {"environment", "dev"}};
}

// The rules this test relies on exist, have no `for:` clause (so no rewritten copy is needed) and
// are loaded and evaluated by Prometheus.
TEST_F(AlertsE2E, PrometheusLoadsTheAlertRules) {
  // Given: the rules file, as Prometheus loaded it.
  const std::string rules = ReadFile(Ctx().alerts_file);

  // Then: the rules this test relies on fire without a `for:` clause.
  for (const std::string name : {"RolloutFailed", "RolloutRolledBack"}) {
    const size_t at = rules.find("- alert: " + name);
    ASSERT_NE(at, std::string::npos) << name << " is not in " << Ctx().alerts_file;
    const size_t next = rules.find("- alert:", at + 1);
    const std::string rule = rules.substr(at, next == std::string::npos ? next : next - at);
    EXPECT_EQ(rule.find("\n        for:"), std::string::npos)
        << name << " gained a `for:` clause: load a copy with a short `for:` in this test";
  }

  // When: Prometheus evaluates the rules / Then: every alert is loaded and healthy.
  const std::vector<std::string> kAlerts = {"RolloutFailed",  "RolloutRolledBack",
                                            "RolloutStuck",   "WorkerValidationFailing",
                                            "ControllerDown", "NoLeader"};
  std::set<std::string> healthy;
  std::string seen;
  ASSERT_TRUE(Eventually(
      [&] {
        healthy.clear();
        seen.clear();
        const Json data = Prom().Api("rules");
        const Json* groups = At(data, "groups");
        if (groups == nullptr || !groups->is_array()) return false;
        for (const auto& g : groups->as_array()) {
          const Json* rs = At(g, "rules");
          if (rs == nullptr || !rs->is_array()) continue;
          for (const auto& r : rs->as_array()) {
            seen += Str(r, "name") + "(" + Str(r, "health") + ") ";
            if (Str(r, "type") == "alerting" && Str(r, "health") == "ok") {
              healthy.insert(Str(r, "name"));
            }
          }
        }
        for (const std::string& name : kAlerts) {
          if (healthy.count(name) == 0) return false;
        }
        return true;
      },
      seconds(30)))
      << "alerting rules loaded and evaluated by Prometheus (health ok), want all of "
         "RolloutFailed RolloutRolledBack RolloutStuck WorkerValidationFailing ControllerDown "
         "NoLeader: "
      << seen;
}

// /readyz is 503 while the caches have not synced: a second controller whose API server never
// answers (a listening socket that never accepts) stays unready, yet alive (/healthz 200).
TEST_F(AlertsE2E, ReadyzIsNotReadyBeforeTheCachesSync) {
  // Given: a kubeconfig whose API server is a black hole.
  Suite& s = Ctx();
  LoopbackListener api(LoopbackListener::Mode::kSilent);
  ASSERT_NE(api.port(), 0);
  const std::string kubeconfig = ReadFile(Cluster::Get().kubeconfig());
  const std::regex server(R"(server:\s*https://[^\s]+)");
  ASSERT_TRUE(std::regex_search(kubeconfig, server))
      << "no server: line in " << Cluster::Get().kubeconfig();
  const std::string blackhole_kubeconfig = s.dir + "/blackhole.kubeconfig";
  std::ofstream(blackhole_kubeconfig) << std::regex_replace(
      kubeconfig, server, "server: https://127.0.0.1:" + std::to_string(api.port()));

  // When: a controller starts against it and serves /healthz.
  const std::string log = s.dir + "/controller-unsynced.log";
  ControllerProcess c("unsynced", log);
  c.set_kubeconfig(blackhole_kubeconfig);
  ASSERT_EQ(c.StartServing({"--namespace", s.ns}, Endpoint::kOff, 0, seconds(30)), "")
      << "the unsynced controller did not serve /healthz";

  // Then: several probes over 3 s: never ready while no list ever completes, yet alive.
  for (int i = 0; i < 6; ++i) {
    const HttpResponse ready = HttpGet(c.health_port(), "/readyz");
    EXPECT_EQ(ready.status, 503) << "/readyz before the caches synced: " << Describe(ready);
    const HttpResponse alive = HttpGet(c.health_port(), "/healthz");
    EXPECT_EQ(alive.status, 200) << "/healthz of an unsynced controller: " << Describe(alive);
    std::this_thread::sleep_for(milliseconds(500));
  }
  EXPECT_EQ(ReadFile(log).find("caches synced"), std::string::npos) << Tail(log);
  // SIGKILL: with a list request hanging, SIGTERM only takes effect once the request times out
  // (30 s), and this test is not about shutting down.
  c.Kill();
}

// The real controller: ready once its caches synced, alive, and scraped by Prometheus with its
// build info.
TEST_F(AlertsE2E, ControllerIsReadyAndScraped) {
  // Given: the suite's controller, scraped by Prometheus.
  Suite& s = Ctx();
  const ControllerProcess& c = *s.controller;

  // Then: ready once its caches synced, alive, and serving its metrics.
  HttpResponse ready;
  EXPECT_TRUE(Eventually(
      [&] { return (ready = HttpGet(c.health_port(), "/readyz")).status == 200; }, seconds(60)))
      << "/readyz: " << Describe(ready) << "\n"
      << Tail(c.log());
  EXPECT_NE(ReadFile(c.log()).find("caches synced"), std::string::npos)
      << "/readyz is 200 but the controller never logged that its caches synced";
  const HttpResponse alive = HttpGet(c.health_port(), "/healthz");
  EXPECT_EQ(alive.status, 200) << Describe(alive);
  const HttpResponse metrics = HttpGet(c.metrics_port(), "/metrics");
  EXPECT_EQ(metrics.status, 200) << Describe(metrics);
  EXPECT_NE(metrics.body.find("rollgate_build_info{"), std::string::npos)
      << metrics.body.substr(0, 1000);

  // Then: Prometheus scrapes it, with its build info, as the only (leading) instance.
  Json up;
  EXPECT_TRUE(Eventually(
      [&] {
        up = Query(R"(up{job="rollgate"} == 1)");
        return up.size() == 1;
      },
      seconds(30)))
      << "up{job=\"rollgate\"}: " << Query(R"(up{job="rollgate"})").serialize() << "\n"
      << Prom().Api("targets").serialize();
  const Json info = Query(R"(rollgate_build_info{job="rollgate"})");
  ASSERT_EQ(info.size(), 1u) << info.serialize();
  EXPECT_EQ(Str(info.at(0), "metric.version"), ROLLGATE_VERSION) << info.serialize();
  EXPECT_EQ(Str(info.at(0), "metric.instance"), "127.0.0.1:" + std::to_string(c.metrics_port()));
  EXPECT_EQ(Query(R"(rollgate_leader{job="rollgate"} == 1)").size(), 1u)
      << "without leader election the only instance leads";
}

// A target Deployment that does not exist: the environment fails with DeploymentNotFound before
// any patch; RolloutFailed fires for that environment, RolloutRolledBack does not.
TEST_F(AlertsE2E, MissingDeploymentFiresRolloutFailed) {
  // Given: a rollout whose target Deployment does not exist.
  Suite& s = Ctx();
  const Scenario rollout =
      GivenRollout("missing-target", "does-not-exist", "registry.example.com/app/x:2.0.0");

  // When: it fails.
  const Json st = WaitForPhase(rollout, "Failed", seconds(90));
  EXPECT_EQ(Str(st, "status.environments.0.reason"), "DeploymentNotFound") << st.serialize();

  // Then: RolloutFailed fires for it, and the failure is counted once.
  const auto alert = WaitFiring("RolloutFailed", RolloutLabels("missing-target"));
  ASSERT_TRUE(alert);
  EXPECT_EQ(Str(*alert, "labels.severity"), "critical");
  EXPECT_NE(Str(*alert, "annotations.summary").find(s.ns + "/missing-target"), std::string::npos)
      << alert->serialize();
  EXPECT_NE(Str(*alert, "annotations.description").find("in environment dev"), std::string::npos)
      << alert->serialize();
  EXPECT_FALSE(Str(*alert, "annotations.runbook_url").empty()) << alert->serialize();
  const Json failures = Query(R"(rollgate_rollout_failures_total{namespace=")" + s.ns +
                              R"(",rollout="missing-target",reason="DeploymentNotFound"})");
  ASSERT_EQ(failures.size(), 1u) << failures.serialize();
  EXPECT_EQ(Str(failures.at(0), "value.1"), "1") << failures.serialize();

  // Then, two more evaluations later: nothing was patched, so nothing was rolled back.
  std::this_thread::sleep_for(seconds(3));
  const auto alerts = Prom().Alerts();
  EXPECT_FALSE(
      PrometheusApi::FindAlert(alerts, "RolloutRolledBack", {{"rollout", "missing-target"}}))
      << PrometheusApi::RenderAlerts(alerts);
}

// A never-ready image: the progress deadline (30 s) fails the environment and the controller
// rolls it back; RolloutFailed and RolloutRolledBack both fire for that environment.
TEST_F(AlertsE2E, ProgressDeadlineRollbackFiresRolloutFailedAndRolledBack) {
  // Given: a rollout to a never-ready image with a 30 s progress deadline.
  Suite& s = Ctx();
  GivenDeployment("never-ready", "registry.example.com/app/x:1.0.0");
  const Scenario rollout = GivenRollout("never-ready", "never-ready",
                                        "registry.example.com/app/x:2.0.0-never-ready", 30);

  // When: the deadline passes and the controller rolls it back.
  const Json st = WaitForPhase(rollout, "RolledBack", seconds(120));
  EXPECT_EQ(Str(st, "status.environments.0.reason"), "ProgressDeadlineExceeded") << st.serialize();
  auto d = Cluster::Get().client().Get(kube::resources::Deployments(), s.ns, "never-ready");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(Str(*d, "spec.template.spec.containers.0.image"), "registry.example.com/app/x:1.0.0");

  // Then: RolloutFailed and RolloutRolledBack fire; the failure and the rollback are counted.
  const auto failed = WaitFiring("RolloutFailed", RolloutLabels("never-ready"));
  const auto rolled_back = WaitFiring("RolloutRolledBack", RolloutLabels("never-ready"));
  ASSERT_TRUE(rolled_back);
  EXPECT_EQ(Str(*rolled_back, "labels.severity"), "warning");
  EXPECT_NE(Str(*rolled_back, "annotations.summary").find("rolled back environment dev"),
            std::string::npos)
      << rolled_back->serialize();
  const Json reason = Query(R"(rollgate_rollout_failures_total{namespace=")" + s.ns +
                            R"(",rollout="never-ready",reason="ProgressDeadlineExceeded"} == 1)");
  EXPECT_EQ(reason.size(), 1u) << reason.serialize();
  const Json rollbacks = Query(R"(rollgate_rollbacks_total{namespace=")" + s.ns +
                               R"(",rollout="never-ready",environment="dev"} == 1)");
  EXPECT_EQ(rollbacks.size(), 1u) << rollbacks.serialize();
}

// A rollout that succeeds raises no alert at all.
TEST_F(AlertsE2E, SucceededRolloutRaisesNoAlert) {
  // Given: a rollout to a healthy image.
  GivenDeployment("healthy", "registry.example.com/app/x:1.0.0");
  const Scenario rollout = GivenRollout("healthy", "healthy", "registry.example.com/app/x:2.0.0");

  // When: it succeeds, and its final state is scraped and evaluated a few times over.
  (void)WaitForPhase(rollout, "Succeeded", seconds(90));
  const std::string sel = R"(namespace=")" + Ctx().ns + R"(",rollout="healthy")";
  EXPECT_TRUE(Eventually(
      [&] {
        return Query("rollgate_rollout_phase{" + sel + ",phase=\"Succeeded\"} == 1").size() == 1;
      },
      seconds(30)))
      << "the Succeeded phase was not scraped";
  std::this_thread::sleep_for(seconds(3));

  // Then: no alert about it; its environment's duration observed once.
  const auto alerts = Prom().Alerts();
  EXPECT_FALSE(PrometheusApi::FindAlert(alerts, "RolloutFailed", {{"rollout", "healthy"}}))
      << PrometheusApi::RenderAlerts(alerts);
  EXPECT_FALSE(PrometheusApi::FindAlert(alerts, "RolloutRolledBack", {{"rollout", "healthy"}}))
      << PrometheusApi::RenderAlerts(alerts);
  EXPECT_FALSE(
      PrometheusApi::FindAlert(alerts, "WorkerValidationFailing", {{"rollout", "healthy"}}))
      << PrometheusApi::RenderAlerts(alerts);
  const Json duration = Query("rollgate_environment_duration_seconds_count{" + sel + "} == 1");
  EXPECT_EQ(duration.size(), 1u) << "the environment's duration was observed once: "
                                 << duration.serialize();
}

// Every query of the Grafana dashboard runs against this Prometheus (Grafana's variables
// substituted): all are valid PromQL, and all return data except those about events this test
// cannot cause (watch restarts, API errors).
TEST_F(AlertsE2E, DashboardQueriesReturnData) {
  // Given: the dashboard's queries (its variables' and its panels'), Grafana's variables
  // substituted.
  const std::string path = (RepoRoot() / "manifests/dashboards/rollgate-dashboard.json").string();
  Json dashboard;
  ASSERT_NO_THROW(dashboard = Json::parse(ReadFile(path))) << path;
  const std::vector<std::pair<std::string, std::string>> subst = {
      {"$__rate_interval", "30s"}, {"$__interval", "15s"},   {"$__range", "10m"},
      {"$job", "rollgate"},        {"$namespace", Ctx().ns}, {"$rollout", ".*"},
      {"$environment", ".*"}};
  auto substitute = [&](std::string e) {
    for (const auto& [from, to] : subst) {
      for (size_t at = e.find(from); at != std::string::npos; at = e.find(from, at + to.size())) {
        e.replace(at, from.size(), to);
      }
    }
    return e;
  };
  std::vector<std::pair<std::string, std::string>> queries;  // (where, expr)
  const Json* vars = At(dashboard, "templating.list");
  ASSERT_TRUE(vars != nullptr && vars->is_array());
  for (const auto& v : vars->as_array()) {
    const std::string q = Str(v, "query.query");
    const std::regex label_values(R"(^\s*label_values\((.*),\s*([a-z_]+)\s*\)\s*$)");
    std::smatch m;
    if (Str(v, "type") != "query") continue;
    ASSERT_TRUE(std::regex_match(q, m, label_values)) << q;
    // The variable's values: the label of the series the selector matches.
    queries.emplace_back("variable " + Str(v, "name"),
                         "count by (" + m[2].str() + ") (" + m[1].str() + ")");
  }
  const Json* panels = At(dashboard, "panels");
  ASSERT_TRUE(panels != nullptr && panels->is_array());
  for (const auto& p : panels->as_array()) {
    const Json* targets = At(p, "targets");
    if (targets == nullptr || !targets->is_array()) continue;
    for (const auto& t : targets->as_array()) {
      queries.emplace_back("panel '" + Str(p, "title") + "' " + Str(t, "refId"), Str(t, "expr"));
    }
  }
  ASSERT_GT(queries.size(), 20u);

  // When: each runs against the live data / Then: valid, and with data where the test made some.
  int with_data = 0;
  for (const auto& [where, expr] : queries) {
    const std::string q = substitute(expr);
    const HttpResponse r = HttpGet(Ctx().prometheus.port(), "/api/v1/query?query=" + UrlEncode(q));
    EXPECT_EQ(r.status, 200) << where << ": " << q << " -> " << Describe(r);
    if (r.status != 200) continue;
    const Json j = Json::parse(r.body);
    const Json* result = At(j, "data.result");
    const size_t n = result != nullptr && result->is_array() ? result->size() : 0;
    // Empty without a watch restart, a failed request or an environment in another cluster.
    const bool may_be_empty = expr.find("rollgate_watch_restarts_total") != std::string::npos ||
                              expr.find("code!~") != std::string::npos ||
                              expr.find("rollgate_environment_cluster") != std::string::npos;
    if (n > 0) ++with_data;
    EXPECT_TRUE(n > 0 || may_be_empty) << where << " returned no data: " << q;
    if (where.rfind("variable namespace", 0) == 0) {
      EXPECT_NE(r.body.find("\"namespace\":\"" + Ctx().ns + "\""), std::string::npos)
          << "the namespace variable does not offer the test's namespace: " << r.body;
    }
  }
  std::cout << "[ alerts  ] dashboard: " << queries.size() << " queries valid, " << with_data
            << " with data\n";
}

}  // namespace
}  // namespace rollgate::e2e
