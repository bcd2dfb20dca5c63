#include "controller/metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/unit/metrics/scrape.h"

namespace rollgate::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Matching;
using ::testing::Pair;
using testing::ParseSamples;
using testing::Scrape;
using testing::ScrapeText;

MetricsOptions Opts() {
  MetricsOptions o;
  o.version = "1.2.3";
  return o;
}

TEST(MetricsTest, EveryFamilyHasHelpAndType) {
  Metrics m(nullptr, Opts());
  m.ObserveKubeRequest("get", 200, std::chrono::milliseconds(1));
  m.CountWatchRestart("deployments");
  m.ObserveRollout("app", "r", 1, "Succeeded", {{"dev", "Succeeded"}});
  m.ObserveEnvironmentDuration("app", "r", "dev", 1);
  const std::string text = ScrapeText(m);
  for (const char* family :
       {"rollgate_rollout_phase gauge", "rollgate_rollout_info gauge",
        "rollgate_environment_phase gauge", "rollgate_rollout_failures_total counter",
        "rollgate_rollbacks_total counter", "rollgate_environment_duration_seconds histogram",
        "rollgate_worker_validations_total counter",
        "rollgate_reconcile_duration_seconds histogram", "rollgate_reconcile_errors_total counter",
        "rollgate_workqueue_depth gauge", "rollgate_reaction_latency_seconds histogram",
        "rollgate_kube_requests_total counter", "rollgate_kube_request_duration_seconds histogram",
        "rollgate_watch_restarts_total counter", "rollgate_smoke_checks_total counter",
        "rollgate_smoke_check_seconds histogram", "rollgate_leader gauge",
        "rollgate_build_info gauge"}) {
    const std::string name = std::string(family).substr(0, std::string(family).find(' '));
    EXPECT_THAT(text, HasSubstr("# TYPE " + std::string(family) + "\n")) << family;
    EXPECT_THAT(text, HasSubstr("# HELP " + name + " ")) << family;
  }
}

std::multiset<std::string> Lines(const std::string& text) {
  std::multiset<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.insert(l);
  return out;
}

// The sample lines (no comments) of the families whose names start with one of `prefixes`.
std::multiset<std::string> SampleLines(const std::string& text,
                                       const std::vector<std::string>& names) {
  std::multiset<std::string> out;
  for (const std::string& l : Lines(text)) {
    if (l.empty() || l[0] == '#') continue;
    for (const std::string& n : names) {
      if (l.rfind(n + "{", 0) == 0 || l.rfind(n + "_", 0) == 0) {
        out.insert(l);
        break;
      }
    }
  }
  return out;
}

// What /metrics serves (WriteText) is every family of the registry (the controller-wide ones)
// plus the per-rollout families, each family's HELP and TYPE once.
TEST(MetricsTest, WriteTextServesTheRegistryAndThePerRolloutFamiliesEachOnce) {
  Metrics m(nullptr, Opts());
  m.ObserveKubeRequest("get", 200, std::chrono::milliseconds(1));
  m.CountWatchRestart("deployments");
  m.ObserveRollout("app", "r", 1, "Progressing", {{"dev", "Verifying"}, {"prod", "Pending"}});
  m.ObserveEnvironmentClusters("app", "r", {{"prod", "prod-eu"}});
  m.CountFailure("app", "r", "dev", "HealthCheckFailed");
  m.ObserveEnvironmentDuration("app", "r", "dev", 3);
  const auto served = Lines(ScrapeText(m));
  for (const std::string& l : Lines(ScrapeText(*m.registry()))) {
    EXPECT_EQ(served.count(l), 1U) << l;
  }
  std::size_t types = 0;
  for (const std::string& l : served) {
    if (l.rfind("# TYPE ", 0) == 0) {
      ++types;
      EXPECT_EQ(served.count(l), 1U) << l;
    }
  }
  EXPECT_EQ(types, 21U);  // 13 controller-wide families, 8 per rollout
}

// The per-rollout series are plain values that Metrics renders itself; prometheus-cpp families
// holding the same series (where they were kept before) write exactly the same sample lines:
// label order, one-hot phases, counters started at 0, histogram buckets (a value on a bound
// counts in it, one above every bound only in +Inf), sum and count.
TEST(MetricsTest, PerRolloutFamiliesAreWrittenAsPrometheusCppWritesThem) {
  MetricsOptions o = Opts();
  o.init_failure_reasons = {"ProgressDeadlineExceeded", "HealthCheckFailed", "HealthCheckFailed"};
  Metrics m(nullptr, o);
  m.ObserveRollout("app", "r", 7, "Progressing", {{"dev", "Succeeded"}, {"prod", "Verifying"}});
  m.ObserveRollout("other", "s", 1, "Exploding", {{"dev", ""}});
  m.CountFailure("app", "r", "prod", "HealthCheckFailed");
  m.CountFailure("app", "r", "prod", "SomethingNew");
  m.CountFailure("app", "r", "prod", "SomethingNew");
  m.CountRollback("app", "r", "prod");
  m.CountValidation("app", "r", "dev", true, 3);
  m.CountValidation("app", "r", "prod", false);
  for (double v : {10.0, 0.25, 1e6, 61.5}) m.ObserveEnvironmentDuration("app", "r", "dev", v);
  m.ObserveEnvironmentClusters("app", "r", {{"prod", "prod-eu"}});

  prometheus::Registry ref;
  auto& rollout_phase = prometheus::BuildGauge().Name("rollgate_rollout_phase").Register(ref);
  auto& info = prometheus::BuildGauge().Name("rollgate_rollout_info").Register(ref);
  auto& env_phase = prometheus::BuildGauge().Name("rollgate_environment_phase").Register(ref);
  auto& cluster = prometheus::BuildGauge().Name("rollgate_environment_cluster").Register(ref);
  auto& failures = prometheus::BuildCounter().Name("rollgate_rollout_failures_total").Register(ref);
  auto& rollbacks = prometheus::BuildCounter().Name("rollgate_rollbacks_total").Register(ref);
  auto& validations =
      prometheus::BuildCounter().Name("rollgate_worker_validations_total").Register(ref);
  auto& duration =
      prometheus::BuildHistogram().Name("rollgate_environment_duration_seconds").Register(ref);
  const std::map<std::pair<std::string, std::string>,
                 std::pair<std::string, std::vector<std::pair<std::string, std::string>>>>
      rollouts = {{{"app", "r"}, {"Progressing", {{"dev", "Succeeded"}, {"prod", "Verifying"}}}},
                  {{"other", "s"}, {"Exploding", {{"dev", "Pending"}}}}};
  for (const auto& [key, state] : rollouts) {
    const auto& [ns, name] = key;
    for (const auto& p : RolloutPhases()) {
      rollout_phase.Add({{"namespace", ns}, {"rollout", name}, {"phase", p}})
          .Set(p == state.first ? 1 : 0);
    }
    if (name == "s")
      rollout_phase.Add({{"namespace", ns}, {"rollout", name}, {"phase", "Exploding"}}).Set(1);
    info.Add({{"namespace", ns}, {"rollout", name}}).Set(name == "r" ? 7 : 1);
    for (const auto& [env, env_p] : state.second) {
      const prometheus::Labels base = {{"namespace", ns}, {"rollout", name}, {"environment", env}};
      for (const auto& p : EnvironmentPhases()) {
        auto l = base;
        l["phase"] = p;
        env_phase.Add(l).Set(p == env_p ? 1 : 0);
      }
      for (const char* reason : {"ProgressDeadlineExceeded", "HealthCheckFailed"}) {
        auto l = base;
        l["reason"] = reason;
        failures.Add(l);
      }
      rollbacks.Add(base);
      for (const char* result : {"passed", "failed"}) {
        auto l = base;
        l["result"] = result;
        validations.Add(l);
      }
    }
  }
  const prometheus::Labels prod = {{"namespace", "app"}, {"rollout", "r"}, {"environment", "prod"}};
  const prometheus::Labels dev = {{"namespace", "app"}, {"rollout", "r"}, {"environment", "dev"}};
  auto with = [](prometheus::Labels l, const char* k, const char* v) {
    l[k] = v;
    return l;
  };
  failures.Add(with(prod, "reason", "HealthCheckFailed")).Increment();
  failures.Add(with(prod, "reason", "SomethingNew")).Increment(2);
  rollbacks.Add(prod).Increment();
  validations.Add(with(dev, "result", "passed")).Increment(3);
  validations.Add(with(prod, "result", "failed")).Increment();
  auto& hist = duration.Add(dev, EnvironmentDurationBuckets());
  for (double v : {10.0, 0.25, 1e6, 61.5}) hist.Observe(v);
  cluster.Add(with(prod, "cluster", "prod-eu")).Set(1);

  const std::vector<std::string> names = {"rollgate_rollout_phase",
                                          "rollgate_rollout_info",
                                          "rollgate_environment_phase",
                                          "rollgate_environment_cluster",
                                          "rollgate_rollout_failures_total",
                                          "rollgate_rollbacks_total",
                                          "rollgate_worker_validations_total",
                                          "rollgate_environment_duration_seconds"};
  const auto want = SampleLines(ScrapeText(ref), names);
  EXPECT_GT(want.size(), 60U);
  EXPECT_EQ(SampleLines(ScrapeText(m), names), want);
}

// Many rollouts are written a few at a time (a scrape never holds them all), each family's
// header once and every rollout's series exactly once.
TEST(MetricsTest, ManyRolloutsAreWrittenWholeWithOneHeaderPerFamily) {
  Metrics m(nullptr, Opts());
  constexpr int kRollouts = 53;  // more than three chunks
  for (int i = 0; i < kRollouts; ++i) {
    m.ObserveRollout("app", "r" + std::to_string(i), i, "Progressing", {{"dev", "Updating"}});
  }
  m.ObserveEnvironmentDuration("app", "r40", "dev", 5);
  const std::string text = ScrapeText(m);
  const auto lines = Lines(text);
  EXPECT_EQ(lines.count("# TYPE rollgate_rollout_info gauge"), 1U);
  EXPECT_EQ(lines.count("# TYPE rollgate_environment_duration_seconds histogram"), 1U);
  EXPECT_EQ(lines.count("# TYPE rollgate_environment_cluster gauge"), 0U)
      << "a family without samples is not written";
  const auto s = ParseSamples(text);
  EXPECT_EQ(Matching(s, {"rollgate_rollout_info{"}).size(), std::size_t{kRollouts});
  EXPECT_EQ(Matching(s, {"rollgate_environment_phase{", "phase=\"Updating\""}).size(),
            std::size_t{kRollouts});
  for (int i = 0; i < kRollouts; ++i) {
    EXPECT_EQ(
        s.at("rollgate_rollout_info{namespace=\"app\",rollout=\"r" + std::to_string(i) + "\"}"), i);
  }
  // The header precedes the samples of its family.
  EXPECT_LT(text.find("# TYPE rollgate_rollout_info gauge"),
            text.find("rollgate_rollout_info{namespace="));
}

// What a scrape sends, piece by piece: the pieces are WriteText's text in order, and none holds
// more than a few rollouts of one family, so a scrape never holds the whole text (19 MB at 1,000
// rollouts of three environments).
TEST(MetricsTest, TextPiecesAreTheWholeTextAFewRolloutsAtATime) {
  Metrics m(nullptr, Opts());
  constexpr int kRollouts = 53;
  for (int i = 0; i < kRollouts; ++i) {
    m.ObserveRollout("app", "r" + std::to_string(i), i, "Progressing", {{"dev", "Updating"}});
  }
  auto next = m.TextPieces();
  std::string joined;
  std::size_t pieces = 0;
  std::size_t most_rollouts = 0;
  while (const auto piece = next()) {
    ++pieces;
    joined += *piece;
    std::set<std::string> rollouts;
    for (std::size_t at = piece->find("rollout=\""); at != std::string::npos;
         at = piece->find("rollout=\"", at + 1)) {
      rollouts.insert(piece->substr(at, piece->find('"', at + 9) - at));
    }
    most_rollouts = std::max(most_rollouts, rollouts.size());
  }
  EXPECT_FALSE(next().has_value()) << "a finished scrape stays finished";
  EXPECT_EQ(joined, ScrapeText(m));
  EXPECT_EQ(most_rollouts, 16U) << "a piece is at most one chunk of rollouts";
  // 7 per-rollout families with samples (no cluster series) x 4 chunks, then the registry's.
  EXPECT_GT(pieces, 28U);
  // A second scrape starts from the beginning.
  auto again = m.TextPieces();
  EXPECT_THAT(again().value_or(""), ::testing::StartsWith("# HELP rollgate_rollout_phase"));
}

TEST(MetricsTest, ProcessWideSeriesExistFromTheStart) {
  Metrics m(nullptr, Opts());
  auto s = Scrape(m);
  EXPECT_EQ(s.at("rollgate_build_info{version=\"1.2.3\"}"), 1);
  EXPECT_EQ(s.at("rollgate_reconcile_errors_total"), 0);
  EXPECT_EQ(s.at("rollgate_reconcile_duration_seconds_count"), 0);
  EXPECT_EQ(s.at("rollgate_workqueue_depth"), 0);
  EXPECT_EQ(s.at("rollgate_reaction_latency_seconds_count"), 0);
  EXPECT_EQ(s.at("rollgate_leader"), 1);  // no leader election: the only instance leads
  // Nothing rollout-specific before a rollout is observed.
  EXPECT_TRUE(Matching(s, {"rollout=\""}).empty());

  MetricsOptions o = Opts();
  o.initially_leader = false;
  Metrics with_election(nullptr, o);
  EXPECT_EQ(Scrape(with_election).at("rollgate_leader"), 0);
}

TEST(MetricsTest, UsesAnInjectedRegistry) {
  auto registry = std::make_shared<prometheus::Registry>();
  Metrics m(registry, Opts());
  EXPECT_EQ(m.registry(), registry);
  EXPECT_EQ(Scrape(*registry).count("rollgate_build_info{version=\"1.2.3\"}"), 1u);
}

TEST(MetricsTest, RolloutPhaseIsOneHot) {
  Metrics m(nullptr, Opts());
  m.ObserveRollout("app", "r", 2, "Progressing", {{"dev", "Succeeded"}, {"prod", "Updating"}});
  auto s = Scrape(m);
  auto phases = Matching(s, {"rollgate_rollout_phase{"});
  ASSERT_EQ(phases.size(), RolloutPhases().size());
  for (const auto& p : RolloutPhases()) {
    const std::string series =
        R"(rollgate_rollout_phase{namespace="app",phase=")" + p + R"(",rollout="r"})";
    EXPECT_EQ(s.at(series), p == "Progressing" ? 1 : 0) << series;
  }
  EXPECT_EQ(s.at("rollgate_rollout_info{namespace=\"app\",rollout=\"r\"}"), 2);

  m.ObserveRollout("app", "r", 3, "Failed", {{"dev", "Succeeded"}, {"prod", "Failed"}});
  s = Scrape(m);
  double sum = 0;
  for (const auto& [series, v] : Matching(s, {"rollgate_rollout_phase{"})) sum += v;
  EXPECT_EQ(sum, 1);
  EXPECT_EQ(s.at("rollgate_rollout_phase{namespace=\"app\",phase=\"Failed\",rollout=\"r\"}"), 1);
  EXPECT_EQ(s.at("rollgate_rollout_phase{namespace=\"app\",phase=\"Progressing\",rollout=\"r\"}"),
            0);
  EXPECT_EQ(s.at("rollgate_rollout_info{namespace=\"app\",rollout=\"r\"}"), 3);
}

TEST(MetricsTest, EnvironmentPhaseIsOneHotPerEnvironment) {
  Metrics m(nullptr, Opts());
  m.ObserveRollout("app", "r", 1, "Progressing", {{"dev", "Succeeded"}, {"prod", "Verifying"}});
  auto s = Scrape(m);
  for (const char* env : {"dev", "prod"}) {
    auto phases = Matching(s, {"rollgate_environment_phase{", "environment=\"" + std::string(env)});
    ASSERT_EQ(phases.size(), EnvironmentPhases().size()) << env;
    double sum = 0;
    for (const auto& [series, v] : phases) sum += v;
    EXPECT_EQ(sum, 1) << env;
  }
  EXPECT_EQ(s.at("rollgate_environment_phase{environment=\"dev\",namespace=\"app\",phase="
                 "\"Succeeded\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(s.at("rollgate_environment_phase{environment=\"prod\",namespace=\"app\",phase="
                 "\"Verifying\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(s.at("rollgate_environment_phase{environment=\"prod\",namespace=\"app\",phase="
                 "\"Updating\",rollout=\"r\"}"),
            0);
}

TEST(MetricsTest, EnvironmentsInRemoteClustersNameTheirClusterAndOnlyThey) {
  Metrics m(nullptr, Opts());
  m.ObserveRollout("app", "r", 1, "Progressing", {{"dev", "Succeeded"}, {"prod", "Verifying"}});
  m.ObserveEnvironmentClusters("app", "r", {{"prod", "prod-eu"}});
  auto s = Scrape(m);
  EXPECT_EQ(s.at("rollgate_environment_cluster{cluster=\"prod-eu\",environment=\"prod\","
                 "namespace=\"app\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(Matching(s, {"rollgate_environment_cluster{"}).size(), 1U)
      << "an environment in the controller's own cluster has no series";

  m.ObserveEnvironmentClusters("app", "r", {{"prod", "prod-us"}});  // retargeted
  s = Scrape(m);
  EXPECT_EQ(Matching(s, {"rollgate_environment_cluster{", "prod-eu"}).size(), 0U);
  EXPECT_EQ(Matching(s, {"rollgate_environment_cluster{", "prod-us"}).size(), 1U);

  m.ObserveEnvironmentClusters("app", "r", {});  // back in the controller's own cluster
  EXPECT_EQ(Matching(Scrape(m), {"rollgate_environment_cluster{"}).size(), 0U);

  m.ObserveEnvironmentClusters("app", "r", {{"prod", "prod-eu"}});
  m.RolloutDeleted("app", "r");
  EXPECT_EQ(Matching(Scrape(m), {"rollgate_environment_cluster{"}).size(), 0U);
  // A rollout without remote environments that the metrics never saw gets no series at all.
  m.ObserveEnvironmentClusters("app", "other", {});
  EXPECT_EQ(Matching(Scrape(m), {"rollgate_rollout_info{", "other"}).size(), 0U);
}

TEST(MetricsTest, EmptyPhaseCountsAsPending) {
  Metrics m(nullptr, Opts());
  m.ObserveRollout("app", "r", 0, "", {{"dev", ""}});
  auto s = Scrape(m);
  EXPECT_EQ(s.at("rollgate_rollout_phase{namespace=\"app\",phase=\"Pending\",rollout=\"r\"}"), 1);
  EXPECT_EQ(s.at("rollgate_environment_phase{environment=\"dev\",namespace=\"app\",phase="
                 "\"Pending\",rollout=\"r\"}"),
            1);
}

TEST(MetricsTest, UnknownPhaseGetsASeriesOnlyWhileCurrent) {
  Metrics m(nullptr, Opts());
  m.ObserveRollout("app", "r", 1, "Exploding", {{"dev", "Melting down!"}});
  auto s = Scrape(m);
  EXPECT_EQ(s.at("rollgate_rollout_phase{namespace=\"app\",phase=\"Exploding\",rollout=\"r\"}"), 1);
  EXPECT_EQ(s.at("rollgate_environment_phase{environment=\"dev\",namespace=\"app\",phase="
                 "\"Other\",rollout=\"r\"}"),
            1);
  double ones = 0;
  for (const auto& [series, v] : Matching(s, {"rollgate_rollout_phase{"})) ones += v;
  EXPECT_EQ(ones, 1);
  m.ObserveRollout("app", "r", 1, "Progressing", {{"dev", "Updating"}});
  s = Scrape(m);
  EXPECT_TRUE(Matching(s, {"Exploding"}).empty());
  EXPECT_TRUE(Matching(s, {"phase=\"Other\""}).empty());
  EXPECT_EQ(Matching(s, {"rollgate_rollout_phase{"}).size(), RolloutPhases().size());
}

TEST(MetricsTest, FirstObservationInitialisesCountersAtZero) {
  Metrics m(nullptr, Opts());
  m.ObserveRollout("app", "r", 1, "Progressing", {{"dev", "Updating"}, {"prod", "Pending"}});
  auto s = Scrape(m);
  for (const char* env : {"dev", "prod"}) {
    const std::string e = env;
    const std::string base = R"(environment=")" + e + R"(",namespace="app")";
    EXPECT_EQ(s.at("rollgate_rollbacks_total{" + base + ",rollout=\"r\"}"), 0) << e;
    EXPECT_EQ(
        s.at("rollgate_worker_validations_total{" + base + ",result=\"passed\",rollout=\"r\"}"), 0)
        << e;
    EXPECT_EQ(
        s.at("rollgate_worker_validations_total{" + base + ",result=\"failed\",rollout=\"r\"}"), 0)
        << e;
    auto failures = Matching(s, {"rollgate_rollout_failures_total{", "environment=\"" + e + "\""});
    EXPECT_EQ(failures.size(), KnownFailureReasons().size()) << e;
    for (const auto& reason : KnownFailureReasons()) {
      std::string series = "rollgate_rollout_failures_total{" + base;
      series += R"(,reason=")" + reason + R"(",rollout="r"})";
      EXPECT_EQ(s.at(series), 0) << e << " " << reason;
    }
  }
  // Histograms appear with the first observation, not before.
  EXPECT_TRUE(Matching(s, {"rollgate_environment_duration_seconds"}).empty());
}

TEST(MetricsTest, InitialisedReasonsAreConfigurable) {
  MetricsOptions o = Opts();
  o.init_failure_reasons = {"ProgressDeadlineExceeded"};
  Metrics m(nullptr, o);
  m.ObserveRollout("app", "r", 1, "Progressing", {{"dev", "Updating"}});
  auto failures = Matching(Scrape(m), {"rollgate_rollout_failures_total{"});
  EXPECT_THAT(failures, ElementsAre(Pair("rollgate_rollout_failures_total{environment=\"dev\","
                                         "namespace=\"app\",reason=\"ProgressDeadlineExceeded\","
                                         "rollout=\"r\"}",
                                         0)));
}

TEST(MetricsTest, CountsFailuresRollbacksValidationsAndDurations) {
  Metrics m(nullptr, Opts());
  m.ObserveRollout("app", "r", 1, "Progressing", {{"prod", "Verifying"}});
  m.CountFailure("app", "r", "prod", "ProgressDeadlineExceeded");
  m.CountFailure("app", "r", "prod", "ProgressDeadlineExceeded");
  m.CountFailure("app", "r", "prod", "SomethingNew");
  m.CountRollback("app", "r", "prod");
  m.CountValidation("app", "r", "prod", true, 3);
  m.CountValidation("app", "r", "prod", false);
  m.ObserveEnvironmentDuration("app", "r", "prod", 45);
  m.ObserveEnvironmentDuration("app", "r", "prod", 5000);
  auto s = Scrape(m);
  const std::string base = R"(environment="prod",namespace="app")";
  EXPECT_EQ(s.at("rollgate_rollout_failures_total{" + base +
                 ",reason=\"ProgressDeadlineExceeded\",rollout=\"r\"}"),
            2);
  EXPECT_EQ(
      s.at("rollgate_rollout_failures_total{" + base + ",reason=\"SomethingNew\",rollout=\"r\"}"),
      1);
  EXPECT_EQ(s.at("rollgate_rollout_failures_total{" + base +
                 ",reason=\"WorkerValidationFailed\",rollout=\"r\"}"),
            0);
  EXPECT_EQ(s.at("rollgate_rollbacks_total{" + base + ",rollout=\"r\"}"), 1);
  EXPECT_EQ(s.at("rollgate_worker_validations_total{" + base + ",result=\"passed\",rollout=\"r\"}"),
            3);
  EXPECT_EQ(s.at("rollgate_worker_validations_total{" + base + ",result=\"failed\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(s.at("rollgate_environment_duration_seconds_count{" + base + ",rollout=\"r\"}"), 2);
  EXPECT_EQ(s.at("rollgate_environment_duration_seconds_sum{" + base + ",rollout=\"r\"}"), 5045);
  // prometheus-cpp writes "le" after the sorted labels.
  EXPECT_EQ(
      s.at("rollgate_environment_duration_seconds_bucket{" + base + ",rollout=\"r\",le=\"60\"}"),
      1);
  EXPECT_EQ(
      s.at("rollgate_environment_duration_seconds_bucket{" + base + ",rollout=\"r\",le=\"7200\"}"),
      2);
  EXPECT_EQ(Matching(s, {"rollgate_environment_duration_seconds_bucket{"}).size(),
            EnvironmentDurationBuckets().size() + 1);  // + le="+Inf"
}

TEST(MetricsTest, LabelValuesStayBounded) {
  Metrics m(nullptr, Opts());
  m.CountFailure("app", "r", "prod", "dial tcp 10.0.0.1:443: connect: connection refused");
  m.CountFailure("app", "r", "prod", "");
  m.ObserveKubeRequest("GET /api/v1/pods/secret-pod", 200, std::chrono::milliseconds(1));
  auto s = Scrape(m);
  EXPECT_EQ(s.at("rollgate_rollout_failures_total{environment=\"prod\",namespace=\"app\",reason="
                 "\"Other\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(s.at("rollgate_rollout_failures_total{environment=\"prod\",namespace=\"app\",reason="
                 "\"Unknown\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(s.at("rollgate_kube_requests_total{code=\"200\",verb=\"Other\"}"), 1);
  EXPECT_TRUE(Matching(s, {"10.0.0.1"}).empty());
  EXPECT_TRUE(Matching(s, {"secret-pod"}).empty());
}

TEST(MetricsTest, SanitizeLabelValue) {
  EXPECT_EQ(SanitizeLabelValue("ProgressDeadlineExceeded"), "ProgressDeadlineExceeded");
  EXPECT_EQ(SanitizeLabelValue("containerrollouts.rollgate.io"), "containerrollouts.rollgate.io");
  EXPECT_EQ(SanitizeLabelValue("deletecollection"), "deletecollection");
  EXPECT_EQ(SanitizeLabelValue(""), "");
  EXPECT_EQ(SanitizeLabelValue("has space"), "Other");
  EXPECT_EQ(SanitizeLabelValue("registry.example.com/app:1.0"), "Other");
  EXPECT_EQ(SanitizeLabelValue(std::string(65, 'a')), "Other");
  EXPECT_EQ(SanitizeLabelValue(std::string(64, 'a')), std::string(64, 'a'));
}

TEST(MetricsTest, EnvironmentsRemovedFromTheSpecLoseTheirSeries) {
  Metrics m(nullptr, Opts());
  m.ObserveRollout("app", "r", 1, "Progressing", {{"dev", "Succeeded"}, {"old", "Pending"}});
  m.ObserveEnvironmentDuration("app", "r", "old", 10);
  m.CountFailure("app", "r", "old", "SomethingNew");
  ASSERT_FALSE(Matching(Scrape(m), {"environment=\"old\""}).empty());
  m.ObserveRollout("app", "r", 2, "Progressing", {{"dev", "Updating"}});
  auto s = Scrape(m);
  EXPECT_TRUE(Matching(s, {"environment=\"old\""}).empty());
  EXPECT_FALSE(Matching(s, {"environment=\"dev\""}).empty());
}

TEST(MetricsTest, DeletedRolloutsLoseEverySeries) {
  Metrics m(nullptr, Opts());
  for (const char* name : {"r1", "r2"}) {
    m.ObserveRollout("app", name, 1, "Progressing", {{"dev", "Updating"}});
    m.CountFailure("app", name, "dev", "SomethingNew");
    m.CountRollback("app", name, "dev");
    m.CountValidation("app", name, "dev", false);
    m.ObserveEnvironmentDuration("app", name, "dev", 12);
  }
  m.RolloutDeleted("app", "r1");
  m.RolloutDeleted("app", "never-seen");  // no-op
  auto s = Scrape(m);
  EXPECT_TRUE(Matching(s, {"rollout=\"r1\""}).empty());
  const std::size_t r2 = Matching(s, {"rollout=\"r2\""}).size();
  EXPECT_GT(r2, 0u);

  // Observed again (re-created with the same name): fresh series at zero.
  m.ObserveRollout("app", "r1", 1, "Pending", {{"dev", "Pending"}});
  s = Scrape(m);
  EXPECT_EQ(s.at("rollgate_rollbacks_total{environment=\"dev\",namespace=\"app\",rollout=\"r1\"}"),
            0);
  m.RolloutDeleted("app", "r1");
  m.RolloutDeleted("app", "r2");
  EXPECT_TRUE(Matching(Scrape(m), {"rollout=\""}).empty());
}

TEST(MetricsTest, ControllerLoopAndApiServerSeries) {
  Metrics m(nullptr, Opts());
  m.ObserveReconcile(0.2, false);
  m.ObserveReconcile(0.02, true);
  m.SetQueueDepth(3);
  m.SetLeader(false);
  m.ObserveReactionLatency(0.4);
  m.ObserveKubeRequest("get", 200, std::chrono::milliseconds(5));
  m.ObserveKubeRequest("get", 200, std::chrono::milliseconds(7));
  m.ObserveKubeRequest("patch", 409, std::chrono::milliseconds(9));
  m.ObserveKubeRequest("watch", 0, std::chrono::seconds(2));
  m.CountWatchRestart("deployments");
  m.CountWatchRestart("deployments");
  auto s = Scrape(m);
  EXPECT_EQ(s.at("rollgate_reconcile_duration_seconds_count"), 2);
  EXPECT_DOUBLE_EQ(s.at("rollgate_reconcile_duration_seconds_sum"), 0.22);
  EXPECT_EQ(s.at("rollgate_reconcile_duration_seconds_bucket{le=\"0.025\"}"), 1);
  EXPECT_EQ(s.at("rollgate_reconcile_errors_total"), 1);
  EXPECT_EQ(s.at("rollgate_workqueue_depth"), 3);
  EXPECT_EQ(m.queue_depth(), 3u);
  EXPECT_EQ(s.at("rollgate_leader"), 0);
  EXPECT_EQ(s.at("rollgate_reaction_latency_seconds_count"), 1);
  EXPECT_EQ(s.at("rollgate_kube_requests_total{code=\"200\",verb=\"get\"}"), 2);
  EXPECT_EQ(s.at("rollgate_kube_requests_total{code=\"409\",verb=\"patch\"}"), 1);
  EXPECT_EQ(s.at("rollgate_kube_requests_total{code=\"<error>\",verb=\"watch\"}"), 1);
  EXPECT_EQ(s.at("rollgate_kube_request_duration_seconds_count{verb=\"get\"}"), 2);
  EXPECT_DOUBLE_EQ(s.at("rollgate_kube_request_duration_seconds_sum{verb=\"get\"}"), 0.012);
  EXPECT_EQ(s.at("rollgate_kube_request_duration_seconds_count{verb=\"watch\"}"), 1);
  EXPECT_EQ(s.at("rollgate_watch_restarts_total{resource=\"deployments\"}"), 2);
}

TEST(MetricsTest, SmokeCheckResultsStartAtZeroAndAreControllerWide) {
  Metrics m(nullptr, Opts());
  auto s = Scrape(m);
  EXPECT_EQ(
      Matching(s, {"rollgate_smoke_checks_total{"}),
      (std::map<std::string, double>{{"rollgate_smoke_checks_total{result=\"failed\"}", 0},
                                     {"rollgate_smoke_checks_total{result=\"passed\"}", 0},
                                     {"rollgate_smoke_checks_total{result=\"timed_out\"}", 0}}));
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_count"), 0);
  EXPECT_EQ(SmokeCheckResults(), (std::vector<std::string>{"passed", "failed", "timed_out"}));

  m.ObserveSmokeCheck("passed", 4);
  m.ObserveSmokeCheck("passed", 25);
  m.ObserveSmokeCheck("failed", 0.5);
  m.ObserveSmokeCheck("timed_out", 300);
  m.ObserveSmokeCheck("exit code 3: boom", -1);  // a free-form string never becomes a label
  s = Scrape(m);
  EXPECT_EQ(s.at("rollgate_smoke_checks_total{result=\"passed\"}"), 2);
  EXPECT_EQ(s.at("rollgate_smoke_checks_total{result=\"failed\"}"), 1);
  EXPECT_EQ(s.at("rollgate_smoke_checks_total{result=\"timed_out\"}"), 1);
  EXPECT_EQ(s.at("rollgate_smoke_checks_total{result=\"Other\"}"), 1);
  // Every result is timed, a negative time as 0.
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_count"), 5);
  EXPECT_DOUBLE_EQ(s.at("rollgate_smoke_check_seconds_sum"), 329.5);
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_bucket{le=\"1\"}"), 2);
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_bucket{le=\"5\"}"), 3);
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_bucket{le=\"30\"}"), 4);
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_bucket{le=\"300\"}"), 5);
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_bucket{le=\"+Inf\"}"), 5);
  EXPECT_EQ(Matching(s, {"rollgate_smoke_check_seconds_bucket{"}).size(),
            SmokeCheckDurationBuckets().size() + 1);  // + le="+Inf"
  // No rollout label: the series do not grow with rollouts.
  EXPECT_TRUE(Matching(s, {"rollout=\""}).empty());
}

TEST(MetricsTest, MatchesTheRestClientObserveHook) {
  Metrics m(nullptr, Opts());
  std::function<void(const std::string&, int, std::chrono::nanoseconds)> observe =
      [&m](const std::string& verb, int code, std::chrono::nanoseconds latency) {
        m.ObserveKubeRequest(verb, code, latency);
      };
  observe("list", 200, std::chrono::milliseconds(3));
  EXPECT_EQ(Scrape(m).at("rollgate_kube_requests_total{code=\"200\",verb=\"list\"}"), 1);
}

TEST(MetricsTest, ConcurrentUpdatesDeletesAndScrapes) {
  Metrics m(nullptr, Opts());
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, &stop, t] {
      const std::string name = "r" + std::to_string(t % 2);
      int i = 0;
      while (!stop.load()) {
        m.ObserveRollout("app", name, i, (i % 2) != 0 ? "Progressing" : "Failed",
                         {{"dev", "Updating"}, {"prod", (i % 3) != 0 ? "Pending" : "Failed"}});
        m.CountFailure("app", name, "prod", "ProgressDeadlineExceeded");
        m.CountValidation("app", name, "dev", (i % 2) != 0);
        m.ObserveEnvironmentDuration("app", name, "dev", i);
        m.ObserveKubeRequest("get", 200, std::chrono::microseconds(i));
        if (i % 5 == 0) m.RolloutDeleted("app", name);
        ++i;
      }
    });
  }
  for (int i = 0; i < 50; ++i) (void)ScrapeText(m);
  stop = true;
  for (auto& t : threads) t.join();
  m.RolloutDeleted("app", "r0");
  m.RolloutDeleted("app", "r1");
  EXPECT_TRUE(Matching(Scrape(m), {"rollout=\""}).empty());
}

}  // namespace
}  // namespace rollgate::metrics
