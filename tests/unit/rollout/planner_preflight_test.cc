// The planner's pre-flight checks before an environment is touched: missing Deployments and
// containers, cross-namespace permission labels and allowed registries. A failure changes nothing
// and ends the rollout Failed, in the first or a later environment.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "controller/api/codec.h"
#include "controller/rollout/planner.h"
#include "tests/unit/rollout/planner_world.h"

namespace rollgate::rollout::testing_world {
namespace {

// ---------------------------------------------------------------------------------------------
// Pre-flight

struct PreflightCase {
  std::string label;
  std::function<void(World&)> setup;
  std::string want_reason{};  // "" = pre-flight passes
  std::string message_has{};
};

TEST(PlannerPreflight, FailuresChangeNothing) {
  const std::vector<PreflightCase> cases = {
      {.label = "deployment missing",
       .setup = [](World& w) { w.obs.deployments.erase("app/d0-1"); },
       .want_reason = "DeploymentNotFound",
       .message_has = "app/d0-1 not found"},
      {.label = "container missing",
       .setup = [](World& w) { w.D(0, 1).container_images.erase(Container(1)); },
       .want_reason = "ContainerNotFound",
       .message_has = "no container \"c1\""},
      {.label = "current image longer than status can record",
       .setup =
           [](World& w) {
             w.D(0, 1).container_images[Container(1)] =
                 "registry.example.com/x:" + std::string(api::kMaxRecordedImage, 'a');
           },
       .want_reason = "PreviousImageTooLong",
       .message_has = "container \"c1\" runs an image reference of 4119 bytes"},
      {.label = "current image exactly at the bound",
       .setup =
           [](World& w) {
             w.D(0, 1).container_images[Container(1)] = std::string(api::kMaxRecordedImage, 'a');
           }},
      {.label = "cross-namespace without the label",
       .setup =
           [](World& w) {
             w.MoveEnv(0, "app-prod");
             w.obs.namespaces["app-prod"] = NamespaceView{"app-prod", {}};
           },
       .want_reason = "NamespaceNotPermitted",
       .message_has = "rollgate.io/allow-rollouts-from=app"},
      {.label = "cross-namespace, label names another namespace",
       .setup =
           [](World& w) {
             w.MoveEnv(0, "app-prod");
             w.obs.namespaces["app-prod"] =
                 NamespaceView{"app-prod", {{kAllowFromLabel, "other"}, {"team", "app"}}};
           },
       .want_reason = "NamespaceNotPermitted",
       .message_has = "namespace app-prod"},
      {.label = "cross-namespace, namespace not found",
       .setup = [](World& w) { w.MoveEnv(0, "app-prod"); },
       .want_reason = "NamespaceNotFound",
       .message_has = "namespace app-prod does not exist"},
      {.label = "cross-namespace with the label",
       .setup =
           [](World& w) {
             w.MoveEnv(0, "app-prod");
             w.obs.namespaces["app-prod"] = NamespaceView{"app-prod", {{kAllowFromLabel, kNs}}};
           }},
      {.label = "explicit own namespace needs no label",
       .setup = [](World& w) { w.Spec(0).namespace_ = kNs; }},
      {.label = "image from a registry not allowed",
       .setup = [](World& w) { w.opts.allowed_registries = {"registry.internal"}; },
       .want_reason = "ImageNotAllowed",
       .message_has = "registry.example.com"},
      {.label = "image from a docker.io default registry not allowed",
       .setup =
           [](World& w) {
             w.opts.allowed_registries = {"registry.example.com"};
             w.obs.rollout.spec.images[Logical(1)] = "nginx:1.25";
           },
       .want_reason = "ImageNotAllowed",
       .message_has = "docker.io"},
      {.label = "allowed registries (wildcard)",
       .setup = [](World& w) { w.opts.allowed_registries = {"*.example.com"}; }},
      {.label = "analysis address with no endpoint allowed (the default)",
       .setup =
           [](World& w) {
             w.Spec(0).analysis = AnalysisSpec{};
             w.Spec(0).analysis->prometheus_address = "http://169.254.169.254/latest";
           },
       .want_reason = "AnalysisEndpointNotAllowed",
       .message_has = "prometheus address \"http://169.254.169.254/latest\" is not an endpoint "
                      "the operator allows (--analysis-endpoints-file: none)"},
      {.label = "analysis address not among the allowed endpoints",
       .setup =
           [](World& w) {
             w.opts.analysis_endpoints = {"http://prom:9090/prometheus", "https://prom2:443"};
             w.Spec(0).analysis = AnalysisSpec{};
             w.Spec(0).analysis->prometheus_address = "http://prom:9090/prometheus-admin";
           },
       .want_reason = "AnalysisEndpointNotAllowed",
       .message_has =
           "(--analysis-endpoints-file: http://prom:9090/prometheus, https://prom2:443)"},
      {.label = "analysis address under an allowed endpoint",
       .setup =
           [](World& w) {
             w.opts.analysis_endpoints = {"http://prom:9090/prometheus"};
             w.Spec(0).analysis = AnalysisSpec{};
             w.Spec(0).analysis->prometheus_address = "http://prom:9090/prometheus/";
           }},
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
        EXPECT_EQ(e0.phase, EnvironmentPhase::kUpdating) << e0.message;
        EXPECT_EQ(p.status->phase, RolloutPhase::kProgressing);
        EXPECT_EQ(e0.targets.size(), 2u);
        w.Persist(p);
        Plan next = w.Run();
        EXPECT_EQ(next.patches.size(), 2u);
        for (const auto& patch : next.patches) {
          EXPECT_EQ(patch.namespace_, api::EnvironmentNamespace(w.obs.rollout, w.Spec(0)));
        }
        continue;
      }
      EXPECT_EQ(e0.phase, EnvironmentPhase::kFailed);
      EXPECT_EQ(p.status->phase, RolloutPhase::kFailed)
          << "nothing was changed: nothing to roll back";
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
  EXPECT_EQ(w.Env(0).phase, EnvironmentPhase::kSucceeded);
  EXPECT_EQ(w.Env(1).phase, EnvironmentPhase::kFailed);
  EXPECT_EQ(w.Env(1).reason, "DeploymentNotFound");
  EXPECT_EQ(w.St().phase, RolloutPhase::kFailed);
  EXPECT_EQ(w.St().current_environment, "env1");
}

}  // namespace
}  // namespace rollgate::rollout::testing_world
