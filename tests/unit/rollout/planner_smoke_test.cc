// The planner's smoke-check gates (issue 20): before the patch, the environment stays Pending
// while its checks' Jobs run and changes nothing unless every one passes; after health, the
// checks run before analysis and bake and a failure rolls back. The plan first asks for the Jobs
// (Plan::smoke_observe), creates the absent ones (Plan::smoke_create, on the namespace's opt-in
// and the Deployment as read), records each result in status.environments[].smokeChecks and
// deletes a passed check's Job (Plan::smoke_delete); a Job of the same name that is not the
// rollout's is never adopted.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "controller/rollout/planner.h"
#include "controller/rollout/smoke_check.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

using State = SmokeJobObservation::State;

api::SmokeCheckSpec Check(const std::string& name,
                          api::SmokeCheckWhen when = api::SmokeCheckWhen::kBeforePatch) {
  api::SmokeCheckSpec c;
  c.name = name;
  c.image = Logical(0);
  c.command = {"/app/check", "--quick"};
  c.timeout_seconds = 120;
  c.when = when;
  return c;
}

World WithChecks(std::vector<api::SmokeCheckSpec> checks, int envs = 2) {
  World w(envs, 1);
  w.Spec(0).smoke_checks = std::move(checks);
  return w;
}

SmokeJobObservation Seen(State s, std::string uid = "job-uid", std::optional<int> code = {},
                         std::string message = "") {
  SmokeJobObservation o;
  o.state = s;
  o.uid = std::move(uid);
  o.exit_code = code;
  o.message = std::move(message);
  return o;
}

const api::SmokeCheckStatus& Record(const World& w, int env, const std::string& name) {
  for (const auto& c : w.Env(env).smoke_checks) {
    if (c.name == name) return c;
  }
  static const api::SmokeCheckStatus kNone;
  ADD_FAILURE() << "no record of smoke check " << name;
  return kNone;
}

TEST(PlannerSmoke, WithoutChecksNoJobIsEverAskedFor) {
  World w(2, 1);
  Plan p = w.Step();
  EXPECT_TRUE(p.smoke_observe.empty());
  EXPECT_TRUE(p.smoke_create.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating);
}

TEST(PlannerSmoke, ABeforePatchCheckAsksForItsJobAndChangesNothingUntilItIsRead) {
  World w = WithChecks({Check("imports")});
  w.Step();  // the revision starts
  Plan p = w.Run();
  ASSERT_EQ(p.smoke_observe.size(), 1u);
  const SmokeJob& j = p.smoke_observe[0];
  EXPECT_EQ(j.check, "imports");
  EXPECT_EQ(j.namespace_, kNs);
  EXPECT_EQ(j.deployment, DeployName(0, 0));
  EXPECT_EQ(j.container, Container(0));
  EXPECT_EQ(j.image, NewImage(0));
  EXPECT_EQ(j.command, (std::vector<std::string>{"/app/check", "--quick"}));
  EXPECT_EQ(j.timeout_seconds, 120);
  EXPECT_EQ(j.rollout, "app/r");
  EXPECT_EQ(j.rollout_uid, "uid-1");
  EXPECT_EQ(j.revision, 1);
  EXPECT_EQ(j.environment, EnvName(0));
  EXPECT_EQ(j.job, SmokeJobName("r", "uid-1", 1, EnvName(0), 0, "imports"));
  EXPECT_TRUE(p.smoke_create.empty());
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(p.status ? p.status->environments[0].phase : w.Env(0).phase,
            EnvironmentPhase::kPending);
}

TEST(PlannerSmoke, AnAbsentJobIsCreatedAndTheEnvironmentWaitsPending) {
  World w = WithChecks({Check("imports")});
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kAbsent)}};
  Plan p = w.Step();
  ASSERT_EQ(p.smoke_create.size(), 1u);
  EXPECT_EQ(p.smoke_create[0].check, "imports");
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kPending,
              .message_has = "smoke checks running before any change: imports (job app/",
              .requeue = seconds(2)});
  const api::SmokeCheckStatus& rec = Record(w, 0, "imports");
  EXPECT_EQ(rec.phase, api::SmokeCheckPhase::kRunning);
  EXPECT_EQ(rec.target, DeployName(0, 0));
  EXPECT_EQ(rec.job, p.smoke_create[0].job);
  EXPECT_EQ(rec.started_at, kT0);
  EXPECT_TRUE(w.Env(0).targets.empty()) << "no previous images recorded before the check passed";
}

TEST(PlannerSmoke, ARunningJobIsWaitedForAndNotCreatedAgain) {
  World w = WithChecks({Check("imports")});
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kAbsent)}};
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kRunning)}};
  w.obs.now += seconds(30);
  Plan p = w.Step();
  EXPECT_TRUE(p.smoke_create.empty());
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kPending);
  EXPECT_EQ(p.requeue_after, seconds(2));
  EXPECT_EQ(Record(w, 0, "imports").started_at, kT0) << "the start is kept";
}

TEST(PlannerSmoke, APassedCheckIsRecordedItsJobDeletedAndTheEnvironmentEntersUpdating) {
  World w = WithChecks({Check("imports")});
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kAbsent)}};
  w.Step();
  w.obs.now += seconds(7);
  w.obs.smoke_jobs = {{"imports", Seen(State::kSucceeded, "u-42")}};
  Plan p = w.Step();
  ASSERT_EQ(p.smoke_delete.size(), 1u);
  EXPECT_EQ(p.smoke_delete[0].uid, "u-42");
  EXPECT_EQ(p.smoke_delete[0].namespace_, kNs);
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kUpdating) << w.Env(0).message;
  const api::SmokeCheckStatus& rec = Record(w, 0, "imports");
  EXPECT_EQ(rec.phase, api::SmokeCheckPhase::kPassed);
  EXPECT_EQ(rec.exit_code, 0);
  EXPECT_EQ(rec.started_at, kT0);
  EXPECT_EQ(rec.finished_at, kT0 + seconds(7));
  // Passed checks are not asked for again: the patches follow.
  w.obs.smoke_jobs.reset();
  Plan next = w.StepApply();
  EXPECT_TRUE(next.smoke_observe.empty());
  EXPECT_FALSE(next.patches.empty());
}

TEST(PlannerSmoke, AFailedBeforePatchCheckFailsTheEnvironmentWithNothingPatched) {
  World w = WithChecks({Check("imports")});
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kAbsent)}};
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kFailed, "u", 3,
                                       "BackoffLimitExceeded: ...; last log lines:\nboom")}};
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_TRUE(p.smoke_delete.empty()) << "a failed check's Job is kept for debugging";
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "SmokeCheckFailed",
              .message_has = "failed with exit code 3: BackoffLimitExceeded",
              .events = {"SmokeCheckFailed"}});
  EXPECT_NE(w.Env(0).message.find("smoke check imports (job app/"), std::string::npos);
  EXPECT_NE(w.Env(0).message.find("boom"), std::string::npos);
  const api::SmokeCheckStatus& rec = Record(w, 0, "imports");
  EXPECT_EQ(rec.phase, api::SmokeCheckPhase::kFailed);
  EXPECT_EQ(rec.exit_code, 3);
  EXPECT_EQ(w.patch_count.size(), 0u);
}

TEST(PlannerSmoke, ATimedOutJobFailsTheEnvironment) {
  World w = WithChecks({Check("imports")});
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kTimedOut, "u", {}, "DeadlineExceeded: ...")}};
  Plan p = w.Step();
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "SmokeCheckFailed",
              .message_has = "timed out after 120s: DeadlineExceeded"});
  EXPECT_EQ(Record(w, 0, "imports").phase, api::SmokeCheckPhase::kTimedOut);
}

TEST(PlannerSmoke, AJobTheJobControllerNeverEndsTimesOutAfterItsDeadlineAndAGrace) {
  World w = WithChecks({Check("imports")});
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kAbsent)}};
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kRunning)}};
  w.obs.now = kT0 + seconds(120 + 59);
  w.Step();
  ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kPending);
  w.obs.now = kT0 + seconds(120 + 60);
  Plan p = w.Step();
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "SmokeCheckFailed",
              .message_has = "timed out: not finished 180s after it started"});
}

TEST(PlannerSmoke, AJobOfTheSameNameThatIsNotTheRolloutsFailsTheCheckAndIsLeftAlone) {
  World w = WithChecks({Check("imports")});
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kForeign, "u", {}, "it belongs to rollout x/y")}};
  Plan p = w.Step();
  EXPECT_TRUE(p.smoke_create.empty());
  EXPECT_TRUE(p.smoke_delete.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "SmokeCheckFailed",
              .message_has = "not created by this rollout (it belongs to rollout x/y)"});
}

TEST(PlannerSmoke, AJobAdoptedBeforeItsRecordWasWrittenStartedWhenItWasCreated) {
  World w = WithChecks({Check("imports")});
  w.Step();
  SmokeJobObservation running = Seen(State::kRunning);
  running.created_at = kT0 - seconds(4);
  w.obs.smoke_jobs = {{"imports", running}};
  Plan p = w.Step();
  EXPECT_TRUE(p.smoke_create.empty()) << "adopted, not created again";
  EXPECT_EQ(Record(w, 0, "imports").started_at, kT0 - seconds(4));
}

TEST(PlannerSmoke, AJobThatCouldNotBeReadIsWaitedFor) {
  World w = WithChecks({Check("imports")});
  w.Step();
  w.obs.smoke_jobs = std::map<std::string, SmokeJobObservation>{};  // the read failed
  Plan p = w.Step();
  EXPECT_TRUE(p.smoke_create.empty());
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kPending);
  EXPECT_EQ(p.requeue_after, seconds(2));
}

TEST(PlannerSmoke, ANamespaceThatWithdrewItsOptInGetsNoJob) {
  World w = WithChecks({Check("imports")});
  w.MoveEnv(0, "team");
  w.obs.namespaces["team"] = NamespaceView{"team", {{kAllowFromLabel, kNs}}};
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kAbsent)}};
  w.obs.namespaces["team"] = NamespaceView{"team", {}};  // the fresh read: consent withdrawn
  Plan p = w.Step();
  EXPECT_TRUE(p.smoke_create.empty());
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "NamespaceNotPermitted"});
}

TEST(PlannerSmoke, EveryCheckOfTheStepRunsAtOnceAndAllMustPass) {
  api::SmokeCheckSpec second = Check("cpu-only");
  World w = WithChecks({Check("imports"), second});
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kAbsent)}, {"cpu-only", Seen(State::kAbsent)}};
  Plan p = w.Step();
  EXPECT_EQ(p.smoke_create.size(), 2u);
  EXPECT_NE(p.smoke_create[0].job, p.smoke_create[1].job);
  w.obs.smoke_jobs = {{"imports", Seen(State::kSucceeded)}, {"cpu-only", Seen(State::kRunning)}};
  p = w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kPending);
  EXPECT_EQ(Record(w, 0, "imports").phase, api::SmokeCheckPhase::kPassed);
  // Only the check still running is asked for next.
  w.obs.smoke_jobs.reset();
  p = w.Run();
  ASSERT_EQ(p.smoke_observe.size(), 1u);
  EXPECT_EQ(p.smoke_observe[0].check, "cpu-only");
}

TEST(PlannerSmoke, ATargetsOwnCheckRunsWithThatTargetsPodTemplate) {
  World w(1, 2);
  api::SmokeCheckSpec c = Check("worker");
  c.image = Logical(1);
  w.Spec(0).targets[1].smoke_checks = {c};
  w.Step();
  Plan p = w.Run();
  ASSERT_EQ(p.smoke_observe.size(), 1u);
  EXPECT_EQ(p.smoke_observe[0].deployment, DeployName(0, 1));
  EXPECT_EQ(p.smoke_observe[0].container, Container(1));
  EXPECT_EQ(p.smoke_observe[0].image, NewImage(1));
}

TEST(PlannerSmoke, AnAfterHealthCheckRunsOnceTheTargetsAreHealthyAndAFailureRollsBack) {
  World w = WithChecks({Check("canary-test", api::SmokeCheckWhen::kAfterHealthy)});
  w.ToVerifying();
  Plan p = w.Run();
  EXPECT_TRUE(p.smoke_observe.empty()) << "not before the targets rolled out";
  w.RollOut();
  p = w.Run();
  ASSERT_EQ(p.smoke_observe.size(), 1u);
  EXPECT_EQ(p.smoke_observe[0].check, "canary-test");
  w.obs.smoke_jobs = {{"canary-test", Seen(State::kAbsent)}};
  p = w.Step();
  ASSERT_EQ(p.smoke_create.size(), 1u);
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kVerifying,
              .message_has = "smoke checks running after health: canary-test",
              .requeue = seconds(2)});
  w.obs.smoke_jobs = {{"canary-test", Seen(State::kFailed, "u", 1, "BackoffLimitExceeded")}};
  p = w.Step();
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kRollingBack,
              .rollout_phase = RolloutPhase::kRollingBack,
              .reason = "SmokeCheckFailed",
              .events = {"SmokeCheckFailed", "RollingBack"}});
}

TEST(PlannerSmoke, AnAfterHealthCheckThatPassesLetsTheEnvironmentSucceed) {
  World w = WithChecks({Check("canary-test", api::SmokeCheckWhen::kAfterHealthy)});
  w.ToVerifying();
  w.RollOut();
  w.obs.smoke_jobs = {{"canary-test", Seen(State::kSucceeded)}};
  Plan p = w.Step();
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kSucceeded) << w.Env(0).message;
  EXPECT_EQ(p.smoke_delete.size(), 1u);
  EXPECT_EQ(w.St().current_environment, EnvName(1));
}

TEST(PlannerSmoke, ARetryRunsTheChecksAgainUnderANewJobName) {
  World w = WithChecks({Check("imports")});
  w.Step();
  w.obs.smoke_jobs = {{"imports", Seen(State::kFailed, "u", 2, "BackoffLimitExceeded")}};
  w.Step();
  ASSERT_EQ(w.St().phase, RolloutPhase::kFailed);
  const std::string first = Record(w, 0, "imports").job;
  w.obs.rollout.annotations[kRetryAnnotation] = "1";
  w.obs.smoke_jobs.reset();
  Plan p = w.Step();
  ASSERT_EQ(p.smoke_observe.size(), 1u);
  EXPECT_NE(p.smoke_observe[0].job, first);
  EXPECT_EQ(p.smoke_observe[0].job, SmokeJobName("r", "uid-1", 1, EnvName(0), 1, "imports"));
}

TEST(PlannerSmoke, APinnedRolloutsCheckRunsTheDigestTheRegistryPreFlightJustRecorded) {
  World w = WithChecks({Check("imports")});
  w.obs.rollout.spec.image_policy = api::ImagePolicySpec{};
  ImageLookup l;
  l.image.name = Logical(0);
  l.image.reference = NewImage(0);
  l.image.digest = "sha256:" + std::string(64, 'e');
  l.image.size = 10;
  l.image.platforms.push_back({"linux/amd64", l.image.digest, 10});
  w.obs.images = std::map<std::string, ImageLookup>{{Logical(0), l}};
  w.Step();
  Plan p = w.Run();
  ASSERT_EQ(p.smoke_observe.size(), 1u);
  EXPECT_EQ(p.smoke_observe[0].image, NewImage(0) + "@sha256:" + std::string(64, 'e'));
}

TEST(PlannerSmoke, AnInvalidCheckIsASpecProblemAndNothingRuns) {
  struct Case {
    const char* what;
    std::function<void(World&)> edit;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"unknown image", [](World& w) { w.Spec(0).smoke_checks[0].image = "nope"; },
       "spec.environments[0].smokeChecks.imports: image \"nope\" names no image of spec.images"},
      {"duplicate name", [](World& w) { w.Spec(0).targets[0].smoke_checks = {Check("imports")}; },
       "spec.environments[0].targets[0].smokeChecks.imports: another smoke check"},
      {"no command", [](World& w) { w.Spec(0).smoke_checks[0].command.clear(); }, "has no command"},
      {"image no target runs",
       [](World& w) {
         w.obs.rollout.spec.images["other"] = "registry.example.com/app/other:1";
         w.Spec(0).smoke_checks[0].image = "other";
       },
       "no target of environment env0 has a container of image other"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    World w = WithChecks({Check("imports")});
    c.edit(w);
    Plan p = w.Step();
    EXPECT_TRUE(p.smoke_observe.empty());
    EXPECT_EQ(w.St().phase, RolloutPhase::kFailed);
    EXPECT_NE(w.St().message.find(c.message), std::string::npos) << w.St().message;
  }
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
