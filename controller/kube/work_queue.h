// WorkQueue: the controller's queue of object keys ("namespace/name"), with the semantics of
// client-go's rate-limited delaying queue:
//  - a key is queued at most once however often it is added (deduplication);
//  - a key is never handed to two workers at once: added while processing, it is queued again
//    when the worker calls Done();
//  - AddAfter delays a key; AddRateLimited delays it by the larger of a per-key exponential
//    backoff (5 ms doubling to 1000 s) and an overall token bucket (10 qps, burst 100); Forget
//    resets the key's backoff after a success;
//  - ShutDown wakes every waiting worker; Get then returns nullopt.
// Time comes from the injected Clock. TryGet never blocks, so tests drive it with a fake clock.
// Thread-safety: every member may be called concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "controller/common/clock.h"
#include "controller/kube/rate_limiter.h"

namespace rollgate::kube {

class WorkQueue {
 public:
  struct Options {
    Duration base_delay = std::chrono::milliseconds(5);
    Duration max_delay = std::chrono::seconds(1000);
    double qps = 10;
    int burst = 100;
    // Longest a blocked Get waits before re-reading the clock (real clocks only).
    Duration poll = std::chrono::milliseconds(50);
  };
  WorkQueue(const Clock& clock, Options opts);

  void Add(const std::string& key);
  void AddAfter(const std::string& key, Duration delay);
  void AddRateLimited(const std::string& key);
  void Forget(const std::string& key);
  int NumRequeues(const std::string& key);

  // Blocks until a key is ready or the queue shuts down.
  std::optional<std::string> Get();
  // Returns a ready key without blocking.
  std::optional<std::string> TryGet();
  void Done(const std::string& key);

  void ShutDown();
  bool shutting_down() const;
  // Keys ready to be processed (not counting delayed ones).
  std::size_t Len() const;
  // Keys waiting for their delay to pass.
  std::size_t DelayedLen() const;

 private:
  void AddLocked(const std::string& key);
  void PromoteReadyLocked(Clock::MonoTime now);
  std::optional<std::string> PopLocked();

  struct Delayed {
    Clock::MonoTime ready_at;
    std::uint64_t seq;
    std::string key;
    bool operator>(const Delayed& o) const {
      return ready_at != o.ready_at ? ready_at > o.ready_at : seq > o.seq;
    }
  };

  const Clock& clock_;
  Options opts_;
  ItemBackoff item_backoff_;
  TokenBucket bucket_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::unordered_set<std::string> dirty_;
  std::unordered_set<std::string> processing_;
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<>> delayed_;
  // Earliest pending ready time per key: a later AddAfter never postpones an earlier one.
  std::unordered_map<std::string, Clock::MonoTime> delayed_at_;
  std::uint64_t seq_ = 0;
  bool shutting_down_ = false;
};

}  // namespace rollgate::kube
