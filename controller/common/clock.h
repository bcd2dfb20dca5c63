// Clock: the only source of time for logic. Production code uses RealClock; tests use a fake that
// advances by hand, so that no decision depends on sleeping.
// Thread-safety: implementations must be safe to call from any thread.
#pragma once

#include <chrono>

namespace rollgate {

class Clock {
 public:
  using MonoTime = std::chrono::steady_clock::time_point;
  using WallTime = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic time, for deadlines, backoff and rate limits.
  virtual MonoTime Now() const = 0;
  // Wall-clock time, for timestamps written into objects and logs.
  virtual WallTime WallNow() const = 0;
};

class RealClock final : public Clock {
 public:
  MonoTime Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
};

}  // namespace rollgate
