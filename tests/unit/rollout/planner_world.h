// The shared world of the planner tests (planner_*_test.cc): one ContainerRollout "app/r" over a
// fake map of Deployments and namespaces, stepped through PlanRollout the way the reconciler runs
// it (patches first, then the status write, stored through the JSON codec as the API server
// would), plus the helpers the tests share: object names and images, event and condition
// look-ups, and Want / ExpectPlan, what a plan must leave behind for one environment.
// Thread-safety: none (single-threaded tests); everything is inline so that several test files
// can include it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controller/api/codec.h"
#include "controller/api/types.h"
#include "controller/api/well_known.h"
#include "controller/rollout/planner.h"
#include "controller/validation/observer.h"

namespace rollgate::rollout::testing_world {

using api::AnalysisSpec;
using api::CheckSpec;
using api::Condition;
using api::DeploymentView;
using api::EnvironmentPhase;
using api::EnvironmentSpec;
using api::EnvironmentStatus;
using api::Json;
using api::kAbortAnnotation;
using api::kAllowFromLabel;
using api::kPromoteAnnotation;
using api::kRetryAnnotation;
using api::kRevisionAnnotation;
using api::kValidationLabel;
using api::kValidatorCommandContainer;
using api::kValidatorContainer;
using api::NamespaceView;
using api::Rollout;
using api::RolloutPhase;
using api::RolloutStatus;
using api::TargetSpec;
using api::TargetStatus;
using api::WallTime;
using api::WorkerValidationSpec;
using std::chrono::seconds;
using validation::ValidationObservation;

inline constexpr char kNs[] = "app";
inline const WallTime kT0 = std::chrono::system_clock::from_time_t(1'800'000'000);

inline std::string EnvName(int e) { return "env" + std::to_string(e); }
inline std::string DeployName(int e, int t) {
  return "d" + std::to_string(e) + "-" + std::to_string(t);
}
inline std::string Container(int t) { return "c" + std::to_string(t); }
inline std::string Logical(int t) { return "img" + std::to_string(t); }
inline std::string Image(int t, const std::string& version) {
  return "registry.example.com/app/img" + std::to_string(t) + ":" + version;
}
inline std::string OldImage(int t) { return Image(t, "1.0.0"); }
inline std::string NewImage(int t) { return Image(t, "2.0.0"); }

// What the API server would store: the status encoded to JSON and decoded again.
inline RolloutStatus RoundTrip(const RolloutStatus& s) {
  Json obj = Json::object();
  obj["metadata"] = Json::object();
  obj["metadata"]["name"] = Json::string("r");
  obj["spec"] = Json::object();
  obj["spec"]["environments"] = Json::array();
  obj["status"] = api::EncodeStatus(s);
  auto decoded = api::DecodeRollout(obj);
  EXPECT_TRUE(decoded.ok()) << decoded.status().message();
  return decoded.ok() ? decoded.value().status : RolloutStatus{};
}

inline std::vector<std::string> Reasons(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& e : p.events) out.push_back(e.reason);
  return out;
}

inline bool HasEvent(const Plan& p, const std::string& reason) {
  auto r = Reasons(p);
  return std::find(r.begin(), r.end(), reason) != r.end();
}

// The condition of that type; nullptr when absent. Kept out of line: inlined into the tests, GCC's
// -Wnull-dereference flags their `Cond(s, type)->field` checks, which rely on the condition being
// there.
[[gnu::noinline]] inline const Condition* Cond(const RolloutStatus& s, const std::string& type) {
  for (const auto& c : s.conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

inline std::string Join(const std::vector<std::string>& v) {
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
    const std::string ns = api::EnvironmentNamespace(obs.rollout, Spec(e));
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
      if (!patch.owner.empty()) d.annotations[api::kOwnerAnnotation] = patch.owner;
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
    ASSERT_EQ(Env(0).phase, EnvironmentPhase::kUpdating) << St().message;
  }
  // Updating: the patches are executed and environment `e` is Verifying, not yet rolled out.
  void ToVerifying(int e = 0) {
    if (St().revision == 0) ToUpdating();
    while (St().current_environment != EnvName(e)) {
      ASSERT_TRUE(CompleteCurrent());
    }
    if (Env(e).phase == EnvironmentPhase::kPending) Step();
    ASSERT_EQ(Env(e).phase, EnvironmentPhase::kUpdating) << St().message;
    Plan p = StepApply();
    ASSERT_FALSE(p.patches.empty());
    ASSERT_EQ(Env(e).phase, EnvironmentPhase::kVerifying) << St().message;
  }
  // Runs the current environment to Succeeded (every Deployment rolls out at once).
  bool CompleteCurrent() {
    if (St().revision == 0) Step();
    const std::string start = St().current_environment;
    for (int i = 0; i < 20; ++i) {
      StepApply();
      RollOut();
      if (St().current_environment != start || St().phase == RolloutPhase::kSucceeded) return true;
      if (St().phase != RolloutPhase::kProgressing) return false;
    }
    return false;
  }

  Observed obs;
  PlannerOptions opts;
  std::map<std::string, int> patch_count;
};

// What a plan must leave behind for one environment; written with designated initializers
// (`{.env_phase = ..., .rollout_phase = ..., .message_has = ...}`), every expectation names both
// phases and leaves out the fields it does not check.
struct Want {
  EnvironmentPhase env_phase = EnvironmentPhase::kPending;
  RolloutPhase rollout_phase = RolloutPhase::kProgressing;
  std::string reason{};               // environment reason; "" = not checked
  std::string message_has{};          // substring of the environment message; "" = not checked
  std::vector<std::string> events{};  // reasons that must be among the plan's events
  std::optional<seconds> requeue{};   // exact requeue_after; nullopt = must be absent
  std::string current_environment{};  // "" = not checked
};

inline void ExpectPlan(const World& w, const Plan& p, int env, const Want& want) {
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

}  // namespace rollgate::rollout::testing_world
