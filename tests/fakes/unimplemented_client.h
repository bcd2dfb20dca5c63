// UnimplementedClient: a KubeClient whose every call fails with kUnknown ("unused"). Test fakes
// derive from it and override only the verbs their test exercises.
// Thread-safety: stateless.
#pragma once

#include <string>

#include "controller/kube/kube_client.h"

namespace rollgate::testing {

class UnimplementedClient : public kube::KubeClient {
 public:
  Result<kube::Json> Get(const kube::ResourceType&, const std::string&,
                         const std::string&) override {
    return Unused();
  }
  Result<kube::ObjectList> List(const kube::ResourceType&, const std::string&,
                                const kube::ListOptions&) override {
    return Unused();
  }
  Result<kube::Json> Create(const kube::ResourceType&, const std::string&,
                            const kube::Json&) override {
    return Unused();
  }
  Result<kube::Json> Update(const kube::ResourceType&, const std::string&,
                            const kube::Json&) override {
    return Unused();
  }
  Result<kube::Json> UpdateStatus(const kube::ResourceType&, const std::string&,
                                  const kube::Json&) override {
    return Unused();
  }
  Result<kube::Json> Patch(const kube::ResourceType&, const std::string&, const std::string&,
                           kube::PatchType, const std::string&,
                           const kube::PatchOptions&) override {
    return Unused();
  }
  Status Delete(const kube::ResourceType&, const std::string&, const std::string&,
                const kube::DeleteOptions&) override {
    return Unused();
  }
  Status Watch(const kube::ResourceType&, const std::string&, const kube::WatchOptions&,
               const std::function<bool(kube::WatchEvent&&)>&, const CancelToken&) override {
    return Unused();
  }

 private:
  static Status Unused() { return Status(StatusCode::kUnknown, "unused"); }
};

}  // namespace rollgate::testing
