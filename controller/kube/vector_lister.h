// VectorLister: an ObjectLister over objects read for one use (a remote cluster's Deployments and
// pods, read live for one plan), so code written against the caches judges them the same way.
// Thread-safety: none; build it, then read it from one thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "controller/kube/informer.h"

namespace rollgate::kube {

class VectorLister final : public ObjectLister {
 public:
  void Put(const std::string& key, Json obj) {
    objects_[key] = std::make_shared<const Json>(std::move(obj));
  }
  ObjectPtr Get(const std::string& key) const override {
    auto it = objects_.find(key);
    return it == objects_.end() ? nullptr : it->second;
  }
  std::vector<ObjectPtr> ListNamespace(const std::string& ns) const override {
    std::vector<ObjectPtr> out;
    const std::string prefix = ns + "/";
    for (auto it = objects_.lower_bound(prefix);
         it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

 private:
  std::map<std::string, ObjectPtr> objects_;  // by "namespace/name"
};

}  // namespace rollgate::kube
