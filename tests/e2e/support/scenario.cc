#include "tests/e2e/support/scenario.h"

#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/rollout_checks.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {

namespace resources = kube::resources;

DeploymentBuilder& DeploymentBuilder::Namespace(std::string ns) {
  ns_ = std::move(ns);
  return *this;
}

DeploymentBuilder& DeploymentBuilder::Replicas(int n) {
  replicas_ = n;
  return *this;
}

DeploymentBuilder& DeploymentBuilder::Container(std::string name, std::string image) {
  containers_.emplace_back(std::move(name), std::move(image));
  return *this;
}

DeploymentBuilder& DeploymentBuilder::Containers(
    const std::map<std::string, std::string>& name_to_image) {
  for (const auto& [c, image] : name_to_image) Container(c, image);
  return *this;
}

DeploymentBuilder& DeploymentBuilder::TerminateImmediately() {
  terminate_immediately_ = true;
  return *this;
}

DeploymentBuilder& DeploymentBuilder::PodReadyDelay(std::string delay) {
  ready_delay_ = std::move(delay);
  return *this;
}

Json DeploymentBuilder::Build() const {
  Json labels = Obj({{"app", S(name_)}});
  Json containers = Json::array();
  size_t i = 0;
  for (const auto& [c, image] : containers_) {
    containers[i++] = Obj({{"name", S(c)}, {"image", S(image)}});
  }
  Json metadata = Obj({{"name", S(name_)}, {"labels", labels}});
  if (!ns_.empty()) metadata["namespace"] = S(ns_);
  Json pod_meta = Obj({{"labels", labels}});
  if (!ready_delay_.empty()) {
    pod_meta["annotations"] = Obj({{"pod-ready.stage.kwok.x-k8s.io/delay", S(ready_delay_)}});
  }
  Json pod_spec = Obj({{"containers", containers}});
  if (terminate_immediately_) pod_spec["terminationGracePeriodSeconds"] = Json::number(0);
  return Obj({{"apiVersion", S("apps/v1")},
              {"kind", S("Deployment")},
              {"metadata", metadata},
              {"spec", Obj({{"replicas", Json::number(replicas_)},
                            {"selector", Obj({{"matchLabels", labels}})},
                            {"template", Obj({{"metadata", pod_meta}, {"spec", pod_spec}})}})}});
}

RolloutBuilder& RolloutBuilder::Namespace(std::string ns) {
  ns_ = std::move(ns);
  return *this;
}

RolloutBuilder& RolloutBuilder::Image(const std::string& logical, const std::string& image) {
  images_[logical] = image;
  return *this;
}

RolloutBuilder& RolloutBuilder::Images(const std::map<std::string, std::string>& logical_to_image) {
  for (const auto& [k, v] : logical_to_image) images_[k] = v;
  return *this;
}

RolloutBuilder& RolloutBuilder::Env(Environment env) {
  envs_.push_back(std::move(env));
  return *this;
}

RolloutBuilder& RolloutBuilder::Envs(const std::vector<Environment>& envs) {
  envs_.insert(envs_.end(), envs.begin(), envs.end());
  return *this;
}

RolloutBuilder& RolloutBuilder::Analyze(const std::string& env, Analysis analysis) {
  analyses_[env] = std::move(analysis);
  return *this;
}

RolloutBuilder& RolloutBuilder::ProgressDeadlineSeconds(int s) {
  progress_deadline_seconds_ = s;
  return *this;
}

Json RolloutBuilder::Build() const {
  Json environments = Json::array();
  size_t i = 0;
  for (const auto& e : envs_) {
    Json targets = Json::array();
    size_t j = 0;
    for (const auto& t : e.targets) {
      targets[j++] = Obj({{"deployment", S(t.deployment)}, {"containers", StrObj(t.containers)}});
    }
    Json env = Obj({{"name", S(e.name)}, {"targets", targets}});
    if (!e.ns.empty()) env["namespace"] = S(e.ns);
    if (e.manual) env["approval"] = S("Manual");
    if (auto a = analyses_.find(e.name); a != analyses_.end()) {
      Json checks = Json::array();
      size_t k = 0;
      for (const auto& c : a->second.checks) {
        checks[k++] =
            Obj({{"name", S(c.name)}, {"query", S(c.query)}, {"max", Json::number(c.max)}});
      }
      env["analysis"] = Obj({{"prometheus", Obj({{"address", S(a->second.prometheus)}})},
                             {"checks", checks},
                             {"intervalSeconds", Json::number(a->second.interval_seconds)},
                             {"samples", Json::number(a->second.samples)}});
    }
    environments[i++] = env;
  }
  Json spec = Obj({{"images", StrObj(images_)}, {"environments", environments}});
  if (progress_deadline_seconds_ > 0) {
    spec["progressDeadlineSeconds"] = Json::number(progress_deadline_seconds_);
  }
  Json metadata = Obj({{"name", S(name_)}});
  if (!ns_.empty()) metadata["namespace"] = S(ns_);
  return Obj({{"apiVersion", S("rollgate.io/v1alpha1")},
              {"kind", S("ContainerRollout")},
              {"metadata", metadata},
              {"spec", spec}});
}

Json Workload::Object() const {
  return DeploymentBuilder(name)
      .Namespace(ns)
      .Replicas(2)
      .Containers(images)
      .TerminateImmediately()
      .PodReadyDelay(ready_delay)
      .Build();
}

void AddDeployment(Scenario& s, const std::string& key, const std::string& ns,
                   const std::string& name, std::map<std::string, std::string> images,
                   const std::string& ready_delay) {
  s.deps[key] = Workload{ns, name, std::move(images), ready_delay, 0};
}

void SetRollout(Scenario& s, const std::map<std::string, std::string>& images,
                const std::vector<Environment>& envs, int progress_deadline_seconds) {
  s.envs = envs;
  s.object = RolloutBuilder(s.rollout)
                 .Namespace(s.ns)
                 .Images(images)
                 .Envs(envs)
                 .ProgressDeadlineSeconds(progress_deadline_seconds)
                 .Build();
}

Scenario RolloutNamed(const std::string& ns, const std::string& name, const std::string& log) {
  Scenario s;
  s.ns = ns;
  s.rollout = name;
  s.log = log;
  return s;
}

std::string Provision(const std::vector<Scenario*>& scenarios, const ProvisionTimeouts& t) {
  Cluster& cluster = Cluster::Get();
  auto& c = cluster.client();
  std::optional<Deadline> overall;
  if (t.overall) overall.emplace(*t.overall);
  for (auto* s : scenarios) {
    for (const auto& [ns, allow_from] : s->namespaces) {
      std::map<std::string, std::string> labels;
      if (!allow_from.empty()) labels["rollgate.io/allow-rollouts-from"] = allow_from;
      if (std::string err = cluster.CreateNamespace(ns, labels); !err.empty()) return err;
    }
  }
  const Deadline sa_deadline = overall ? *overall : Deadline(t.service_account);
  for (auto* s : scenarios) {
    for (const auto& [ns, allow_from] : s->namespaces) {
      if (std::string err = cluster.WaitForServiceAccount(ns, sa_deadline); !err.empty()) {
        return err;
      }
    }
  }
  for (auto* s : scenarios) {
    for (auto& [short_name, d] : s->deps) {
      auto created = c.Create(resources::Deployments(), d.ns, d.Object());
      if (!created.ok()) return "create deployment " + d.Key() + ": " + created.status().ToString();
    }
  }
  const Deadline available = overall ? *overall : Deadline(t.available);
  for (auto* s : scenarios) {
    for (auto& [short_name, d] : s->deps) {
      for (;;) {
        auto got = c.Get(resources::Deployments(), d.ns, d.name);
        if (got.ok() && Available(*got)) {
          d.generation = Int(*got, "metadata.generation");
          break;
        }
        if (available.Passed()) {
          return "deployment " + d.Key() +
                 " not available in time: " + (got.ok() ? StatusOf(*got) : got.status().ToString());
        }
        std::this_thread::sleep_for(milliseconds(100));
      }
    }
  }
  for (auto* s : scenarios) {
    if (s->object.is_null()) continue;
    auto created = c.Create(resources::ContainerRollouts(), s->ns, s->object);
    if (!created.ok()) return "create rollout " + s->Key() + ": " + created.status().ToString();
  }
  return "";
}

}  // namespace rollgate::e2e
