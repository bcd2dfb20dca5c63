// Table-driven tests of the pure rollout planner (PlanRollout): every environment and rollout phase
// transition, pre-flight failures, the manual operations driven by annotations, worker validation
// and analysis gates, and restart simulations. Each step feeds the status a plan writes back as the
// observed status (through the JSON codec, as the API server stores it) and applies the plan's
// patches to a fake map of Deployments, so the tests follow the reconciler's execution order.
// Thread-safety: single-threaded tests.
#include "controller/rollout/planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "controller/rollout/codec.h"

namespace rollgate::rollout {
namespace {

using std::chrono::seconds;

constexpr char kNs[] = "app";
const WallTime kT0 = std::chrono::system_clock::from_time_t(1'800'000'000);

std::string EnvName(int e) { return "env" + std::to_string(e); }
std::string DeployName(int e, int t) { return "d" + std::to_string(e) + "-" + std::to_string(t); }
std::string Container(int t) { return "c" + std::to_string(t); }
std::string Logical(int t) { return "img" + std::to_string(t); }
std::string Image(int t, const std::string& version) {
  return "registry.example.com/app/img" + std::to_string(t) + ":" + version;
}
std::string OldImage(int t) { return Image(t, "1.0.0"); }
std::string NewImage(int t) { return Image(t, "2.0.0"); }

// What the API server would store: the status encoded to JSON and decoded again.
RolloutStatus RoundTrip(const RolloutStatus& s) {
  Json obj = Json::object();
  obj["metadata"] = Json::object();
  obj["metadata"]["name"] = Json::string("r");
  obj["spec"] = Json::object();
  obj["spec"]["environments"] = Json::array();
  obj["status"] = EncodeStatus(s);
  auto decoded = DecodeRollout(obj);
  EXPECT_TRUE(decoded.ok()) << decoded.status().message();
  return decoded.ok() ? decoded.value().status : RolloutStatus{};
}

std::vector<std::string> Reasons(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& e : p.events) out.push_back(e.reason);
  return out;
}

bool HasEvent(const Plan& p, const std::string& reason) {
  auto r = Reasons(p);
  return std::find(r.begin(), r.end(), reason) != r.end();
}

const Condition* Cond(const RolloutStatus& s, const std::string& type) {
  for (const auto& c : s.conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// The observed world of one ContainerRollout "app/r": `envs` environments env0..envN-1, each with
// `targets` Deployments d<e>-<t> (in the rollout's namespace unless moved) whose container c<t>
// runs logical image img<t>. Deployments start rolled out (2 replicas) on the 1.0.0 images; the
// spec asks for 2.0.0. The clock is fixed at kT0 and moves only when a test moves it.
class World {
 public:
  World(int envs, int targets) {
    Rollout& r = obs.rollout;
    r.namespace_ = kNs;
    r.name = "r";
    r.uid = "uid-1";
    r.generation = 1;
    for (int t = 0; t < targets; ++t) r.spec.images[Logical(t)] = NewImage(t);
    for (int e = 0; e < envs; ++e) {
      EnvironmentSpec es;
      es.name = EnvName(e);
      for (int t = 0; t < targets; ++t) {
        TargetSpec ts;
        ts.deployment = DeployName(e, t);
        ts.containers[Container(t)] = Logical(t);
        es.targets.push_back(ts);
        DeploymentView d;
        d.namespace_ = kNs;
        d.name = DeployName(e, t);
        d.generation = 1;
        d.observed_generation = 1;
        d.spec_replicas = 2;
        d.replicas = d.updated_replicas = d.ready_replicas = d.available_replicas = 2;
        d.container_images[Container(t)] = OldImage(t);
        d.container_images["log-shipper"] = "registry.example.com/ops/shipper:7";
        obs.deployments[d.Key()] = d;
      }
      r.spec.environments.push_back(es);
    }
    obs.namespaces[kNs] = NamespaceView{kNs, {}};
    obs.spec_hash = "hash-1";
    obs.now = kT0;
  }

  // Moves environment e (and its Deployments) into namespace ns.
  void MoveEnv(int e, const std::string& ns) {
    obs.rollout.spec.environments.at(static_cast<size_t>(e)).namespace_ = ns;
    for (const auto& t : obs.rollout.spec.environments.at(static_cast<size_t>(e)).targets) {
      DeploymentView d = obs.deployments.at(std::string(kNs) + "/" + t.deployment);
      obs.deployments.erase(d.Key());
      d.namespace_ = ns;
      obs.deployments[d.Key()] = d;
    }
  }

  EnvironmentSpec& Spec(int e) { return obs.rollout.spec.environments.at(static_cast<size_t>(e)); }
  DeploymentView& D(int e, int t) {
    const std::string ns = EnvironmentNamespace(obs.rollout, Spec(e));
    return obs.deployments.at(ns + "/" + DeployName(e, t));
  }
  const RolloutStatus& St() const { return obs.rollout.status; }
  const EnvironmentStatus& Env(int e) const {
    return obs.rollout.status.environments.at(static_cast<size_t>(e));
  }

  Plan Run() const { return PlanRollout(obs, opts); }
  // The status write of a plan, as the API server stores it.
  void Persist(const Plan& p) {
    if (p.status) obs.rollout.status = RoundTrip(*p.status);
  }
  // Plans and persists the status (patches are not applied).
  Plan Step() {
    Plan p = Run();
    Persist(p);
    return p;
  }
  // Executes the plan's patches on the fake Deployments: a new generation that the Deployment
  // controller has not rolled out yet.
  void Apply(const Plan& p) {
    for (const auto& patch : p.patches) {
      auto it = obs.deployments.find(patch.namespace_ + "/" + patch.name);
      ASSERT_NE(it, obs.deployments.end()) << "patch of a missing deployment " << patch.name;
      DeploymentView& d = it->second;
      for (const auto& [c, image] : patch.images) d.container_images[c] = image;
      for (const auto& ic : patch.init_containers) d.init_container_images[ic.name] = ic.image;
      for (const auto& name : patch.remove_init_containers) d.init_container_images.erase(name);
      if (!patch.validation_label.empty()) {
        d.template_labels[kValidationLabel] = patch.validation_label;
      }
      if (patch.remove_validation_label) d.template_labels.erase(kValidationLabel);
      d.annotations[kRevisionAnnotation] = patch.revision;
      d.generation += 1;
      d.updated_replicas = 0;
      patch_count[d.Key()] += 1;
    }
  }
  // The Deployment controller finished every rollout.
  void RollOut() {
    for (auto& [key, d] : obs.deployments) {
      d.observed_generation = d.generation;
      d.replicas = d.updated_replicas = d.ready_replicas = d.available_replicas = d.spec_replicas;
      d.progress_deadline_exceeded = false;
    }
  }
  // Reconciler order: patches, then the status write.
  Plan StepApply() {
    Plan p = Run();
    Apply(p);
    Persist(p);
    return p;
  }

  // First reconcile: environment 0 enters Updating with its previous images recorded.
  void ToUpdating() {
    Step();
    ASSERT_EQ(Env(0).phase, phase::kUpdating) << St().message;
  }
  // Updating: the patches are executed and environment `e` is Verifying, not yet rolled out.
  void ToVerifying(int e = 0) {
    if (St().revision == 0) ToUpdating();
    while (St().current_environment != EnvName(e)) {
      ASSERT_TRUE(CompleteCurrent());
    }
    if (Env(e).phase == phase::kPending) Step();
    ASSERT_EQ(Env(e).phase, phase::kUpdating) << St().message;
    Plan p = StepApply();
    ASSERT_FALSE(p.patches.empty());
    ASSERT_EQ(Env(e).phase, phase::kVerifying) << St().message;
  }
  // Runs the current environment to Succeeded (every Deployment rolls out at once).
  bool CompleteCurrent() {
    if (St().revision == 0) Step();
    const std::string start = St().current_environment;
    for (int i = 0; i < 20; ++i) {
      StepApply();
      RollOut();
      if (St().current_environment != start || St().phase == phase::kSucceeded) return true;
      if (St().phase != phase::kProgressing) return false;
    }
    return false;
  }

  Observed obs;
  PlannerOptions opts;
  std::map<std::string, int> patch_count;
};

// ---------------------------------------------------------------------------------------------
// First reconcile

TEST(PlannerStart, FirstReconcileRecordsPreviousImagesAndDoesNotPatch) {
  World w(2, 2);
  Plan p = w.Run();
  ASSERT_TRUE(p.status.has_value());
  const RolloutStatus& s = *p.status;
  EXPECT_EQ(s.revision, 1);
  EXPECT_EQ(s.spec_hash, "hash-1");
  EXPECT_EQ(s.observed_generation, 1);
  EXPECT_EQ(s.phase, phase::kProgressing);
  EXPECT_EQ(s.current_environment, "env0");
  ASSERT_EQ(s.environments.size(), 2u);
  EXPECT_EQ(s.environments[0].name, "env0");
  EXPECT_EQ(s.environments[1].name, "env1");
  EXPECT_EQ(s.environments[0].phase, phase::kUpdating);
  EXPECT_EQ(s.environments[1].phase, phase::kPending);
  EXPECT_EQ(s.environments[0].started_at, kT0);
  EXPECT_FALSE(s.environments[1].started_at.has_value());
  ASSERT_EQ(s.environments[0].targets.size(), 2u);
  for (int t = 0; t < 2; ++t) {
    const TargetStatus& ts = s.environments[0].targets[static_cast<size_t>(t)];
    EXPECT_EQ(ts.deployment, DeployName(0, t));
    EXPECT_EQ(ts.namespace_, kNs);
    // Only the containers the rollout changes are recorded.
    EXPECT_EQ(ts.previous_images,
              (std::map<std::string, std::string>{{Container(t), OldImage(t)}}));
  }
  EXPECT_TRUE(s.environments[1].targets.empty());
  // The previous images must be persisted before any patch.
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(Reasons(p), (std::vector<std::string>{"RolloutStarted", "EnvironmentStarted"}));
  EXPECT_FALSE(p.sample_analysis);
  ASSERT_NE(Cond(s, "Ready"), nullptr);
  EXPECT_EQ(Cond(s, "Ready")->status, "False");
  EXPECT_EQ(Cond(s, "Progressing")->status, "True");
  EXPECT_EQ(Cond(s, "Degraded")->status, "False");
  EXPECT_EQ(s.conditions[0].type, "Ready");
  EXPECT_EQ(s.conditions[1].type, "Progressing");
  EXPECT_EQ(s.conditions[2].type, "Degraded");
}

TEST(PlannerStart, TargetKeysAndEnvironmentNamespace) {
  World w(2, 1);
  w.MoveEnv(1, "app-prod");
  EXPECT_EQ(TargetKeys(w.obs.rollout), (std::vector<std::string>{"app/d0-0", "app-prod/d1-0"}));
  EXPECT_EQ(EnvironmentNamespace(w.obs.rollout, w.Spec(0)), "app");
  EXPECT_EQ(EnvironmentNamespace(w.obs.rollout, w.Spec(1)), "app-prod");
}

// ---------------------------------------------------------------------------------------------
// Updating

struct UpdateCase {
  std::string label;
  std::function<void(World&)> setup;  // runs with environment 0 Updating
  std::vector<std::string> want_patched;
};

TEST(PlannerUpdate, PatchesOnlyTargetsThatDiffer) {
  const std::vector<UpdateCase> cases = {
      {"both deployments on the old images", [](World&) {}, {"d0-0", "d0-1"}},
      {"one deployment already patched (images and annotation)",
       [](World& w) {
         w.D(0, 0).container_images[Container(0)] = NewImage(0);
         w.D(0, 0).annotations[kRevisionAnnotation] = "1";
       },
       {"d0-1"}},
      {"images right but revision annotation missing",
       [](World& w) {
         w.D(0, 0).container_images[Container(0)] = NewImage(0);
         w.D(0, 1).container_images[Container(1)] = NewImage(1);
         w.D(0, 1).annotations[kRevisionAnnotation] = "1";
       },
       {"d0-0"}},
      {"annotation right but an image differs",
       [](World& w) {
         w.D(0, 0).annotations[kRevisionAnnotation] = "1";
         w.D(0, 1).container_images[Container(1)] = NewImage(1);
         w.D(0, 1).annotations[kRevisionAnnotation] = "1";
       },
       {"d0-0"}},
      {"annotation of another revision",
       [](World& w) {
         for (int t = 0; t < 2; ++t) {
           w.D(0, t).container_images[Container(t)] = NewImage(t);
           w.D(0, t).annotations[kRevisionAnnotation] = t == 0 ? "0" : "1";
         }
       },
       {"d0-0"}},
      {"everything already patched (restart after the patch)",
       [](World& w) {
         for (int t = 0; t < 2; ++t) {
           w.D(0, t).container_images[Container(t)] = NewImage(t);
           w.D(0, t).annotations[kRevisionAnnotation] = "1";
         }
       },
       {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(1, 2);
    w.ToUpdating();
    c.setup(w);
    Plan p = w.Run();
    std::vector<std::string> patched;
    for (const auto& patch : p.patches) {
      patched.push_back(patch.name);
      EXPECT_EQ(patch.namespace_, kNs);
      EXPECT_EQ(patch.revision, "1");
      EXPECT_FALSE(patch.rollback);
      const int t = patch.name == "d0-0" ? 0 : 1;
      // Only the rollout's containers, with the images from spec.images.
      EXPECT_EQ(patch.images, (std::map<std::string, std::string>{{Container(t), NewImage(t)}}));
    }
    EXPECT_EQ(patched, c.want_patched);
    ASSERT_TRUE(p.status.has_value());
    EXPECT_EQ(p.status->environments[0].phase, phase::kVerifying);
    EXPECT_EQ(p.status->phase, phase::kProgressing);
    // Previous images are never overwritten by the new ones.
    EXPECT_EQ(p.status->environments[0].targets[0].previous_images.at(Container(0)), OldImage(0));
    ASSERT_TRUE(p.requeue_after.has_value());
  }
}

TEST(PlannerUpdate, PatchCarriesEveryContainerOfTheTarget) {
  World w(1, 2);
  w.Spec(0).targets[0].containers["sidecar"] = Logical(1);
  w.D(0, 0).container_images["sidecar"] = "registry.example.com/app/side:0.9";
  w.ToUpdating();
  EXPECT_EQ(w.Env(0).targets[0].previous_images,
            (std::map<std::string, std::string>{{Container(0), OldImage(0)},
                                                {"sidecar", "registry.example.com/app/side:0.9"}}));
  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  EXPECT_EQ(p.patches[0].name, "d0-0");
  EXPECT_EQ(p.patches[0].images, (std::map<std::string, std::string>{{Container(0), NewImage(0)},
                                                                     {"sidecar", NewImage(1)}}));
}

// ---------------------------------------------------------------------------------------------
// Verifying

// What a plan must leave behind for one environment.
struct Want {
  Want(std::string env_phase_, std::string rollout_phase_, std::string reason_ = "",
       std::string message_has_ = "", std::vector<std::string> events_ = {},
       std::optional<seconds> requeue_ = std::nullopt, std::string current_environment_ = "")
      : env_phase(std::move(env_phase_)),
        rollout_phase(std::move(rollout_phase_)),
        reason(std::move(reason_)),
        message_has(std::move(message_has_)),
        events(std::move(events_)),
        requeue(requeue_),
        current_environment(std::move(current_environment_)) {}

  std::string env_phase;
  std::string rollout_phase;
  std::string reason;               // environment reason; "" = not checked
  std::string message_has;          // substring of the environment message; "" = not checked
  std::vector<std::string> events;  // reasons that must be among the plan's events
  std::optional<seconds> requeue;   // exact requeue_after; nullopt = must be absent
  std::string current_environment;  // "" = not checked
};

void ExpectPlan(const World& w, const Plan& p, int env, const Want& want) {
  const RolloutStatus& s = p.status ? *p.status : w.St();
  const EnvironmentStatus& es = s.environments.at(static_cast<size_t>(env));
  EXPECT_EQ(es.phase, want.env_phase) << es.message;
  EXPECT_EQ(s.phase, want.rollout_phase) << s.message;
  if (!want.reason.empty()) {
    EXPECT_EQ(es.reason, want.reason) << es.message;
  }
  if (!want.message_has.empty()) {
    EXPECT_NE(es.message.find(want.message_has), std::string::npos) << es.message;
  }
  for (const auto& e : want.events) {
    EXPECT_TRUE(HasEvent(p, e)) << "missing event " << e << " in " << Join(Reasons(p));
  }
  EXPECT_EQ(p.requeue_after, want.requeue);
  if (!want.current_environment.empty()) {
    EXPECT_EQ(s.current_environment, want.current_environment);
  }
}

struct PhaseCase {
  std::string label;
  int envs = 1;
  std::function<void(World&)> setup;  // runs with environment 0 Verifying, not rolled out
  Want want;
};

TEST(PlannerVerify, Transitions) {
  const std::vector<PhaseCase> cases = {
      {"no replica updated yet",
       1,
       [](World&) {},
       {phase::kVerifying, phase::kProgressing, "", "d0-0: 0 updated", {}, seconds(30)}},
      {"observedGeneration behind",
       1,
       [](World& w) {
         w.RollOut();
         w.D(0, 1).observed_generation = w.D(0, 1).generation - 1;
       },
       {phase::kVerifying, phase::kProgressing, "", "app/d0-1", {}, seconds(30)}},
      {"replicas not all available",
       1,
       [](World& w) {
         w.RollOut();
         w.D(0, 0).available_replicas = 1;
       },
       {phase::kVerifying, phase::kProgressing, "", "1 available of 2", {}, seconds(30)}},
      {"surge: more replicas than spec.replicas",
       1,
       [](World& w) {
         w.RollOut();
         w.D(0, 0).replicas = 3;
       },
       {phase::kVerifying, phase::kProgressing, "", "app/d0-0", {}, seconds(30)}},
      {"one second before the own progress deadline",
       1,
       [](World& w) { w.obs.now = kT0 + seconds(599); },
       {phase::kVerifying, phase::kProgressing, "", "", {}, seconds(2)}},
      {"own progress deadline reached (startedAt + progressDeadlineSeconds == now)",
       1,
       [](World& w) { w.obs.now = kT0 + seconds(600); },
       {phase::kRollingBack,
        phase::kRollingBack,
        "ProgressDeadlineExceeded",
        "not rolled out within 600s",
        {"ProgressDeadlineExceeded", "RollingBack"},
        std::nullopt}},
      {"own progress deadline with rollback None",
       1,
       [](World& w) {
         w.obs.rollout.spec.automatic_rollback = false;
         w.obs.now = kT0 + seconds(900);
       },
       {phase::kFailed, phase::kFailed, "ProgressDeadlineExceeded", "", {}, std::nullopt}},
      {"Deployment reports ProgressDeadlineExceeded",
       1,
       [](World& w) {
         w.D(0, 1).observed_generation = w.D(0, 1).generation;
         w.D(0, 1).progress_deadline_exceeded = true;
       },
       {phase::kRollingBack,
        phase::kRollingBack,
        "ProgressDeadlineExceeded",
        "app/d0-1 reports ProgressDeadlineExceeded",
        {"ProgressDeadlineExceeded", "RollingBack"},
        std::nullopt}},
      {"Deployment ProgressDeadlineExceeded with rollback None",
       1,
       [](World& w) {
         w.obs.rollout.spec.automatic_rollback = false;
         w.D(0, 0).observed_generation = w.D(0, 0).generation;
         w.D(0, 0).progress_deadline_exceeded = true;
       },
       {phase::kFailed,
        phase::kFailed,
        "ProgressDeadlineExceeded",
        "",
        {"ProgressDeadlineExceeded"},
        std::nullopt}},
      {"Deployment deleted while verifying",
       1,
       [](World& w) { w.obs.deployments.erase("app/d0-1"); },
       {phase::kRollingBack, phase::kRollingBack, "DeploymentNotFound", "", {}, std::nullopt}},
      {"images changed by someone else",
       1,
       [](World& w) {
         w.RollOut();
         w.D(0, 0).container_images[Container(0)] = Image(0, "hotfix");
       },
       {phase::kRollingBack, phase::kRollingBack, "ImagesChangedExternally", "", {}, std::nullopt}},
      {"rolled out, more environments follow",
       2,
       [](World& w) { w.RollOut(); },
       {phase::kSucceeded,
        phase::kProgressing,
        "Succeeded",
        "",
        {"EnvironmentSucceeded"},
        seconds(1),
        "env1"}},
      {"rolled out, last environment",
       1,
       [](World& w) { w.RollOut(); },
       {phase::kSucceeded,
        phase::kSucceeded,
        "Succeeded",
        "",
        {"EnvironmentSucceeded", "RolloutSucceeded"},
        std::nullopt,
        "env0"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(c.envs, 2);
    w.ToVerifying();
    c.setup(w);
    Plan p = w.Run();
    EXPECT_TRUE(p.patches.empty()) << "verifying never patches";
    ExpectPlan(w, p, 0, c.want);
    const RolloutStatus& s = p.status ? *p.status : w.St();
    const EnvironmentStatus& e0 = s.environments[0];
    // Previous images survive every transition.
    EXPECT_EQ(e0.targets.at(1).previous_images.at(Container(1)), OldImage(1));
    if (e0.phase == phase::kRollingBack || e0.phase == phase::kFailed) {
      EXPECT_EQ(e0.finished_at, w.obs.now);
      EXPECT_EQ(Cond(s, "Degraded")->status, "True");
      EXPECT_EQ(Cond(s, "Degraded")->reason, c.want.reason);
      EXPECT_EQ(Cond(s, "Ready")->status, "False");
    }
  }
}

TEST(PlannerVerify, WaitingRecordsReplicaCountsAndStaysIdempotent) {
  World w(1, 2);
  w.ToVerifying();
  w.RollOut();
  w.D(0, 0).updated_replicas = 1;
  w.D(0, 0).available_replicas = 1;
  Plan p = w.Step();
  EXPECT_EQ(w.Env(0).phase, phase::kVerifying);
  EXPECT_EQ(w.Env(0).targets[0].updated_replicas, 1);
  EXPECT_EQ(w.Env(0).targets[0].available_replicas, 1);
  EXPECT_EQ(w.Env(0).targets[1].updated_replicas, 2);
  EXPECT_EQ(w.Env(0).targets[1].ready_replicas, 2);
  EXPECT_NE(w.Env(0).message.find("d0-0: 1 updated, 1 available of 2"), std::string::npos)
      << w.Env(0).message;
  // Nothing changed: planning again writes nothing and emits nothing.
  Plan again = w.Run();
  EXPECT_FALSE(again.status.has_value());
  EXPECT_TRUE(again.events.empty());
  EXPECT_TRUE(again.patches.empty());
  EXPECT_TRUE(again.requeue_after.has_value());
}

TEST(PlannerVerify, SuccessSetsReadyTrue) {
  World w(1, 1);
  w.ToVerifying();
  w.RollOut();
  w.obs.now = kT0 + seconds(42);
  Plan p = w.Step();
  EXPECT_EQ(w.St().phase, phase::kSucceeded);
  EXPECT_EQ(w.Env(0).verified_at, kT0 + seconds(42));
  EXPECT_EQ(w.Env(0).finished_at, kT0 + seconds(42));
  const Condition* ready = Cond(w.St(), "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "True");
  EXPECT_EQ(ready->reason, phase::kSucceeded);
  EXPECT_EQ(ready->last_transition_time, kT0 + seconds(42));
  EXPECT_EQ(Cond(w.St(), "Progressing")->status, "False");
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "False");
  // Terminal: nothing more to do.
  w.obs.now += seconds(3600);
  Plan done = w.Run();
  EXPECT_FALSE(done.status.has_value());
  EXPECT_TRUE(done.patches.empty());
  EXPECT_FALSE(done.requeue_after.has_value());
}

// A Deployment keeps the ProgressDeadlineExceeded condition of its previous generation until the
// Deployment controller observes the new template (kubectl rollout status only trusts the
// condition once observedGeneration >= generation). Rolling a fix out to a Deployment that was
// stuck must not fail on the stale condition.
TEST(PlannerVerify, StaleProgressDeadlineConditionOfThePreviousGenerationIsNotAFailure) {
  World w(1, 1);
  w.D(0, 0).progress_deadline_exceeded = true;  // the old generation was stuck
  w.D(0, 0).available_replicas = 0;
  w.ToVerifying();
  ASSERT_LT(w.D(0, 0).observed_generation, w.D(0, 0).generation);
  ASSERT_TRUE(w.D(0, 0).progress_deadline_exceeded);
  Plan p = w.Run();
  const RolloutStatus& s = p.status ? *p.status : w.St();
  EXPECT_EQ(s.environments[0].phase, phase::kVerifying) << s.environments[0].message;
  EXPECT_EQ(s.phase, phase::kProgressing) << s.message;
  EXPECT_TRUE(p.requeue_after.has_value());
}

// ---------------------------------------------------------------------------------------------
// Baking

TEST(PlannerBake, BakesUntilVerifiedAtPlusBakeSeconds) {
  World w(2, 1);
  w.Spec(0).bake_seconds = 300;
  w.ToVerifying();
  w.RollOut();
  w.obs.now = kT0 + seconds(10);
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kBaking);
  EXPECT_EQ(w.Env(0).verified_at, kT0 + seconds(10));
  EXPECT_EQ(p.requeue_after, seconds(300));
  EXPECT_EQ(w.St().current_environment, "env0");

  w.obs.now = kT0 + seconds(309);
  p = w.Step();
  EXPECT_EQ(w.Env(0).phase, phase::kBaking);
  EXPECT_EQ(p.requeue_after, seconds(2));

  w.obs.now = kT0 + seconds(310);
  p = w.Step();
  EXPECT_EQ(w.Env(0).phase, phase::kSucceeded);
  EXPECT_EQ(w.Env(0).finished_at, kT0 + seconds(310));
  EXPECT_EQ(w.St().current_environment, "env1");
  EXPECT_TRUE(HasEvent(p, "EnvironmentSucceeded"));
}

TEST(PlannerBake, UnhealthyDuringBakeFails) {
  const std::vector<std::pair<std::string, bool>> cases = {{"Automatic", true}, {"None", false}};
  for (const auto& [label, automatic] : cases) {
    SCOPED_TRACE(label);
    World w(1, 1);
    w.obs.rollout.spec.automatic_rollback = automatic;
    w.Spec(0).bake_seconds = 300;
    w.ToVerifying();
    w.RollOut();
    w.Step();
    ASSERT_EQ(w.Env(0).phase, phase::kBaking);
    w.obs.now = kT0 + seconds(100);
    w.D(0, 0).available_replicas = 1;
    Plan p = w.Run();
    EXPECT_TRUE(p.patches.empty());
    ASSERT_TRUE(p.status.has_value());
    const std::string want = automatic ? phase::kRollingBack : phase::kFailed;
    EXPECT_EQ(p.status->environments[0].phase, want);
    EXPECT_EQ(p.status->phase, want);
    EXPECT_EQ(p.status->environments[0].reason, "UnhealthyDuringBake");
    EXPECT_TRUE(HasEvent(p, "UnhealthyDuringBake"));
  }
}

// ---------------------------------------------------------------------------------------------
// Rollback

TEST(PlannerRollback, AutomaticRestoresThePreviousImagesThenEndsRolledBack) {
  World w(2, 2);
  w.ToVerifying();
  w.D(0, 0).observed_generation = w.D(0, 0).generation;
  w.D(0, 0).progress_deadline_exceeded = true;

  // 1. The failure is recorded first: RollingBack, no patch in the same plan.
  Plan p = w.StepApply();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kRollingBack);
  EXPECT_EQ(w.St().phase, phase::kRollingBack);
  EXPECT_EQ(w.Env(0).reason, "ProgressDeadlineExceeded");
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "True");
  EXPECT_EQ(Cond(w.St(), "Progressing")->status, "True");
  EXPECT_TRUE(HasEvent(p, "RollingBack"));

  // 2. The recorded previous images are restored.
  w.obs.now += seconds(1);
  p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  for (int t = 0; t < 2; ++t) {
    const DeploymentPatch& patch = p.patches[static_cast<size_t>(t)];
    EXPECT_EQ(patch.name, DeployName(0, t));
    EXPECT_EQ(patch.namespace_, kNs);
    EXPECT_TRUE(patch.rollback);
    EXPECT_EQ(patch.revision, "1-rollback");
    EXPECT_EQ(patch.images, (std::map<std::string, std::string>{{Container(t), OldImage(t)}}));
  }
  EXPECT_TRUE(p.requeue_after.has_value());
  // Crash right after the patch, before the status write: no second patch.
  w.Apply(p);
  Plan again = w.Run();
  EXPECT_TRUE(again.patches.empty());
  w.Persist(p);
  EXPECT_TRUE(w.Run().patches.empty());

  // 3. Waits until the restored Deployments are healthy.
  p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kRollingBack);
  EXPECT_EQ(w.St().phase, phase::kRollingBack);
  EXPECT_TRUE(p.requeue_after.has_value());
  EXPECT_NE(w.St().message.find("rolling back"), std::string::npos) << w.St().message;
  // The environment keeps saying why it failed.
  EXPECT_NE(w.Env(0).message.find("ProgressDeadlineExceeded"), std::string::npos)
      << w.Env(0).message;

  // 4. Restored and healthy.
  w.RollOut();
  w.obs.now += seconds(20);
  p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kRolledBack);
  EXPECT_EQ(w.St().phase, phase::kRolledBack);
  EXPECT_EQ(w.Env(0).reason, "ProgressDeadlineExceeded");
  EXPECT_EQ(w.Env(0).finished_at, w.obs.now);
  EXPECT_EQ(w.Env(1).phase, phase::kPending);
  EXPECT_TRUE(HasEvent(p, "RolledBack"));
  EXPECT_FALSE(p.requeue_after.has_value());
  const Condition* degraded = Cond(w.St(), "Degraded");
  ASSERT_NE(degraded, nullptr);
  EXPECT_EQ(degraded->status, "True");
  EXPECT_EQ(degraded->reason, "ProgressDeadlineExceeded");
  EXPECT_EQ(Cond(w.St(), "Ready")->status, "False");
  EXPECT_EQ(Cond(w.St(), "Progressing")->status, "False");
  for (int t = 0; t < 2; ++t) {
    EXPECT_EQ(w.D(0, t).container_images.at(Container(t)), OldImage(t));
    EXPECT_EQ(w.D(0, t).annotations.at(kRevisionAnnotation), "1-rollback");
    EXPECT_EQ(w.patch_count.at("app/" + DeployName(0, t)), 2);  // forward once, back once
  }
  // Terminal.
  Plan done = w.Run();
  EXPECT_FALSE(done.status.has_value());
  EXPECT_TRUE(done.patches.empty());
}

TEST(PlannerRollback, EarlierEnvironmentsKeepTheNewImages) {
  World w(2, 1);
  w.ToVerifying(1);
  w.obs.now = kT0 + seconds(700);  // env1 started at kT0 too: its own deadline passes
  w.StepApply();
  ASSERT_EQ(w.Env(1).phase, phase::kRollingBack);
  Plan p = w.StepApply();
  ASSERT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(p.patches[0].name, "d1-0");
  w.RollOut();
  w.StepApply();
  EXPECT_EQ(w.St().phase, phase::kRolledBack);
  EXPECT_EQ(w.Env(0).phase, phase::kSucceeded);
  EXPECT_EQ(w.D(0, 0).container_images.at(Container(0)), NewImage(0));
  EXPECT_EQ(w.D(1, 0).container_images.at(Container(0)), OldImage(0));
}

TEST(PlannerRollback, RollbackThatNeverBecomesHealthyEndsFailed) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.now = kT0 + seconds(600);
  w.StepApply();  // RollingBack, finishedAt = kT0+600
  w.StepApply();  // restore patch
  w.obs.now = kT0 + seconds(1199);
  Plan p = w.Step();
  EXPECT_EQ(w.Env(0).phase, phase::kRollingBack);
  w.obs.now = kT0 + seconds(1200);
  p = w.Step();
  EXPECT_EQ(w.Env(0).phase, phase::kFailed);
  EXPECT_EQ(w.St().phase, phase::kFailed);
  EXPECT_TRUE(HasEvent(p, "RollbackFailed"));
  EXPECT_TRUE(p.patches.empty());
}

TEST(PlannerRollback, NoneFailsWithoutPatching) {
  World w(2, 2);
  w.obs.rollout.spec.automatic_rollback = false;
  w.ToVerifying();
  w.obs.now = kT0 + seconds(600);
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kFailed);
  EXPECT_EQ(w.St().phase, phase::kFailed);
  EXPECT_FALSE(HasEvent(p, "RollingBack"));
  EXPECT_EQ(Cond(w.St(), "Degraded")->reason, "ProgressDeadlineExceeded");
  for (int i = 0; i < 3; ++i) {
    w.obs.now += seconds(60);
    Plan later = w.Step();
    EXPECT_TRUE(later.patches.empty());
    EXPECT_FALSE(later.status.has_value());
  }
  EXPECT_EQ(w.D(0, 0).container_images.at(Container(0)), NewImage(0));
}

// Rollback waits for every restored Deployment to become healthy before ending RolledBack, even
// when another target of the environment has disappeared.
TEST(PlannerRollback, MissingDeploymentDoesNotCutShortTheWaitForTheOthers) {
  World w(1, 2);
  w.ToVerifying();
  w.obs.deployments.erase("app/d0-1");
  Plan p = w.StepApply();
  ASSERT_EQ(w.Env(0).phase, phase::kRollingBack);
  ASSERT_EQ(w.Env(0).reason, "DeploymentNotFound");
  p = w.StepApply();  // restores d0-0 (d0-1 is gone: nothing to restore)
  ASSERT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(p.patches[0].name, "d0-0");
  ASSERT_EQ(w.D(0, 0).updated_replicas, 0);  // restored template not rolled out yet
  p = w.Run();
  const RolloutStatus& s = p.status ? *p.status : w.St();
  EXPECT_EQ(s.environments[0].phase, phase::kRollingBack)
      << "d0-0 is restored but not rolled out: " << s.environments[0].message;
  EXPECT_EQ(s.phase, phase::kRollingBack);
}

// A failure found while planning the roll-forward patches must not be planned together with
// those patches (planner.h: patches are "never together with a rollback start"; the rollback is
// first recorded in status).
TEST(PlannerRollback, FailureWhileUpdatingPlansNoRollForwardPatch) {
  World w(1, 2);
  w.ToUpdating();
  w.obs.deployments.erase("app/d0-1");  // deleted between pre-flight and the patch
  Plan p = w.Run();
  ASSERT_TRUE(p.status.has_value());
  EXPECT_EQ(p.status->environments[0].reason, "DeploymentNotFound");
  EXPECT_EQ(p.status->environments[0].phase, phase::kRollingBack);
  EXPECT_TRUE(p.patches.empty()) << "planned " << p.patches.size()
                                 << " roll-forward patch(es) together with the rollback start, "
                                    "first: "
                                 << (p.patches.empty() ? "" : p.patches[0].name);
}

// ---------------------------------------------------------------------------------------------
// Pre-flight

struct PreflightCase {
  std::string label;
  std::function<void(World&)> setup;
  std::string want_reason;  // "" = pre-flight passes
  std::string message_has;
};

TEST(PlannerPreflight, FailuresChangeNothing) {
  const std::vector<PreflightCase> cases = {
      {"deployment missing", [](World& w) { w.obs.deployments.erase("app/d0-1"); },
       "DeploymentNotFound", "app/d0-1 not found"},
      {"container missing", [](World& w) { w.D(0, 1).container_images.erase(Container(1)); },
       "ContainerNotFound", "no container \"c1\""},
      {"cross-namespace without the label",
       [](World& w) {
         w.MoveEnv(0, "app-prod");
         w.obs.namespaces["app-prod"] = NamespaceView{"app-prod", {}};
       },
       "NamespaceNotPermitted", "rollgate.io/allow-rollouts-from=app"},
      {"cross-namespace, label names another namespace",
       [](World& w) {
         w.MoveEnv(0, "app-prod");
         w.obs.namespaces["app-prod"] =
             NamespaceView{"app-prod", {{kAllowFromLabel, "other"}, {"team", "app"}}};
       },
       "NamespaceNotPermitted", "namespace app-prod"},
      {"cross-namespace, namespace not found", [](World& w) { w.MoveEnv(0, "app-prod"); },
       "NamespaceNotPermitted", ""},
      {"cross-namespace with the label",
       [](World& w) {
         w.MoveEnv(0, "app-prod");
         w.obs.namespaces["app-prod"] = NamespaceView{"app-prod", {{kAllowFromLabel, kNs}}};
       },
       "", ""},
      {"explicit own namespace needs no label", [](World& w) { w.Spec(0).namespace_ = kNs; }, "",
       ""},
      {"image from a registry not allowed",
       [](World& w) { w.opts.allowed_registries = {"registry.internal"}; }, "ImageNotAllowed",
       "registry.example.com"},
      {"image from a docker.io default registry not allowed",
       [](World& w) {
         w.opts.allowed_registries = {"registry.example.com"};
         w.obs.rollout.spec.images[Logical(1)] = "nginx:1.25";
       },
       "ImageNotAllowed", "docker.io"},
      {"allowed registries (wildcard)",
       [](World& w) { w.opts.allowed_registries = {"*.example.com"}; }, "", ""},
  };
  for (const bool automatic : {true, false}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(c.label + (automatic ? " (rollback Automatic)" : " (rollback None)"));
      World w(2, 2);
      w.obs.rollout.spec.automatic_rollback = automatic;
      c.setup(w);
      Plan p = w.Run();
      EXPECT_TRUE(p.patches.empty());
      ASSERT_TRUE(p.status.has_value());
      const EnvironmentStatus& e0 = p.status->environments[0];
      if (c.want_reason.empty()) {
        EXPECT_EQ(e0.phase, phase::kUpdating) << e0.message;
        EXPECT_EQ(p.status->phase, phase::kProgressing);
        EXPECT_EQ(e0.targets.size(), 2u);
        w.Persist(p);
        Plan next = w.Run();
        EXPECT_EQ(next.patches.size(), 2u);
        for (const auto& patch : next.patches) {
          EXPECT_EQ(patch.namespace_, EnvironmentNamespace(w.obs.rollout, w.Spec(0)));
        }
        continue;
      }
      EXPECT_EQ(e0.phase, phase::kFailed);
      EXPECT_EQ(p.status->phase, phase::kFailed) << "nothing was changed: nothing to roll back";
      EXPECT_EQ(e0.reason, c.want_reason);
      EXPECT_NE(e0.message.find(c.message_has), std::string::npos) << e0.message;
      EXPECT_TRUE(e0.targets.empty()) << "no previous images before the pre-flight passes";
      EXPECT_EQ(e0.finished_at, kT0);
      EXPECT_TRUE(HasEvent(p, c.want_reason));
      EXPECT_FALSE(HasEvent(p, "RollingBack"));
      EXPECT_FALSE(HasEvent(p, "EnvironmentStarted"));
      EXPECT_EQ(Cond(*p.status, "Degraded")->status, "True");
      EXPECT_EQ(Cond(*p.status, "Degraded")->reason, c.want_reason);
      EXPECT_EQ(Cond(*p.status, "Ready")->status, "False");
      EXPECT_FALSE(p.requeue_after.has_value());
      // Failed is terminal: no loop.
      w.Persist(p);
      Plan again = w.Run();
      EXPECT_TRUE(again.patches.empty());
      EXPECT_FALSE(again.status.has_value());
    }
  }
}

TEST(PlannerPreflight, FailureInALaterEnvironmentKeepsEarlierOnes) {
  World w(2, 1);
  w.obs.deployments.erase("app/d1-0");
  ASSERT_TRUE(w.CompleteCurrent());
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kSucceeded);
  EXPECT_EQ(w.Env(1).phase, phase::kFailed);
  EXPECT_EQ(w.Env(1).reason, "DeploymentNotFound");
  EXPECT_EQ(w.St().phase, phase::kFailed);
  EXPECT_EQ(w.St().current_environment, "env1");
}

// ---------------------------------------------------------------------------------------------
// Invalid spec

TEST(PlannerInvalidSpec, BadImageReferenceFailsWithoutLoop) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"uppercase repository", "registry.example.com/App/img:2"},
      {"bad tag", "registry.example.com/app/img:bad tag"},
      {"short digest", "registry.example.com/app/img@sha256:1234"},
      {"empty", ""},
  };
  for (const auto& [label, ref] : cases) {
    SCOPED_TRACE(label);
    World w(2, 1);
    w.obs.rollout.spec.images[Logical(0)] = ref;
    Plan p = w.Run();
    EXPECT_TRUE(p.patches.empty());
    EXPECT_FALSE(p.requeue_after.has_value());
    EXPECT_FALSE(p.sample_analysis);
    ASSERT_TRUE(p.status.has_value());
    EXPECT_EQ(p.status->phase, phase::kFailed);
    EXPECT_NE(p.status->message.find("spec.images.img0"), std::string::npos) << p.status->message;
    const Condition* ready = Cond(*p.status, "Ready");
    ASSERT_NE(ready, nullptr);
    EXPECT_EQ(ready->status, "False");
    EXPECT_EQ(ready->reason, "InvalidSpec");
    EXPECT_EQ(Cond(*p.status, "Degraded")->reason, "InvalidSpec");
    EXPECT_TRUE(HasEvent(p, "InvalidSpec"));

    // Planning again with the status it produced changes nothing.
    w.Persist(p);
    const RolloutStatus before = w.St();
    for (int i = 0; i < 3; ++i) {
      w.obs.now += seconds(30);
      Plan again = w.Run();
      EXPECT_TRUE(again.patches.empty());
      EXPECT_FALSE(again.requeue_after.has_value());
      if (again.status) {
        EXPECT_TRUE(*again.status == before);
      }
      w.Persist(again);
    }
    // Fixing the spec starts revision 1.
    w.obs.rollout.spec.images[Logical(0)] = NewImage(0);
    w.obs.spec_hash = "hash-2";
    Plan fixed = w.Step();
    EXPECT_EQ(w.St().revision, 1);
    EXPECT_EQ(w.St().phase, phase::kProgressing);
    EXPECT_EQ(w.Env(0).phase, phase::kUpdating);
    EXPECT_EQ(Cond(w.St(), "Ready")->reason, phase::kProgressing);
    EXPECT_TRUE(HasEvent(fixed, "RolloutStarted"));
  }
}

// Plan::status is "written when it differs from the observed one", and the reconciler writes the
// status (and records the plan's events) whenever it is set: an unchanged invalid spec must plan
// nothing, or every resync rewrites the status and emits another InvalidSpec warning.
TEST(PlannerInvalidSpec, ReplanningAnUnchangedInvalidSpecWritesNothing) {
  World w(1, 1);
  w.obs.rollout.spec.images[Logical(0)] = "registry.example.com/App/img:2";
  w.Step();
  ASSERT_EQ(w.St().phase, phase::kFailed);
  Plan again = w.Run();
  EXPECT_FALSE(again.status.has_value());
  EXPECT_FALSE(HasEvent(again, "InvalidSpec")) << "the same InvalidSpec warning again";
}

TEST(PlannerInvalidSpec, InvalidSpecMidRolloutStopsWithoutPatching) {
  World w(2, 1);
  w.ToVerifying();
  w.obs.rollout.spec.images[Logical(0)] = "Not A Reference";
  w.obs.spec_hash = "hash-2";
  w.obs.rollout.generation = 2;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().phase, phase::kFailed);
  EXPECT_EQ(w.St().observed_generation, 2);
  EXPECT_EQ(Cond(w.St(), "Ready")->reason, "InvalidSpec");
  EXPECT_FALSE(p.requeue_after.has_value());
  // Fixed: a new revision starting at the first environment.
  w.obs.rollout.spec.images[Logical(0)] = Image(0, "3.0.0");
  w.obs.spec_hash = "hash-3";
  p = w.Step();
  EXPECT_EQ(w.St().revision, 2);
  EXPECT_EQ(w.Env(0).phase, phase::kUpdating);
  EXPECT_EQ(w.Env(0).targets[0].previous_images.at(Container(0)), NewImage(0));
  p = w.Run();
  ASSERT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(p.patches[0].revision, "2");
}

// ---------------------------------------------------------------------------------------------
// Manual approval

TEST(PlannerApproval, ManualEnvironmentWaitsForPromote) {
  World w(2, 1);
  w.Spec(0).manual_approval = true;
  w.Spec(1).manual_approval = true;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kAwaitingApproval);
  EXPECT_EQ(w.St().phase, phase::kAwaitingApproval);
  EXPECT_TRUE(w.Env(0).targets.empty());
  EXPECT_EQ(Reasons(p), (std::vector<std::string>{"RolloutStarted", "AwaitingApproval"}));
  EXPECT_FALSE(p.requeue_after.has_value());
  EXPECT_EQ(Cond(w.St(), "Progressing")->status, "True");
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "False");

  // Waiting: nothing changes.
  w.obs.now += seconds(3600);
  Plan wait = w.Run();
  EXPECT_FALSE(wait.status.has_value());
  EXPECT_TRUE(wait.events.empty());
  EXPECT_TRUE(wait.patches.empty());

  // Promote with a new value: approved and proceeds in the same plan.
  w.obs.rollout.annotations[kPromoteAnnotation] = "v1";
  p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).approved_at, w.obs.now);
  EXPECT_EQ(w.Env(0).phase, phase::kUpdating);
  EXPECT_EQ(w.St().phase, phase::kProgressing);
  EXPECT_EQ(w.St().handled_annotations.at(kPromoteAnnotation), "v1");
  EXPECT_EQ(Reasons(p), (std::vector<std::string>{"Promoted", "EnvironmentStarted"}));

  // The next environment awaits approval too; the old promote value does not approve it.
  ASSERT_TRUE(w.CompleteCurrent());
  p = w.Step();
  EXPECT_EQ(w.Env(1).phase, phase::kAwaitingApproval);
  EXPECT_EQ(w.St().phase, phase::kAwaitingApproval);
  EXPECT_FALSE(HasEvent(p, "Promoted"));
  Plan same = w.Run();
  EXPECT_FALSE(same.status.has_value());
  EXPECT_TRUE(same.events.empty());

  w.obs.rollout.annotations[kPromoteAnnotation] = "v2";
  p = w.Step();
  EXPECT_EQ(w.Env(1).phase, phase::kUpdating);
  EXPECT_EQ(w.Env(1).approved_at, w.obs.now);
}

TEST(PlannerApproval, PromoteWhenNothingAwaitsIsIgnored) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.rollout.annotations[kPromoteAnnotation] = "now";
  Plan p = w.Step();
  EXPECT_TRUE(HasEvent(p, "PromoteIgnored"));
  EXPECT_FALSE(HasEvent(p, "Promoted"));
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kVerifying);
  EXPECT_FALSE(w.Env(0).approved_at.has_value());
  EXPECT_EQ(w.St().handled_annotations.at(kPromoteAnnotation), "now");
  // Handled once.
  Plan again = w.Run();
  EXPECT_FALSE(HasEvent(again, "PromoteIgnored"));
}

// ---------------------------------------------------------------------------------------------
// Abort

TEST(PlannerAbort, AbortWhileVerifyingRollsBackThenEndsAborted) {
  World w(2, 2);
  w.ToVerifying();
  w.obs.rollout.annotations[kAbortAnnotation] = "a1";
  Plan p = w.StepApply();
  EXPECT_TRUE(p.patches.empty()) << "the abort is persisted before the restoring patches";
  EXPECT_EQ(w.Env(0).phase, phase::kRollingBack);
  EXPECT_EQ(w.Env(0).reason, "Aborted");
  EXPECT_EQ(w.St().phase, phase::kRollingBack);
  EXPECT_EQ(p.requeue_after, seconds(1));
  EXPECT_TRUE(HasEvent(p, "Aborted"));
  EXPECT_EQ(w.St().handled_annotations.at(kAbortAnnotation), "a1");

  p = w.StepApply();
  ASSERT_EQ(p.patches.size(), 2u);
  for (const auto& patch : p.patches) {
    EXPECT_TRUE(patch.rollback);
    EXPECT_EQ(patch.revision, "1-rollback");
  }
  w.RollOut();
  p = w.StepApply();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kRolledBack);
  EXPECT_EQ(w.St().phase, phase::kAborted);
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "True");
  EXPECT_EQ(Cond(w.St(), "Degraded")->reason, "Aborted");
  for (int t = 0; t < 2; ++t) {
    EXPECT_EQ(w.D(0, t).container_images.at(Container(t)), OldImage(t));
  }
  // Terminal; the same abort value does nothing more.
  Plan done = w.Run();
  EXPECT_FALSE(done.status.has_value());
  EXPECT_TRUE(done.events.empty());
}

TEST(PlannerAbort, AbortWhileUpdatingBeforeThePatchRestoresNothing) {
  World w(1, 1);
  w.ToUpdating();
  w.obs.rollout.annotations[kAbortAnnotation] = "a1";
  Plan p = w.StepApply();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.Env(0).phase, phase::kRollingBack);
  p = w.StepApply();
  EXPECT_TRUE(p.patches.empty()) << "the Deployment still runs the previous images";
  EXPECT_EQ(w.St().phase, phase::kAborted);
  EXPECT_EQ(w.patch_count.count("app/d0-0"), 0u);
}

struct AbortPendingCase {
  std::string label;
  std::function<void(World&)> setup;
  int env;
};

TEST(PlannerAbort, AbortBeforeAnythingChangedEndsAbortedAtOnce) {
  const std::vector<AbortPendingCase> cases = {
      {"first reconcile", [](World&) {}, 0},
      {"awaiting approval",
       [](World& w) {
         w.Spec(0).manual_approval = true;
         w.Step();
         ASSERT_EQ(w.Env(0).phase, phase::kAwaitingApproval);
       },
       0},
      {"next environment pending",
       [](World& w) {
         ASSERT_TRUE(w.CompleteCurrent());
         ASSERT_EQ(w.Env(1).phase, phase::kPending);
       },
       1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(2, 1);
    c.setup(w);
    const auto before = w.obs.deployments;
    w.obs.rollout.annotations[kAbortAnnotation] = "stop";
    Plan p = w.Step();
    EXPECT_TRUE(p.patches.empty());
    EXPECT_EQ(w.St().phase, phase::kAborted);
    EXPECT_EQ(w.Env(c.env).reason, "Aborted");
    EXPECT_TRUE(w.Env(c.env).targets.empty());
    EXPECT_TRUE(HasEvent(p, "Aborted"));
    EXPECT_FALSE(HasEvent(p, "EnvironmentStarted"));
    EXPECT_FALSE(p.requeue_after.has_value());
    EXPECT_EQ(Cond(w.St(), "Degraded")->status, "True");
    Plan again = w.Run();
    EXPECT_FALSE(again.status.has_value());
    EXPECT_TRUE(again.patches.empty());
    EXPECT_EQ(w.obs.deployments.at("app/" + DeployName(c.env, 0)).container_images,
              before.at("app/" + DeployName(c.env, 0)).container_images);
  }
}

TEST(PlannerAbort, AbortAfterSuccessIsIgnored) {
  World w(1, 1);
  ASSERT_TRUE(w.CompleteCurrent());
  ASSERT_EQ(w.St().phase, phase::kSucceeded);
  w.obs.rollout.annotations[kAbortAnnotation] = "late";
  Plan p = w.Step();
  EXPECT_TRUE(HasEvent(p, "AbortIgnored"));
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().phase, phase::kSucceeded);
}

// ---------------------------------------------------------------------------------------------
// Retry

struct RetryCase {
  std::string label;
  std::function<void(World&)> fail;  // leaves the rollout Failed / RolledBack / Aborted
  std::string failed_phase;
};

TEST(PlannerRetry, RetryRestartsTheFailedEnvironment) {
  const std::vector<RetryCase> cases = {
      {"after a pre-flight failure",
       [](World& w) {
         const DeploymentView keep = w.D(0, 0);
         w.obs.deployments.erase(keep.Key());
         w.Step();
         w.obs.deployments[keep.Key()] = keep;  // created since
       },
       phase::kFailed},
      {"after a rollback",
       [](World& w) {
         w.ToVerifying();
         w.obs.now = kT0 + seconds(600);
         w.StepApply();
         w.StepApply();
         w.RollOut();
         w.StepApply();
       },
       phase::kRolledBack},
      {"after an abort",
       [](World& w) {
         w.ToVerifying();
         w.obs.rollout.annotations[kAbortAnnotation] = "a";
         w.StepApply();
         w.StepApply();
         w.RollOut();
         w.StepApply();
       },
       phase::kAborted},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(2, 1);
    c.fail(w);
    ASSERT_EQ(w.St().phase, c.failed_phase) << w.St().message;
    w.obs.now = kT0 + seconds(2000);
    w.obs.rollout.annotations[kRetryAnnotation] = "r1";
    Plan p = w.Step();
    EXPECT_TRUE(p.patches.empty()) << "previous images are recorded again first";
    EXPECT_TRUE(HasEvent(p, "Retry"));
    EXPECT_EQ(w.St().phase, phase::kProgressing);
    EXPECT_EQ(w.St().current_environment, "env0");
    EXPECT_EQ(w.St().revision, 1);
    const EnvironmentStatus& e0 = w.Env(0);
    EXPECT_EQ(e0.attempts, 1);
    // Reset to Pending, and in the same plan through the pre-flight into Updating.
    EXPECT_EQ(e0.phase, phase::kUpdating);
    EXPECT_EQ(e0.reason, "");
    EXPECT_EQ(e0.started_at, kT0 + seconds(2000));
    EXPECT_FALSE(e0.finished_at.has_value());
    ASSERT_EQ(e0.targets.size(), 1u);
    EXPECT_EQ(e0.targets[0].previous_images.at(Container(0)), OldImage(0));
    EXPECT_EQ(Cond(w.St(), "Degraded")->status, "False");
    EXPECT_EQ(Cond(w.St(), "Progressing")->status, "True");

    // The new attempt patches again, once.
    p = w.StepApply();
    ASSERT_EQ(p.patches.size(), 1u);
    EXPECT_EQ(p.patches[0].revision, "1");
    EXPECT_TRUE(w.StepApply().patches.empty());

    // A second failure needs a new retry value.
    w.obs.deployments.erase("app/d0-0");
    w.StepApply();
    ASSERT_EQ(w.St().phase, phase::kRollingBack);
    w.StepApply();
    ASSERT_EQ(w.St().phase, phase::kRolledBack);  // nothing left to restore
    Plan same = w.Run();
    EXPECT_FALSE(HasEvent(same, "Retry"));
    EXPECT_FALSE(same.status.has_value());
  }
}

TEST(PlannerRetry, RetryWhileProgressingIsIgnored) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.rollout.annotations[kRetryAnnotation] = "r1";
  Plan p = w.Step();
  EXPECT_TRUE(HasEvent(p, "RetryIgnored"));
  EXPECT_EQ(w.Env(0).phase, phase::kVerifying);
  EXPECT_EQ(w.Env(0).attempts, 0);
}

// ---------------------------------------------------------------------------------------------
// New revisions

TEST(PlannerRevision, SpecChangeMidRolloutStartsRevision2AtTheFirstEnvironment) {
  World w(3, 2);
  w.ToVerifying(1);
  ASSERT_EQ(w.St().current_environment, "env1");
  for (int t = 0; t < 2; ++t) w.obs.rollout.spec.images[Logical(t)] = Image(t, "3.0.0");
  w.obs.spec_hash = "hash-2";
  w.obs.rollout.generation = 2;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().revision, 2);
  EXPECT_EQ(w.St().spec_hash, "hash-2");
  EXPECT_EQ(w.St().observed_generation, 2);
  EXPECT_EQ(w.St().current_environment, "env0");
  EXPECT_EQ(w.St().phase, phase::kProgressing);
  EXPECT_EQ(w.Env(0).phase, phase::kUpdating);
  EXPECT_EQ(w.Env(1).phase, phase::kPending);
  EXPECT_EQ(w.Env(2).phase, phase::kPending);
  EXPECT_TRUE(w.Env(1).targets.empty());
  // env0 now runs revision 1's images: those are its previous images.
  EXPECT_EQ(w.Env(0).targets[0].previous_images.at(Container(0)), NewImage(0));
  EXPECT_TRUE(HasEvent(p, "NewRevision"));
  EXPECT_FALSE(HasEvent(p, "RolloutStarted"));

  p = w.StepApply();
  ASSERT_EQ(p.patches.size(), 2u);
  for (const auto& patch : p.patches) EXPECT_EQ(patch.revision, "2");
  EXPECT_EQ(w.D(0, 1).container_images.at(Container(1)), Image(1, "3.0.0"));
}

TEST(PlannerRevision, EnvironmentsOnlyChangeReannotatesOnce) {
  World w(1, 1);
  ASSERT_TRUE(w.CompleteCurrent());
  ASSERT_EQ(w.St().phase, phase::kSucceeded);
  w.Spec(0).bake_seconds = 0;
  w.obs.spec_hash = "hash-envs";
  w.Step();
  EXPECT_EQ(w.St().revision, 2);
  Plan p = w.StepApply();
  ASSERT_EQ(p.patches.size(), 1u);  // same images, new revision annotation
  EXPECT_EQ(p.patches[0].images.at(Container(0)), NewImage(0));
  EXPECT_EQ(p.patches[0].revision, "2");
  EXPECT_TRUE(w.Run().patches.empty());
}

// ---------------------------------------------------------------------------------------------
// Pause

TEST(PlannerPause, PausedPlansNoPatchesAndUnpausingContinues) {
  World w(1, 2);
  w.ToUpdating();
  w.obs.rollout.spec.paused = true;
  w.obs.rollout.generation = 2;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().phase, phase::kPaused);
  EXPECT_EQ(w.Env(0).phase, phase::kUpdating);
  EXPECT_FALSE(p.requeue_after.has_value());
  EXPECT_EQ(Cond(w.St(), "Ready")->status, "False");
  EXPECT_EQ(Cond(w.St(), "Ready")->reason, phase::kPaused);
  Plan still = w.Run();
  EXPECT_FALSE(still.status.has_value());
  EXPECT_TRUE(still.patches.empty());

  w.obs.rollout.spec.paused = false;
  w.obs.rollout.generation = 3;
  p = w.StepApply();
  EXPECT_EQ(p.patches.size(), 2u);
  EXPECT_EQ(w.St().phase, phase::kProgressing);
  EXPECT_EQ(w.Env(0).phase, phase::kVerifying);
}

TEST(PlannerPause, PausedOnFirstReconcileRecordsNothing) {
  World w(1, 1);
  w.obs.rollout.spec.paused = true;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().revision, 1);
  EXPECT_EQ(w.St().phase, phase::kPaused);
  EXPECT_EQ(w.Env(0).phase, phase::kPending);
  w.obs.rollout.spec.paused = false;
  w.Step();
  EXPECT_EQ(w.Env(0).phase, phase::kUpdating);
  EXPECT_EQ(w.St().phase, phase::kProgressing);
}

// Unpausing an environment that is rolling back continues the rollback, and the rollout reports
// it: phase RollingBack (Degraded=True), not Progressing.
TEST(PlannerPause, UnpausingARollbackReportsRollingBack) {
  World w(1, 1);
  w.ToVerifying();
  w.obs.now = kT0 + seconds(600);
  w.Step();
  ASSERT_EQ(w.St().phase, phase::kRollingBack);
  w.obs.rollout.spec.paused = true;
  Plan p = w.Step();
  EXPECT_TRUE(p.patches.empty());
  EXPECT_EQ(w.St().phase, phase::kPaused);
  w.obs.rollout.spec.paused = false;
  p = w.Step();
  EXPECT_EQ(p.patches.size(), 1u);
  EXPECT_EQ(w.Env(0).phase, phase::kRollingBack);
  EXPECT_EQ(w.St().phase, phase::kRollingBack) << "rollout phase while its environment rolls back";
  EXPECT_EQ(Cond(w.St(), "Degraded")->status, "True");
}

// ---------------------------------------------------------------------------------------------
// Worker startup validation

struct ValidationCase {
  std::string label;
  ValidationObservation v;
  WallTime now;
  Want want;
  bool recorded;  // the observation is copied into the environment's status
};

TEST(PlannerValidation, GatesTheEnvironment) {
  const std::vector<ValidationCase> cases = {
      {"not required",
       {false, 0, 0, 0, ""},
       kT0,
       {phase::kSucceeded, phase::kSucceeded, "Succeeded", "", {}, std::nullopt},
       false},
      {"a GPU pod failed",
       {true, 2, 1, 1, "pod w-1: cuInit failed: CUDA_ERROR_NO_DEVICE"},
       kT0,
       {phase::kRollingBack,
        phase::kRollingBack,
        "WorkerValidationFailed",
        "CUDA_ERROR_NO_DEVICE",
        {"WorkerValidationFailed"},
        std::nullopt},
       true},
      {"pending",
       {true, 2, 1, 0, "1 of 2 GPU pods validated"},
       kT0,
       {phase::kVerifying,
        phase::kProgressing,
        "",
        "waiting for worker validation: 1 of 2",
        {},
        seconds(30)},
       true},
      {"no GPU pod seen yet",
       {true, 0, 0, 0, "no new GPU pod yet"},
       kT0,
       {phase::kVerifying,
        phase::kProgressing,
        "",
        "waiting for worker validation",
        {},
        seconds(30)},
       true},
      {"pending past the progress deadline",
       {true, 2, 0, 0, "0 of 2 GPU pods validated"},
       kT0 + seconds(600),
       {phase::kRollingBack, phase::kRollingBack, "WorkerValidationTimeout", "", {}, std::nullopt},
       true},
      {"every GPU pod passed",
       {true, 2, 2, 0, "2 of 2 GPU pods validated"},
       kT0,
       {phase::kSucceeded, phase::kSucceeded, "Succeeded", "", {}, std::nullopt},
       true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    World w(1, 1);
    w.Spec(0).targets[0].worker_validation = WorkerValidationSpec{};
    w.ToVerifying();
    w.RollOut();
    w.obs.now = c.now;
    w.obs.validation = c.v;
    Plan p = w.Run();
    EXPECT_TRUE(p.patches.empty());
    ExpectPlan(w, p, 0, c.want);
    const RolloutStatus& s = p.status ? *p.status : w.St();
    if (c.recorded) {
      ASSERT_TRUE(s.environments[0].validation.has_value());
      EXPECT_EQ(s.environments[0].validation->gpu_pods, c.v.gpu_pods);
      EXPECT_EQ(s.environments[0].validation->passed, c.v.passed);
      EXPECT_EQ(s.environments[0].validation->failed, c.v.failed);
      EXPECT_EQ(s.environments[0].validation->message, c.v.message);
    }
  }
}

// A failed validation keeps its pod from ever becoming ready: it fails the environment at once;
// a pending one is only waited for once the Deployments are rolled out.
TEST(PlannerValidation, FailureCountsBeforeTheRolloutCompletesPendingDoesNot) {
  {
    World w(1, 1);
    w.ToVerifying();
    w.obs.validation = ValidationObservation{true, 1, 0, 1, "pod w-0: CUDA_ERROR_NO_DEVICE"};
    Plan p = w.Run();
    ASSERT_TRUE(p.status.has_value());
    EXPECT_EQ(p.status->environments[0].phase, phase::kRollingBack);
    EXPECT_EQ(p.status->environments[0].reason, "WorkerValidationFailed");
    EXPECT_TRUE(p.patches.empty());
  }
  {
    World w(1, 1);
    w.ToVerifying();
    w.obs.validation = ValidationObservation{true, 1, 0, 0, "0 of 1 GPU pods validated"};
    Plan p = w.Run();
    const RolloutStatus& s = p.status ? *p.status : w.St();
    EXPECT_EQ(s.environments[0].phase, phase::kVerifying);
    EXPECT_NE(s.environments[0].message.find("0 updated"), std::string::npos)
        << s.environments[0].message;
  }
}

// Injection of the validation init containers into GPU workers' pod templates (and their removal
// on rollback), with the same never-twice guarantees as the images.
TEST(PlannerValidation, InjectsValidationIntoGpuWorkersOnly) {
  const std::string validator = "registry.example.com/rollgate/validate:0.1.0";
  const std::vector<std::string> check = {"python", "-c",
                                          "import torch; assert torch.cuda.is_available()"};
  World w(1, 2);
  w.opts.validator_image = validator;
  for (int t = 0; t < 2; ++t) {
    w.Spec(0).targets[static_cast<size_t>(t)].worker_validation = WorkerValidationSpec{true, check};
  }
  w.D(0, 0).gpu_requests[Container(0)] = "1";  // d0-0 is a GPU worker, d0-1 runs on CPUs
  w.ToUpdating();
  EXPECT_TRUE(w.Env(0).targets[0].previous_init_containers.empty());
  EXPECT_EQ(w.Env(0).targets[0].previous_validation_label, "");
  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  const DeploymentPatch& gpu = p.patches[0];
  ASSERT_EQ(gpu.name, "d0-0");
  ASSERT_EQ(gpu.init_containers.size(), 2u);
  EXPECT_EQ(gpu.init_containers[0].name, kValidatorContainer);
  EXPECT_EQ(gpu.init_containers[0].image, validator);
  EXPECT_EQ(gpu.init_containers[0].gpu_resource, "nvidia.com/gpu");
  EXPECT_EQ(gpu.init_containers[0].gpu_amount, "1");
  EXPECT_EQ(gpu.init_containers[1].name, kValidatorCommandContainer);
  EXPECT_EQ(gpu.init_containers[1].image, NewImage(0));
  EXPECT_EQ(gpu.init_containers[1].command, check);
  EXPECT_EQ(gpu.validation_label, "1");
  EXPECT_TRUE(p.patches[1].init_containers.empty()) << "CPU pods are not validated";
  EXPECT_EQ(p.patches[1].validation_label, "");

  // Restart after the patch: injected already, nothing to patch.
  w.Apply(p);
  EXPECT_TRUE(w.Run().patches.empty());
  // Injection undone by someone else while Updating: patched again.
  w.D(0, 0).init_container_images.erase(kValidatorCommandContainer);
  Plan again = w.Run();
  ASSERT_EQ(again.patches.size(), 1u);
  EXPECT_EQ(again.patches[0].name, "d0-0");
  w.Apply(again);
  w.Persist(again);

  // Rollback removes what this revision injected.
  w.obs.validation = ValidationObservation{true, 2, 0, 1, "pod w-0: CUDA_ERROR_NO_DEVICE"};
  w.Step();
  ASSERT_EQ(w.Env(0).phase, phase::kRollingBack);
  w.obs.validation.reset();
  Plan back = w.Run();
  ASSERT_EQ(back.patches.size(), 2u);
  EXPECT_EQ(back.patches[0].remove_init_containers,
            (std::vector<std::string>{kValidatorContainer, kValidatorCommandContainer}));
  EXPECT_TRUE(back.patches[0].remove_validation_label);
  EXPECT_TRUE(back.patches[1].remove_init_containers.empty());
  EXPECT_FALSE(back.patches[1].remove_validation_label);
  w.Apply(back);
  EXPECT_TRUE(w.D(0, 0).init_container_images.empty());
  EXPECT_EQ(w.D(0, 0).template_labels.count(kValidationLabel), 0u);
  EXPECT_TRUE(w.Run().patches.empty()) << "restored: no second rollback patch";
}

TEST(PlannerValidation, GpuWorkerWithoutValidatorImageFailsPreflight) {
  World w(1, 1);
  w.Spec(0).targets[0].worker_validation = WorkerValidationSpec{};
  w.D(0, 0).gpu_requests[Container(0)] = "1";
  Plan p = w.Run();
  EXPECT_TRUE(p.patches.empty());
  ASSERT_TRUE(p.status.has_value());
  EXPECT_EQ(p.status->environments[0].phase, phase::kFailed);
  EXPECT_EQ(p.status->environments[0].reason, "WorkerValidationUnavailable");
  EXPECT_EQ(p.status->phase, phase::kFailed);
}

// ---------------------------------------------------------------------------------------------
// Analysis

AnalysisObservation Sample(AnalysisObservation::Outcome o) {
  switch (o) {
    case AnalysisObservation::Outcome::kPass:
      return {o, "0.001", "error-rate: 0.001 <= 0.01"};
    case AnalysisObservation::Outcome::kFail:
      return {o, "0.2", "error-rate: 0.2 > 0.01"};
    case AnalysisObservation::Outcome::kInconclusive:
      return {o, "", "error-rate: no data"};
  }
  return {};
}

World AnalysisWorld(int envs) {
  World w(envs, 1);
  AnalysisSpec a;
  a.prometheus_address = "http://prometheus.monitoring:9090";
  a.checks.push_back({"error-rate", "sum(rate(http_errors_total[2m]))", std::nullopt, 0.01});
  a.interval_seconds = 30;
  a.samples = 4;
  w.Spec(0).analysis = a;
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
  EXPECT_EQ(s0.environments[0].phase, phase::kVerifying);

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
  EXPECT_EQ(w.Env(0).phase, phase::kVerifying);
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
      {"every sample passes",
       {O::kPass, O::kPass, O::kPass, O::kPass},
       {phase::kSucceeded,
        phase::kProgressing,
        "Succeeded",
        "",
        {"EnvironmentSucceeded"},
        seconds(1),
        "env1"},
       4,
       0},
      {"a failing sample fails at once",
       {O::kPass, O::kFail},
       {phase::kRollingBack,
        phase::kRollingBack,
        "AnalysisFailed",
        "0.2 > 0.01",
        {"AnalysisFailed"},
        std::nullopt},
       1,
       0},
      {"every sample inconclusive",
       {O::kInconclusive, O::kInconclusive, O::kInconclusive, O::kInconclusive},
       {phase::kRollingBack,
        phase::kRollingBack,
        "AnalysisInconclusive",
        "0 of 4 samples passed",
        {"AnalysisInconclusive"},
        std::nullopt},
       0,
       4},
      {"one inconclusive among passes",
       {O::kPass, O::kInconclusive, O::kPass, O::kPass},
       {phase::kRollingBack,
        phase::kRollingBack,
        "AnalysisInconclusive",
        "3 of 4",
        {"AnalysisInconclusive"},
        std::nullopt},
       3,
       1},
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

// ---------------------------------------------------------------------------------------------
// Restarts: the reconciler is killed between executing a plan's patches and writing its status.

TEST(PlannerRestart, CrashBeforeTheFirstStatusWriteRecordsTheSameImages) {
  World w(1, 2);
  Plan first = w.Run();  // status never written
  Plan second = w.Run();
  ASSERT_TRUE(first.status && second.status);
  EXPECT_TRUE(*first.status == *second.status);
  EXPECT_TRUE(second.patches.empty());
}

TEST(PlannerRestart, CrashBeforeTheRollForwardPatchPatchesOnce) {
  World w(1, 2);
  w.ToUpdating();
  Plan p = w.Run();  // crash: neither the patches nor the status were executed
  ASSERT_EQ(p.patches.size(), 2u);
  Plan again = w.Run();
  EXPECT_EQ(again.patches.size(), 2u);
  w.Apply(again);
  w.Persist(again);
  EXPECT_EQ(w.patch_count.at("app/d0-0"), 1);
  EXPECT_EQ(w.patch_count.at("app/d0-1"), 1);
}

TEST(PlannerRestart, CrashAfterTheRollForwardPatchNeverPatchesTwice) {
  World w(1, 2);
  w.ToUpdating();
  const RolloutStatus updating = w.St();
  Plan p = w.Run();
  w.Apply(p);  // patched; the status write (Verifying) is lost
  for (int i = 0; i < 3; ++i) {
    Plan again = w.Run();
    EXPECT_TRUE(again.patches.empty()) << "restart " << i;
    ASSERT_TRUE(again.status.has_value());
    EXPECT_EQ(again.status->environments[0].phase, phase::kVerifying);
    for (int t = 0; t < 2; ++t) {
      EXPECT_EQ(again.status->environments[0].targets[static_cast<size_t>(t)].previous_images.at(
                    Container(t)),
                OldImage(t))
          << "previous images lost";
    }
  }
  EXPECT_TRUE(w.St() == updating);
}

TEST(PlannerRestart, CrashAfterOnePatchOfTwoPatchesTheOther) {
  World w(1, 2);
  w.ToUpdating();
  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  Plan partial = p;
  partial.patches.resize(1);
  w.Apply(partial);
  Plan again = w.Run();
  ASSERT_EQ(again.patches.size(), 1u);
  EXPECT_EQ(again.patches[0].name, "d0-1");
}

TEST(PlannerRestart, CrashAfterTheRollbackPatchKeepsThePreviousImages) {
  World w(1, 2);
  w.ToVerifying();
  w.obs.now = kT0 + seconds(600);
  w.Step();  // RollingBack persisted
  Plan p = w.Run();
  ASSERT_EQ(p.patches.size(), 2u);
  w.Apply(p);  // restore executed, status write lost
  Plan again = w.Run();
  EXPECT_TRUE(again.patches.empty());
  const RolloutStatus& s = again.status ? *again.status : w.St();
  EXPECT_EQ(s.environments[0].phase, phase::kRollingBack);
  EXPECT_EQ(s.environments[0].targets[1].previous_images.at(Container(1)), OldImage(1));
}

// At every step of a rollout over 3 environments, a restart that replays the same observation
// after the patches were executed (status write lost) plans no patch again and keeps the
// recorded previous images.
TEST(PlannerRestart, EveryStepSurvivesARestart) {
  World w(3, 2);
  for (int i = 0; i < 60 && w.St().phase != phase::kSucceeded; ++i) {
    Plan p = w.Run();
    w.Apply(p);
    if (!p.patches.empty()) {
      Plan replay = w.Run();  // restarted: same status, patched Deployments
      EXPECT_TRUE(replay.patches.empty()) << "step " << i;
      ASSERT_TRUE(replay.status.has_value());
      for (const auto& e : replay.status->environments) {
        for (const auto& t : e.targets) {
          for (const auto& [c, image] : t.previous_images) {
            EXPECT_NE(image.find(":1.0.0"), std::string::npos)
                << e.name << "/" << t.deployment << " previous image " << image;
          }
        }
      }
    }
    w.Persist(p);
    if (p.patches.empty()) w.RollOut();
    w.obs.now += seconds(1);
  }
  EXPECT_EQ(w.St().phase, phase::kSucceeded);
  for (const auto& [key, n] : w.patch_count) EXPECT_EQ(n, 1) << key;
}

// ---------------------------------------------------------------------------------------------
// A whole happy path: 3 environments x 2 targets, each Deployment patched once per revision.

TEST(PlannerHappyPath, EachDeploymentIsPatchedOncePerRevision) {
  World w(3, 2);
  std::vector<std::string> events;
  std::vector<std::string> env_trail;
  auto run = [&](const std::string& want_revision) {
    for (int i = 0; i < 60; ++i) {
      Plan p = w.Run();
      for (const auto& patch : p.patches) {
        EXPECT_EQ(patch.revision, want_revision);
        EXPECT_FALSE(patch.rollback);
      }
      w.Apply(p);
      w.Persist(p);
      for (const auto& e : p.events) events.push_back(e.reason);
      if (env_trail.empty() || env_trail.back() != w.St().current_environment) {
        env_trail.push_back(w.St().current_environment);
      }
      // The Deployment controller catches up after the patches.
      if (p.patches.empty()) w.RollOut();
      w.obs.now += seconds(5);
      if (w.St().phase == phase::kSucceeded) return;
      ASSERT_EQ(w.St().phase, phase::kProgressing) << w.St().message;
    }
    FAIL() << "no success after 60 steps";
  };
  run("1");
  EXPECT_EQ(w.St().phase, phase::kSucceeded);
  EXPECT_EQ(env_trail, (std::vector<std::string>{"env0", "env1", "env2"}));
  ASSERT_EQ(w.patch_count.size(), 6u);
  for (int e = 0; e < 3; ++e) {
    EXPECT_EQ(w.Env(e).phase, phase::kSucceeded);
    for (int t = 0; t < 2; ++t) {
      const std::string key = "app/" + DeployName(e, t);
      EXPECT_EQ(w.patch_count[key], 1) << key;
      EXPECT_EQ(w.D(e, t).container_images.at(Container(t)), NewImage(t));
      EXPECT_EQ(w.D(e, t).annotations.at(kRevisionAnnotation), "1");
      EXPECT_EQ(w.D(e, t).container_images.at("log-shipper"), "registry.example.com/ops/shipper:7");
      EXPECT_EQ(w.Env(e).targets[static_cast<size_t>(t)].previous_images.at(Container(t)),
                OldImage(t));
    }
  }
  EXPECT_EQ(std::count(events.begin(), events.end(), "EnvironmentStarted"), 3);
  EXPECT_EQ(std::count(events.begin(), events.end(), "EnvironmentSucceeded"), 3);
  EXPECT_EQ(std::count(events.begin(), events.end(), "RolloutSucceeded"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "RolloutStarted"), 1);
  EXPECT_EQ(Cond(w.St(), "Ready")->status, "True");

  // Revision 2: every Deployment once more.
  for (int t = 0; t < 2; ++t) w.obs.rollout.spec.images[Logical(t)] = Image(t, "3.0.0");
  w.obs.spec_hash = "hash-2";
  w.obs.rollout.generation = 2;
  env_trail.clear();
  run("2");
  EXPECT_EQ(w.St().revision, 2);
  EXPECT_EQ(env_trail, (std::vector<std::string>{"env0", "env1", "env2"}));
  for (int e = 0; e < 3; ++e) {
    for (int t = 0; t < 2; ++t) {
      const std::string key = "app/" + DeployName(e, t);
      EXPECT_EQ(w.patch_count[key], 2) << key;
      EXPECT_EQ(w.D(e, t).annotations.at(kRevisionAnnotation), "2");
      EXPECT_EQ(w.Env(e).targets[static_cast<size_t>(t)].previous_images.at(Container(t)),
                NewImage(t));
    }
  }
}

}  // namespace
}  // namespace rollgate::rollout
