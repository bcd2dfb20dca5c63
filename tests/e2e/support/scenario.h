// Scenario builders of the e2e tests: the Deployments and ContainerRollouts the tests create, as
// the JSON the API server accepts (DeploymentBuilder, RolloutBuilder), and a Scenario (namespaces,
// Deployments, one rollout) provisioned on the shared cluster in one go: namespaces created (with
// their rollgate.io/allow-rollouts-from label), their default ServiceAccount awaited, the
// Deployments created and awaited until available (their metadata.generation recorded), then the
// rollout created.
// Thread-safety: builders and Scenarios are values used by one thread; Provision uses
// Cluster::Get() (single-threaded tests).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/e2e/support/json.h"

namespace rollgate::e2e {

// An apps/v1 Deployment: labels app=<name> on it, its selector and its pods.
class DeploymentBuilder {
 public:
  explicit DeploymentBuilder(std::string name) : name_(std::move(name)) {}
  DeploymentBuilder& Namespace(std::string ns);  // metadata.namespace (omitted by default)
  DeploymentBuilder& Replicas(int n);            // default 1
  DeploymentBuilder& Container(std::string name, std::string image);  // in the order added
  DeploymentBuilder& Containers(const std::map<std::string, std::string>& name_to_image);
  DeploymentBuilder& TerminateImmediately();  // terminationGracePeriodSeconds: 0
  // kwok's pod-ready delay ("2s") on every pod; nothing when "".
  DeploymentBuilder& PodReadyDelay(std::string delay);
  Json Build() const;

 private:
  std::string name_;
  std::string ns_;
  int replicas_ = 1;
  std::vector<std::pair<std::string, std::string>> containers_;
  bool terminate_immediately_ = false;
  std::string ready_delay_;
};

// One target of an environment: a Deployment and, per container, the logical image it runs.
struct Target {
  std::string deployment;
  std::map<std::string, std::string> containers;  // container -> logical image (spec.images key)
};

// One environment of a rollout.
struct Environment {
  std::string name;
  std::string ns;  // "" = the rollout's namespace
  bool manual = false;
  std::vector<Target> targets;
};

// Canary analysis of an environment against a Prometheus.
struct AnalysisCheck {
  std::string name;
  std::string query;
  double max = 0;
};
struct Analysis {
  std::string prometheus;  // address
  std::vector<AnalysisCheck> checks;
  int interval_seconds = 0;
  int samples = 0;
};

// A rollgate.io/v1alpha1 ContainerRollout.
class RolloutBuilder {
 public:
  explicit RolloutBuilder(std::string name) : name_(std::move(name)) {}
  RolloutBuilder& Namespace(std::string ns);  // metadata.namespace (omitted by default)
  RolloutBuilder& Image(const std::string& logical, const std::string& image);
  RolloutBuilder& Images(const std::map<std::string, std::string>& logical_to_image);
  RolloutBuilder& Env(Environment env);
  RolloutBuilder& Envs(const std::vector<Environment>& envs);
  RolloutBuilder& Analyze(const std::string& env, Analysis analysis);
  RolloutBuilder& ProgressDeadlineSeconds(int s);  // omitted when <= 0
  Json Build() const;

 private:
  std::string name_;
  std::string ns_;
  std::map<std::string, std::string> images_;
  std::vector<Environment> envs_;
  std::map<std::string, Analysis> analyses_;
  int progress_deadline_seconds_ = 0;
};

// A Deployment of a scenario: 2 replicas, pods that terminate at once.
struct Workload {
  std::string ns;
  std::string name;
  std::map<std::string, std::string> images;  // container -> image it is created with
  std::string ready_delay;                    // kwok pod-ready delay of its pods, "" for none
  std::int64_t generation = 0;  // metadata.generation once available, before any rollout
  std::string Key() const { return ns + "/" + name; }
  Json Object() const;
};

struct Scenario {
  std::string ns;  // the rollout's namespace
  std::string rollout = "app";
  std::map<std::string, std::string> namespaces;  // to create: name -> allow-rollouts-from ("")
  std::map<std::string, Workload> deps;           // by short name ("dev-api")
  std::vector<Environment> envs;                  // the rollout's environments
  Json object;                                    // the ContainerRollout to create (null: none)
  std::string log;  // the log of the controller acting on it: wait failures print its tail
  std::string Key() const { return ns + "/" + rollout; }
};

// Adds a Deployment to create, under `key` ("dev-api").
void AddDeployment(Scenario& s, const std::string& key, const std::string& ns,
                   const std::string& name, std::map<std::string, std::string> images,
                   const std::string& ready_delay = "");

// Sets the rollout to create: `images` through `envs` (also kept in s.envs), with
// progressDeadlineSeconds when > 0.
void SetRollout(Scenario& s, const std::map<std::string, std::string>& images,
                const std::vector<Environment>& envs, int progress_deadline_seconds = 0);

// A Scenario that only names an existing rollout.
Scenario RolloutNamed(const std::string& ns, const std::string& name, const std::string& log = "");

struct ProvisionTimeouts {
  // For each namespace's default ServiceAccount, from the first wait on.
  std::chrono::seconds service_account{60};
  // For the Deployments to be available, from once they are all created.
  std::chrono::seconds available{120};
  // When set, one deadline for all of it instead, from the start.
  std::optional<std::chrono::seconds> overall;
};

// Creates the scenarios' namespaces, Deployments (waiting until they are available and recording
// their generation) and rollouts, in that order across all of them. "" or what failed.
std::string Provision(const std::vector<Scenario*>& scenarios, const ProvisionTimeouts& t = {});

}  // namespace rollgate::e2e
