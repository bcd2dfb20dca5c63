// MapLister: an ObjectLister backed by a map, standing in for an informer cache in unit tests.
// Thread-safety: none (single-threaded tests).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "controller/kube/informer.h"

namespace rollgate::testing {

class MapLister : public kube::ObjectLister {
 public:
  std::map<std::string, kube::ObjectPtr> objects;

  kube::ObjectPtr Get(const std::string& key) const override {
    auto it = objects.find(key);
    return it == objects.end() ? nullptr : it->second;
  }
  std::vector<kube::ObjectPtr> ListNamespace(const std::string& ns) const override {
    std::vector<kube::ObjectPtr> out;
    for (const auto& [k, v] : objects) {
      if (k.rfind(ns + "/", 0) == 0) out.push_back(v);
    }
    return out;
  }
  // What was offered (ObjectLister::Offer), by key; offers are not stored, so that a test's
  // cache says exactly what the test put into it.
  std::vector<std::string> offered;
  void Offer(const kube::Json& obj, std::uint64_t /*mark*/) override {
    offered.push_back(kube::ObjectKey(obj));
  }
  void Put(const kube::Json& obj) {
    objects[kube::ObjectKey(obj)] = std::make_shared<const kube::Json>(obj);
  }
};

}  // namespace rollgate::testing
