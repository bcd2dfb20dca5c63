#include "controller/metrics/status_recorder.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "controller/api/codec.h"
#include "tests/unit/metrics/scrape.h"

namespace rollgate::metrics {
namespace {

using api::EnvironmentPhase;
using api::EnvironmentStatus;
using api::RolloutPhase;
using api::RolloutStatus;
using api::SmokeCheckPhase;
using api::SmokeCheckStatus;
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
using SmokeCheck = StatusDelta::SmokeCheck;

constexpr api::WallTime kT0{std::chrono::hours(1000)};

// A smoke check started at kT0; a final one finished `seconds` later.
SmokeCheckStatus Check(const std::string& name, const std::string& job, SmokeCheckPhase p,
                       int seconds = 0) {
  SmokeCheckStatus c;
  c.name = name;
  c.target = "api";
  c.job = job;
  c.phase = p;
  c.started_at = kT0;
  if (p != SmokeCheckPhase::kRunning) c.finished_at = kT0 + std::chrono::seconds(seconds);
  return c;
}

TEST(MetricsStatusDeltaTest, UnchangedStatusIsEmpty) {
  auto st =
      Status(RolloutPhase::kFailed, {Env("dev", EnvironmentPhase::kFailed, "DeploymentNotFound")});
  st.environments[0].validation = ValidationStatus{2, 1, 1, "x"};
  st.environments[0].smoke_checks = {Check("ping", "r-dev-ping-1", SmokeCheckPhase::kFailed, 2)};
  const StatusDelta d = DiffStatus(&st, st);
  EXPECT_TRUE(d.failures.empty());
  EXPECT_TRUE(d.rollbacks.empty());
  EXPECT_TRUE(d.durations.empty());
  EXPECT_TRUE(d.validations.empty());
  EXPECT_TRUE(d.smoke_checks.empty());
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

TEST(MetricsStatusDeltaTest, SmokeCheckResultNames) {
  EXPECT_EQ(SmokeCheckResult(SmokeCheckPhase::kPassed), "passed");
  EXPECT_EQ(SmokeCheckResult(SmokeCheckPhase::kFailed), "failed");
  EXPECT_EQ(SmokeCheckResult(SmokeCheckPhase::kTimedOut), "timed_out");
  EXPECT_EQ(SmokeCheckResult(SmokeCheckPhase::kRunning), "");
  // Exactly the results whose series Metrics creates at 0.
  std::vector<std::string> finals;
  for (SmokeCheckPhase p : api::AllSmokeCheckPhases()) {
    if (p != SmokeCheckPhase::kRunning) finals.push_back(SmokeCheckResult(p));
  }
  EXPECT_EQ(finals, SmokeCheckResults());
}

TEST(MetricsStatusDeltaTest, SmokeCheckResultCountsOnce) {
  auto running = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kPending)});
  running.environments[0].smoke_checks = {
      Check("migrate", "r-dev-migrate-1", SmokeCheckPhase::kRunning),
      Check("ping", "r-dev-ping-1", SmokeCheckPhase::kRunning)};
  EXPECT_TRUE(DiffStatus(nullptr, running).smoke_checks.empty());
  EXPECT_TRUE(DiffStatus(&running, running).smoke_checks.empty());

  auto one_done = running;
  one_done.environments[0].smoke_checks[1] =
      Check("ping", "r-dev-ping-1", SmokeCheckPhase::kPassed, 12);
  EXPECT_EQ(DiffStatus(&running, one_done).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "ping", "passed", 12}}));

  auto both_done = one_done;
  both_done.environments[0].smoke_checks[0] =
      Check("migrate", "r-dev-migrate-1", SmokeCheckPhase::kTimedOut, 300);
  EXPECT_EQ(DiffStatus(&one_done, both_done).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "migrate", "timed_out", 300}}));
  // The same status again (a later reconcile, a rewrite of the phase) counts nothing.
  EXPECT_TRUE(DiffStatus(&both_done, both_done).smoke_checks.empty());
  auto later = both_done;
  later.environments[0].phase = EnvironmentPhase::kFailed;
  later.environments[0].reason = "SmokeCheckFailed";
  EXPECT_TRUE(DiffStatus(&both_done, later).smoke_checks.empty());

  // Seen for the first time (or before it ran): every result counts, with its time.
  EXPECT_EQ(DiffStatus(nullptr, both_done).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "migrate", "timed_out", 300},
                                     {"dev", "ping", "passed", 12}}));
  EXPECT_EQ(DiffStatus(&running, both_done).smoke_checks.size(), 2u);
}

TEST(MetricsStatusDeltaTest, SmokeCheckWithoutTimesTakesZeroSeconds) {
  auto before = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kPending)});
  auto after = before;
  SmokeCheckStatus c = Check("ping", "r-dev-ping-1", SmokeCheckPhase::kFailed, 5);
  c.started_at.reset();
  after.environments[0].smoke_checks = {c};
  EXPECT_EQ(DiffStatus(&before, after).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "ping", "failed", 0}}));
  c = Check("ping", "r-dev-ping-1", SmokeCheckPhase::kFailed);
  c.finished_at.reset();
  after.environments[0].smoke_checks = {c};
  EXPECT_EQ(DiffStatus(&before, after).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "ping", "failed", 0}}));
  // A clock step backwards is 0, never negative.
  c = Check("ping", "r-dev-ping-1", SmokeCheckPhase::kFailed);
  c.finished_at = kT0 - std::chrono::seconds(3);
  after.environments[0].smoke_checks = {c};
  EXPECT_EQ(DiffStatus(&before, after).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "ping", "failed", 0}}));
}

TEST(MetricsStatusDeltaTest, SmokeCheckOfANewRevisionCountsAgain) {
  auto before = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kVerifying)}, 1);
  before.environments[0].smoke_checks = {
      Check("ping", "r-dev-ping-1", SmokeCheckPhase::kPassed, 3)};
  auto after = before;
  after.revision = 2;
  EXPECT_EQ(DiffStatus(&before, after).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "ping", "passed", 3}}));
}

TEST(MetricsStatusDeltaTest, SmokeCheckOfARetryWithANewJobCountsAgain) {
  auto failed =
      Status(RolloutPhase::kFailed, {Env("dev", EnvironmentPhase::kFailed, "SmokeCheckFailed")});
  failed.environments[0].smoke_checks = {
      Check("ping", "r-dev-ping-a0", SmokeCheckPhase::kFailed, 7)};
  // The retry (attempts + 1) clears the list, then runs the check again as a new Job.
  auto retried = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kPending)});
  retried.environments[0].attempts = 1;
  EXPECT_TRUE(DiffStatus(&failed, retried).smoke_checks.empty());
  auto running = retried;
  running.environments[0].smoke_checks = {
      Check("ping", "r-dev-ping-a1", SmokeCheckPhase::kRunning)};
  EXPECT_TRUE(DiffStatus(&retried, running).smoke_checks.empty());
  auto passed = running;
  passed.environments[0].smoke_checks[0] =
      Check("ping", "r-dev-ping-a1", SmokeCheckPhase::kPassed, 9);
  EXPECT_EQ(DiffStatus(&running, passed).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "ping", "passed", 9}}));
  // Straight from the failed attempt to the retry's result: counted too.
  EXPECT_EQ(DiffStatus(&failed, passed).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "ping", "passed", 9}}));
  // Within one attempt, a result under a new Job name is a new run.
  auto rerun = failed;
  rerun.environments[0].smoke_checks[0] =
      Check("ping", "r-dev-ping-b0", SmokeCheckPhase::kFailed, 4);
  EXPECT_EQ(DiffStatus(&failed, rerun).smoke_checks,
            (std::vector<SmokeCheck>{{"dev", "ping", "failed", 4}}));
}

TEST(MetricsStatusDeltaTest, RecordStatusReportsSmokeChecksOnce) {
  Metrics m;
  auto running = Status(RolloutPhase::kProgressing, {Env("dev", EnvironmentPhase::kPending)}, 2);
  running.environments[0].smoke_checks = {Check("ping", "r-dev-ping-1", SmokeCheckPhase::kRunning)};
  RecordStatus(m, "app", "r", nullptr, running);
  auto done = running;
  done.environments[0].smoke_checks[0] =
      Check("ping", "r-dev-ping-1", SmokeCheckPhase::kFailed, 42);
  RecordStatus(m, "app", "r", &running, done);
  RecordStatus(m, "app", "r", &done, done);  // a later reconcile with nothing new
  auto s = testing::Scrape(m);
  EXPECT_EQ(s.at("rollgate_smoke_checks_total{result=\"failed\"}"), 1);
  EXPECT_EQ(s.at("rollgate_smoke_checks_total{result=\"passed\"}"), 0);
  EXPECT_EQ(s.at("rollgate_smoke_checks_total{result=\"timed_out\"}"), 0);
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_count"), 1);
  EXPECT_DOUBLE_EQ(s.at("rollgate_smoke_check_seconds_sum"), 42);
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_bucket{le=\"30\"}"), 0);
  EXPECT_EQ(s.at("rollgate_smoke_check_seconds_bucket{le=\"60\"}"), 1);
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
  auto s = testing::Scrape(m);
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
