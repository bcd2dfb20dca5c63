// Rate limiting and backoff primitives, all driven by an injected Clock (no sleeping inside):
//  - TokenBucket: overall QPS/burst (client-side request limiter, work-queue bucket).
//  - ItemBackoff: per-key exponential backoff (work queue: 5 ms doubling to 1000 s).
//  - Backoff: a single retry sequence with jitter (watch restarts: 0.8 s doubling to 30 s).
// Thread-safety: TokenBucket and ItemBackoff are internally locked; Backoff is not (one owner).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "controller/common/clock.h"

namespace rollgate::kube {

using Duration = std::chrono::nanoseconds;

class TokenBucket {
 public:
  // `qps` <= 0 disables limiting. `burst` is at least 1.
  TokenBucket(double qps, int burst, const Clock& clock);

  // Takes one token and returns how long the caller must wait before using it (zero when a
  // token was available). Reservations queue up: the n-th caller past the burst waits n/qps.
  Duration Reserve();
  // Takes a token only when one is available now.
  bool TryAccept();

 private:
  void Refill(Clock::MonoTime now);

  const double qps_;
  const double burst_;
  const Clock& clock_;
  std::mutex mu_;
  double tokens_;
  Clock::MonoTime last_;
};

class ItemBackoff {
 public:
  ItemBackoff(Duration base, Duration max) : base_(base), max_(max) {}
  // The delay for the key's next retry: base * 2^failures, capped at max.
  Duration When(const std::string& key);
  void Forget(const std::string& key);
  int NumRequeues(const std::string& key);

 private:
  const Duration base_;
  const Duration max_;
  std::mutex mu_;
  std::unordered_map<std::string, int> failures_;
};

class Backoff {
 public:
  struct Options {
    Duration initial = std::chrono::milliseconds(800);
    Duration max = std::chrono::seconds(30);
    double factor = 2.0;
    double jitter = 0.2;  // each delay is scaled by a random factor in [1, 1 + jitter)
  };
  // `random01` returns a uniform value in [0, 1); injectable for tests.
  Backoff(Options opts, std::function<double()> random01);

  Duration Next();
  void Reset() { current_ = Duration::zero(); }

 private:
  Options opts_;
  std::function<double()> random01_;
  Duration current_{0};
};

// A process-seeded uniform [0,1) source for production use.
std::function<double()> DefaultRandom01();

}  // namespace rollgate::kube
