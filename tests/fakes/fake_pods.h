// FakePods: a pod cache standing in for the pod-health Informer in unit tests: Offer stores (as
// TrimHealthPod trims it) what `keep` accepts and the cache lacks; Mark is constant; Prune
// re-asks `keep` under a prefix, as Informer::PruneWithPrefix does.
// Thread-safety: none (single-threaded tests).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "controller/kube/informer.h"
#include "controller/rollout/pod_health_cache.h"

namespace rollgate::testing {

class FakePods : public kube::ObjectLister {
 public:
  std::map<std::string, kube::ObjectPtr> objects;
  std::function<bool(const kube::Json&)> keep;
  std::string resource_version;
  kube::ObjectPtr Get(const std::string& key) const override {
    auto it = objects.find(key);
    return it == objects.end() ? nullptr : it->second;
  }
  std::vector<kube::ObjectPtr> ListNamespace(const std::string& ns) const override {
    std::vector<kube::ObjectPtr> out;
    for (const auto& [k, v] : objects) {
      if (k.starts_with(ns + "/")) out.push_back(v);
    }
    return out;
  }
  std::uint64_t Mark() const override { return 7; }
  void Offer(const kube::Json& obj, std::uint64_t mark) override {
    offers.push_back(mark);
    if (keep && keep(obj)) objects.try_emplace(kube::ObjectKey(obj), Trimmed(obj));
  }
  std::string last_resource_version() const override { return resource_version; }
  void Put(const kube::Json& obj) { objects[kube::ObjectKey(obj)] = Trimmed(obj); }
  std::size_t Prune(const std::string& prefix) {
    prunes.push_back(prefix);
    return std::erase_if(
        objects, [&](const auto& kv) { return kv.first.starts_with(prefix) && !keep(*kv.second); });
  }
  std::vector<std::uint64_t> offers;
  std::vector<std::string> prunes;

 private:
  static kube::ObjectPtr Trimmed(const kube::Json& obj) {
    return std::make_shared<const kube::Json>(rollout::TrimHealthPod(kube::Json(obj)));
  }
};

}  // namespace rollgate::testing
