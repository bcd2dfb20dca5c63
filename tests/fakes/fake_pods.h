// FakePods: a pod cache standing in for the pod-health Informer in unit tests: Offer stores (as
// TrimHealthPod trims it) what `keep` accepts and the cache lacks; Mark is constant; Prune
// re-asks `keep` under a prefix, as Informer::PruneWithPrefix does.
// Thread-safety: none (single-threaded tests).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "controller/kube/informer.h"
#include "controller/rollout/pod_health_cache.h"
#include "tests/fakes/map_lister.h"

namespace rollgate::testing {

class FakePods : public MapLister {
 public:
  std::function<bool(const kube::Json&)> keep;
  std::string resource_version;
  std::vector<std::uint64_t> offers;  // the marks offered with
  std::vector<std::string> prunes;    // the prefixes pruned

  std::uint64_t Mark() const override { return 7; }
  void Offer(const kube::Json& obj, std::uint64_t mark) override {
    offers.push_back(mark);
    if (keep && keep(obj)) objects.try_emplace(kube::ObjectKey(obj), Trimmed(obj));
  }
  std::string last_resource_version() const override { return resource_version; }
  // The watch brings `obj`.
  void Put(const kube::Json& obj) { objects[kube::ObjectKey(obj)] = Trimmed(obj); }
  std::size_t Prune(const std::string& prefix) {
    prunes.push_back(prefix);
    return std::erase_if(
        objects, [&](const auto& kv) { return kv.first.starts_with(prefix) && !keep(*kv.second); });
  }

 private:
  static kube::ObjectPtr Trimmed(const kube::Json& obj) {
    return std::make_shared<const kube::Json>(rollout::TrimHealthPod(kube::Json(obj)));
  }
};

}  // namespace rollgate::testing
