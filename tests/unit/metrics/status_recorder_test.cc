#include "controller/metrics/status_recorder.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "tests/unit/metrics/scrape.h"

namespace rollgate::metrics {
namespace {

using api::EnvironmentPhase;
using api::EnvironmentStatus;
using api::RolloutPhase;
using api::RolloutStatus;
using api::ValidationStatus;

EnvironmentStatus Env(const std::string& name, EnvironmentPhase p, const std::string& reason = "") {
  EnvironmentStatus e;
  e.name = name;
  e.phase = p;
  e.reason = reason;
  return e;
}

RolloutStatus Status(RolloutPhase p, std::vector<EnvironmentStatus> envs,
                     std::int64_t revision = 1) {
  RolloutStatus s;
  s.revision = revision;
  s.phase = p;
  s.environments = std::move(envs);
  return s;
}

using Failure = StatusDelta::Failure;

TEST(MetricsStatusDeltaTest, UnchangedStatusIsEmpty) {
  auto st =
      Status(RolloutPhase::kFailed, {Env("dev", EnvironmentPhase::kFailed, "DeploymentNotFound")});
  st.environments[0].validation = ValidationStatus{2, 1, 1, "x"};
  const StatusDelta d = DiffStatus(&st, st);
  EXPECT_TRUE(d.failures.empty());
  EXPECT_TRUE(d.rollbacks.empty());
  EXPECT_TRUE(d.durations.empty());
  EXPECT_TRUE(d.validations.empty());
}

TEST(MetricsStatusDeltaTest, FailureWithAutomaticRollback) {
  auto before = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kSucceeded),
                                                    Env("prod", EnvironmentPhase::kVerifying)});
  auto after = Status(RolloutPhase::kRollingBack,
                      {Env("dev", EnvironmentPhase::kSucceeded),
                       Env("prod", EnvironmentPhase::kRollingBack, "ProgressDeadlineExceeded")});
  const StatusDelta d = DiffStatus(&before, after);
  EXPECT_EQ(d.failures, (std::vector<Failure>{{"prod", "ProgressDeadlineExceeded"}}));
  EXPECT_EQ(d.rollbacks, (std::vector<std::string>{"prod"}));
  // Finishing the rollback counts nothing more.
  auto done = Status(RolloutPhase::kRolledBack,
                     {Env("dev", EnvironmentPhase::kSucceeded),
                      Env("prod", EnvironmentPhase::kRolledBack, "ProgressDeadlineExceeded")});
  const StatusDelta d2 = DiffStatus(&after, done);
  EXPECT_TRUE(d2.failures.empty());
  EXPECT_TRUE(d2.rollbacks.empty());
}

TEST(MetricsStatusDeltaTest, FailureWithoutRollback) {
  auto before = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kPending)});
  auto after = Status(RolloutPhase::kFailed,
                      {Env("dev", EnvironmentPhase::kFailed, "NamespaceNotPermitted")});
  const StatusDelta d = DiffStatus(&before, after);
  EXPECT_EQ(d.failures, (std::vector<Failure>{{"dev", "NamespaceNotPermitted"}}));
  EXPECT_TRUE(d.rollbacks.empty());
}

TEST(MetricsStatusDeltaTest, FailedRollbackCountsRollbackFailed) {
  auto before = Status(RolloutPhase::kRollingBack,
                       {Env("prod", EnvironmentPhase::kRollingBack, "AnalysisFailed")});
  auto after =
      Status(RolloutPhase::kFailed, {Env("prod", EnvironmentPhase::kFailed, "AnalysisFailed")});
  EXPECT_EQ(DiffStatus(&before, after).failures,
            (std::vector<Failure>{{"prod", "RollbackFailed"}}));
}

TEST(MetricsStatusDeltaTest, AbortIsNeitherAFailureNorARollback) {
  auto before = Status(RolloutPhase::kProgressing, {Env("prod", EnvironmentPhase::kVerifying)});
  auto after =
      Status(RolloutPhase::kRollingBack, {Env("prod", EnvironmentPhase::kRollingBack, "Aborted")});
  const StatusDelta d = DiffStatus(&before, after);
  EXPECT_TRUE(d.failures.empty());
  EXPECT_TRUE(d.rollbacks.empty());
}

TEST(MetricsStatusDeltaTest, SucceededEnvironmentReportsItsDuration) {
  auto before = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kBaking)});
  auto after = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kSucceeded)});
  const auto t0 = api::WallTime(std::chrono::hours(1000));
  after.environments[0].started_at = t0;
  after.environments[0].finished_at = t0 + std::chrono::seconds(330);
  EXPECT_EQ(DiffStatus(&before, after).durations,
            (std::vector<StatusDelta::Duration>{{"dev", 330}}));
}

TEST(MetricsStatusDeltaTest, ValidationsCountGrowthAndRestartWithARetry) {
  auto before = Status(RolloutPhase::kProgressing, {Env("canary", EnvironmentPhase::kVerifying)});
  before.environments[0].validation = ValidationStatus{3, 1, 0, ""};
  auto after = before;
  after.environments[0].validation = ValidationStatus{3, 2, 1, "pod x: cuInit failed"};
  EXPECT_EQ(DiffStatus(&before, after).validations,
            (std::vector<StatusDelta::Validations>{{"canary", 1, 1}}));
  // A retry starts the environment over (attempts + 1): its counts are new.
  auto retried = after;
  retried.environments[0].attempts = 1;
  retried.environments[0].validation = ValidationStatus{3, 1, 0, ""};
  EXPECT_EQ(DiffStatus(&after, retried).validations,
            (std::vector<StatusDelta::Validations>{{"canary", 1, 0}}));
}

TEST(MetricsStatusDeltaTest, NewRevisionStartsFromNothing) {
  auto before =
      Status(RolloutPhase::kFailed, {Env("dev", EnvironmentPhase::kFailed, "AnalysisFailed")}, 1);
  auto after = Status(RolloutPhase::kFailed,
                      {Env("dev", EnvironmentPhase::kFailed, "DeploymentNotFound")}, 2);
  EXPECT_EQ(DiffStatus(&before, after).failures,
            (std::vector<Failure>{{"dev", "DeploymentNotFound"}}));
  EXPECT_EQ(DiffStatus(nullptr, after).failures,
            (std::vector<Failure>{{"dev", "DeploymentNotFound"}}));
}

TEST(MetricsStatusDeltaTest, RecordStatusSetsGaugesAndCounts) {
  Metrics m;
  auto first = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kVerifying)}, 4);
  RecordStatus(m, "app", "r", &first, first);
  auto failed = Status(RolloutPhase::kRollingBack,
                       {Env("dev", EnvironmentPhase::kRollingBack, "WorkerValidationFailed")}, 4);
  failed.environments[0].validation = ValidationStatus{1, 0, 1, "no CUDA device"};
  RecordStatus(m, "app", "r", &first, failed);
  RecordStatus(m, "app", "r", &failed, failed);  // a later reconcile with nothing new
  auto s = testing::Scrape(*m.registry());
  const std::string base = R"(environment="dev",namespace="app")";
  EXPECT_EQ(s.at("rollgate_rollout_failures_total{" + base +
                 ",reason=\"WorkerValidationFailed\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(s.at("rollgate_rollbacks_total{" + base + ",rollout=\"r\"}"), 1);
  EXPECT_EQ(s.at("rollgate_worker_validations_total{" + base + ",result=\"failed\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(s.at("rollgate_worker_validations_total{" + base + ",result=\"passed\",rollout=\"r\"}"),
            0);
  EXPECT_EQ(s.at("rollgate_rollout_phase{namespace=\"app\",phase=\"RollingBack\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(s.at("rollgate_environment_phase{" + base + ",phase=\"RollingBack\",rollout=\"r\"}"),
            1);
  EXPECT_EQ(s.at("rollgate_rollout_info{namespace=\"app\",rollout=\"r\"}"), 4);
}

}  // namespace
}  // namespace rollgate::metrics
