// EventRecorder: records Kubernetes Events (core/v1) about an object, so that `kubectl describe`
// shows why a rollout moved on or failed. Best effort: a failed write is logged, never retried in
// a loop and never fails the caller.
// Thread-safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <string>

#include "controller/common/clock.h"
#include "controller/kube/kube_client.h"

namespace rollgate::kube {

struct ObjectReference {
  std::string api_version;
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
};

class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  // `type` is "Normal" or "Warning"; `reason` is CamelCase.
  virtual void Record(const ObjectReference& obj, const std::string& type,
                      const std::string& reason, const std::string& message) = 0;
};

class ApiEventRecorder final : public EventRecorder {
 public:
  ApiEventRecorder(KubeClient& client, const Clock& clock, std::string component,
                   std::string instance);
  void Record(const ObjectReference& obj, const std::string& type, const std::string& reason,
              const std::string& message) override;

  // The Event object that Record sends (exposed for tests).
  Json Build(const ObjectReference& obj, const std::string& type, const std::string& reason,
             const std::string& message);

 private:
  KubeClient& client_;
  const Clock& clock_;
  std::string component_;
  std::string instance_;
  std::atomic<std::uint64_t> seq_{0};
};

}  // namespace rollgate::kube
