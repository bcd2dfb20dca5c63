// Heartbeat: tells whether the controller's work loop is wedged, for /healthz. Workers Beat()
// whenever they take a key and when they finish a reconcile; the probe asks Wedged() with the
// number of keys ready in the work queue right now (read from the queue, not from a value the
// workers push: wedged workers push nothing). The loop is wedged when keys are ready and neither a
// beat nor an empty queue has been seen for longer than `stall_after`; the liveness probe then
// fails and the kubelet restarts the pod. An idle loop (empty queue) is never wedged, however long
// ago the last beat was, and work that arrives after a long idle time is judged from the moment
// the queue was last seen empty.
// Thread-safety: every method is safe to call from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>

#include "controller/common/clock.h"

namespace rollgate::metrics {

class Heartbeat {
 public:
  // Longest reconcile expected: API requests retry for up to ~2 minutes, so 3 minutes by default.
  static constexpr std::chrono::seconds kDefaultStallAfter{180};

  explicit Heartbeat(const Clock& clock, std::chrono::nanoseconds stall_after = kDefaultStallAfter);

  // A worker made progress.
  void Beat();
  // Why the loop counts as wedged with `queued` keys ready now, or nullopt while it is healthy.
  std::optional<std::string> Wedged(std::size_t queued);

 private:
  const Clock& clock_;
  const std::chrono::nanoseconds stall_after_;
  std::mutex mu_;
  Clock::MonoTime last_beat_;
  Clock::MonoTime last_empty_;  // when Wedged() last saw an empty queue
};

}  // namespace rollgate::metrics
