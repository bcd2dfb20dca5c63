// The planner's pod-health gate while an environment verifies: when it asks for the pods
// (Plan::observe_pods), and how a pull that keeps failing or a container that keeps crashing fails
// the environment ImagePullFailed / ContainerCrashing, with the thresholds of PodHealthOptions,
// before the progress deadline.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <string>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

PodTrouble Pull(const std::string& reason, WallTime since, bool permanent = false) {
  PodTrouble t;
  t.kind = PodTrouble::Kind::kImagePull;
  t.deployment = "app/d0-0";
  t.pod = "d0-0-5f7d-x2x9q";
  t.node = "rollgate-real-0";
  t.container = Container(0);
  t.image = NewImage(0);
  t.reason = reason;
  t.message = "failed to pull and unpack image: not found";
  t.permanent = permanent;
  t.since = since;
  return t;
}

PodTrouble Crash(int restarts) {
  PodTrouble t;
  t.kind = PodTrouble::Kind::kCrash;
  t.deployment = "app/d0-0";
  t.pod = "d0-0-5f7d-x2x9q";
  t.container = Container(0);
  t.image = NewImage(0);
  t.reason = "CrashLoopBackOff";
  t.message = "last exit 3 (Error): crashing on purpose";
  t.restarts = restarts;
  return t;
}

// Environment 0 verifying since kT0, not rolled out, the clock at kT0 + `after`.
World Verifying(seconds after) {
  World w(2, 1);
  w.ToVerifying();
  w.obs.now = kT0 + after;
  return w;
}

TEST(PlannerPodHealth, PodsAreListedOnlyAfterTheGraceAndWhileNotRolledOut) {
  World early = Verifying(seconds(9));
  EXPECT_FALSE(early.Run().observe_pods) << "within check_after";

  World due = Verifying(seconds(10));
  Plan p = due.Run();
  EXPECT_TRUE(p.observe_pods);
  EXPECT_TRUE(p.patches.empty());
  ExpectPlan(due, p, 0,
             {.env_phase = EnvironmentPhase::kVerifying,
              .rollout_phase = RolloutPhase::kProgressing,
              .message_has = "d0-0: 0 updated",
              .requeue = seconds(30)});

  World done = Verifying(seconds(60));
  done.RollOut();
  Plan succeeded = done.Run();
  EXPECT_FALSE(succeeded.observe_pods) << "rolled out: no pod list";
  EXPECT_EQ(succeeded.status->environments[0].phase, EnvironmentPhase::kSucceeded);

  World listed = Verifying(seconds(10));
  listed.obs.pods = PodHealthObservation{};
  Plan healthy = listed.Run();
  EXPECT_FALSE(healthy.observe_pods) << "already listed for this plan";
  EXPECT_EQ(healthy.requeue_after, seconds(30));
}

TEST(PlannerPodHealth, APullFailingPastTheThresholdFailsTheEnvironment) {
  World w = Verifying(seconds(20));
  w.obs.pods = PodHealthObservation{{Pull("ImagePullBackOff", kT0 + seconds(1))}};
  Plan p = w.Run();
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kVerifying,
              .rollout_phase = RolloutPhase::kProgressing,
              .requeue = seconds(11)});  // 19 s failing: looked at again when it reaches 30 s

  w.obs.now = kT0 + seconds(31);
  p = w.Run();
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kRollingBack,
              .rollout_phase = RolloutPhase::kRollingBack,
              .reason = "ImagePullFailed",
              .events = {"ImagePullFailed", "RollingBack"}});
  const std::string& msg = p.status->environments[0].message;
  EXPECT_EQ(msg,
            "deployment app/d0-0: pod d0-0-5f7d-x2x9q on node rollgate-real-0 cannot pull "
            "image \"" +
                NewImage(0) +
                "\" (container c0) for 30s: ImagePullBackOff: "
                "failed to pull and unpack image: not found");
  EXPECT_EQ(Cond(*p.status, "Degraded")->reason, "ImagePullFailed");
}

TEST(PlannerPodHealth, AnInvalidReferenceFailsAtOnce) {
  World w = Verifying(seconds(10));
  w.obs.pods = PodHealthObservation{{Pull("InvalidImageName", kT0 + seconds(9), true)}};
  Plan p = w.Run();
  EXPECT_EQ(p.status->environments[0].reason, "ImagePullFailed");
  EXPECT_NE(p.status->environments[0].message.find("for 1s: InvalidImageName"), std::string::npos)
      << p.status->environments[0].message;
}

TEST(PlannerPodHealth, WithoutACreationTimeThePullCountsFromTheEnvironmentsStart) {
  World w = Verifying(seconds(29));
  w.obs.pods = PodHealthObservation{{Pull("ErrImagePull", WallTime{})}};
  Plan waiting = w.Run();
  EXPECT_EQ(waiting.status->environments[0].phase, EnvironmentPhase::kVerifying);
  EXPECT_EQ(waiting.requeue_after, seconds(1));
  w.obs.now = kT0 + seconds(30);
  EXPECT_EQ(w.Run().status->environments[0].reason, "ImagePullFailed");
}

TEST(PlannerPodHealth, CrashesFailAtTheRestartThreshold) {
  World w = Verifying(seconds(40));
  w.obs.pods = PodHealthObservation{{Crash(2)}};
  Plan p = w.Run();
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kVerifying,
              .rollout_phase = RolloutPhase::kProgressing,
              .requeue = seconds(10)});

  w.obs.pods = PodHealthObservation{{Crash(3)}};
  p = w.Run();
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kRollingBack,
              .rollout_phase = RolloutPhase::kRollingBack,
              .reason = "ContainerCrashing",
              .events = {"ContainerCrashing", "RollingBack"}});
  EXPECT_EQ(p.status->environments[0].message,
            "deployment app/d0-0: container c0 (image \"" + NewImage(0) +
                "\") of pod d0-0-5f7d-x2x9q restarted 3 times (CrashLoopBackOff); last exit 3 "
                "(Error): crashing on purpose");
}

TEST(PlannerPodHealth, ThresholdsComeFromTheOptions) {
  World w = Verifying(seconds(12));
  w.opts.pod_health.crash_restarts = 1;
  w.obs.pods = PodHealthObservation{{Crash(1)}};
  EXPECT_EQ(w.Run().status->environments[0].reason, "ContainerCrashing");

  World pull = Verifying(seconds(12));
  pull.opts.pod_health.image_pull_failure = seconds(120);
  pull.obs.pods = PodHealthObservation{{Pull("ImagePullBackOff", kT0)}};
  Plan p = pull.Run();
  EXPECT_EQ(p.status->environments[0].phase, EnvironmentPhase::kVerifying);
  EXPECT_EQ(p.requeue_after, seconds(30)) << "the 30 s health look comes first";

  World later = Verifying(seconds(5));
  later.opts.pod_health.check_after = seconds(0);
  EXPECT_TRUE(later.Run().observe_pods);
}

TEST(PlannerPodHealth, WithoutAutomaticRollbackTheEnvironmentFails) {
  World w = Verifying(seconds(45));
  w.obs.rollout.spec.automatic_rollback = false;
  w.obs.pods = PodHealthObservation{{Pull("ImagePullBackOff", kT0)}};
  Plan p = w.Run();
  ExpectPlan(w, p, 0,
             {.env_phase = EnvironmentPhase::kFailed,
              .rollout_phase = RolloutPhase::kFailed,
              .reason = "ImagePullFailed",
              .events = {"ImagePullFailed"}});
}

TEST(PlannerPodHealth, TheRollbackRestoresThePreviousImages) {
  World w = Verifying(seconds(31));
  w.obs.pods = PodHealthObservation{{Pull("ImagePullBackOff", kT0)}};
  w.StepApply();
  ASSERT_EQ(w.Env(0).phase, EnvironmentPhase::kRollingBack);
  w.obs.pods.reset();
  Plan restore = w.StepApply();
  ASSERT_EQ(restore.patches.size(), 1U);
  EXPECT_TRUE(restore.patches[0].rollback);
  EXPECT_EQ(restore.patches[0].images.at(Container(0)), OldImage(0));
  EXPECT_FALSE(restore.observe_pods) << "a rollback does not look at pod troubles";
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
