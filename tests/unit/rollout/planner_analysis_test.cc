// The planner's metric analysis gate: sampling at the configured interval, counting outcomes, and
// the outcome table (pass, fail at once, inconclusive).
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

// ---------------------------------------------------------------------------------------------
// Analysis

AnalysisObservation Sample(AnalysisObservation::Outcome o) {
  switch (o) {
    case AnalysisObservation::Outcome::kPass:
      return {.outcome = o, .value = "0.001", .message = "error-rate: 0.001 <= 0.01"};
    case AnalysisObservation::Outcome::kFail:
      return {.outcome = o, .value = "0.2", .message = "error-rate: 0.2 > 0.01"};
    case AnalysisObservation::Outcome::kInconclusive:
      return {.outcome = o, .value = "", .message = "error-rate: no data"};
  }
  return {};
}

World AnalysisWorld(int envs) {
  World w(envs, 1);
  AnalysisSpec a;
  a.prometheus_address = "http://prometheus.monitoring:9090";
  a.checks.push_back({.name = "error-rate",
                      .query = "sum(rate(http_errors_total[2m]))",
                      .min = std::nullopt,
                      .max = 0.01});
  a.interval_seconds = 30;
  a.samples = 4;
  w.Spec(0).analysis = a;
  w.opts.analysis_endpoints = {"http://prometheus.monitoring:9090"};
  w.ToVerifying();
  w.RollOut();
  return w;
}

TEST(PlannerAnalysis, SamplesAtTheIntervalAndCountsOutcomes) {
  World w = AnalysisWorld(2);
  // Needs a sample.
  Plan p = w.Run();
  EXPECT_TRUE(p.sample_analysis);
  EXPECT_TRUE(p.patches.empty());
  const RolloutStatus& s0 = p.status ? *p.status : w.St();
  EXPECT_EQ(s0.environments[0].phase, EnvironmentPhase::kVerifying);

  // The reconciler samples and plans again with the observation.
  w.obs.analysis_sample = Sample(AnalysisObservation::Outcome::kPass);
  p = w.Step();
  w.obs.analysis_sample.reset();
  EXPECT_FALSE(p.sample_analysis);
  ASSERT_TRUE(w.Env(0).analysis.has_value());
  EXPECT_EQ(w.Env(0).analysis->samples, 1);
  EXPECT_EQ(w.Env(0).analysis->passed, 1);
  EXPECT_EQ(w.Env(0).analysis->failed, 0);
  EXPECT_EQ(w.Env(0).analysis->last_sample_at, kT0);
  EXPECT_EQ(w.Env(0).analysis->last_value, "0.001");
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kVerifying);
  ASSERT_TRUE(p.requeue_after.has_value());
  EXPECT_GE(*p.requeue_after, seconds(30));
  EXPECT_LE(*p.requeue_after, seconds(31));
  EXPECT_NE(w.Env(0).message.find("1/4"), std::string::npos) << w.Env(0).message;

  // Before the interval: no sample, requeue for the rest of it.
  w.obs.now = kT0 + seconds(10);
  p = w.Run();
  EXPECT_FALSE(p.sample_analysis);
  ASSERT_TRUE(p.requeue_after.has_value());
  EXPECT_LE(*p.requeue_after, seconds(21));
  EXPECT_GE(*p.requeue_after, seconds(20));

  // At the interval: the next sample.
  w.obs.now = kT0 + seconds(30);
  p = w.Run();
  EXPECT_TRUE(p.sample_analysis);
}

struct AnalysisCase {
  std::string label;
  std::vector<AnalysisObservation::Outcome> outcomes;
  Want want;
  int want_passed;
  int want_inconclusive;
};

TEST(PlannerAnalysis, Outcomes) {
  using O = AnalysisObservation::Outcome;
  const std::vector<AnalysisCase> cases = {
      {.label = "every sample passes",
       .outcomes = {O::kPass, O::kPass, O::kPass, O::kPass},
       .want = {.env_phase = EnvironmentPhase::kSucceeded,
                .rollout_phase = RolloutPhase::kProgressing,
                .reason = "Succeeded",
                .events = {"EnvironmentSucceeded"},
                .requeue = seconds(1),
                .current_environment = "env1"},
       .want_passed = 4,
       .want_inconclusive = 0},
      {.label = "a failing sample fails at once",
       .outcomes = {O::kPass, O::kFail},
       .want = {.env_phase = EnvironmentPhase::kRollingBack,
                .rollout_phase = RolloutPhase::kRollingBack,
                .reason = "AnalysisFailed",
                .message_has = "0.2 > 0.01",
                .events = {"AnalysisFailed"}},
       .want_passed = 1,
       .want_inconclusive = 0},
      {.label = "every sample inconclusive",
       .outcomes = {O::kInconclusive, O::kInconclusive, O::kInconclusive, O::kInconclusive},
       .want = {.env_phase = EnvironmentPhase::kRollingBack,
                .rollout_phase = RolloutPhase::kRollingBack,
                .reason = "AnalysisInconclusive",
                .message_has = "0 of 4 samples passed",
                .events = {"AnalysisInconclusive"}},
       .want_passed = 0,
       .want_inconclusive = 4},
      {.label = "one inconclusive among passes",
       .outcomes = {O::kPass, O::kInconclusive, O::kPass, O::kPass},
       .want = {.env_phase = EnvironmentPhase::kRollingBack,
                .rollout_phase = RolloutPhase::kRollingBack,
                .reason = "AnalysisInconclusive",
                .message_has = "3 of 4",
                .events = {"AnalysisInconclusive"}},
       .want_passed = 3,
       .want_inconclusive = 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w = AnalysisWorld(2);
    Plan p;
    for (size_t i = 0; i < c.outcomes.size(); ++i) {
      w.obs.now = kT0 + seconds(30 * static_cast<int>(i));
      Plan ask = w.Run();
      ASSERT_TRUE(ask.sample_analysis) << "sample " << i;
      w.obs.analysis_sample = Sample(c.outcomes[i]);
      p = w.Run();
      EXPECT_FALSE(p.sample_analysis);
      EXPECT_TRUE(p.patches.empty());
      if (i + 1 < c.outcomes.size()) w.Persist(p);
      w.obs.analysis_sample.reset();
    }
    ExpectPlan(w, p, 0, c.want);
    ASSERT_TRUE(p.status.has_value());
    ASSERT_TRUE(p.status->environments[0].analysis.has_value());
    EXPECT_EQ(p.status->environments[0].analysis->samples, static_cast<int>(c.outcomes.size()));
    EXPECT_EQ(p.status->environments[0].analysis->passed, c.want_passed);
    EXPECT_EQ(p.status->environments[0].analysis->inconclusive, c.want_inconclusive);
  }
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
