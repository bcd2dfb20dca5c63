// EventRecorder: records Kubernetes Events (core/v1) about an object, so that `kubectl describe`
// shows why a rollout moved on or failed. Best effort: a failed write is logged, never retried in
// a loop and never fails the caller. AsyncEventRecorder is what the controller uses: Events are a
// side channel, sent from their own thread with their own client (and rate limit), aggregated,
// and never on a reconcile's path.
// Thread-safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

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

// Queues Events and sends them from its own thread, so that recording never waits for the API
// server nor takes a reconcile's rate-limit tokens (give it a client of its own). The same Event
// (object, type, reason, message) recorded again while it waits is merged (count + 1); recorded
// again within `window` after it was sent, it updates the sent Event's count and lastTimestamp (a
// merge patch, as client-go's EventCorrelator does) instead of creating another. The queue is
// bounded: past `max_pending` distinct waiting Events a new one is dropped and counted, so a storm
// costs bounded memory and never blocks. Only duplicates are ever folded; distinct Events are all
// sent while the queue has room.
class AsyncEventRecorder final : public EventRecorder {
 public:
  struct Options {
    std::size_t max_pending = 1024;
    std::chrono::seconds window{600};
    std::size_t max_remembered = 4096;              // sent Events kept for aggregation
    std::chrono::milliseconds flush_timeout{2000};  // what the destructor waits to send
  };
  AsyncEventRecorder(KubeClient& client, const Clock& clock, std::string component,
                     std::string instance, Options opts);
  AsyncEventRecorder(KubeClient& client, const Clock& clock, std::string component,
                     std::string instance)
      : AsyncEventRecorder(client, clock, std::move(component), std::move(instance), Options{}) {}
  AsyncEventRecorder(const AsyncEventRecorder&) = delete;
  AsyncEventRecorder& operator=(const AsyncEventRecorder&) = delete;
  // Sends what is queued for up to flush_timeout, then stops; what is still queued then is
  // dropped (counted), so a stop never waits on an unreachable API server for longer than that
  // and the one request in flight.
  ~AsyncEventRecorder() override;

  void Record(const ObjectReference& obj, const std::string& type, const std::string& reason,
              const std::string& message) override;
  // Waits until everything queued so far was sent (or failed); false on timeout.
  bool Flush(std::chrono::milliseconds timeout);

  std::uint64_t created() const { return created_.load(); }
  std::uint64_t aggregated() const { return aggregated_.load(); }
  std::uint64_t dropped() const { return dropped_.load(); }

 private:
  struct Pending {
    std::string key;
    ObjectReference obj;
    std::string type;
    std::string reason;
    std::string message;
    std::int64_t count = 1;
  };
  struct Sent {
    std::string name;  // the Event object's name
    std::int64_t count = 0;
    Clock::MonoTime at{};
  };
  void Run();
  void Send(Pending p);
  void Remember(const std::string& key, Sent s);

  KubeClient& client_;
  const Clock& clock_;
  ApiEventRecorder builder_;
  Options opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<Pending> queue_;
  std::unordered_map<std::string, std::list<Pending>::iterator> queued_;
  bool busy_ = false;  // Run() is sending one
  bool stop_ = false;
  std::unordered_map<std::string, Sent> sent_;  // Run() thread only
  std::atomic<std::uint64_t> created_{0};
  std::atomic<std::uint64_t> aggregated_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace rollgate::kube
