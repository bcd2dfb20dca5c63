// The planner's revision history (status.history): a record when a revision starts (its images,
// its start), the rollout's phase mirrored while it is current, how it ended once it reaches a
// terminal phase (when, the reason, the message; recorded once), a retry that reopens it, a
// revision superseded by the next, and the bound of api::kMaxHistory records.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <string>

#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

using api::RevisionRecord;

const RevisionRecord& Last(const World& w) {
  static const RevisionRecord kNone;
  if (w.St().history.empty()) {
    ADD_FAILURE() << "no history";
    return kNone;
  }
  return w.St().history.back();
}

// A new spec: image 0 at `version`, a new hash.
void NewSpec(World& w, const std::string& version) {
  w.obs.rollout.spec.images[Logical(0)] = Image(0, version);
  w.obs.spec_hash = "hash-" + version;
  w.obs.rollout.generation += 1;
}

TEST(PlannerHistory, TheFirstRevisionIsRecordedWithItsImagesAndStart) {
  World w(2, 2);
  Plan p = w.Step();
  ASSERT_TRUE(p.status.has_value());
  ASSERT_EQ(w.St().history.size(), 1u);
  const RevisionRecord& h = Last(w);
  EXPECT_EQ(h.revision, 1);
  EXPECT_EQ(h.images, w.obs.rollout.spec.images);
  EXPECT_EQ(h.images.at(Logical(1)), NewImage(1));
  EXPECT_EQ(h.started_at, kT0);
  EXPECT_EQ(h.phase, RolloutPhase::kProgressing);
  EXPECT_FALSE(h.finished_at.has_value());
  EXPECT_EQ(h.reason, "");
  EXPECT_EQ(h.message, "");
  // Planned again with nothing new: the record causes no status write.
  w.obs.now += seconds(5);
  w.Step();
  EXPECT_EQ(w.St().history.size(), 1u);
  EXPECT_EQ(Last(w).started_at, kT0);
}

TEST(PlannerHistory, ASuccessIsRecordedOnceWithItsEndReasonAndMessage) {
  World w(2, 1);
  ASSERT_TRUE(w.CompleteCurrent());
  EXPECT_EQ(Last(w).phase, RolloutPhase::kProgressing) << "one environment of two";
  EXPECT_FALSE(Last(w).finished_at.has_value());
  w.obs.now += seconds(90);
  ASSERT_TRUE(w.CompleteCurrent());
  ASSERT_EQ(w.St().phase, RolloutPhase::kSucceeded);
  const RevisionRecord h = Last(w);
  EXPECT_EQ(h.phase, RolloutPhase::kSucceeded);
  EXPECT_EQ(h.finished_at, w.obs.now);
  EXPECT_EQ(h.reason, "Succeeded");
  EXPECT_EQ(h.message, w.St().message);
  EXPECT_EQ(h.started_at, kT0);
  // A finished rollout planned later keeps its record as it was: no status write.
  w.obs.now += seconds(600);
  Plan later = w.Run();
  EXPECT_FALSE(later.status.has_value());
}

TEST(PlannerHistory, ANewRevisionIsAppendedAndTheFinishedOneKept) {
  World w(1, 1);
  ASSERT_TRUE(w.CompleteCurrent());
  ASSERT_EQ(w.St().phase, RolloutPhase::kSucceeded);
  const RevisionRecord first = Last(w);
  w.obs.now += seconds(3600);
  NewSpec(w, "3.0.0");
  Plan p = w.Step();
  EXPECT_TRUE(HasEvent(p, "NewRevision"));
  ASSERT_EQ(w.St().history.size(), 2u);
  const RevisionRecord& kept = w.St().history[0];
  EXPECT_EQ(kept.revision, 1);
  EXPECT_EQ(kept.phase, RolloutPhase::kSucceeded);
  EXPECT_EQ(kept.finished_at, first.finished_at);
  EXPECT_EQ(kept.reason, "Succeeded");
  EXPECT_EQ(kept.images.at(Logical(0)), NewImage(0));
  const RevisionRecord& now = w.St().history[1];
  EXPECT_EQ(now.revision, 2);
  EXPECT_EQ(now.images.at(Logical(0)), Image(0, "3.0.0"));
  EXPECT_EQ(now.started_at, w.obs.now);
  EXPECT_EQ(now.phase, RolloutPhase::kProgressing);
}

TEST(PlannerHistory, ARevisionStillRunningWhenTheNextStartsEndsSuperseded) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.now += seconds(30);
  NewSpec(w, "3.0.0");
  w.Step();
  ASSERT_EQ(w.St().history.size(), 2u);
  const RevisionRecord& old = w.St().history[0];
  EXPECT_EQ(old.revision, 1);
  EXPECT_EQ(old.phase, RolloutPhase::kProgressing) << "the phase it was in";
  EXPECT_EQ(old.finished_at, w.obs.now);
  EXPECT_EQ(old.reason, "Superseded");
  EXPECT_EQ(old.message, "revision 2 started");
  EXPECT_EQ(Last(w).revision, 2);
  EXPECT_FALSE(Last(w).finished_at.has_value());
}

TEST(PlannerHistory, TheHistoryKeepsTheLastTenRevisions) {
  World w(1, 1);
  w.Step();
  for (int v = 2; v <= 12; ++v) {
    w.obs.now += seconds(10);
    NewSpec(w, std::to_string(v) + ".0.0");
    w.Step();
    ASSERT_EQ(w.St().revision, v);
  }
  const auto& h = w.St().history;
  ASSERT_EQ(h.size(), api::kMaxHistory);
  EXPECT_EQ(h.front().revision, 3);
  EXPECT_EQ(h.back().revision, 12);
  for (size_t i = 0; i + 1 < h.size(); ++i) {
    EXPECT_EQ(h[i].revision + 1, h[i + 1].revision);
    EXPECT_EQ(h[i].reason, "Superseded") << h[i].revision;
  }
  EXPECT_EQ(h.back().images.at(Logical(0)), Image(0, "12.0.0"));
}

TEST(PlannerHistory, AFailureIsRecordedAndARetryReopensTheRevision) {
  World w(1, 1);
  w.obs.deployments.erase("app/d0-0");
  w.Step();
  ASSERT_EQ(w.St().phase, RolloutPhase::kFailed) << w.St().message;
  EXPECT_EQ(Last(w).phase, RolloutPhase::kFailed);
  EXPECT_EQ(Last(w).reason, "DeploymentNotFound");
  EXPECT_EQ(Last(w).finished_at, kT0);
  EXPECT_EQ(Last(w).message, w.St().message);

  // A retry that fails again in the same plan (the Deployment is still missing) records the new
  // failure, not the old one.
  w.obs.now += seconds(60);
  w.obs.rollout.annotations[kRetryAnnotation] = "r1";
  w.Step();
  ASSERT_EQ(w.St().phase, RolloutPhase::kFailed);
  EXPECT_EQ(w.St().history.size(), 1u) << "a retry is the same revision";
  EXPECT_EQ(Last(w).finished_at, kT0 + seconds(60));
  EXPECT_EQ(Last(w).reason, "DeploymentNotFound");

  // Once the Deployment is back, a retry moves the revision on: running again, no end.
  World fresh(1, 1);
  w.obs.deployments = fresh.obs.deployments;
  w.obs.now += seconds(60);
  w.obs.rollout.annotations[kRetryAnnotation] = "r2";
  Plan p = w.Step();
  EXPECT_TRUE(HasEvent(p, "Retry"));
  ASSERT_EQ(w.St().phase, RolloutPhase::kProgressing) << w.St().message;
  EXPECT_EQ(Last(w).phase, RolloutPhase::kProgressing);
  EXPECT_FALSE(Last(w).finished_at.has_value());
  EXPECT_EQ(Last(w).reason, "");
  EXPECT_EQ(Last(w).message, "");
  EXPECT_EQ(Last(w).started_at, kT0) << "the revision's start stays";
  ASSERT_TRUE(w.CompleteCurrent());
  EXPECT_EQ(Last(w).phase, RolloutPhase::kSucceeded);
  EXPECT_EQ(Last(w).reason, "Succeeded");
}

TEST(PlannerHistory, ARollbackIsFollowedThenRecordedRolledBack) {
  World w(2, 1);
  w.ToVerifying();
  w.D(0, 0).observed_generation = w.D(0, 0).generation;
  w.D(0, 0).progress_deadline_exceeded = true;
  w.StepApply();
  ASSERT_EQ(w.St().phase, RolloutPhase::kRollingBack);
  EXPECT_EQ(Last(w).phase, RolloutPhase::kRollingBack);
  EXPECT_FALSE(Last(w).finished_at.has_value());
  w.StepApply();  // the restoring patches
  w.RollOut();
  w.obs.now += seconds(20);
  w.StepApply();
  ASSERT_EQ(w.St().phase, RolloutPhase::kRolledBack) << w.St().message;
  EXPECT_EQ(Last(w).phase, RolloutPhase::kRolledBack);
  EXPECT_EQ(Last(w).reason, "ProgressDeadlineExceeded");
  EXPECT_EQ(Last(w).finished_at, w.obs.now);
  EXPECT_NE(Last(w).message.find("rolled back"), std::string::npos) << Last(w).message;
}

TEST(PlannerHistory, AnAbortIsRecordedAborted) {
  {
    World w(1, 1);  // before any change: Aborted at once
    w.Spec(0).manual_approval = true;
    w.Step();
    ASSERT_EQ(w.St().phase, RolloutPhase::kAwaitingApproval);
    EXPECT_EQ(Last(w).phase, RolloutPhase::kAwaitingApproval);
    w.obs.now += seconds(5);
    w.obs.rollout.annotations[kAbortAnnotation] = "a1";
    w.Step();
    ASSERT_EQ(w.St().phase, RolloutPhase::kAborted);
    EXPECT_EQ(Last(w).phase, RolloutPhase::kAborted);
    EXPECT_EQ(Last(w).reason, "Aborted");
    EXPECT_EQ(Last(w).finished_at, kT0 + seconds(5));
  }
  {
    World w(1, 1);  // while verifying: rolled back first
    w.ToVerifying();
    w.obs.rollout.annotations[kAbortAnnotation] = "a1";
    w.StepApply();
    EXPECT_EQ(Last(w).phase, RolloutPhase::kRollingBack);
    w.StepApply();
    w.RollOut();
    w.StepApply();
    ASSERT_EQ(w.St().phase, RolloutPhase::kAborted);
    EXPECT_EQ(Last(w).phase, RolloutPhase::kAborted);
    EXPECT_EQ(Last(w).reason, "Aborted");
    EXPECT_TRUE(Last(w).finished_at.has_value());
  }
}

TEST(PlannerHistory, APauseIsMirrored) {
  World w(1, 1);
  w.ToUpdating();
  w.obs.rollout.spec.paused = true;
  w.obs.rollout.generation = 2;
  w.Step();
  ASSERT_EQ(w.St().phase, RolloutPhase::kPaused);
  EXPECT_EQ(Last(w).phase, RolloutPhase::kPaused);
  EXPECT_FALSE(Last(w).finished_at.has_value());
}

TEST(PlannerHistory, AStatusWithoutHistoryGetsNoRecordUntilItsNextRevision) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.rollout.status.history.clear();  // as a controller before status.history wrote it
  Plan p = w.Run();
  EXPECT_FALSE(p.status.has_value() && !p.status->history.empty()) << "nothing is made up";
  w.Persist(p);
  NewSpec(w, "3.0.0");
  w.Step();
  ASSERT_EQ(w.St().history.size(), 1u);
  EXPECT_EQ(Last(w).revision, 2);
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
