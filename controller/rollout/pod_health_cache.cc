#include "controller/rollout/pod_health_cache.h"

#include <utility>

#include "controller/kube/json_fields.h"
#include "controller/rollout/pod_health.h"

namespace rollgate::rollout {
namespace {

using kube::Field;
using kube::Json;
using kube::StringField;

constexpr const char* kHashLabel = "pod-template-hash";

// A container status as PodTroubles reads it.
Json TrimContainerStatuses(Json&& list) {
  Json kept =
      kube::KeepEach(std::move(list), {"name", "image", "restartCount", "state", "lastState"});
  for (auto& cs : kept.as_array()) {
    kube::Reshape(cs, "state", [](Json&& state) {
      Json s = kube::Keep(std::move(state), {"waiting", "running"});
      kube::Reshape(s, "waiting", [](Json&& w) {
        return kube::Keep(std::move(w), {"reason", "message"});
      });
      kube::Reshape(s, "running", [](Json&&) { return Json::object(); });
      return s;
    });
    kube::Reshape(cs, "lastState", [](Json&& state) {
      Json s = kube::Keep(std::move(state), {"terminated"});
      kube::Reshape(s, "terminated", [](Json&& t) {
        return kube::Keep(std::move(t), {"exitCode", "reason", "message"});
      });
      return s;
    });
  }
  return kept;
}

// What PodTroubles says of a pod (of any revision), as "container=reason/restarts;...": what
// TroubleMayHaveChanged compares. A healthy pod, or one being deleted, says "".
std::string TroubleSignature(const Json& pod) {
  std::string out;
  for (const PodTrouble& t : PodTroubles(pod, "", {})) {
    out += t.container + "=" + t.reason + "/" + std::to_string(t.restarts) + ";";
  }
  return out;
}

}  // namespace

bool TroubleMayHaveChanged(const Json* before, const Json& after) {
  return TroubleSignature(after) != (before != nullptr ? TroubleSignature(*before) : "");
}

std::string PodDeployment(const Json& pod) {
  const Json* meta = Field(pod, "metadata");
  if (meta == nullptr) return "";
  const Json* labels = Field(*meta, "labels");
  const std::string hash = labels != nullptr ? StringField(*labels, kHashLabel) : "";
  const Json* owners = Field(*meta, "ownerReferences");
  if (hash.empty() || owners == nullptr || !owners->is_array()) return "";
  for (const auto& o : owners->as_array()) {
    const Json* controller = Field(o, "controller");
    if (controller == nullptr || !controller->is_boolean() || !controller->as_bool()) continue;
    if (StringField(o, "kind") != "ReplicaSet") return "";
    const std::string rs = StringField(o, "name");
    const std::string suffix = "-" + hash;
    if (rs.size() <= suffix.size() || !rs.ends_with(suffix)) return "";
    const std::string ns = StringField(*meta, "namespace");
    if (ns.empty()) return "";
    return ns + "/" + rs.substr(0, rs.size() - suffix.size());
  }
  return "";
}

Json TrimHealthPod(Json&& pod) {
  if (!pod.is_object()) return std::move(pod);
  Json out = kube::Keep(std::move(pod), {"apiVersion", "kind", "metadata", "spec", "status"});
  kube::Reshape(out, "metadata", [](Json&& m) {
    Json kept =
        kube::Keep(std::move(m), {"namespace", "name", "resourceVersion", "creationTimestamp",
                                  "deletionTimestamp", "labels", "ownerReferences"});
    kube::Reshape(kept, "labels", [](Json&& l) { return kube::Keep(std::move(l), {kHashLabel}); });
    kube::Reshape(kept, "ownerReferences", [](Json&& o) {
      return kube::KeepEach(std::move(o), {"kind", "name", "controller"});
    });
    return kept;
  });
  kube::Reshape(out, "spec", [](Json&& s) {
    Json kept = kube::Keep(std::move(s), {"nodeName", "containers", "initContainers"});
    for (const char* list : {"containers", "initContainers"}) {
      kube::Reshape(kept, list, [](Json&& cs) {
        return kube::KeepEach(std::move(cs), {"name", "image"});
      });
    }
    return kept;
  });
  kube::Reshape(out, "status", [](Json&& st) {
    Json kept = kube::Keep(std::move(st), {"containerStatuses", "initContainerStatuses"});
    for (const char* list : {"containerStatuses", "initContainerStatuses"}) {
      kube::Reshape(kept, list, TrimContainerStatuses);
    }
    return kept;
  });
  return out;
}

PodHealthCache::PodHealthCache(kube::ObjectLister& pods,
                               std::function<void(const std::string&)> prune)
    : pods_(pods), prune_(std::move(prune)) {}

bool PodHealthCache::Keeps(const Json& pod) const {
  const std::string deployment = PodDeployment(pod);
  if (deployment.empty()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return by_deployment_.contains(deployment);
}

std::vector<std::string> PodHealthCache::WatchersOf(const Json& pod) const {
  const std::string deployment = PodDeployment(pod);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_deployment_.find(deployment);
  if (deployment.empty() || it == by_deployment_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

PodHealthCache::Lease PodHealthCache::Watch(const std::string& rollout, const std::string& stage,
                                            const std::set<std::string>& deployments) {
  std::vector<std::string> emptied;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = watchers_.find(rollout);
    if (it != watchers_.end() && it->second.primed && it->second.stage == stage &&
        it->second.deployments == deployments) {
      return Lease{true, 0, ""};
    }
    Watcher& w = watchers_[rollout];
    emptied = Reindex(by_deployment_, rollout, w.deployments, deployments);
    w.deployments = deployments;
    w.stage = stage;
    w.primed = false;
  }
  // Outside the lock: pruning asks Keeps of the cached pods.
  for (const auto& d : emptied) prune_(d + "-");
  // The interest is in before the mark: a change the watch brings from now on is kept, and the
  // list the caller makes next is at least as fresh as what the watch had brought before.
  Lease lease{false, pods_.Mark(), pods_.last_resource_version()};
  if (lease.resource_version.empty()) lease.resource_version = "0";
  return lease;
}

void PodHealthCache::Primed(const std::string& rollout, const std::string& stage) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watchers_.find(rollout);
  if (it != watchers_.end() && it->second.stage == stage) it->second.primed = true;
}

std::vector<kube::ObjectPtr> PodHealthCache::PodsOf(const std::string& deployment) const {
  std::vector<kube::ObjectPtr> out;
  for (auto& pod : pods_.ListPrefix(deployment + "-")) {
    if (PodDeployment(*pod) == deployment) out.push_back(std::move(pod));
  }
  return out;
}

void PodHealthCache::Release(const std::string& rollout) {
  std::vector<std::string> emptied;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = watchers_.find(rollout);
    if (it == watchers_.end()) return;
    emptied = Reindex(by_deployment_, rollout, it->second.deployments, {});
    watchers_.erase(it);
  }
  for (const auto& d : emptied) prune_(d + "-");
}

std::size_t PodHealthCache::watched_deployments() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_deployment_.size();
}

}  // namespace rollgate::rollout
