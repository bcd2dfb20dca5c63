#include "controller/validation/pod_validation.h"

#include <gtest/gtest.h>

#include <map>

#include "controller/api/codec.h"
#include "tests/fakes/map_lister.h"

namespace rollgate::validation {
namespace {

using kube::Json;

Json Pod(const std::string& name, const std::string& init_statuses, const std::string& rev = "1",
         const std::string& app = "w", bool deleting = false) {
  return Json::parse(R"({"metadata":{"name":")" + name + R"(","namespace":"prod",)" +
                     (deleting ? R"("deletionTimestamp":"2026-01-01T00:00:00Z",)" : "") +
                     R"("labels":{"app":")" + app + R"(","rollgate.io/validation":")" + rev +
                     R"("}},"spec":{"nodeName":"gpu-0"},"status":{"initContainerStatuses":[)" +
                     init_statuses + "]}}");
}

const char* kPassed =
    R"({"name":"rollgate-validate","state":{"terminated":{"exitCode":0,"reason":"Completed"}}})";
const char* kRunning = R"({"name":"rollgate-validate","state":{"running":{}}})";
const char* kFailed =
    R"({"name":"rollgate-validate","state":{"terminated":{"exitCode":13,"reason":"Error","message":"{\"passed\":false,\"failedCheck\":\"computeCapability\"}"}}})";
const char* kFailedBefore =
    R"({"name":"rollgate-validate","state":{"waiting":{"reason":"CrashLoopBackOff"}},"lastState":{"terminated":{"exitCode":11,"reason":"Error","message":"cuInit failed"}}})";

TEST(PodVerdictTest, Table) {
  struct Case {
    std::string statuses;
    std::vector<std::string> names;
    Verdict::State want;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {kPassed, {"rollgate-validate"}, Verdict::State::kPassed, ""},
      {kRunning, {"rollgate-validate"}, Verdict::State::kPending, ""},
      {"", {"rollgate-validate"}, Verdict::State::kPending, ""},
      {kFailed,
       {"rollgate-validate"},
       Verdict::State::kFailed,
       "pod p on node gpu-0: rollgate-validate exited 13 (Error): {\"passed\":false"},
      {kFailedBefore, {"rollgate-validate"}, Verdict::State::kFailed, "exited 11 (Error): cuInit"},
      {std::string(kPassed) + R"(,{"name":"rollgate-validate-command","state":{"running":{}}})",
       {"rollgate-validate", "rollgate-validate-command"},
       Verdict::State::kPending,
       ""},
      {std::string(kPassed) +
           R"(,{"name":"rollgate-validate-command","state":{"terminated":{"exitCode":1}}})",
       {"rollgate-validate", "rollgate-validate-command"},
       Verdict::State::kFailed,
       "rollgate-validate-command exited 1"},
  };
  for (const auto& c : cases) {
    Verdict v = PodVerdict(Pod("p", c.statuses), c.names);
    EXPECT_EQ(v.state, c.want) << c.statuses;
    EXPECT_NE(v.message.find(c.message_part), std::string::npos) << v.message;
    // The pod cache keeps TrimPod of each pod: the verdict must not change.
    Verdict t = PodVerdict(TrimPod(Pod("p", c.statuses)), c.names);
    EXPECT_EQ(t.state, v.state) << c.statuses;
    EXPECT_EQ(t.message, v.message);
  }
}

TEST(PodVerdictTest, ALongVerdictIsBoundedOnACharacterBoundaryAndValidUtf8) {
  // A 2,000-byte termination message of 3-byte characters with an invalid byte up front.
  std::string long_msg = "\xff";
  while (long_msg.size() < 2000) long_msg += "\xe2\x82\xac";  // U+20AC
  Json pod = Pod("p", R"({"name":"rollgate-validate","state":{"terminated":{"exitCode":13}}})");
  pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["message"] =
      Json::string(long_msg);
  const Verdict v = PodVerdict(pod, {"rollgate-validate"});
  ASSERT_EQ(v.state, Verdict::State::kFailed);
  const std::size_t at = v.message.find("exited 13: ");
  ASSERT_NE(at, std::string::npos) << v.message;
  const std::string tail = v.message.substr(at + 11);
  EXPECT_LE(tail.size(), 603u);
  EXPECT_GT(tail.size(), 590u);
  EXPECT_EQ(tail.substr(0, 3), "\xef\xbf\xbd") << "the invalid byte is replaced";
  EXPECT_EQ(tail.substr(tail.size() - 3), "...");
  EXPECT_EQ((tail.size() - 3 - 3) % 3, 0u) << "whole characters only";
}

TEST(PodVerdictTest, TheCacheKeepsNothingATenantAddsToAPod) {
  Json pod = Pod("p", std::string(kFailed) + R"(,{"name":"other","image":"x","ready":false})");
  pod["metadata"]["annotations"] = Json::parse(R"({"big":")" + std::string(100000, 'x') + "\"}");
  pod["spec"]["containers"] =
      Json::parse(R"([{"name":"c","image":"i","env":[{"name":"E","value":"v"}]}])");
  pod["status"]["containerStatuses"] = Json::parse(R"([{"name":"c","ready":true}])");
  pod["status"]["conditions"] = Json::parse(R"([{"type":"Ready","status":"True"}])");
  const std::string kept = TrimPod(Json(pod)).serialize();
  EXPECT_LT(kept.size(), 700u) << kept;
  for (const char* gone : {"annotations", "containers\"", "env", "conditions", "\"image\""}) {
    EXPECT_EQ(kept.find(gone), std::string::npos) << gone << " in " << kept;
  }
  const Verdict v = PodVerdict(TrimPod(Json(pod)), {"rollgate-validate"});
  EXPECT_EQ(v.state, Verdict::State::kFailed);
  EXPECT_NE(v.message.find("on node gpu-0"), std::string::npos) << v.message;
}

using rollgate::testing::MapLister;

api::Rollout GpuRollout(bool validate) {
  api::Rollout r;
  r.namespace_ = "app";
  r.name = "r";
  r.status.revision = 1;
  r.spec.images = {{"worker-gpu", "registry.example.com/w:2"}};
  api::EnvironmentSpec env;
  env.name = "canary";
  env.namespace_ = "prod";
  api::TargetSpec t;
  t.deployment = "w";
  t.containers = {{"worker", "worker-gpu"}};
  if (validate) t.worker_validation = api::WorkerValidationSpec{};
  env.targets.push_back(t);
  r.spec.environments.push_back(env);
  return r;
}

Json Deployment(bool gpu) {
  return Json::parse(
      std::string(R"({"metadata":{"name":"w","namespace":"prod"},"spec":{"replicas":2,)"
                  R"("selector":{"matchLabels":{"app":"w"}},"template":{"spec":{"containers":[)"
                  R"({"name":"worker","image":"registry.example.com/w:1")") +
      (gpu ? R"(,"resources":{"limits":{"nvidia.com/gpu":"1"}})" : "") + "}]}}}}");
}

TEST(PodValidationObserverTest, CountsNewGpuPodsOfTheTargetOnly) {
  MapLister pods;
  MapLister deployments;
  deployments.Put(Deployment(true));
  pods.Put(Pod("a", kPassed));
  pods.Put(Pod("b", kRunning));
  pods.Put(Pod("old", kFailed, "0"));                            // previous revision: ignored
  pods.Put(Pod("other", kFailed, "1", "someone-else"));          // another deployment: ignored
  pods.Put(Pod("going", kFailed, "1", "w", /*deleting=*/true));  // terminating: ignored
  InjectionOptions opts;
  opts.validator_image = "registry.example.com/rollgate-validate:1";
  PodValidationObserver obs(pods, deployments, opts);
  auto r = GpuRollout(true);
  auto v = obs.Observe(r, r.spec.environments[0]);
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->required);
  EXPECT_EQ(v->gpu_pods, 2);
  EXPECT_EQ(v->passed, 1);
  EXPECT_EQ(v->failed, 0);
  EXPECT_EQ(v->message, "1 of 2 GPU pods validated, 1 pending");

  pods.Put(Pod("c", kFailed));
  v = obs.Observe(r, r.spec.environments[0]);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->failed, 1);
  EXPECT_NE(v->message.find("pod c on node gpu-0"), std::string::npos) << v->message;
}

TEST(PodValidationObserverTest, CpuWorkersAndUnvalidatedTargetsAreNotValidated) {
  MapLister pods;
  MapLister deployments;
  InjectionOptions opts;
  opts.validator_image = "registry.example.com/rollgate-validate:1";
  PodValidationObserver obs(pods, deployments, opts);
  deployments.Put(Deployment(false));  // the CPU-only worker
  auto r = GpuRollout(true);
  EXPECT_FALSE(obs.Observe(r, r.spec.environments[0]).has_value());
  deployments.Put(Deployment(true));
  auto unvalidated = GpuRollout(false);
  EXPECT_FALSE(obs.Observe(unvalidated, unvalidated.spec.environments[0]).has_value());
}

}  // namespace
}  // namespace rollgate::validation
